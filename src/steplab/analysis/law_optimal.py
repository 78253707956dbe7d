"""Law-optimal learning-rate schedules: minimise a fitted loss-curve law's predicted final
loss over non-increasing (after warm-up) schedules at a fixed peak LR.

Luo et al. 2025, "A Multi-Power Law for Loss Curve Prediction Across Learning Rate
Schedules" (arXiv 2503.12811, §5 "optimal schedule"): after a warm-up of ``W`` updates the
free variables are the per-update LR *drops* ``delta_k >= 0``; the schedule is
``eta_k = max(peak - sum_{j<=k} delta_j, min_lr)``; the predicted final loss is minimised by
Adam in float64 (their ``src/optimization.py``: lr 5e-9 at peak 3e-4, 10,000 iterations) with a
projection after each step (clamp ``delta`` to ``[0, peak]``, zero every drop whose LR would
fall to ``min_lr``). Formula sheet: ``shared/references/workloads-curricula-schedules.md`` §4.1;
we re-implement it in numpy with the analytic gradient (read, not copied).

One convention for fitting and optimising (sheet §4.2): the objective *is*
``law.predict(lrs)[-1]`` of :mod:`steplab.analysis.laws` for the full schedule (the warm-up
ramp ``peak * (k+1)/W`` included as the area ``S_W``; the first post-warm-up update is at
the peak and has no drop). Three laws are supported: the multi-power law (Luo et al. Eq. 5),
the annealing law (Tissue et al. 2024, arXiv 2408.11029, Eq. 1), whose final-step
annealing area is linear in the drops: ``S2(T) = sum_j d_j (1 - lam**(n-j)) / (1 - lam)``,
and the bound law (Schaipp et al. 2025 fitted as a law, ``laws.BoundLaw``), whose noise term
has a closed-form gradient (:func:`steplab.analysis.bound.noise_value_grad`).

Robustness (our addition, issue 26): the objective can be the mean or the worst case of the
predicted final loss over an *ensemble* of laws (e.g. both laws, or the leave-one-schedule-out
fits of :mod:`steplab.analysis.law_select`), so the schedule is not tuned to one law's error.
The default start is the best standard schedule under the objective (Luo et al. start from a
constant LR, ``init="constant"``) and the best iterate is kept, so the result is never
predicted worse than that start.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from steplab import schedules
from steplab.analysis.bound import noise_value_grad
from steplab.analysis.laws import AnnealingLaw, BoundLaw, MultiPowerLaw
from steplab.errors import SpecError

__all__ = [
    "STANDARD",
    "LawOptimal",
    "final_loss_grad",
    "optimize_schedule",
    "piecewise_spec",
    "standard_losses",
]

#: the standard schedules the optimum is compared with (and started from by default)
STANDARD: dict[str, dict[str, Any]] = {
    "cosine": {"name": "cosine"},
    "cosine-10%": {"name": "cosine", "end": 0.1},
    "linear": {"name": "linear"},
    "wsd-10%-1-sqrt": {"name": "wsd", "decay": 0.1, "shape": "1-sqrt"},
    "wsd-20%-1-sqrt": {"name": "wsd", "decay": 0.2, "shape": "1-sqrt"},
    "wsd-20%-linear": {"name": "wsd", "decay": 0.2, "shape": "linear"},
}
#: Luo et al.'s Adam step was 5e-9 at peak 3e-4 with 21,840 post-warm-up steps; Adam moves
#: each drop by about one step per iteration and a drop is ~peak / (decay steps), so the
#: default step keeps their ratio to ``peak / n``: ``peak * STEP_PER_PEAK * 21,840 / n``
STEP_PER_PEAK = 5e-9 / 3e-4
LUO_STEPS = 24_000 - 2_160
MIN_LR = 1e-10  # Luo et al.'s OPT_MIN_LR
Law = AnnealingLaw | MultiPowerLaw | BoundLaw


@dataclasses.dataclass(frozen=True)
class LawOptimal:
    """A law-optimal schedule: absolute LRs of every update, the ``piecewise`` spec that
    replays it (``--schedule``), and the predicted final loss of each law in the ensemble
    for the exact optimum (``predicted``), the spec (``spec_predicted``) and each standard
    schedule (``standard``, name -> per-law losses)."""

    lrs: np.ndarray
    peak_lr: float
    warmup_steps: int
    spec: schedules.ScheduleSpec
    predicted: tuple[float, ...]
    spec_predicted: tuple[float, ...]
    standard: dict[str, tuple[float, ...]]
    objective: str
    iterations: int
    laws: tuple[Law, ...] = ()

    @property
    def suspect(self) -> str:
        """Why the optimum is not to be trusted, or "": a predicted final loss below a law's
        own floor ``L0`` (or below 0) means the law is extrapolated far outside the runs it
        was fitted on (seen with degenerate fits on short runs); prefer a standard schedule."""
        floors = [getattr(law, "L0", 0.0) for law in self.laws]
        bad = [f"{p:.4g} < L0 = {f:.4g}" for p, f in zip(self.predicted, floors) if p < f or p <= 0]
        return ("predicted final loss " + ", ".join(bad) + ": the law is extrapolated outside its fit") if bad else ""

    @property
    def multipliers(self) -> np.ndarray:
        return self.lrs / self.peak_lr

    def at_peak_fraction(self, tol: float = 1e-3) -> float:
        """Share of the post-warm-up updates whose LR is within ``tol`` of the peak."""
        post = self.multipliers[self.warmup_steps:]
        return float(np.mean(post >= 1.0 - tol))


# ---------------------------------------------------------------------------------- objective
def _check_law(law: Any) -> Law:
    if isinstance(law, AnnealingLaw):
        if law.include_warmup:
            raise SpecError("law-optimal schedules need the annealing law fitted without --include-warmup")
        return law
    if isinstance(law, (MultiPowerLaw, BoundLaw)):
        return law
    raise SpecError(f"a law-optimal schedule needs an annealing, multipower or bound law, got {type(law).__name__}")


def final_loss_grad(law: Law, post: np.ndarray, warmup_area: float,
                    ramp: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Predicted loss after the last update and its gradient in the post-warm-up LRs
    ``post`` (``post[0]`` the first post-warm-up LR, which has no drop); ``warmup_area`` is
    the warm-up's LR area ``S_W`` and ``ramp`` its LRs (the bound law needs each of them).
    Equals ``law.predict(concat(ramp, post))[-1]``."""
    e = np.asarray(post, dtype=np.float64)
    n = e.size
    total = warmup_area + e.sum()
    value = law.L0 + law.A * total ** (-law.alpha)
    grad = np.full(n, -law.alpha * law.A * total ** (-law.alpha - 1.0))
    if isinstance(law, BoundLaw):
        if ramp is None and warmup_area:
            raise SpecError("the bound law's noise term needs each warm-up LR: pass ramp")
        r, dr = noise_value_grad(np.concatenate([np.zeros(0) if ramp is None else ramp, e]))
        ex = law.C * math.exp(-total / law.tau)  # the early transient; d/de_i = -ex / tau
        return float(value + law.B * r + ex), grad + law.B * dr[dr.size - n:] - ex / law.tau
    d = np.zeros(n)
    d[1:] = e[:-1] - e[1:]  # drop into update i (none into the first)
    if isinstance(law, AnnealingLaw):
        # S2(T) = sum_j d_j * sum_{i>=j} lam^(i-j) = sum_j d_j (1 - lam^(n-j)) / (1 - lam)
        j = np.arange(n)
        w = (1.0 - law.lam ** (n - j)) / (1.0 - law.lam) if law.lam > 0 else np.ones(n)
        w[0] = 0.0
        value -= law.C * float(d @ w)
        dw = np.zeros(n)  # d(sum d_j w_j)/d e_i = w_{i+1} - w_i
        dw[:-1] += w[1:]
        dw -= w
        grad -= law.C * dw
        return float(value), grad
    # multi-power: LD = B * sum_j d_j G(x_j), x_j = C e_j^-gamma R_j, R_j = sum_{t>=j} e_t
    C, beta, gamma = law.C, law.beta, law.gamma
    ee = np.maximum(e, 1e-300)
    r = np.cumsum(e[::-1])[::-1]
    scale = ee ** (-gamma)
    x = C * scale * r
    g = -np.expm1(-beta * np.log1p(x))  # 1 - (1 + x)^-beta
    gp = beta * np.exp((-beta - 1.0) * np.log1p(x))  # G'(x)
    g[0] = 0.0
    value -= law.B * float(d @ g)
    dg = np.zeros(n)  # from the drops: d_i = e_{i-1} - e_i
    dg[:-1] += g[1:]
    dg -= g
    q = d * gp * C * scale  # d_j G'_j C e_j^-gamma
    dx = np.cumsum(q) - q * gamma * r / ee  # sum_{j<=i} q_j (through R_j) + own e_i^-gamma term
    grad -= law.B * (dg + dx)
    return float(value), grad


