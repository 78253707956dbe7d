"""Fitting the loss-curve laws of :mod:`steplab.analysis.laws` to training curves.

Fits minimise ``sum Huber_delta(log L_pred - log L_obs)`` with ``delta = 1e-3`` (Tissue et al.
2024 and Luo et al. 2025; Chinchilla-style), by L-BFGS-B in log-parameter space from a few
starts chosen by a non-negative least-squares scan (the laws are linear in ``L0, A, C`` /
``L0, A, B`` once the exponents are fixed); formula sheet §6.1
(``shared/references/schedules-and-prediction.md``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

from steplab.analysis.bound import noise_terms
from steplab.analysis.law_curves import MIN_POINTS, Curve
from steplab.analysis.law_inputs import Array, check_warmup, one_blas_thread
from steplab.analysis.laws import (
    AnnealingLaw,
    BoundLaw,
    Law,
    LossDrop,
    MultiPowerLaw,
    PowerLawBaseline,
    annealing_areas,
)
from steplab.errors import SpecError

__all__ = ["HUBER_DELTA", "FitResult", "fit_annealing", "fit_bound", "fit_multipower", "fit_power_baseline"]

#: Huber threshold on log-loss residuals (Tissue et al. 2024; Luo et al. 2025).
HUBER_DELTA = 1e-3


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A fitted law and how well it fits: ``residual`` is the final objective
    ``sum Huber_1e-3(log L_pred - log L_obs)``; ``rmse_log`` the RMS log error."""

    law: Law
    residual: float
    rmse_log: float
    n_points: int


def _huber(r: Array) -> tuple[float, Array]:
    a = np.abs(r)
    quad = a <= HUBER_DELTA
    val = np.where(quad, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))
    return float(val.sum()), np.clip(r, -HUBER_DELTA, HUBER_DELTA)


def _objective(pred: Array, y: Array) -> float:
    if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
        return math.inf
    return _huber(np.log(pred) - np.log(y))[0]


Model = Callable[[Array], tuple[Array, Array]]  # params -> (pred, d pred / d params)


def _polish(
    model: Model, y: Array, p0: Array, lower: Array, upper: Array, maxiter: int = 3000
) -> tuple[Array, float]:
    """L-BFGS-B on ``log p`` (all parameters positive). The objective is divided by
    ``delta**2`` so its scale is O(#points) and scipy's absolute tolerances bite sensibly."""
    logy = np.log(y)
    scale = 1.0 / HUBER_DELTA**2

    def fun(theta: Array) -> tuple[float, Array]:
        p = np.exp(theta)
        pred, jac = model(p)
        if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
            return 1e10, np.zeros_like(theta)
        val, dr = _huber(np.log(pred) - logy)
        return val * scale, (jac.T @ (dr / pred)) * p * scale

    lo, hi = np.log(lower), np.log(upper)
    theta0 = np.clip(np.log(p0), lo, hi)
    res = optimize.minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi)),
        options={"maxiter": maxiter, "ftol": 1e-11, "gtol": 1e-7},
    )
    p = np.exp(res.x)
    return p, _objective(model(p)[0], y)


def _best_of(
    model: Model, y: Array, starts: list[Array], lower: Array, upper: Array, race: int = 0
) -> tuple[Array, float]:
    """Polish every start and keep the best; with ``race > 0`` first run each start for only
    ``race`` iterations, then finish the leader (for expensive models)."""
    if race and len(starts) > 1:
        raced = [_polish(model, y, p0, lower, upper, race) for p0 in starts]
        starts = [min(raced, key=lambda fit: fit[1])[0]]
    fits = [_polish(model, y, p0, lower, upper) for p0 in starts]
    best = min(fits, key=lambda fit: fit[1])
    if not math.isfinite(best[1]):
        raise SpecError("the fit found no parameters whose predicted losses are all positive (a loss "
                        "that falls towards 0 is outside this law); fit another law")
    return best


def _nnls_scan(columns: Array, y: Array) -> tuple[Array, float]:
    """Non-negative least squares of relative error (~ log error) for the linear parameters."""
    coef, _ = optimize.nnls(columns / y[:, None], np.ones_like(y))
    return coef, _objective(columns @ coef, y)


def _floor(coef: Array, columns: Array, y: Array) -> Array:
    """Lift zero NNLS coefficients to a value whose term is ~1e-4 of the loss, so that
    log-space L-BFGS-B can still move them."""
    size = np.max(np.abs(columns), axis=0)
    tiny = 1e-4 * float(np.median(y)) / np.where(size > 0, size, 1.0)
    return np.maximum(coef, tiny)


