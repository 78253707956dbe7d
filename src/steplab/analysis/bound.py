"""The convex last-iterate bound as a schedule simulator.

For convex, Lipschitz ``f`` and SGD ``x_{t+1} = x_t - eta_t g_t`` with ``E||g_t||^2 <= G_t^2``
and ``D = ||x_1 - x*||``, Schaipp, Hägele, Taylor, Simsekli & Bach 2025 ("The Surprising
Agreement Between Convex Optimization Theory and Learning-Rate Scheduling for Large Model
Training", arXiv 2501.18965, Thm 1; = Defazio et al. 2023, arXiv 2310.07831, Thm 10) bound
the last iterate at horizon ``T`` (only ``eta_1 .. eta_T`` used) by

    Omega_T = T1 + T2 + T3,    S = sum_{t<=T} eta_t
    T1 = D^2 / (2 S),          T2 = sum_t eta_t^2 G_t^2 / (2 S)
    T3 = 1/2 sum_{k=1}^{T-1} (eta_k / alpha_k) (gamma_k / beta_k)
    alpha_k = sum_{t>k} eta_t,  beta_k = sum_{t>=k} eta_t,  gamma_k = sum_{t>=k} eta_t^2 G_t^2

Here it predicts, with no training run, how schedules, base LRs, horizons and cooldowns
compare (``shared/references/schedules-and-prediction.md`` §1.1, §7, §8, §13).

Telescoping identity used by the fast paths (own derivation, checked against the literal
form in ``tests/test_bound.py``): since ``eta_k / (alpha_k beta_k) = 1/alpha_k - 1/beta_k``
and ``gamma_k = eta_k^2 G_k^2 + gamma_{k+1}``,

    T2 + T3 = 1/2 [ sum_{k=1}^{T-1} eta_k^2 G_k^2 / alpha_k  +  eta_T G_T^2 ].

So the bound is well defined exactly when the last used LR ``eta_T`` is positive.

What the bound says about horizons (LR transfer) and WSD cooldowns is in
:mod:`steplab.analysis.horizons`.

Conventions: ``lrs``/``multipliers`` are the values a run uses, update ``k = 0 .. T-1``
(``eta_{k+1}`` in the paper's 1-indexed notation), as :func:`schedule_multipliers` returns
them. ``grad_norms`` (default all ones) are ``G_t`` on the same steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from steplab import schedules
from steplab.errors import SpecError

__all__ = [
    "BoundTerms",
    "bound_terms",
    "minimize_bound",
    "noise_terms",
    "noise_value_grad",
    "nonnegative_vector",
    "optimal_base_lr",
    "prefix_bounds",
    "prefix_optimal",
    "resample_norms",
    "schedule_multipliers",
]

_CHUNK_ELEMENTS = 2_000_000  # prefix_bounds works on (rows x T) blocks of about this size


# ----------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------
def nonnegative_vector(values: ArrayLike, what: str) -> np.ndarray:
    """``values`` as a non-empty 1-D float array, finite and ``>= 0``; a ``SpecError`` naming
    ``what`` otherwise."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise SpecError(f"{what} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(
            f"{what} must be finite; entry {int(np.argmin(np.isfinite(arr)))} is {arr[~np.isfinite(arr)][0]!r}"
        )
    if np.any(arr < 0):
        raise SpecError(
            f"{what} must be >= 0; entry {int(np.argmax(arr < 0))} is {arr[arr < 0][0]!r}"
        )
    return arr


def _inputs(
    lrs: ArrayLike, grad_norms: ArrayLike | None, D: float
) -> tuple[np.ndarray, np.ndarray]:
    eta = nonnegative_vector(lrs, "lrs")
    if grad_norms is None:
        g = np.ones_like(eta)
    else:
        g = nonnegative_vector(grad_norms, "grad_norms")
        if g.size != eta.size:
            raise SpecError(
                f"grad_norms has {g.size} entries but lrs has {eta.size}; give one gradient norm per step"
                " (or resample a curve with np.interp)"
            )
    if not (isinstance(D, (int, float, np.floating)) and np.isfinite(D) and D > 0):
        raise SpecError(f"D (distance to the solution) must be a finite number > 0, got {D!r}")
    return eta, g


def _reverse_cumsum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x[::-1])[::-1]


