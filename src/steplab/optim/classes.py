"""An optimizer entry's class, imported (torch), and its constructor's keyword parameters:
what :func:`steplab.optim.optimizers.build_optimizer` builds and what
:func:`steplab.optim.registry.signature` reads for entries the torch-free signature table
does not hold (``module:Class`` paths, a user's ``register``)."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

import torch

from steplab.errors import SpecError
from steplab.optim.averaged import with_averaging
from steplab.optim.catalog import OptimizerInfo

_HINT = "see `steplab algorithms optimizers`"


def resolve_class(entry: OptimizerInfo) -> type:
    module_name, _, attr = entry.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise SpecError(f"optimizer {entry.name!r}: cannot import {entry.target!r} ({e}); "
                        f"install the package or fix the path ({_HINT})") from None
    if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)):
        raise SpecError(f"optimizer {entry.name!r}: {entry.target!r} is not a torch.optim.Optimizer subclass")
    if entry.averaged:
        return with_averaging(obj)
    return obj


@functools.cache
def class_params(cls: type) -> tuple[dict[str, Any], bool]:
    """Named keyword parameters of ``cls.__init__`` (minus self/params), and whether only
    ``**kwargs`` is declared (then names cannot be checked); cached per class (planning a
    large benchmark asks tens of thousands of times). Callers must not mutate the dict."""
    params = dict(inspect.signature(cls.__init__).parameters)
    if getattr(cls, "_steplab_wraps", None) is not None:  # averaged DoG: wrapper + base kwargs
        params = {**inspect.signature(cls._steplab_wraps.__init__).parameters, **params}
    named = {k: p.default for k, p in params.items()
             if k not in ("self", "params", "model") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    only_var = not named and any(p.kind is p.VAR_KEYWORD for p in params.values())
    return named, only_var


def class_signature(entry: OptimizerInfo) -> tuple[dict[str, Any], bool]:
    """:func:`steplab.optim.registry.signature` read from the imported class itself."""
    return class_params(resolve_class(entry))
