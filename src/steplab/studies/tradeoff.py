"""Accuracy-vs-training-time tradeoff curves from one cyclic run (Portes et al. 2022,
"Fast Benchmarking of Accuracy vs. Training Time with Cyclic Learning Rates", arXiv
2206.00832).

One run with a ``budget_cycles`` schedule (``steplab.schedules``) restarts the learning rate
at its peak and decays it to ~0 at the end of each cycle; the cycles end at increasing
budgets (default 1/8, 1/4, 1/2 and all of the run). Evaluating exactly at each cycle end
(``TrainConfig.eval_steps``) gives one point per budget: (training time so far, validation
metric). The paper's premise is that each point approximates a separate run trained to that
budget with a decaying schedule, at the cost of the longest run alone instead of the sum.
This module checks that premise: it also runs the algorithm once per budget with its own
schedule built for that budget, and reports per budget the cyclic metric minus the separate
one, and the training time of the one run against the sum of the separate runs.

* :func:`cyclic_algorithm`, :func:`separate_algorithm`, :func:`jobs` - the trials, as
  :class:`~steplab.training.jobs.Job` s, so they run on any executor, are stored as trials and resume.
* :func:`pareto_frontier`, :func:`agreement`, :func:`make_curve` - pure computations.
* :func:`curve_from_store`, :func:`study_curves` - curves read back from a store;
  :func:`measure` runs one curve in this process.

The trials are named ``ALGO tradeoff:cyclic`` and ``ALGO tradeoff:separate`` so time-to-target
scoring skips them (``bench.scored_trials``). Pitfall (Portes et al. §5): point ``k`` of the
cyclic curve has trained through all earlier cycles (a warm start), so it is an approximation
of a separate run; compare algorithms under the same cyclic schedule only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from steplab import schedules
from steplab.algorithms import ResolvedAlgorithm
from steplab.errors import SpecError
from steplab.results import EvalRow, TrialResult
from steplab.training.jobs import Job
from steplab.workloads.target import Target

#: the tradeoff modes a benchmark knows (``BenchSpec.tradeoff``)
MODES = ("cyclic",)
#: algorithm-name suffixes of the tradeoff trials (not scored for time-to-target)
CYCLIC = " tradeoff:cyclic"
SEPARATE = " tradeoff:separate"
DOUBLING_ENDS = schedules.DOUBLING_ENDS


def is_tradeoff(algorithm: str) -> bool:
    """Whether a trial's algorithm name marks a tradeoff trial."""
    return algorithm.endswith(CYCLIC) or algorithm.endswith(SEPARATE)


def base_name(algorithm: str) -> str:
    """``"adamw-cosine tradeoff:cyclic"`` -> ``"adamw-cosine"``."""
    for suffix in (CYCLIC, SEPARATE):
        if algorithm.endswith(suffix):
            return algorithm[: -len(suffix)]
    return algorithm


def check_mode(mode: str | None) -> str | None:
    """``mode`` if it is a known tradeoff mode (or ``None``); else a one-line ``SpecError``."""
    if mode is not None and mode not in MODES:
        raise SpecError(f"unknown tradeoff mode {mode!r}; use {', '.join(MODES)} (or leave it out)")
    return mode


# ---------------------------------------------------------------------------------- trials
def cyclic_algorithm(algorithm: ResolvedAlgorithm, budget_steps: int,
                     ends: Sequence[float] = DOUBLING_ENDS) -> ResolvedAlgorithm:
    """``algorithm`` with a ``budget_cycles`` schedule over ``budget_steps`` whose cycles end at
    the run fractions ``ends``. Each cycle decays with the algorithm's own shape and end value
    when its schedule is ``cosine`` or ``linear`` (else cosine to 0); the algorithm's warm-up
    fraction is applied to the first cycle only, in steps, so the first cycle is the same
    schedule as a separate run of the first budget."""
    steps = schedules.cycle_end_steps(list(ends), budget_steps)
    own = schedules.spec_from(algorithm.schedule)
    p = own.resolved()
    decays = own.name in ("cosine", "linear")
    first = steps[0]
    w = min(first - 1, int(round(p["warmup"] * first)))  # what schedules.build gives a run of `first`
    spec: dict[str, Any] = {"name": "budget_cycles", "ends": [float(e) for e in ends],
                            "shape": own.name if decays else "cosine", "end": float(p["end"]) if decays else 0.0}
    if w > 0:
        spec["warmup"] = w / budget_steps
        spec["warmup_start"] = p["warmup_start"]
    return dataclasses.replace(algorithm, name=base_name(algorithm.name) + CYCLIC, schedule=spec)


def separate_algorithm(algorithm: ResolvedAlgorithm) -> ResolvedAlgorithm:
    """``algorithm`` unchanged but for its name: the separate run of one budget."""
    return dataclasses.replace(algorithm, name=base_name(algorithm.name) + SEPARATE)