def resample_norms(grad_norms: ArrayLike | None, budget_steps: int) -> np.ndarray | None:
    """A gradient-norm curve on normalized time ``[0, 1]``, linearly resampled to
    ``budget_steps`` updates (``None`` stays ``None``: all ones)."""
    if grad_norms is None:
        return None
    g = nonnegative_vector(grad_norms, "grad_norms")
    if g.size == 1:
        return np.full(budget_steps, g[0])
    return np.interp(np.linspace(0.0, 1.0, budget_steps), np.linspace(0.0, 1.0, g.size), g)


# ----------------------------------------------------------------------------------
# The bound
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BoundTerms:
    """The three terms of the last-iterate bound (Schaipp et al. 2025, Thm 1)."""

    t1: float  # D^2 / (2 S): distance term, falls as 1/LR
    t2: float  # sum eta^2 G^2 / (2 S): the averaged-iterate noise term, grows with LR
    t3: float  # last-iterate correction, grows with LR

    @property
    def total(self) -> float:
        """``Omega_T = t1 + t2 + t3``."""
        return self.t1 + self.t2 + self.t3


def bound_terms(lrs: ArrayLike, grad_norms: ArrayLike | None = None, D: float = 1.0) -> BoundTerms:
    """Terms of the last-iterate bound at horizon ``T = len(lrs)`` (Schaipp et al. 2025,
    arXiv 2501.18965, Thm 1; Defazio et al. 2023, arXiv 2310.07831, Thm 10), computed
    literally with reverse cumulative sums.

    Args:
        lrs: ``eta_1 .. eta_T`` (absolute LRs, or multipliers for the bound at base LR 1).
        grad_norms: ``G_1 .. G_T``, same length; default all ones.
        D: distance ``||x_1 - x*||``.

    Raises:
        SpecError: on negative or non-finite values, a length mismatch, or a last LR of 0.

    >>> round(bound_terms([1.0, 1.0]).total, 6)  # T1 = 1/4, T2 = 1/2, T3 = 1/2
    1.25
    """
    eta, g = _inputs(lrs, grad_norms, D)
    if eta[-1] == 0.0:
        raise SpecError(
            "lrs end with a zero learning rate, so alpha_{T-1} = sum_{t>T-1} eta_t = 0 and the bound divides "
            "by zero; evaluate horizon T on a schedule built for T+1 steps (schedule_multipliers does) or "
            "drop the trailing zeros"
        )
    q = eta * eta * g * g
    s = float(eta.sum())
    beta = _reverse_cumsum(eta)  # beta_k, k = 1..T
    gamma = np.clip(_reverse_cumsum(q), 0.0, None)  # gamma_k, clipped against round-off
    alpha = beta[1:]  # alpha_k = beta_{k+1}, k = 1..T-1; all >= eta_T > 0
    t3 = 0.5 * float(np.sum(eta[:-1] / alpha * gamma[:-1] / beta[:-1]))
    return BoundTerms(t1=D * D / (2.0 * s), t2=float(q.sum()) / (2.0 * s), t3=t3)


