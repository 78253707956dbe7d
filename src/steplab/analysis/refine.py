"""Schedule refinement from a run's own gradient norms.

Defazio, Cutkosky, Mehta, Mishchenko 2023, "When, Why and How Much? Adaptive Learning Rate
Scheduling by Refinement" (arXiv 2310.07831; v2 "Optimal Linear Decay Learning Rate
Schedules and Further Refinements"), Algorithm 1 and §3-4; the procedure follows the
authors' ``facebookresearch/adaptive_scheduling`` (read, not copied). Formula sheet:
``shared/references/schedules-and-prediction.md`` §1.

Given the per-step gradient norms ``g_1..g_T`` of one run:

1. drop non-finite and non-positive values; resample to ``n = 10,000`` points on normalized
   time ``[0, 1]`` when shorter (the reference also drops two points at each end to work
   around wandb exports; we do not, a steplab trace has no such artefact);
2. smooth with a median filter of odd width ``2*floor(floor(tau*n)/2)+1``, taken on the
   10,000-point grid whatever the trace's length (the reference's ``nvals``: a longer trace
   is filtered at its own resolution with that width, then resampled to the grid), the right
   end padded by reflection (twice the width, then cropped), the left with nearest values;
3. weights ``w_t = g_t^-2`` (SGD, l2 norms) or ``w_t = g_t^-1`` (Adam / sign-like, l1 norms,
   the paper's l-infinity geometry);
4. ``eta_t = w_t * sum_{p>t} w_p`` (Algorithm 1; the last step gets 0); this is the
   closed-form minimizer of the last-iterate bound's dominant term (Thm. 8 / §3.1);
5. ``s_t = eta_t / max eta``: a multiplier of the peak LR, stored as a ``piecewise``
   schedule spec on normalized time, so it replays at any run length ``T'``.

Constant norms give ``s(x) = 1 - x``: linear decay to zero, the worst-case optimal schedule
(the paper's Thm. 3). Large early norms give a warm-up; falling late norms a fast anneal.
``exact=True`` instead minimizes the bound itself numerically (:func:`steplab.analysis.bound.minimize_bound`,
the reference's ``find_schedule``), for comparison.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from steplab import schedules
from steplab.errors import SpecError

#: resolution of the normalized-time grid (the reference's ``nvals``)
GRID_POINTS = 10_000
#: a refined spec is stored with at most this many segments (one per step for shorter runs)
MAX_SPEC_POINTS = 1000
#: ``exact=True`` solves the bound on at most this many steps (L-BFGS-B on the sequence)
EXACT_POINTS = 1000
NORMS = ("l1", "l2")


@dataclasses.dataclass(frozen=True)
class Refinement:
    """A refined schedule and what it was computed from (all arrays on normalized time)."""

    grid: np.ndarray  # normalized time of each point, 0 .. 1
    norms: np.ndarray  # the cleaned, resampled gradient norms
    smoothed: np.ndarray  # after the median filter
    multipliers: np.ndarray  # the refined schedule, max 1, last 0
    spec: schedules.ScheduleSpec  # ``piecewise`` spec, replays at any length
    budget_steps: int  # the run length the spec was resampled for
    norm: str
    tau: float
    method: str  # "closed-form" or "exact"
    warmup_steps: int = 0
    why: str = ""  # why this norm (``--norm auto`` on a stored trial: :func:`auto_norm`)

    def schedule(self, budget_steps: int | None = None) -> schedules.Schedule:
        """The refined schedule for a run of ``budget_steps`` (default: :attr:`budget_steps`)."""
        return schedules.build(self.spec, budget_steps or self.budget_steps)

    def values(self, budget_steps: int | None = None) -> np.ndarray:
        """Multipliers of updates ``0 .. T'-1``."""
        t = budget_steps or self.budget_steps
        return np.asarray(schedules.values(self.schedule(t), t))