def _as_curves(curves: Curve | Sequence[Curve]) -> list[Curve]:
    out = [curves] if isinstance(curves, Curve) else list(curves)
    if not out or not all(isinstance(c, Curve) for c in out):
        raise SpecError("pass one Curve or a non-empty list of Curves (see prepare_curve)")
    return out


def _rmse_log(pred: Array, y: Array) -> float:
    return float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))


def _too_few(n: int, what: str) -> SpecError:
    return SpecError(
        f"only {n} curve points lie after warm-up for the {what} fit; need {MIN_POINTS}"
    )


def _fit_power_plus(S1: Array, X: Array, y: Array, alphas: Array, fixed: bool = False) -> tuple[Array, float, float]:
    """``L0 + A * S1**-alpha + K * X`` fitted to ``y`` (the annealing law with ``X = -S2``,
    the bound law with ``X = R``): a non-negative least-squares scan of ``L0, A, K`` over
    ``alphas``, then L-BFGS-B from the three best (``alpha`` held at ``alphas[0]`` when
    ``fixed``). Returns ``(L0, A, alpha, K)``, the objective and the RMS log error."""
    logS1 = np.log(S1)

    def model(p: Array) -> tuple[Array, Array]:
        L0, A, alpha, K = p
        pw = np.exp(-alpha * logS1)
        return L0 + A * pw + K * X, np.column_stack([np.ones_like(S1), pw, -A * pw * logS1, X])

    scans = []
    for alpha in alphas:
        cols = np.column_stack([np.ones_like(S1), S1**-alpha, X])
        coef, val = _nnls_scan(cols, y)
        coef = _floor(coef, cols, y)
        scans.append((val, np.array([coef[0], coef[1], alpha, coef[2]])))
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, alphas[0] if fixed else 1e-4, 1e-12])
    upper = np.array([1e3 * y.max(), 1e12, alphas[0] if fixed else 10.0, 1e12])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper)
    if fixed:
        p[2] = alphas[0]  # exactly, not its log's round trip
    return p, val, _rmse_log(model(p)[0], y)


@one_blas_thread
def fit_annealing(
    curves: Curve | Sequence[Curve],
    *,
    lam: float = 0.999,
    warmup_steps: int = 0,
    include_warmup: bool = False,
) -> FitResult:
    """Fit :class:`AnnealingLaw` jointly to one or more curves (Huber on log loss, L-BFGS-B,
    several starts: the fitting recipe of formula sheet §6.1). ``lam`` and the warm-up handling
    are fixed, not fitted; points with ``s <= warmup_steps`` are left out when excluded."""
    s1s, s2s, ys = [], [], []
    for c in _as_curves(curves):
        s1, s2 = annealing_areas(
            c.lrs, lam=lam, warmup_steps=warmup_steps, include_warmup=include_warmup
        )
        a, b = s1[c.steps - 1], s2[c.steps - 1]
        ok = np.isfinite(a) & (a > 0)
        s1s.append(a[ok])
        s2s.append(b[ok])
        ys.append(c.losses[ok])
    S1, S2, y = np.concatenate(s1s), np.concatenate(s2s), np.concatenate(ys)
    if y.size < MIN_POINTS:
        raise _too_few(y.size, "annealing")
    p, val, rmse = _fit_power_plus(S1, -S2, y, np.geomspace(0.05, 3.0, 24))
    law = AnnealingLaw(
        L0=p[0],
        A=p[1],
        alpha=p[2],
        C=p[3],
        lam=lam,
        warmup_steps=warmup_steps,
        include_warmup=include_warmup,
    )
    return FitResult(law=law, residual=val, rmse_log=rmse, n_points=int(y.size))


