"""Choosing a loss-curve law by leave-one-schedule-out error, law ensembles, predicted
intervals, and the wall-clock form of a prediction.

* **Leave-one-schedule-out (LOSO) selection** (our protocol for issue 26; the laws are Tissue
  et al. 2024, arXiv 2408.11029, and Luo et al. 2025, arXiv 2503.12811): with runs of ``k >= 2``
  schedules, fit each candidate law on ``k - 1`` of them and predict the held-out one; the
  candidate with the lowest mean relative error of the held-out *final* loss wins (ties: the
  mean error over the held-out curve). Candidates are the multi-power law, the bound law
  (Schaipp et al. 2025, ``laws.BoundLaw``), the bound law with a transient
  (``bound-transient``, our extension) and the annealing law at each decay ``lambda``
  of :data:`steplab.analysis.predict.LAMBDA_GRID` (so ``lambda`` is fitted by held-out error
  rather than by the fit residual); each is fitted leaving out its law's
  :data:`~steplab.analysis.predict.DEFAULT_START`.
* **Ensemble and intervals**: the best candidates, refitted on all runs, form an ensemble;
  a prediction's interval is the union of the ensemble's spread and the chosen law's point
  times ``1 +- q``, ``q`` the largest held-out final-loss error seen in LOSO. This is a
  heuristic band (its coverage is measured in ``benchmarks/beat.py``, not guaranteed).
* **Wall-clock budget** (Inbar & Sernau 2024, "Time Matters: Scaling Laws for Any Budget",
  arXiv 2406.18922; formula sheet ``workloads-curricula-schedules.md`` §4.4): a time budget
  ``t`` buys ``floor(t / t_step)`` updates; the law predicts the loss at that many updates,
  and the interval of the measured seconds per step gives the interval of the loss.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from steplab.analysis import predict
from steplab.analysis.law_curves import Curve
from steplab.analysis.laws import Law
from steplab.errors import SpecError

__all__ = [
    "CANDIDATES",
    "Candidate",
    "Interval",
    "Selection",
    "fit_candidate",
    "loso",
    "predict_at_time",
    "predict_interval",
    "select",
]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A law to try: ``law`` in ``predict.LAWS``; ``lam`` for the annealing law."""

    law: str
    lam: float | None = None

    @property
    def label(self) -> str:
        return self.law if self.lam is None else f"{self.law}(lambda={self.lam:g})"


#: the default candidates: the multi-power law, the bound law (plain and with a transient) and
#: the annealing law at each lambda
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("multipower"), Candidate("bound"), Candidate("bound-transient"),
    *(Candidate("annealing", lam) for lam in predict.LAMBDA_GRID))


@dataclasses.dataclass(frozen=True)
class Interval:
    """A predicted loss and its band."""

    point: float
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Selection:
    """LOSO errors per candidate label (``final``: per held-out run, relative error of its
    last curve point; ``curve``: mean relative error over its curve), the chosen candidate, the
    ensemble refitted on all runs (best first), and ``q`` (largest held-out final error of
    the chosen candidate)."""

    final: dict[str, list[float]]
    curve: dict[str, list[float]]
    chosen: Candidate
    ensemble: tuple[Law, ...]
    labels: tuple[str, ...]
    q: float
    peak_lr: float

    @property
    def law(self) -> Law:
        return self.ensemble[0]

    def table(self) -> list[tuple[str, float, float, float]]:
        """``(label, mean final error, worst final error, mean curve error)`` per candidate, best first."""
        rows = [(k, float(np.mean(v)), float(np.max(v)), float(np.mean(self.curve[k]))) for k, v in self.final.items()]
        return sorted(rows, key=lambda r: (r[1], r[3]))


def fit_candidate(runs: Sequence[predict.Run], cand: Candidate, *, max_points: int = 150) -> Law:
    """``cand`` fitted jointly on ``runs`` (Huber on log loss, :func:`predict.fit_runs`)."""
    kwargs: dict[str, Any] = {}
    if cand.law == "annealing":
        kwargs["lam"] = 0.999 if cand.lam is None else cand.lam
    return predict.fit_runs(runs, cand.law, max_points=max_points, **kwargs).law


def _errors(law: Law, run: predict.Run, max_points: int) -> tuple[float, float]:
    c: Curve = run.curve(max_points=max_points)
    pred = dataclasses.replace(law, warmup_steps=run.warmup_steps).predict(c.lrs, c.steps)
    rel = np.abs(pred / c.losses - 1.0)
    ok = np.isfinite(rel)
    if not ok.any():
        return math.inf, math.inf
    return float(rel[-1]) if ok[-1] else math.inf, float(rel[ok].mean())