def _prefix_parts(
    lrs: ArrayLike, grad_norms: ArrayLike | None, D: float, horizons: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(T1(t), T2(t) + T3(t))`` for every prefix horizon ``t`` (or only at the 0-based
    indices ``horizons`` of the last used step, in any order); ``inf`` where ``eta_t = 0``."""
    eta, g = _inputs(lrs, grad_norms, D)
    n = eta.size
    at = np.arange(n) if horizons is None else np.asarray(horizons, dtype=np.int64)
    q = eta * eta * g * g
    t1 = np.empty(at.size)
    rest = np.empty(at.size)
    width = int(at.max()) + 1 if at.size else 0
    rows = max(1, _CHUNK_ELEMENTS // max(width, 1))
    cols = np.arange(width)
    for a in range(0, at.size, rows):
        h = at[a : a + rows]
        b = int(h.max()) + 1  # the block needs columns up to its largest horizon
        horizon = h[:, None]  # 0-based index of the last used step
        # Row i holds eta_1..eta_h then zeros, so its reverse cumsum is beta_k^(h) summed in
        # the same order as bound_terms does (no prefix-sum differences, no cancellation).
        m = np.where(cols[None, :b] <= horizon, eta[None, :b], 0.0)
        beta = np.cumsum(m[:, ::-1], axis=1)[:, ::-1]
        # alpha_k^(h) = beta_{k+1}^(h): column j = k + 1 pairs with q_k (j <= h).
        valid = (cols[None, 1:b] <= horizon) & (beta[:, 1:] > 0)
        ratio = np.divide(q[None, : b - 1], beta[:, 1:], out=np.zeros((h.size, b - 1)), where=valid)
        with np.errstate(divide="ignore"):
            t1[a : a + rows] = D * D / (2.0 * beta[:, 0])
        rest[a : a + rows] = 0.5 * (ratio.sum(axis=1) + eta[h] * g[h] ** 2)
    bad = eta[at] == 0.0
    t1[bad] = np.inf
    rest[bad] = np.inf
    return t1, rest


def noise_terms(lrs: ArrayLike, steps: ArrayLike) -> np.ndarray:
    """``T2(s) + T3(s)`` of the bound with ``G = 1`` at horizons ``s`` (1-based update
    counts), each using only ``eta_1 .. eta_s``: the part of the bound that
    grows with the LR (gradient noise), the ``R`` of :class:`steplab.analysis.laws.BoundLaw`.
    ``inf`` where ``eta_s = 0``. O(len(steps) x max(steps)) work in vectorized blocks."""
    s = np.asarray(steps, dtype=np.int64)
    return _prefix_parts(lrs, None, 1.0, s - 1)[1]


def prefix_bounds(
    lrs: ArrayLike, grad_norms: ArrayLike | None = None, D: float = 1.0
) -> np.ndarray:
    """``Omega_t`` for every horizon ``t = 1..T``, each using only ``eta_1 .. eta_t`` (the
    bound of Schaipp et al. 2025, Thm 1, along a run, as in their Fig. 1 loss-curve view).

    Exact (not an approximation): it evaluates ``T1 + T2 + T3`` via the telescoping form in
    the module docstring, ``sum_{k<t} q_k / alpha_k^(t)`` with ``alpha_k^(t) = sum_{k<s<=t}
    eta_s``. That Cauchy-kernel sum has no exact finite-state recursion in ``t``, so this is
    O(T^2) work done in vectorized blocks (T = 5000 takes well under a second).

    Returns:
        Array of length ``T``; ``+inf`` at horizons whose last LR ``eta_t`` is 0 (the bound
        divides by ``alpha_{t-1} = 0`` there; :func:`bound_terms` raises instead).
    """
    t1, rest = _prefix_parts(lrs, grad_norms, D)
    return t1 + rest


def optimal_base_lr(
    multipliers: ArrayLike, grad_norms: ArrayLike | None = None, D: float = 1.0
) -> tuple[float, float]:
    """``(gamma*, Omega*)`` for ``eta = gamma * multipliers`` (Schaipp et al. 2025, §3 /
    reference ``compute_optimal_base``): with the terms at ``gamma = 1``, ``T1 ∝ 1/gamma``
    and ``T2 + T3 ∝ gamma``, so ``gamma* = sqrt(T1 / (T2 + T3))`` and
    ``Omega* = 2 sqrt(T1 (T2 + T3))``."""
    terms = bound_terms(multipliers, grad_norms, D)
    rest = terms.t2 + terms.t3
    if rest <= 0.0:
        raise SpecError(
            "grad_norms are zero wherever the LR is positive, so the bound has no finite optimal LR"
        )
    return float(np.sqrt(terms.t1 / rest)), float(2.0 * np.sqrt(terms.t1 * rest))


def prefix_optimal(
    multipliers: ArrayLike, grad_norms: ArrayLike | None = None, D: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`optimal_base_lr` at every prefix horizon ``t = 1..T`` of one multiplier
    sequence: arrays ``(gamma*(t), Omega*(t))``; ``(nan, inf)`` where ``eta_t = 0``."""
    t1, rest = _prefix_parts(multipliers, grad_norms, D)
    with np.errstate(invalid="ignore", divide="ignore"):
        gammas = np.sqrt(t1 / rest)
        omegas = 2.0 * np.sqrt(t1 * rest)
    gammas[~np.isfinite(rest) | (rest <= 0)] = np.nan
    return gammas, omegas


def schedule_multipliers(
    spec: schedules.ScheduleSpec | Mapping[str, Any] | str, budget_steps: int
) -> np.ndarray:
    """The multipliers ``s(k), k = 0..budget_steps-1`` that steplab's schedule ``spec``
    (anything :func:`steplab.schedules.build` takes) uses in a ``budget_steps``-step run.

    With steplab's convention a decay reaches its end value at ``k = budget_steps``, one past
    the last update, so the last used value of a decay to 0 is already non-zero (``1/T``
    for linear decay). That is the "build for ``T + 1`` steps, evaluate on the first ``T``"
    rule of Schaipp et al.'s code (reference sheet §7.3, §7.5): no correction is needed. A
    schedule whose used values end in an exact 0 (e.g. a piecewise spec ending at 0) gets a
    clear ``SpecError`` from :func:`bound_terms`.
    """
    fn = schedules.build(spec, budget_steps)
    return np.asarray(schedules.values(fn, budget_steps), dtype=np.float64)


# ----------------------------------------------------------------------------------
# The numerically optimal schedule
# ----------------------------------------------------------------------------------
def noise_value_grad(eta: np.ndarray, g2: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """``T2 + T3`` of the bound over all of ``eta`` (``g2 = G^2``, default ones) and its
    gradient in ``eta``, in the telescoping form ``1/2 [sum_{k<T} eta_k^2 G_k^2 / alpha_k +
    eta_T G_T^2]``: ``d/d eta_i = eta_i G_i^2 / alpha_i - 1/2 sum_{k<i} eta_k^2 G_k^2 /
    alpha_k^2`` (+ ``G_T^2 / 2`` for the last). Needs ``alpha_k > 0`` (no trailing zero LR)."""
    g2 = np.ones_like(eta) if g2 is None else g2
    alpha = _reverse_cumsum(eta)[1:]  # alpha_k, k = 1..T-1
    q = eta[:-1] ** 2 * g2[:-1]
    value = 0.5 * (np.sum(q / alpha) + eta[-1] * g2[-1])
    grad = np.zeros(eta.size)
    grad[:-1] = eta[:-1] * g2[:-1] / alpha
    grad[-1] = 0.5 * g2[-1]
    # d alpha_k / d eta_j = 1 for j > k: minus 1/2 sum_{k<j} q_k / alpha_k^2.
    grad[1:] -= 0.5 * np.cumsum(q / (alpha * alpha))
    return float(value), grad


def _objective(eta: np.ndarray, g2: np.ndarray, D: float) -> tuple[float, np.ndarray]:
    """Bound and its gradient: ``D^2/(2S)`` plus :func:`noise_value_grad`."""
    s = eta.sum()
    value, grad = noise_value_grad(eta, g2)
    grad -= D * D / (2.0 * s * s)
    return float(D * D / (2.0 * s) + value), grad


def minimize_bound(grad_norms: ArrayLike, D: float = 1.0, *, maxiter: int = 20_000) -> np.ndarray:
    """The LR sequence minimizing the last-iterate bound for gradient norms ``G_1..G_T``:
    Defazio et al. 2023 (arXiv 2310.07831, §1.1 of the sheet, reference ``find_schedule``)
    "exact" refinement. L-BFGS-B (m = 20) on ``eta`` with bounds ``eta >= 1e-8``, start
    ``D / sqrt(T)``, and an analytic gradient (telescoping form, O(T) per evaluation).

    Returns the raw sequence (absolute LRs for this ``D``); normalize by its max to use it
    as a schedule. Raises ``SpecError`` on non-positive or non-finite norms.
    """
    g = nonnegative_vector(grad_norms, "grad_norms")
    if np.any(g == 0.0):
        raise SpecError(
            "grad_norms must be > 0 for minimize_bound (a zero norm makes the optimal LR unbounded)"
        )
    _inputs(g, None, D)  # checks D
    if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1:
        raise SpecError(f"maxiter must be a positive integer, got {maxiter!r}")
    g2 = g * g
    x0 = np.full(g.size, D / np.sqrt(g.size))
    res = minimize(
        _objective,
        x0,
        args=(g2, float(D)),
        jac=True,
        method="L-BFGS-B",
        bounds=[(1e-8, None)] * g.size,
        options={
            "maxcor": 20,
            "ftol": 100 * np.finfo(float).eps,
            "gtol": 1e-10,
            "maxiter": maxiter,
            "maxfun": 2 * maxiter,
        },
    )
    return np.asarray(res.x, dtype=np.float64)