@one_blas_thread
def fit_multipower(curves: Curve | Sequence[Curve], *, warmup_steps: int = 0) -> FitResult:
    """Fit :class:`MultiPowerLaw` jointly to one or more curves (Luo et al. 2025: Huber on log
    loss, grid of starts, L-BFGS-B; their extra AdamW refinement is not done). Cost per
    objective evaluation is O(#points x #LR changes) per curve, computed in bounded blocks."""
    drops, logzs, ys = [], [], []
    for c in _as_curves(curves):
        w = check_warmup(warmup_steps, c.lrs.size)
        cum = np.concatenate([[0.0], np.cumsum(c.lrs)])
        ok = (c.steps > w) & (cum[c.steps] > 0)
        drops.append(LossDrop(c.lrs, c.steps[ok], w, cache=True))
        logzs.append(np.log(cum[c.steps[ok]]))
        ys.append(c.losses[ok])
    y, logZ = np.concatenate(ys), np.concatenate(logzs)
    if y.size < MIN_POINTS:
        raise _too_few(y.size, "multi-power")

    def ld(C: float, beta: float, gamma: float, grad: bool) -> Array:
        return np.concatenate([drop(C, beta, gamma, grad) for drop in drops], axis=1)

    def model(p: Array) -> tuple[Array, Array]:
        L0, A, alpha, B, C, beta, gamma = p
        pw = np.exp(-alpha * logZ)
        g = ld(C, beta, gamma, True)
        pred = L0 + A * pw - B * g[0]
        jac = np.column_stack(
            [np.ones_like(pw), pw, -A * pw * logZ, -g[0], -B * g[1], -B * g[2], -B * g[3]]
        )
        return pred, jac

    scans = []
    for C in (0.3, 3.0, 30.0):
        for beta in (0.3, 0.6, 1.2):
            for gamma in (0.3, 0.6):
                basis = ld(C, beta, gamma, False)[0]
                for alpha in np.geomspace(0.1, 2.0, 8):
                    cols = np.column_stack([np.ones_like(logZ), np.exp(-alpha * logZ), -basis])
                    coef, val = _nnls_scan(cols, y)
                    coef = _floor(coef, cols, y)
                    scans.append(
                        (val, np.array([coef[0], coef[1], alpha, coef[2], C, beta, gamma]))
                    )
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, 1e-4, 1e-12, 1e-8, 1e-4, 1e-4])
    upper = np.array([1e3 * y.max(), 1e12, 10.0, 1e12, 1e8, 10.0, 5.0])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper, race=40)
    law = MultiPowerLaw(
        L0=p[0],
        A=p[1],
        alpha=p[2],
        B=p[3],
        C=p[4],
        beta=p[5],
        gamma=p[6],
        warmup_steps=warmup_steps,
    )
    return FitResult(
        law=law, residual=val, rmse_log=_rmse_log(model(p)[0], y), n_points=int(y.size)
    )


@one_blas_thread
def fit_bound(
    curves: Curve | Sequence[Curve], *, warmup_steps: int = 0, alpha: float | None = 1.0,
    transient: bool = False,
) -> FitResult:
    """Fit :class:`BoundLaw` jointly to one or more curves by the same Huber-on-log-loss
    objective. ``alpha=1`` (default) is Schaipp et al. 2025's own fit of the bound with
    constant gradient norms (formula sheet §7.4: ``C + M * Omega_s``, whose ``D^2 / 2S`` term
    is ``A / S1``); ``alpha=None`` fits the exponent too. ``transient`` adds the early
    transient ``C * exp(-S1 / tau)`` (our extension, see :class:`BoundLaw`). Points with
    ``s <= warmup_steps`` and points where the bound is infinite (an LR of 0 at ``s``) are
    left out."""
    if not isinstance(transient, bool):
        raise SpecError(f"transient must be true or false, got {transient!r}")
    fixed = alpha is not None
    if fixed and not (isinstance(alpha, (int, float)) and 0 < alpha <= 10):
        raise SpecError(f"alpha must be a number in (0, 10] or None (fitted), got {alpha!r}")
    s1s, rs, ys = [], [], []
    for c in _as_curves(curves):
        after = c.steps > check_warmup(warmup_steps, c.lrs.size)
        steps = c.steps[after]
        r = noise_terms(c.lrs, steps)
        s1 = np.cumsum(c.lrs)[steps - 1]
        ok = np.isfinite(r) & (s1 > 0)
        s1s.append(s1[ok])
        rs.append(r[ok])
        ys.append(c.losses[after][ok])
    S1, R, y = np.concatenate(s1s), np.concatenate(rs), np.concatenate(ys)
    if y.size < MIN_POINTS:
        raise _too_few(y.size, "bound")
    if transient:
        grid = np.array([float(alpha)]) if fixed else np.geomspace(0.1, 3.0, 8)  # type: ignore[arg-type]
        p, val, rmse = _fit_transient(S1, R, y, grid, fixed)
        law = BoundLaw(L0=p[0], A=p[1], alpha=p[2], B=p[3], C=p[4], tau=p[5], warmup_steps=warmup_steps)
        return FitResult(law=law, residual=val, rmse_log=rmse, n_points=int(y.size))
    grid = np.array([float(alpha)]) if fixed else np.geomspace(0.05, 3.0, 24)  # type: ignore[arg-type]
    p, val, rmse = _fit_power_plus(S1, R, y, grid, fixed)
    law = BoundLaw(L0=p[0], A=p[1], alpha=p[2], B=p[3], warmup_steps=warmup_steps)
    return FitResult(law=law, residual=val, rmse_log=rmse, n_points=int(y.size))


