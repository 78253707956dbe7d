"""Optimizers by name, built from well-kept packages (DESIGN.md, ``optim/``).

Each registry entry (:mod:`steplab.optim.catalog`) points at a class in ``torch.optim``, ``schedulefree`` (Defazio et al.
2024, "The Road Less Scheduled"), ``pytorch_optimizer`` (Lion, Prodigy, D-Adaptation,
AdaBelief, Adan, Shampoo, SOAP, Muon) or ``dog`` (``dog-optimizer``, Ivgi et al. 2023). The
only update rules steplab writes itself are the Polyak-type steps no installed package provides
(:mod:`steplab.optim.polyak`: SPS_max, MoMo, ALR-SMAG); they read the minibatch loss, see
:func:`needs_loss`. Any ``module:Class`` import path works too (bring your own, e.g.
``torch.optim:Adagrad``).

:func:`build_optimizer` adds what every benchmark needs around the class:

* parameter groups in the nanoGPT style (``model.py::configure_optimizers``): tensors with
  fewer than 2 dimensions (biases, norm gains, scalars) get no weight decay;
* AlgoPerf-style convenience kwargs ``beta1`` / ``one_minus_beta1`` / ``beta2`` /
  ``one_minus_beta2`` mapped onto ``betas`` (or ``momentum`` for SGD-like classes);
* kwargs checked against the class signature, so a typo is a one-line ``SpecError``
  instead of being swallowed (``pytorch_optimizer`` classes accept ``**kwargs``).

Optimizers with a train/eval mode (schedule-free; steplab's averaged DoG) are returned in
train mode. Before evaluating or checkpointing, switch them with
:func:`steplab.optim.modes.eval_mode`, and back with :func:`~steplab.optim.modes.train_mode`
(no-ops for every other optimizer)::

    opt = build_optimizer("adamw-schedulefree", model, lr=3e-3, weight_decay=0.05)
    ...train steps...
    with eval_mode(opt):          # params now hold the averaged iterate x
        metrics = evaluate(model)
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from steplab.errors import SpecError
from steplab.optim.averaged import with_averaging
from steplab.optim.catalog import ADAM_LIKE, BUILTIN, OptimizerInfo
from steplab.optim.groups import muon_param_groups, param_groups
from steplab.optim.modes import train_mode

_HINT = "see `steplab algorithms optimizers`"
_BETA_KEYS = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2")

_REGISTRY: dict[str, OptimizerInfo] = {entry.name: entry for entry in BUILTIN}


def register(info: OptimizerInfo) -> OptimizerInfo:
    """Add an optimizer to the registry (a user can register their own)."""
    _REGISTRY[info.name] = info
    return info


def optimizer_names() -> list[str]:
    """Registered optimizer names, sorted."""
    return sorted(_REGISTRY)


def info(name: str) -> OptimizerInfo:
    """The registry entry for ``name``, or an ad-hoc entry for a ``module:Class`` path."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"an optimizer must be a registry name or 'module:Class', got {name!r} ({_HINT})")
    key = name.strip().lower().replace("_", "-")
    if key in _REGISTRY:
        return _REGISTRY[key]
    if ":" in name:
        cls_name = name.rpartition(":")[2]
        return OptimizerInfo(name.strip(), name.strip(), f"bring-your-own {cls_name}", name.strip(),
                             adam_family=any(k in cls_name.lower() for k in ADAM_LIKE))
    raise SpecError(
        f"unknown optimizer {name!r}; known: {', '.join(optimizer_names())}, "
        f"or an import path like 'torch.optim:Adagrad' ({_HINT})"
    )