def _ramp(peak_lr: float, warmup_steps: int) -> np.ndarray:
    """``schedules.warmup``'s ramp ``peak * (k + 1) / W`` for ``k < W``."""
    return peak_lr * (np.arange(warmup_steps) + 1.0) / max(warmup_steps, 1)


def _combine(values: list[float], grads: list[np.ndarray], objective: str) -> tuple[float, np.ndarray]:
    if objective == "mean":
        return float(np.mean(values)), np.mean(grads, axis=0)
    i = int(np.argmax(values))  # worst case: a subgradient of the max
    return values[i], grads[i]


def standard_losses(laws: Sequence[Law], budget_steps: int, peak_lr: float, warmup_steps: int) -> dict[str, tuple[float, ...]]:
    """Each :data:`STANDARD` schedule's predicted final loss under each law (same warm-up)."""
    out = {}
    for name, d in STANDARD.items():
        post = peak_lr * np.asarray(
            schedules.values(schedules.build(d, budget_steps - warmup_steps), budget_steps - warmup_steps))
        ramp = _ramp(peak_lr, warmup_steps)
        out[name] = tuple(final_loss_grad(law, post, float(ramp.sum()), ramp)[0] for law in laws)
    return out


# ---------------------------------------------------------------------------------- optimizer
def optimize_schedule(
    laws: Law | Sequence[Law],
    budget_steps: int,
    peak_lr: float,
    *,
    warmup_steps: int = 0,
    objective: str = "mean",
    init: str = "best-standard",
    iterations: int = 3000,
    step: float | None = None,
    min_lr: float = MIN_LR,
    knots: int = 120,
) -> LawOptimal:
    """The schedule minimising the predicted final loss (Luo et al. 2025's projected Adam
    on non-negative drops, see the module docstring) for a run of ``budget_steps`` updates at
    ``peak_lr`` (absolute, the scale the laws were fitted at) after ``warmup_steps`` of
    linear warm-up. ``objective`` is ``"mean"`` or ``"worst"`` over ``laws``; ``init`` is
    ``"best-standard"`` or ``"constant"`` (Luo et al.); ``step`` the Adam step in LR units
    (default: Luo et al.'s 5e-9 at peak 3e-4 and 21,840 steps, scaled by ``peak_lr / n``); ``knots`` the ``piecewise``
    spec's size."""
    ens = [_check_law(law) for law in (laws if isinstance(laws, Sequence) else [laws])]
    if not ens:
        raise SpecError("optimize_schedule needs at least one law")
    if objective not in ("mean", "worst"):
        raise SpecError(f"objective must be 'mean' or 'worst', got {objective!r}")
    if init not in ("best-standard", "constant"):
        raise SpecError(f"init must be 'best-standard' or 'constant', got {init!r}")
    if isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 3:
        raise SpecError(f"budget_steps must be an integer >= 3, got {budget_steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or not 0 <= warmup_steps < budget_steps - 2:
        raise SpecError(f"warmup_steps must be an integer in [0, {budget_steps - 2}), got {warmup_steps!r}")
    if not (isinstance(peak_lr, (int, float)) and math.isfinite(peak_lr) and peak_lr > 0):
        raise SpecError(f"peak_lr must be a positive number (the absolute LR the laws were fitted at), got {peak_lr!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise SpecError(f"iterations must be an integer >= 0, got {iterations!r}")
    n = budget_steps - warmup_steps
    ramp = _ramp(peak_lr, warmup_steps)
    area = float(ramp.sum())
    lr = peak_lr * STEP_PER_PEAK * LUO_STEPS / n if step is None else float(step)

    def evaluate(post: np.ndarray) -> tuple[float, np.ndarray]:
        vals, grads = zip(*(final_loss_grad(law, post, area, ramp) for law in ens), strict=True)
        return _combine(list(vals), list(grads), objective)

    standard = standard_losses(ens, budget_steps, peak_lr, warmup_steps)
    delta = np.zeros(n - 1)
    if init == "best-standard":
        agg = {k: (np.mean(v) if objective == "mean" else np.max(v)) for k, v in standard.items()}
        best = min(agg, key=lambda k: agg[k])
        post = peak_lr * np.asarray(schedules.values(schedules.build(STANDARD[best], n), n))
        post = np.maximum(np.minimum.accumulate(post), min_lr)
        delta = np.maximum(post[:-1] - post[1:], 0.0)

    def lrs_of(dl: np.ndarray) -> np.ndarray:
        return np.maximum(peak_lr - np.concatenate([[0.0], np.cumsum(dl)]), min_lr)

    m = np.zeros_like(delta)
    v = np.zeros_like(delta)
    b1, b2, eps = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults, as Luo et al. use
    best_val, best_delta = math.inf, delta.copy()
    for it in range(iterations + 1):
        post = lrs_of(delta)
        val, grad_e = evaluate(post)
        if val < best_val:
            best_val, best_delta = val, delta.copy()
        if it == iterations:
            break
        free = post[1:] > min_lr  # a clamped LR does not move with the drops
        g = -np.cumsum((grad_e[1:] * free)[::-1])[::-1]
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** (it + 1))
        vhat = v / (1 - b2 ** (it + 1))
        delta = delta - lr * mhat / (np.sqrt(vhat) + eps)
        # projection (Luo et al.): drops in [0, peak]; no drop past the LR floor
        np.clip(delta, 0.0, peak_lr, out=delta)
        delta[peak_lr - np.cumsum(delta) <= min_lr] = 0.0
    post = lrs_of(best_delta)
    full = np.concatenate([ramp, post])
    spec = piecewise_spec(full / peak_lr, warmup_steps, knots=knots)
    spec_lrs = peak_lr * np.asarray(schedules.values(schedules.build(spec, budget_steps), budget_steps))
    return LawOptimal(
        lrs=full, peak_lr=float(peak_lr), warmup_steps=warmup_steps, spec=spec,
        predicted=tuple(final_loss_grad(law, post, area, ramp)[0] for law in ens),
        spec_predicted=tuple(float(dataclasses.replace(law, warmup_steps=warmup_steps).predict(spec_lrs)[-1])
                             for law in ens),
        standard=standard, objective=objective, iterations=iterations, laws=tuple(ens),
    )


# ---------------------------------------------------------------------------------- spec
def piecewise_spec(multipliers: np.ndarray, warmup_steps: int, *, knots: int = 120) -> schedules.ScheduleSpec:
    """A ``piecewise`` spec (with ``warmup`` as a fraction of the run) through ``knots``
    points of the post-warm-up multipliers, placed evenly in ``x + 10 * |drop so far|`` so
    the short decay gets most of them (formula sheet §4.2 suggests ~50; 120 keep the re-predicted loss within 1e-4 at T = 24,000)."""
    mult = np.asarray(multipliers, dtype=np.float64)
    total = mult.size
    post = mult[warmup_steps:]
    n = post.size
    if n < 2:
        raise SpecError("piecewise_spec needs at least 2 post-warm-up steps")
    x = np.arange(n) / n
    arc = x + 10.0 * np.concatenate([[0.0], np.cumsum(np.abs(np.diff(post)))])
    picks = np.unique(np.round(np.interp(np.linspace(0, arc[-1], max(2, knots)), arc, np.arange(n))).astype(int))
    picks = np.unique(np.concatenate([[0], picks, [n - 1]]))
    points = [[float(f"{x[i]:.6g}"), float(f"{max(post[i], 0.0):.6g}")] for i in picks]
    points.append([1.0, points[-1][1]])
    d: dict[str, Any] = {"name": "piecewise", "points": points}
    if warmup_steps:
        d["warmup"] = warmup_steps / total
    return schedules.spec_from(d)