def _fit_transient(S1: Array, R: Array, y: Array, alphas: Array, fixed: bool) -> tuple[Array, float, float]:
    """``L0 + A * S1**-alpha + B * R + C * exp(-S1 / tau)`` fitted to ``y``: a non-negative
    least-squares scan of ``L0, A, B, C`` over ``alphas`` x a grid of ``tau`` spanning the
    fitted LR areas, then L-BFGS-B from the three best. Returns ``(L0, A, alpha, B, C, tau)``,
    the objective and the RMS log error."""
    logS1 = np.log(S1)

    def model(p: Array) -> tuple[Array, Array]:
        L0, A, alpha, B, C, tau = p
        pw = np.exp(-alpha * logS1)
        ex = np.exp(-S1 / tau)
        jac = np.column_stack([np.ones_like(S1), pw, -A * pw * logS1, R, ex, C * ex * S1 / tau**2])
        return L0 + A * pw + B * R + C * ex, jac

    scans = []
    for tau in np.geomspace(0.3 * S1.min(), S1.max(), 12):
        ex = np.exp(-S1 / tau)
        for alpha in alphas:
            cols = np.column_stack([np.ones_like(S1), S1**-alpha, R, ex])
            coef, val = _nnls_scan(cols, y)
            coef = _floor(coef, cols, y)
            scans.append((val, np.array([coef[0], coef[1], alpha, coef[2], coef[3], tau])))
    scans.sort(key=lambda item: item[0])
    span = float(S1.max())
    lower = np.array([1e-8, 1e-12, alphas[0] if fixed else 1e-4, 1e-12, 1e-12, 1e-3 * float(S1.min())])
    upper = np.array([1e3 * y.max(), 1e12, alphas[0] if fixed else 10.0, 1e12, 1e12, 10.0 * span])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper)
    if fixed:
        p[2] = alphas[0]
    return p, val, _rmse_log(model(p)[0], y)


@one_blas_thread
def fit_power_baseline(steps: Sequence[int] | Array, losses: Sequence[float] | Array) -> FitResult:
    """Fit :class:`PowerLawBaseline` to ``(steps, losses)`` (typically the first part of a
    curve) with the same Huber-on-log-loss objective. Steps < 1 and non-finite losses are
    dropped; pass already-smoothed losses (e.g. ``Curve.steps``/``Curve.losses``) for noisy data."""
    t = np.asarray(steps, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if t.ndim != 1 or y.shape != t.shape:
        raise SpecError(
            f"steps and losses must be 1-D and the same length, got {t.shape} and {y.shape}"
        )
    ok = np.isfinite(t) & np.isfinite(y) & (t >= 1)
    t, y = t[ok], y[ok]
    if y.size < MIN_POINTS:
        raise SpecError(
            f"only {y.size} finite losses at steps >= 1; a fit needs at least {MIN_POINTS}"
        )
    if np.any(y <= 0):
        raise SpecError("losses must be positive (the baseline is fitted on log loss)")
    logt = np.log(t)

    def model(p: Array) -> tuple[Array, Array]:
        a, b, c = p
        pw = np.exp(-c * logt)
        return a + b * pw, np.column_stack([np.ones_like(t), pw, -b * pw * logt])

    scans = []
    for c in np.geomspace(0.02, 3.0, 24):
        cols = np.column_stack([np.ones_like(t), t**-c])
        coef, val = _nnls_scan(cols, y)
        coef = _floor(coef, cols, y)
        scans.append((val, np.array([coef[0], coef[1], c])))
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, 1e-4])
    upper = np.array([1e3 * y.max(), 1e12, 10.0])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper)
    law = PowerLawBaseline(a=p[0], b=p[1], c=p[2])
    return FitResult(
        law=law, residual=val, rmse_log=_rmse_log(model(p)[0], y), n_points=int(y.size)
    )