# ---------------------------------------------------------------------------------- steps 1-2
def clean_norms(grad_norms: Sequence[float] | np.ndarray, trace_steps: Sequence[float] | np.ndarray | None = None,
                *, n: int = GRID_POINTS) -> np.ndarray:
    """Step 1: drop non-finite and non-positive norms, then linearly resample to ``n``
    points on normalized time when shorter (longer traces are kept as they are)."""
    g = np.asarray(grad_norms, dtype=np.float64).ravel()
    x = np.arange(len(g), dtype=np.float64) if trace_steps is None else np.asarray(trace_steps, dtype=np.float64).ravel()
    if len(x) != len(g):
        raise SpecError(f"refine: {len(g)} gradient norms but {len(x)} steps; pass one step per norm")
    keep = np.isfinite(g) & (g > 0) & np.isfinite(x)
    g, x = g[keep], x[keep]
    if len(g) < 2:
        raise SpecError(
            f"refine: need at least 2 finite positive gradient norms, got {len(g)}; "
            "record them with the Recorder (grad_norm=True, l1=True) or `steplab run`"
        )
    order = np.argsort(x, kind="stable")
    g, x = g[order], x[order]
    span = x[-1] - x[0]
    if span <= 0:
        raise SpecError("refine: all gradient norms are at the same step; pass one norm per step")
    if len(g) >= n:
        return g
    return np.interp(np.linspace(0.0, 1.0, n), (x - x[0]) / span, g)


def filter_width(tau: float, n: int) -> int:
    """The median filter's odd width ``2*floor(floor(tau*n)/2)+1`` (reference ``visual.py``)."""
    return 2 * math.floor(math.floor(tau * n) / 2) + 1


def smooth_norms(norms: np.ndarray, tau: float = 0.1, *, grid_points: int = GRID_POINTS) -> np.ndarray:
    """Step 2: median filter of width ``filter_width(tau, grid_points)``: ``tau`` of the
    reference's 10,000-point grid (``visual.py`` takes the width from ``nvals``, not from the
    trace, so a trace longer than the grid is filtered with a narrower share of the run);
    right end reflect-padded by twice the width then cropped, left end nearest-value (as the
    reference README describes), via ``scipy.ndimage.median_filter``. ``tau = 0`` is no
    smoothing.
    As in the reference, nearest padding makes the first norm fill half the window at the
    left end, so the first ``tau/2`` of the run follows that one value; keep a fixed
    warm-up there if it matters (``warmup_steps``)."""
    _check_tau(tau)
    width = filter_width(tau, grid_points)
    if width <= 1:
        return np.asarray(norms, dtype=np.float64).copy()
    pad = 2 * width
    padded = np.pad(np.asarray(norms, dtype=np.float64), (0, pad), mode="reflect")
    return median_filter(padded, size=width, mode="nearest")[:-pad]


# ---------------------------------------------------------------------------------- steps 3-5
def weights(norms: np.ndarray, norm: str = "l2") -> np.ndarray:
    """Step 3: ``g^-2`` for l2 norms (SGD), ``g^-1`` for l1 norms (Adam, sign-like)."""
    _check_norm(norm)
    return norms ** (-2.0 if norm == "l2" else -1.0)


def closed_form(w: np.ndarray) -> np.ndarray:
    """Step 4-5: ``eta_t = w_t * sum_{p>t} w_p`` (last 0), normalized by its maximum
    (Defazio et al. 2023, Algorithm 1)."""
    tail = np.cumsum(w[::-1])[::-1]
    eta = np.zeros_like(w)
    eta[:-1] = w[:-1] * tail[1:]
    top = eta.max()
    if not np.isfinite(top) or top <= 0:
        raise SpecError("refine: the gradient norms give no usable schedule (all weights zero or infinite)")
    return eta / top