def loso(runs: Sequence[predict.Run], candidates: Sequence[Candidate] = CANDIDATES, *,
         max_points: int = 150) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Leave-one-schedule-out errors of each candidate: ``(final, curve)`` dicts of
    per-held-out-run relative errors (see :class:`Selection`)."""
    if len(runs) < 2:
        raise SpecError(f"leave-one-schedule-out needs runs of at least 2 schedules, got {len(runs)}")
    final: dict[str, list[float]] = {}
    curve: dict[str, list[float]] = {}
    for cand in candidates:
        for i, held in enumerate(runs):
            rest = [r for j, r in enumerate(runs) if j != i]
            try:
                law = fit_candidate(rest, cand, max_points=max_points)
                f, c = _errors(law, held, max_points)
            except SpecError:
                f, c = math.inf, math.inf
            final.setdefault(cand.label, []).append(f)
            curve.setdefault(cand.label, []).append(c)
    return final, curve


def select(runs: Sequence[predict.Run], candidates: Sequence[Candidate] = CANDIDATES, *, ensemble: int = 3,
           max_points: int = 150) -> Selection:
    """Pick the candidate with the lowest mean LOSO final-loss error (then curve error) and
    refit the best ``ensemble`` candidates on all ``runs``."""
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise SpecError(f"ensemble must be a positive integer, got {ensemble!r}")
    final, curve = loso(runs, candidates, max_points=max_points)
    by_label = {c.label: c for c in candidates}
    ranked = sorted(final, key=lambda k: (float(np.mean(final[k])), float(np.mean(curve[k]))))
    if not math.isfinite(float(np.mean(final[ranked[0]]))):
        raise SpecError("no candidate law could be fitted on the held-in runs; record longer runs")
    top: list[str] = []
    fitted: list[Law] = []
    for k in ranked:  # the best candidates whose refit on all runs succeeds
        if len(top) == ensemble or not math.isfinite(float(np.mean(final[k]))):
            break
        try:
            fitted.append(fit_candidate(runs, by_label[k], max_points=max_points))
        except SpecError:
            continue
        top.append(k)
    if not top:
        raise SpecError("no candidate law could be fitted on all the runs; record longer runs")
    laws = tuple(fitted)
    return Selection(final=final, curve=curve, chosen=by_label[top[0]], ensemble=laws, labels=tuple(top),
                     q=float(np.max(final[top[0]])), peak_lr=max(r.peak_lr for r in runs))


def predict_interval(sel: Selection, spec: Any, budget_steps: int, peak_lr: float | None = None) -> Interval:
    """The chosen law's predicted final loss of ``spec`` and its band: the ensemble's spread
    joined with ``point * (1 +- q)`` (see the module docstring)."""
    peak = sel.peak_lr if peak_lr is None else peak_lr
    preds = [predict.final_loss(law, spec, budget_steps, peak) for law in sel.ensemble]
    point = preds[0]
    finite = [p for p in preds if math.isfinite(p)]
    low = min([*finite, point * (1 - sel.q)])
    high = max([*finite, point * (1 + sel.q)])
    return Interval(point, low, high)


def predict_at_time(law: Law, spec: Any, time_s: float, s_per_step: float | tuple[float, float, float],
                    peak_lr: float) -> tuple[Interval, tuple[int, int, int]]:
    """The loss a run of ``spec`` reaches in ``time_s`` seconds of training (Inbar & Sernau
    2024: time, not steps, is the budget): ``floor(time_s / t_step)`` updates, the schedule
    stretched to that many. ``s_per_step`` is one value or ``(point, low, high)`` (e.g. the
    median and interval of a run's per-step cost); returns the loss interval and the steps
    ``(at point, at the slow end, at the fast end)``."""
    sps = (s_per_step,) * 3 if isinstance(s_per_step, (int, float)) else tuple(s_per_step)
    if len(sps) != 3 or not all(isinstance(v, (int, float)) and v > 0 for v in sps):
        raise SpecError(f"s_per_step must be a positive number or (point, low, high), got {s_per_step!r}")
    if not (isinstance(time_s, (int, float)) and time_s > 0):
        raise SpecError(f"time_s must be a positive number of seconds, got {time_s!r}")
    point, lo, hi = sps
    # the slow end (high s/step) buys fewest steps; 1e-9 absorbs float error (10 / 0.01 = 999.99..)
    steps = tuple(int(math.floor(time_s / s + 1e-9)) for s in (point, hi, lo))
    if min(steps) < 3:
        raise SpecError(f"{time_s:g} s buys only {min(steps)} updates at {max(sps):g} s/step; give a longer budget")
    losses = [predict.final_loss(law, spec, n, peak_lr) for n in steps]
    return Interval(losses[0], min(losses), max(losses)), steps  # type: ignore[return-value]
