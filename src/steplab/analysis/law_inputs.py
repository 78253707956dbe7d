"""The checks every loss-curve law and fit shares (:mod:`steplab.analysis.laws`): absolute
learning rates, warm-up lengths, evaluation steps, law parameters and law dicts, each raising a
``SpecError`` that says what to pass; and :func:`one_blas_thread` for fits and predictions.
Conventions are those of the laws' module docstring (Tissue et al. 2024; Luo et al. 2025)."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from steplab.errors import SpecError

Array = np.ndarray
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "Array",
    "as_eval_steps",
    "as_lrs",
    "check_lam",
    "check_params",
    "check_warmup",
    "law_from_fields",
    "one_blas_thread",
]


def one_blas_thread(fit: F) -> F:
    """Run ``fit`` (a fit or a prediction) with BLAS limited to one thread. The matrices are
    small, and numpy's and scipy's separate OpenBLAS pools busy-waiting against each other
    made L-BFGS-B ~30x slower on a loaded 2-core machine. ``threadpoolctl`` comes with
    scikit-learn; without it, no limit is set."""

    @functools.wraps(fit)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn (a dependency) installs it
            return fit(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_lrs(lrs: Any) -> Array:
    """``lrs`` as a 1-D float array of absolute learning rates, one per update: finite,
    ``>= 0`` and not all zero."""
    eta = np.asarray(lrs, dtype=np.float64)
    if eta.ndim != 1 or eta.size == 0:
        raise SpecError(
            f"lrs must be a non-empty 1-D sequence of absolute LRs, got shape {eta.shape}"
        )
    if not np.all(np.isfinite(eta)):
        raise SpecError("lrs contains NaN or inf; pass the finite absolute LR of every update")
    if np.any(eta < 0):
        raise SpecError("lrs must be >= 0 (absolute learning rates, one per update)")
    if not np.any(eta > 0):
        raise SpecError("lrs are all zero; pass absolute learning rates (not all zero)")
    return eta


def check_warmup(warmup_steps: int, total: int | None = None) -> int:
    """``warmup_steps`` as an int ``>= 0``, below ``total`` (the schedule's length) when given."""
    ok = isinstance(warmup_steps, (int, np.integer)) and not isinstance(warmup_steps, bool)
    if not ok or warmup_steps < 0:
        raise SpecError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if total is not None and warmup_steps >= total:
        raise SpecError(
            f"warmup_steps={warmup_steps} leaves no post-warm-up update in a schedule of "
            f"{total} steps; pass a longer schedule or fewer warmup_steps"
        )
    return int(warmup_steps)


def check_lam(lam: float) -> float:
    """The annealing-momentum decay ``lam`` as a float in ``[0, 1)``."""
    if not (isinstance(lam, (int, float)) and 0.0 <= lam < 1.0):
        raise SpecError(f"lam (annealing-momentum decay) must be in [0, 1), got {lam!r}")
    return float(lam)


def as_eval_steps(steps: Any, total: int) -> Array:
    """``steps`` as int64 update counts ``s`` in ``1..total``."""
    s = np.asarray(steps)
    if s.ndim != 1 or (s.size and not np.all(np.equal(np.mod(s, 1), 0))):
        raise SpecError("steps must be a 1-D sequence of integer step numbers s (updates done)")
    s = s.astype(np.int64)
    if s.size and (s.min() < 1 or s.max() > total):
        raise SpecError(
            f"steps must lie in 1..{total} (the number of updates done), got {s.min()}..{s.max()}"
        )
    return s


def check_params(obj: Any, names: Sequence[str]) -> None:
    """Make each field ``names`` of the frozen dataclass ``obj`` a finite float ``>= 0``."""
    for name in names:
        value = getattr(obj, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not abs(value) <= sys.float_info.max  # NaN, inf, an int too large for a float
        ):
            raise SpecError(f"{type(obj).__name__}.{name} must be a finite number, got {value!r}")
        if value < 0:
            raise SpecError(f"{type(obj).__name__}.{name} must be >= 0, got {value!r}")
        object.__setattr__(obj, name, float(value))


def law_from_fields(cls: Any, d: Mapping[str, Any]) -> Any:
    """The law ``cls`` from its ``to_dict()`` output (the ``"law"`` tag must be ``cls.LAW``);
    unknown fields are an error."""
    data = dict(d)
    tag = data.pop("law", cls.LAW)
    if tag != cls.LAW:
        raise SpecError(f"expected law {cls.LAW!r}, got {tag!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown {cls.LAW} law field(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise SpecError(f"bad {cls.LAW} law dict: {exc}") from None