def exact(smoothed: np.ndarray, norm: str = "l2", *, points: int = EXACT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The schedule that minimizes the last-iterate bound numerically (reference
    ``find_schedule``), solved for a run of ``points`` steps (the new run's length, capped
    at :data:`EXACT_POINTS` and interpolated beyond). For l1 norms the
    bound's ``G_t^2`` is taken as ``g_t`` so that its closed form has the same weights
    ``g^-1`` as step 3 (our choice; the paper states the l1 case for the closed form only).
    Returns ``(grid, multipliers)``."""
    from steplab.analysis.bound import minimize_bound

    m = max(2, points)
    grid = np.arange(m) / m  # update k of an m-step run sits at k/m (schedules.py's convention)
    g = np.interp(grid, np.linspace(0.0, 1.0, len(smoothed)), smoothed)
    big_g = g if norm == "l2" else np.sqrt(g)
    eta = np.asarray(minimize_bound(big_g), dtype=np.float64)
    return grid, eta / eta.max()


def to_spec(grid: np.ndarray, multipliers: np.ndarray, budget_steps: int, *, warmup_steps: int = 0,
            max_points: int = MAX_SPEC_POINTS) -> schedules.ScheduleSpec:
    """Resample a schedule on normalized time to a run of ``budget_steps`` updates as a
    ``piecewise`` spec: one point per step up to ``max_points`` steps, else ``max_points``
    even segments; ``warmup_steps`` multiplies by a linear ramp ``min(1, (k+1)/W)``
    (schedules.warmup's convention)."""
    if isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 1:
        raise SpecError(f"refine: budget_steps must be a positive integer, got {budget_steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or not 0 <= warmup_steps < budget_steps:
        raise SpecError(f"refine: warmup must be a whole number of steps in [0, {budget_steps}), got {warmup_steps!r}")
    segments = min(budget_steps, max_points)
    xs = np.linspace(0.0, 1.0, segments + 1)
    if warmup_steps:
        knots = min(warmup_steps, max_points)
        ramp = np.arange(knots + 1) * (warmup_steps / knots) / budget_steps
        xs = np.unique(np.round(np.concatenate([xs, ramp]), 7))
    vs = np.interp(xs, grid, multipliers)
    if warmup_steps:
        vs = vs * np.minimum(1.0, (xs * budget_steps + 1.0) / warmup_steps)
    points = [[float(x), float(f"{max(v, 0.0):.6g}")] for x, v in zip(xs, vs)]
    return schedules.spec_from({"name": "piecewise", "points": points})


def refinement(
    grad_norms: Sequence[float] | np.ndarray,
    *,
    tau: float = 0.1,
    norm: str = "l2",
    budget_steps: int | None = None,
    warmup_steps: int = 0,
    exact_bound: bool = False,
    trace_steps: Sequence[float] | np.ndarray | None = None,
) -> Refinement:
    """Refine a schedule from gradient norms (Defazio et al. 2023, Algorithm 1) and keep the
    intermediate arrays. ``budget_steps`` is the new run's length ``T'`` (default: the number of
    norms, or the trace's span); ``trace_steps`` the step of each norm when not 0, 1, 2..."""
    _check_tau(tau)
    _check_norm(norm)
    norms = clean_norms(grad_norms, trace_steps)
    smoothed = smooth_norms(norms, tau)
    grid = np.linspace(0.0, 1.0, GRID_POINTS)
    if len(norms) > GRID_POINTS:  # the reference resamples the filtered norms to its grid
        trace_grid = np.linspace(0.0, 1.0, len(norms))
        norms, smoothed = np.interp(grid, trace_grid, norms), np.interp(grid, trace_grid, smoothed)
    if budget_steps is None:
        if trace_steps is not None and len(trace_steps):
            arr = np.asarray(trace_steps, dtype=np.float64)
            budget_steps = int(np.nanmax(arr) - np.nanmin(arr)) + 1
        else:
            budget_steps = len(np.asarray(grad_norms).ravel())
    if exact_bound:
        sgrid, mult = exact(smoothed, norm, points=min(int(budget_steps), EXACT_POINTS))
    else:
        sgrid, mult = grid, closed_form(weights(smoothed, norm))
    spec = to_spec(sgrid, mult, budget_steps, warmup_steps=warmup_steps)
    return Refinement(
        grid=sgrid, norms=np.interp(sgrid, grid, norms), smoothed=np.interp(sgrid, grid, smoothed),
        multipliers=mult, spec=spec, budget_steps=budget_steps, norm=norm, tau=tau,
        method="exact" if exact_bound else "closed-form", warmup_steps=warmup_steps,
    )


def refine(
    grad_norms: Sequence[float] | np.ndarray,
    tau: float = 0.1,
    norm: str = "l2",
    *,
    budget_steps: int | None = None,
    warmup_steps: int = 0,
    exact_bound: bool = False,
) -> schedules.Schedule:
    """The refined schedule (a function of the step, multipliers of the peak LR) for a run
    of ``budget_steps`` updates (default: as many as norms). See :func:`refinement` for the spec
    and intermediate arrays."""
    r = refinement(grad_norms, tau=tau, norm=norm, budget_steps=budget_steps, warmup_steps=warmup_steps,
                   exact_bound=exact_bound)
    return r.schedule()


def closest_standard(r: Refinement, *, points: int = 500) -> tuple[schedules.ScheduleSpec, float]:
    """The linear-warm-up + polynomial-decay schedule closest to a refinement (least squares
    over warm-up fraction 0..0.5 and power 0.3..4), as the paper summarizes its refined
    schedules ("warmup + poly decay" fits, reference ``visual.py``). Returns the spec and
    its largest absolute gap to the refined multipliers."""
    x = np.linspace(0.0, 1.0, points, endpoint=False)
    target = np.interp(x, r.grid, r.multipliers)
    ws = np.round(np.arange(0.0, 0.505, 0.01), 2)
    ps = np.round(np.arange(0.3, 4.0001, 0.05), 2)
    best: tuple[float, float, float] = (math.inf, 0.0, 1.0)
    for w in ws:
        ramp = np.minimum(1.0, x / w) if w > 0 else np.ones_like(x)
        rest = np.clip((x - w) / (1.0 - w), 0.0, 1.0)
        curves = ramp[None, :] * (1.0 - rest[None, :]) ** ps[:, None]
        err = ((curves - target[None, :]) ** 2).mean(axis=1)
        i = int(np.argmin(err))
        if err[i] < best[0]:
            best = (float(err[i]), float(w), float(ps[i]))
    _, w, pw = best
    d: dict[str, Any] = {"name": "polynomial", "power": pw}
    if w > 0:
        d["warmup"] = w
    spec = schedules.spec_from(d)
    t = max(r.budget_steps, points)
    gap = float(np.max(np.abs(np.asarray(schedules.values(schedules.build(spec, t), t)) - np.interp(
        np.arange(t) / t, r.grid, r.multipliers))))
    return spec, gap


def bound_comparison(r: Refinement, original: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """The convex last-iterate bound at its best base LR (``steplab.analysis.bound``, Schaipp et al.
    2025 Thm 1) of the refined schedule and of ``original`` (the multipliers or lrs the run
    used), both with the run's smoothed norms as ``G_t`` (``sqrt`` of l1 norms, as in
    :func:`exact`): the quantity refinement minimizes, lower is better."""
    from steplab.analysis.bound import optimal_base_lr

    t = r.budget_steps
    x = np.arange(t) / t
    g = np.interp(x, r.grid, r.smoothed)
    big_g = g if r.norm == "l2" else np.sqrt(g)
    refined = r.values()
    orig = np.asarray(original, dtype=np.float64)
    orig = orig[np.isfinite(orig)]
    if len(orig) < 2 or orig.max() <= 0:
        raise SpecError("refine: the original run recorded no learning rates to compare with")
    orig = np.interp(x, np.arange(len(orig)) / len(orig), orig / orig.max())
    return optimal_base_lr(_positive_tail(refined), big_g)[1], optimal_base_lr(_positive_tail(orig), big_g)[1]


def _positive_tail(s: np.ndarray) -> np.ndarray:
    """The bound needs a positive last LR: replace a final exact zero by a tiny value."""
    s = np.array(s, dtype=np.float64)
    if s[-1] <= 0:
        s[-1] = max(1e-12, 1e-6 * s.max())
    return s


# ---------------------------------------------------------------------------------- traces
def norm_for_optimizer(optimizer: str) -> str:
    """``"l1"`` for Adam-like / sign-like optimizers, ``"l2"`` for SGD-like ones (paper §5).
    Takes a steplab optimizer name, ``module:Class``, or a dotted class path as the recorder
    stores it (``torch.optim.adamw.AdamW``)."""
    from steplab.optim import optimizers

    name = optimizer
    if ":" not in name and "." in name:
        module, _, cls = name.rpartition(".")
        name = f"{module}:{cls}"
    try:
        return "l1" if optimizers.is_adam_family(name) else "l2"
    except SpecError:
        raise SpecError(f"refine: cannot tell the norm type of optimizer {optimizer!r}; pass --norm l1 or l2") from None


def trial_norm(trial: Any) -> str:
    """The norm ``--norm auto`` picks for a stored trial, from its optimizer."""
    opt = trial.spec.algorithm_spec.get("optimizer") if isinstance(trial.spec.algorithm_spec, dict) else None
    if not opt:
        raise SpecError(f"refine: trial {trial.id} records no optimizer; pass --norm l1 or l2")
    return norm_for_optimizer(str(opt))


def trace_norms(trace: dict[str, np.ndarray]) -> list[str]:
    """The gradient norms a step trace (``Store.steps``) holds: ``"l2"``, ``"l1"``, both or none."""
    return [n for n, c in (("l2", "grad_norm"), ("l1", "grad_norm_l1")) if np.isfinite(trace[c]).any()]


def auto_norm(trial: Any, trace: dict[str, np.ndarray]) -> tuple[str, str]:
    """``(norm, why)`` for ``--norm auto`` on a stored trial: its optimizer's norm (l1 for
    Adam-like, l2 for SGD-like, :func:`norm_for_optimizer`) when the trace holds it; else,
    with the optimizer unknown or its norm not recorded, the norm the trace holds (l2 when
    both), and ``why`` says so. The ``next:`` hint of ``steplab import`` uses it too, so
    what it suggests refine accepts."""
    have = trace_norms(trace)
    if not have:
        raise SpecError(f"refine: trial {trial.id} has no gradient norms recorded (neither l2 nor l1): record "
                        "them (Recorder(grad_norm=True, l1=True)) or import a log with a gradient-norm series "
                        "(--tags grad_norm=NAME)")
    spec = trial.spec.algorithm_spec if isinstance(trial.spec.algorithm_spec, dict) else {}
    opt, want = spec.get("optimizer"), None
    if opt:
        with contextlib.suppress(SpecError):
            want = norm_for_optimizer(str(opt))
    fallback = "l2" if "l2" in have else "l1"
    if want in have:
        return str(want), f"the {'Adam' if want == 'l1' else 'SGD'}-like optimizer {opt}"
    if want is not None:
        return fallback, f"optimizer {opt} calls for {want} norms but the trace has only {fallback}"
    return fallback, f"optimizer {'unknown' if not opt else repr(opt) + ' unknown'}: the trace's {fallback} norms"


def refine_trial(
    store: Any,
    trial_id: int,
    *,
    tau: float = 0.1,
    norm: str = "auto",
    budget_steps: int | None = None,
    warmup_steps: int = 0,
    exact_bound: bool = False,
) -> Refinement:
    """Refine from a stored trial's trace (a ``steplab run`` or a user's run recorded with
    :class:`steplab.training.recorder.Recorder`). ``norm="auto"`` picks l1 for Adam-family optimizers."""
    trial = store.get_trial(trial_id)
    trace = store.steps(trial_id)
    why = ""
    if norm == "auto":
        norm, why = auto_norm(trial, trace)
    _check_norm(norm)
    column = "grad_norm" if norm == "l2" else "grad_norm_l1"
    values = trace[column]
    if len(values) == 0 or not np.isfinite(values).any():
        other = [n for n in trace_norms(trace) if n != norm]
        raise SpecError(
            f"trial {trial_id} has no {norm} gradient norms recorded; record them "
            f"(Recorder(grad_norm=True, l1=True))" + (f" or pass --norm {other[0]}" if other else
                                                      ", or import a log with a gradient-norm series")
        )
    r = refinement(values, tau=tau, norm=norm, budget_steps=budget_steps, warmup_steps=warmup_steps,
                   exact_bound=exact_bound, trace_steps=trace["step"])
    return dataclasses.replace(r, why=why)


def _check_tau(tau: float) -> None:
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0.0 <= tau <= 0.5:
        raise SpecError(f"refine: tau is the median filter's width as a fraction of the run, in [0, 0.5]; got {tau!r}")


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise SpecError(f"refine: norm must be one of l1, l2 (or auto for a stored trial), got {norm!r}")


__all__ = [
    "Refinement",
    "auto_norm",
    "clean_norms",
    "bound_comparison",
    "closed_form",
    "closest_standard",
    "exact",
    "filter_width",
    "norm_for_optimizer",
    "refine",
    "refine_trial",
    "refinement",
    "smooth_norms",
    "to_spec",
    "trace_norms",
    "trial_norm",
    "weights",
]
