"""What the convex last-iterate bound (:mod:`steplab.analysis.bound`) says about horizons and
cooldowns, with no training run (Schaipp, Hägele, Taylor, Simsekli & Bach 2025, arXiv
2501.18965, §4-5; ``shared/references/schedules-and-prediction.md`` §7-8):

* :func:`transfer_lr` - the peak LR at another horizon by the ratio of the bound's optimal
  base LRs; :func:`fit_horizon_power_law` / :func:`power_law_lr` - Bjorck et al. 2024's
  power law ``lr*(T) = A * T^B`` fitted on tuned LRs;
* :func:`optimal_cooldown` - the best WSD cooldown fraction, each at its own optimal LR;
  :func:`continue_vs_restart` - extend a WSD run from its stable checkpoint or start over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from steplab import schedules
from steplab.analysis.bound import (
    bound_terms,
    nonnegative_vector,
    optimal_base_lr,
    resample_norms,
    schedule_multipliers,
)
from steplab.errors import SpecError

__all__ = [
    "CooldownPlan",
    "continue_vs_restart",
    "fit_horizon_power_law",
    "optimal_cooldown",
    "power_law_lr",
    "transfer_lr",
]


def _spec_optimum(
    spec: Any, budget_steps: int, grad_norms: ArrayLike | None, D: float = 1.0
) -> tuple[float, float]:
    return optimal_base_lr(schedule_multipliers(spec, budget_steps), resample_norms(grad_norms, budget_steps), D)


def _positive(value: float, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating))
        or not np.isfinite(value)
        or value <= 0
    ):
        raise SpecError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def transfer_lr(
    spec: schedules.ScheduleSpec | Mapping[str, Any] | str,
    from_steps: int,
    lr: float,
    to_steps: int,
    grad_norms: ArrayLike | None = None,
) -> float:
    """Peak LR for ``to_steps`` given ``lr`` tuned at ``from_steps`` for the same schedule:
    ``lr * gamma*(to_steps) / gamma*(from_steps)`` (the bound's rule, Schaipp et al. 2025,
    §5 / reference ``scripts/multiple_horizon.py``).

    ``grad_norms``, if given, is a measured norm curve on normalized time; it is resampled
    to each horizon with ``np.interp``. Its scale (and ``D``) cancel in the ratio.
    """
    lr = _positive(lr, "lr")
    g_from, _ = _spec_optimum(spec, from_steps, grad_norms)
    g_to, _ = _spec_optimum(spec, to_steps, grad_norms)
    return lr * g_to / g_from


def fit_horizon_power_law(
    horizons: Sequence[float] | np.ndarray, lrs: Sequence[float] | np.ndarray
) -> tuple[float, float]:
    """``(A, B)`` of ``lr*(T) = A * T^B`` by least squares in log-log space (Bjorck et al.
    2024, "Scaling Optimal LR Across Token Horizons", arXiv 2409.19913; B < 0 means longer
    runs want smaller LRs). Needs tuned LRs at two or more distinct horizons."""
    h = nonnegative_vector(horizons, "horizons")
    y = nonnegative_vector(lrs, "lrs")
    if h.size != y.size:
        raise SpecError(
            f"horizons has {h.size} entries but lrs has {y.size}; give one tuned LR per horizon"
        )
    if np.any(h <= 0) or np.any(y <= 0):
        raise SpecError("horizons and lrs must all be > 0 to fit a power law in log-log space")
    if np.unique(h).size < 2:
        raise SpecError("fit_horizon_power_law needs tuned LRs at two or more distinct horizons")
    slope, intercept = np.polyfit(np.log(h), np.log(y), 1)
    return float(np.exp(intercept)), float(slope)


def power_law_lr(A: float, B: float, budget_steps: float) -> float:
    """``A * budget_steps^B``: the power-law rule's LR at that horizon (Bjorck et al. 2024)."""
    return float(_positive(A, "A") * _positive(budget_steps, "budget_steps") ** float(B))