def jobs(
    workload: str,
    algorithm: ResolvedAlgorithm,
    *,
    budget_steps: int,
    seed: int,
    ends: Sequence[float] = DOUBLING_ENDS,
    variant: str = "base",
    target: Mapping[str, Any] | None = None,
    study_id: int | None = None,
) -> list[Job]:
    """The trials of one tradeoff curve: one cyclic run of ``budget_steps`` evaluated at every
    cycle end (index 0), then one run per cycle budget with the algorithm's own schedule built
    for that budget (index ``i`` for budget ``i``). All train to their budget."""
    steps = schedules.cycle_end_steps(list(ends), budget_steps)
    common = {"workload": workload, "variant": variant, "target": dict(target) if target else None,
              "seed": seed, "study_id": study_id, "stop_at_target": False}
    cyc = cyclic_algorithm(algorithm, budget_steps, ends)
    out = [Job(budget_steps=budget_steps, algorithm=cyc.to_dict(), index=0, eval_steps=tuple(steps), **common)]
    sep = separate_algorithm(algorithm).to_dict()
    out += [Job(budget_steps=b, algorithm=sep, index=i, **common) for i, b in enumerate(steps)]
    return out


# ---------------------------------------------------------------------------------- curves
@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a tradeoff curve: a budget, the training time spent to reach it and the
    validation metric there (``nan`` when the run never got there)."""

    budget_steps: int
    time_s: float
    value: float


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How well the one cyclic run stands in for the separate runs.

    ``diffs[i]`` is the cyclic metric minus the separate-run metric at budget ``i`` (for a
    loss, negative means the cyclic point is better); ``saving`` is
    ``1 - cyclic_time_s / separate_time_s``, the share of training time the one run saves."""

    budgets: tuple[int, ...]
    diffs: tuple[float, ...]
    max_abs_diff: float
    cyclic_time_s: float
    separate_time_s: float
    saving: float
    cyclic_steps: int
    separate_steps: int


@dataclasses.dataclass(frozen=True)
class Curve:
    """The tradeoff curve of one algorithm on one workload."""

    algorithm: str
    workload: str
    metric: str
    mode: str  # "max" or "min": which way the metric is better
    cyclic: tuple[Point, ...]
    separate: tuple[Point, ...]
    frontier: tuple[Point, ...]  # the non-dominated points of the cyclic curve
    agreement: Agreement


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def pareto_frontier(points: Sequence[Point], mode: str = "max") -> list[Point]:
    """The points no other point dominates (at most the time and at least as good a metric,
    one of them strictly), sorted by time; points with a non-finite time or metric are left
    out, and of identical points the first is kept. Along the result the metric strictly
    improves with time. ``mode`` is ``"max"`` (accuracy) or ``"min"`` (loss)."""
    if mode not in ("max", "min"):
        raise SpecError(f"pareto_frontier: mode must be 'max' or 'min', got {mode!r}")
    sign = -1.0 if mode == "max" else 1.0
    ok = [p for p in points if math.isfinite(p.time_s) and math.isfinite(p.value)]
    out: list[Point] = []
    for p in sorted(ok, key=lambda p: (p.time_s, sign * p.value)):
        if not out or _better(p.value, out[-1].value, mode):
            out.append(p)
    return out


def agreement(cyclic: Sequence[Point], separate: Sequence[Point], *, cyclic_time_s: float,
              cyclic_steps: int) -> Agreement:
    """Per budget (matched by ``budget_steps``), the cyclic metric minus the separate one
    (``nan`` where either is missing); and the total training time of the one cyclic run
    against the sum over the separate runs."""
    sep = {p.budget_steps: p for p in separate}
    budgets = tuple(p.budget_steps for p in cyclic)
    diffs = tuple(p.value - sep[p.budget_steps].value if p.budget_steps in sep else math.nan for p in cyclic)
    finite = [abs(d) for d in diffs if math.isfinite(d)]
    total = float(sum(p.time_s for p in separate))
    return Agreement(
        budgets=budgets,
        diffs=diffs,
        max_abs_diff=max(finite) if finite else math.nan,
        cyclic_time_s=float(cyclic_time_s),
        separate_time_s=total,
        saving=1.0 - cyclic_time_s / total if total > 0 else math.nan,
        cyclic_steps=int(cyclic_steps),
        separate_steps=int(sum(p.budget_steps for p in separate)),
    )


def cyclic_points(evals: Sequence[EvalRow], budgets: Sequence[int], metric: str) -> list[Point]:
    """The cyclic run's point at each budget: the evaluation of ``metric`` after exactly that
    many updates (``nan`` where the run stopped before it)."""
    at = {e.step: e for e in evals if e.metric == metric}
    return [Point(b, at[b].time_s, at[b].value) if b in at else Point(b, math.nan, math.nan) for b in budgets]


