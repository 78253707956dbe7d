"""The optimizer registry without torch: names, entries, their constructor signatures and
the kwargs check (:func:`resolve_kwargs`), so specs, labels and listings work in commands
that never train (``steplab runs list`` starts without importing torch; DESIGN.md start-up goal).

A built-in entry's signature comes from :mod:`steplab.optim.signature_table`, a table
written from the installed classes and checked against them by
``tests/test_optim_signatures.py``; any other entry (a ``module:Class`` path, a user's
:func:`register`, a built-in whose table row is missing) imports its class
(:func:`steplab.optim.classes.class_signature`).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from steplab.errors import SpecError
from steplab.optim.catalog import ADAM_LIKE, BUILTIN, OptimizerInfo
from steplab.optim.signature_table import SIGNATURES

__all__ = ["REQUIRED", "default_kwargs", "describe", "info", "is_adam_family", "optimizer_names", "register",
           "resolve_kwargs", "signature"]

#: the default of a constructor parameter that has none
REQUIRED = inspect.Parameter.empty

_HINT = "see `steplab algorithms optimizers`"
_BETA_KEYS = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2")

_BUILTIN_ENTRIES: dict[str, OptimizerInfo] = {entry.name: entry for entry in BUILTIN}
_REGISTRY: dict[str, OptimizerInfo] = dict(_BUILTIN_ENTRIES)


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


def signature(entry: OptimizerInfo) -> tuple[dict[str, Any], bool]:
    """The constructor's named keyword parameters of ``entry``'s class (minus self, params and
    model) mapped to their defaults (:data:`REQUIRED` when none), and whether only ``**kwargs``
    is declared (then names cannot be checked). Callers must not mutate the dict."""
    row = SIGNATURES.get(entry.name)
    if row is not None and row[0] == entry.target and _BUILTIN_ENTRIES.get(entry.name) == entry:
        return row[1], False
    from steplab.optim import classes  # imports torch and the class

    return classes.class_signature(entry)


def default_kwargs(name: str) -> dict[str, Any]:
    """The kwargs ``name`` is built with when none are given: the class's own defaults,
    overridden by steplab's registry defaults (e.g. ``nadamw``'s decoupled weight decay)."""
    entry = info(name)
    named, _ = signature(entry)
    out = {k: d for k, d in named.items() if d is not REQUIRED}
    out.update(entry.defaults)
    return out


def resolve_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``kwargs`` against the class of ``name`` and map the AlgoPerf-style convenience
    keys (``beta1``, ``one_minus_beta1``, ``beta2``, ``one_minus_beta2``) onto ``betas`` (or
    onto ``momentum`` for SGD-like classes). Returns the canonical kwargs (registry defaults
    not included); raises a one-line ``SpecError`` naming the optimizer."""
    entry = info(name)
    named, only_var = signature(entry)
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