# ----------------------------------------------------------------------------------
# Cooldown planning
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CooldownPlan:
    """WSD cooldown fractions scored by the bound at their own optimal base LR."""

    fractions: np.ndarray  # the grid of cooldown fractions (of the whole run)
    omegas: np.ndarray  # Omega* per fraction
    gammas: np.ndarray  # gamma* (optimal peak LR for D = 1, G as given) per fraction
    best_fraction: float  # fraction with the smallest Omega*


def _wsd(decay: float, shape: str) -> dict[str, Any]:
    return {"name": "wsd", "decay": float(decay), "shape": shape}


def optimal_cooldown(
    budget_steps: int,
    *,
    shape: str = "linear",
    grid: Sequence[float] | np.ndarray | None = None,
    grad_norms: ArrayLike | None = None,
    D: float = 1.0,
) -> CooldownPlan:
    """Best cooldown fraction of a WSD run (``{"name": "wsd", "decay": c, "shape": shape}``,
    shapes ``linear``, ``cosine``, ``1-sqrt``, ``square``) of ``budget_steps`` updates, each
    fraction at its own optimal LR (Schaipp et al. 2025, §4 / ``scripts/lr_transfer.py``).

    ``grid`` defaults to ``0, 0.05, ..., 1`` (0 is a constant LR, 1 a full decay).
    ``grad_norms`` is a norm curve on normalized time, resampled to ``budget_steps``.
    """
    fracs = np.round(np.linspace(0.0, 1.0, 21), 12) if grid is None else nonnegative_vector(grid, "grid")
    if np.any(fracs > 1.0):
        raise SpecError("cooldown fractions in grid must lie in [0, 1]")
    g = resample_norms(grad_norms, budget_steps)
    gammas = np.empty(fracs.size)
    omegas = np.empty(fracs.size)
    for i, c in enumerate(fracs):
        gammas[i], omegas[i] = optimal_base_lr(schedule_multipliers(_wsd(c, shape), budget_steps), g, D)
    return CooldownPlan(
        fractions=fracs, omegas=omegas, gammas=gammas, best_fraction=float(fracs[np.argmin(omegas)])
    )


def continue_vs_restart(
    from_steps: int,
    to_steps: int,
    *,
    decay: float = 0.2,
    shape: str = "linear",
    grad_norms: ArrayLike | None = None,
) -> dict[str, float]:
    """Extend a WSD run tuned at ``from_steps`` (peak LR ``gamma*(from)``) to ``to_steps``.

    * continue: resume from the end of its stable phase (``stable_steps`` =
      ``from_steps - round(decay * from_steps)`` updates already paid), keep the peak LR and
      the cooldown fraction; costs ``to_steps - stable_steps`` more updates.
    * restart: a fresh WSD run at ``to_steps`` with its own optimal LR; costs ``to_steps``.

    Returns a dict with ``lr_from``, ``lr_restart`` (both gamma* for D = 1), ``omega_continue``
    (bound at ``to_steps`` with ``lr_from``), ``omega_restart`` (``Omega*(to_steps)``),
    ``ratio = omega_continue / omega_restart`` (>= 1: the bound's price of not retuning),
    ``stable_steps``, ``steps_continue``, ``steps_restart`` (Schaipp et al. 2025, §5.2 /
    ``scripts/horizon_transfer.py`` for the setting).
    """
    for name, value in (("from_steps", from_steps), ("to_steps", to_steps)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SpecError(f"{name} must be a positive integer, got {value!r}")
    if to_steps <= from_steps:
        raise SpecError(
            f"to_steps ({to_steps}) must exceed from_steps ({from_steps}) to extend a run"
        )
    spec = _wsd(decay, shape)
    lr_from, _ = _spec_optimum(spec, from_steps, grad_norms)
    lr_to, omega_restart = _spec_optimum(spec, to_steps, grad_norms)
    g_to = resample_norms(grad_norms, to_steps)
    omega_continue = bound_terms(lr_from * schedule_multipliers(spec, to_steps), g_to).total
    stable = int(from_steps - round(decay * from_steps))
    return {
        "lr_from": lr_from,
        "lr_restart": lr_to,
        "omega_continue": float(omega_continue),
        "omega_restart": omega_restart,
        "ratio": float(omega_continue / omega_restart),
        "stable_steps": float(stable),
        "steps_continue": float(to_steps - stable),
        "steps_restart": float(to_steps),
    }