def _resolve(entry: OptimizerInfo) -> type:
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
def _signature(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """Named keyword parameters of ``cls.__init__`` (minus self/params), and whether only
    ``**kwargs`` is declared (then names cannot be checked); cached per class (planning a
    large benchmark asks tens of thousands of times). Callers must not mutate the dict."""
    params = dict(inspect.signature(cls.__init__).parameters)
    if getattr(cls, "_steplab_wraps", None) is not None:  # averaged DoG: wrapper + base kwargs
        params = {**inspect.signature(cls._steplab_wraps.__init__).parameters, **params}
    named = {k: p for k, p in params.items()
             if k not in ("self", "params", "model") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    only_var = not named and any(p.kind is p.VAR_KEYWORD for p in params.values())
    return named, only_var


def default_kwargs(name: str) -> dict[str, Any]:
    """The kwargs ``name`` is built with when none are given: the class's own defaults,
    overridden by steplab's registry defaults (e.g. ``nadamw``'s decoupled weight decay)."""
    entry = info(name)
    named, _ = _signature(_resolve(entry))
    out = {k: p.default for k, p in named.items() if p.default is not inspect.Parameter.empty}
    out.update(entry.defaults)
    return out


def resolve_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``kwargs`` against the class of ``name`` and map the AlgoPerf-style convenience
    keys (``beta1``, ``one_minus_beta1``, ``beta2``, ``one_minus_beta2``) onto ``betas`` (or
    onto ``momentum`` for SGD-like classes). Returns the canonical kwargs (registry defaults
    not included); raises a one-line ``SpecError`` naming the optimizer."""
    entry = info(name)
    named, only_var = _signature(_resolve(entry))
    odd = [k for k in kwargs if not isinstance(k, str)]
    if odd:
        raise SpecError(f"optimizer {entry.name!r}: kwarg names must be strings, got {odd[0]!r}")
    out = {k: v for k, v in kwargs.items() if k not in _BETA_KEYS}
    for k in ("lr", "weight_decay", "model"):
        if k in out:
            raise SpecError(f"optimizer {entry.name!r}: give {k!r} as its own setting, not as an optimizer kwarg")
    if not only_var:
        bad = sorted(k for k in out if k not in named)
        if bad:
            raise SpecError(f"optimizer {entry.name!r} has no parameter {', '.join(map(repr, bad))}; "
                            f"it takes: {', '.join(sorted(k for k in named if k not in ('lr', 'weight_decay')))} ({_HINT})")
    if "betas" in out:  # steplab reads betas[0] and betas[1] (defaults, beta1/beta2 keys)
        b = out["betas"]
        if isinstance(b, (str, bytes)) or not isinstance(b, Sequence) or len(b) < 2 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in b
        ):
            raise SpecError(f"optimizer {entry.name!r}: 'betas' must be a list of numbers like [0.9, 0.999], got {b!r}")
    m = out.get("momentum", 0.0)
    if isinstance(m, bool) or not isinstance(m, (int, float)):
        raise SpecError(f"optimizer {entry.name!r}: 'momentum' must be a number like 0.9, got {m!r}")
    betas_given = {k: kwargs[k] for k in _BETA_KEYS if k in kwargs}
    if not betas_given:
        return out
    for one, other in (("beta1", "one_minus_beta1"), ("beta2", "one_minus_beta2")):
        if one in betas_given and other in betas_given:
            raise SpecError(f"optimizer {entry.name!r}: give {one!r} or {other!r}, not both")
    vals: dict[int, float] = {}
    for k, v in betas_given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= sys.float_info.max:
            raise SpecError(f"optimizer {entry.name!r}: {k!r} must be a finite number, got {v!r}")
        vals[0 if "beta1" in k else 1] = 1.0 - float(v) if k.startswith("one_minus") else float(v)
    if "betas" in named:
        base = out.get("betas", default_kwargs(entry.name).get("betas", (0.9, 0.999)))
        betas = list(base)
        for i, v in vals.items():
            betas[i] = v
        out["betas"] = tuple(betas)
    elif "momentum" in named:
        if 1 in vals:
            raise SpecError(f"optimizer {entry.name!r} has momentum but no second beta; drop beta2/one_minus_beta2")
        out["momentum"] = vals[0]
    else:
        raise SpecError(f"optimizer {entry.name!r} takes neither betas nor momentum; "
                        f"drop {', '.join(sorted(betas_given))} ({_HINT})")
    return out


def build_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.0,
    no_decay_bias_norm: bool = True,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (registry name or ``module:Class``) over ``model``'s parameters.

    Args:
        name: a name from :func:`optimizer_names` or an import path ``module:Class``.
        model: the module to train; its trainable parameters are grouped by :func:`param_groups`
            (``muon``: by :func:`muon_param_groups`).
        lr: the peak learning rate (a schedule multiplies it through ``schedules.to_lr_scheduler``).
        weight_decay: applied to the decay group only (as the optimizer defines it: decoupled
            for ``adamw``/``nadamw``/``radam``/schedule-free/pytorch-optimizer, L2 for ``sgd``/``adam``/``dog``).
        no_decay_bias_norm: exempt tensors with fewer than 2 dimensions from weight decay.
        **kwargs: passed to the class (``betas``, ``momentum``, ``eps``...), after
            :func:`resolve_kwargs`; steplab's registry defaults fill the rest.

    Returns:
        The optimizer, in train mode when it has one (schedule-free, ``dog``).

    Raises:
        SpecError: unknown name, unknown kwarg, or a value the class rejects.
    """
    entry = info(name)
    cls = _resolve(entry)
    for key, val in (("lr", lr), ("weight_decay", weight_decay)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not abs(val) <= sys.float_info.max or val < 0:
            raise SpecError(f"optimizer {entry.name!r}: {key} must be a finite number >= 0, got {val!r}")
    given = resolve_kwargs(entry.name, kwargs)
    final = {**entry.defaults, **given}
    if "betas" in final:
        final["betas"] = tuple(final["betas"])
    named, only_var = _signature(cls)
    if "weight_decay" in named or only_var:
        final["weight_decay"] = weight_decay
    elif weight_decay:
        raise SpecError(f"optimizer {entry.name!r} takes no weight_decay; set weight_decay = 0")
    split = muon_param_groups if entry.groups == "muon" else param_groups
    groups = split(model, weight_decay if ("weight_decay" in final) else 0.0,
                   no_decay_bias_norm=no_decay_bias_norm)
    if "weight_decay" not in final:
        for g in groups:
            g.pop("weight_decay")
    if entry.averaged:
        final["model"] = model
    try:
        opt = cls(groups, lr=lr, **final)
    except (TypeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"optimizer {entry.name!r} rejected its settings: {msg} ({_HINT})") from None
    train_mode(opt)
    return opt


def describe(name: str) -> str:
    """One line: name, summary, source, and steplab's defaults that differ from the class."""
    entry = info(name)
    extra = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
    return (f"{entry.name}: {entry.summary} [{entry.target}; {entry.source}]"
            + (f" (steplab sets {extra})" if extra else ""))


def is_adam_family(name: str) -> bool:
    """True for Adam-like and sign-like updates (coordinate-wise scaling), False for
    SGD-like ones (SGD, schedule-free SGD, DoG); used to pick the gradient-norm type.
    For ``module:Class`` paths this is a guess from the class name."""
    return info(name).adam_family


def needs_loss(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt.step`` needs the minibatch loss, passed as ``opt.step(lambda: loss)``
    (the Polyak-type steps of :mod:`steplab.optim.polyak`; any class may opt in with a class
    attribute ``needs_loss = True``). The closure returns the loss already computed for the
    step: nothing is recomputed, and every other optimizer keeps its plain ``step()``."""
    return bool(getattr(type(opt), "needs_loss", False))