def separate_point(trial: TrialResult, metric: str) -> Point:
    """A separate run's point: its budget, its training time and its final ``metric``
    (``nan`` unless it trained to the end of its budget)."""
    v = trial.final_metrics.get(metric, math.nan) if trial.steps == trial.spec.budget_steps else math.nan
    return Point(trial.spec.budget_steps, float(trial.train_time_s), float(v))


def make_curve(algorithm: str, workload: str, metric: str, mode: str, cyclic: Sequence[Point],
               separate: Sequence[Point], *, cyclic_time_s: float, cyclic_steps: int) -> Curve:
    """A :class:`Curve` from its points (separate points sorted by budget)."""
    sep = tuple(sorted(separate, key=lambda p: p.budget_steps))
    return Curve(algorithm, workload, metric, mode, tuple(cyclic), sep, tuple(pareto_frontier(cyclic, mode)),
                 agreement(cyclic, sep, cyclic_time_s=cyclic_time_s, cyclic_steps=cyclic_steps))


def _budgets_of(trial: TrialResult) -> list[int]:
    p = schedules.spec_from(trial.spec.algorithm_spec["schedule"]).resolved()
    ends = p["ends"] if p["ends"] is not None else list(DOUBLING_ENDS)
    return schedules.cycle_end_steps(ends, trial.spec.budget_steps)


def curve_from_store(store: Any, cyclic: TrialResult, separate: Sequence[TrialResult], target: Target) -> Curve:
    """The curve of a finished cyclic trial (its evaluations read from ``store``) and the
    separate trials of the same algorithm and workload, on ``target``'s metric."""
    if cyclic.id is None:
        raise SpecError("curve_from_store needs a stored cyclic trial (with an id)")
    budgets = _budgets_of(cyclic)
    points = cyclic_points(store.evals(cyclic.id), budgets, target.metric)
    wk = cyclic.spec.workload if cyclic.spec.variant == "base" else f"{cyclic.spec.workload}:{cyclic.spec.variant}"
    return make_curve(base_name(cyclic.spec.algorithm), wk, target.metric, target.mode, points,
                      [separate_point(t, target.metric) for t in separate],
                      cyclic_time_s=cyclic.train_time_s, cyclic_steps=cyclic.steps)


def study_curves(store: Any, study_id: int, targets: Mapping[str, Target | None] | None = None) -> list[Curve]:
    """Every tradeoff curve of a study, one per algorithm and workload with a finished
    cyclic trial, in trial order. ``targets`` (workload key -> target, e.g.
    ``report.targets_of``) names the metric; the workload's own target otherwise."""
    from steplab import workloads

    trials = [t for t in store.list_trials(study_id=study_id) if t.status != "running" and is_tradeoff(t.spec.algorithm)]
    out = []
    for c in (t for t in trials if t.spec.algorithm.endswith(CYCLIC)):
        s = c.spec
        wk = s.workload if s.variant == "base" else f"{s.workload}:{s.variant}"
        target = (targets or {}).get(wk) or workloads.get(s.workload, s.variant).target
        seps = [t for t in trials if t.spec.algorithm == base_name(s.algorithm) + SEPARATE
                and (t.spec.workload, t.spec.variant, t.spec.seed) == (s.workload, s.variant, s.seed)]
        out.append(curve_from_store(store, c, seps, target))
    return out


def measure(
    workload: str,
    algorithm: ResolvedAlgorithm,
    *,
    store: Any,
    seed: int = 0,
    ends: Sequence[float] = DOUBLING_ENDS,
    variant: str = "base",
    budget_steps: int | None = None,
    device: str | None = None,
) -> Curve:
    """Run one tradeoff curve in this process (the cyclic run, then the separate runs) on
    ``workload`` for its budget (or ``budget_steps``), recording into ``store``."""
    from steplab import workloads
    from steplab.training.loop import run_trial

    wl = workloads.get(workload, variant, budget_steps=budget_steps)
    todo = jobs(workload, algorithm, budget_steps=wl.budget_steps, seed=seed, ends=ends, variant=variant,
                target=dataclasses.asdict(wl.target))
    results = []
    for job in todo:
        job = dataclasses.replace(job, device=device)
        results.append(run_trial(job.build_workload(), job.resolved(), job.seed, store=store,
                                 study_id=job.study_id, index=job.index, config=job.config()))
    return curve_from_store(store, results[0], results[1:], wl.target)


__all__ = [
    "CYCLIC",
    "DOUBLING_ENDS",
    "MODES",
    "SEPARATE",
    "Agreement",
    "Curve",
    "Point",
    "agreement",
    "base_name",
    "check_mode",
    "curve_from_store",
    "cyclic_algorithm",
    "cyclic_points",
    "is_tradeoff",
    "jobs",
    "make_curve",
    "measure",
    "pareto_frontier",
    "separate_algorithm",
    "separate_point",
    "study_curves",
]
