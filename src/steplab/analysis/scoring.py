"""Time to result: from trials to per-workload times, the table that profiles and scores read.

The rules follow AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training
Algorithms", arXiv:2306.07179), section "Scoring":

0. :func:`trial_time` - one trial's time to target: training seconds (``time_s``, raw wall
   time), update steps (``steps``), or ``cost_s``, steps to target x the per-step cost of its
   (algorithm, workload) cell attached by :func:`with_step_costs` (measured from the traces by
   ``analysis.timing``, else :func:`step_costs`), which keeps the time ranking of identical
   trials from following the machine's load.
1. :func:`study_time` - external-tuning rule: one study (one algorithm x workload, N tuning
   trials) scores the time of its *fastest trial that reached the target*; ``inf`` if none.
2. :func:`workload_time` - the median of the study times over the S independent studies.
3. :func:`time_table` - ``{algorithm: {workload_key: time}}`` from a flat list of trials.

Profiles and the benchmark score over such a table are in :mod:`steplab.analysis.profiles`;
variant agreement and comparisons with a reference in :mod:`steplab.analysis.comparisons`.

Decisions (each tested in ``tests/test_scoring.py``):

* A time of ``inf`` means "did not reach the target". Diverged and failed trials never
  count as reaching it, whatever time they recorded; nor do trials still running.
* Workload keys are ``name`` or ``name:variant`` (``Workload.key``).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from steplab.results import TrialResult, TrialSpec

Measure = Literal["time_s", "steps", "cost_s"]
#: algorithm -> workload key -> time (seconds or steps); ``inf`` = target not reached
Table = Mapping[str, Mapping[str, float]]

#: statuses whose recorded time-to-target counts (diverged/failed/running never count)
COUNTED_STATUSES: tuple[str, ...] = ("reached", "budget", "pruned")
MEASURES: tuple[str, ...] = ("time_s", "steps", "cost_s")
#: ``final_metrics`` key of a scored trial's per-step cost (:func:`with_step_costs`)
STEP_COST_KEY = "scoring/step_cost_s"


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")


def check_time(value: float, what: str) -> float:
    """``value`` as a float; a ``ValueError`` naming ``what`` unless it is >= 0 or ``inf``."""
    value = float(value)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be a non-negative number or inf, got {value!r}")
    return value


def trial_time(trial: TrialResult, measure: Measure = "time_s") -> float:
    """The time a trial took to reach the target, or ``inf`` if it does not count.

    ``measure="time_s"`` reads ``time_to_target_s`` (training time only, evaluation
    excluded, as AlgoPerf's "Measuring runtime"); ``"steps"`` reads ``steps_to_target``;
    ``"cost_s"`` is ``steps_to_target`` x the per-step cost :func:`with_step_costs` attached
    (a ``ValueError`` without it).
    A trial counts only if its status is one of :data:`COUNTED_STATUSES`: a diverged or
    failed trial has not reached the target, even if it crossed it before breaking.

    >>> from steplab.results import TrialResult, TrialSpec
    >>> spec = TrialSpec("mnist", "base", "adamw", {}, {}, seed=0, budget_steps=100)
    >>> trial_time(TrialResult(spec, "reached", 40, 2.0, 0.1, 1.5, 30), "steps")
    30.0
    >>> trial_time(TrialResult(spec, "diverged", 40, 2.0, 0.1, 1.5, 30))
    inf
    """
    _check_measure(measure)
    if trial.status not in COUNTED_STATUSES:
        return math.inf
    if measure == "cost_s":
        if STEP_COST_KEY not in trial.final_metrics:
            raise ValueError("measure 'cost_s' needs the per-step cost of the trial's cell: score the trials "
                             "through scoring.with_step_costs (time_table does)")
        steps = _checked(trial.steps_to_target, "steps-to-target", trial)
        if steps == 0 or math.isinf(steps):
            return steps
        return _checked(steps * trial.final_metrics[STEP_COST_KEY], "cost-to-target", trial)
    value = trial.time_to_target_s if measure == "time_s" else trial.steps_to_target
    return _checked(value, f"{measure}-to-target", trial)


def _checked(value: float, what: str, trial: TrialResult) -> float:
    """:func:`check_time` naming the trial by its key, computed only for the message (a key
    is a JSON dump: a large report scores tens of thousands of trials)."""
    try:
        return check_time(value, what)
    except ValueError:
        return check_time(value, f"{what} of trial {trial.spec.key()[:8]}")


def seconds_per_step(trial: TrialResult) -> float:
    """A trial's mean training seconds per update step, ``train_time_s / steps`` (``nan``
    for a trial without steps or with a non-finite time: it measures no cost). On a busy
    machine this counts the waiting too; ``analysis.timing.cell_step_seconds`` measures the
    steps from the trace instead."""
    if trial.steps < 1 or not math.isfinite(trial.train_time_s) or trial.train_time_s < 0:
        return math.nan
    return trial.train_time_s / trial.steps


def step_costs(trials: Iterable[TrialResult]) -> dict[tuple[str, str], float]:
    """``{(algorithm, workload_key): seconds per step}``: the median over the cell's trials of
    :func:`seconds_per_step`, every trial with steps counted (reached, missed, diverged: a step
    costs the same). The median over trials drops the trials a busy machine slowed most (a
    robust location estimate, Huber & Ronchetti 2009, "Robust Statistics", §3.2), but each
    trial's mean still counts its waiting: this is the fallback for trials without a trace;
    ``analysis.timing.cell_step_seconds`` measures from the traces. ``nan`` for a cell
    without a measured step.

    >>> from steplab.results import TrialResult, TrialSpec
    >>> spec = TrialSpec("w", "base", "a", {}, {}, seed=0, budget_steps=100)
    >>> step_costs([TrialResult(spec, "reached", n, t, 0.0) for n, t in [(10, 1.0), (20, 9.0), (50, 5.0)]])
    {('a', 'w'): 0.1}
    """
    per: dict[tuple[str, str], list[float]] = {}
    for t in trials:
        per.setdefault((t.spec.algorithm, workload_key(t.spec)), []).append(seconds_per_step(t))
    out: dict[tuple[str, str], float] = {}
    for cell, values in per.items():
        finite = [v for v in values if math.isfinite(v)]
        out[cell] = statistics.median(finite) if finite else math.nan
    return out


def with_step_costs(trials: Iterable[TrialResult],
                    costs: Mapping[tuple[str, str], float] | None = None) -> list[TrialResult]:
    """Copies of ``trials`` carrying their cell's per-step cost in
    ``final_metrics[STEP_COST_KEY]``, which ``measure="cost_s"`` reads: ``costs[(algorithm,
    workload_key)]`` (e.g. measured from the traces, ``analysis.timing.cell_step_seconds``),
    else :func:`step_costs` pooled over every trial given. The trials' own fields are
    unchanged, so raw wall time stays available."""
    trials = list(trials)
    fallback = step_costs(trials)
    chosen = {**fallback, **{k: v for k, v in (costs or {}).items() if math.isfinite(v)}}
    return [dataclasses.replace(t, final_metrics={**t.final_metrics, STEP_COST_KEY:
                                                  chosen[(t.spec.algorithm, workload_key(t.spec))]})
            for t in trials]


def ensure_step_costs(trials: Iterable[TrialResult]) -> list[TrialResult]:
    """``trials`` as they are when every one carries a step cost (e.g. from the traces,
    ``studies.bench.costs.costed_trials``), else :func:`with_step_costs` of them."""
    trials = list(trials)
    return with_step_costs(trials) if any(STEP_COST_KEY not in t.final_metrics for t in trials) else trials


def _costed(trials: Iterable[TrialResult], measure: str) -> list[TrialResult]:
    """``trials``, with step costs attached (pooled over them) when ``measure`` is ``cost_s``
    and some lack one."""
    return ensure_step_costs(trials) if measure == "cost_s" else list(trials)


def study_time(trials: Iterable[TrialResult], measure: Measure = "time_s") -> float:
    """Score of one study: the time of its fastest trial that reached the target.

    AlgoPerf "Scoring", external-tuning ruleset: each study runs N hyperparameter trials
    and is scored by the fastest of them to reach the validation target. ``inf`` when no
    trial reached it (an empty study included); see :func:`trial_time` for which trials
    count. With ``cost_s``, trials without a step cost get one pooled over this study's
    trials (:func:`workload_time` and :func:`time_table` pool over every study of the cell).

    >>> study_time([])
    inf
    """
    return min((trial_time(t, measure) for t in _costed(trials, measure)), default=math.inf)


def workload_time(
    trials_by_study: Sequence[Sequence[TrialResult]], measure: Measure = "time_s"
) -> float:
    """Score of one algorithm on one workload: the median over studies of the study times.

    AlgoPerf "Scoring": the per-workload time is the median over the S independent studies
    (S = 5 in the paper). With misses: the median is taken on the sorted times with ``inf``
    largest, so the median of ``[1, inf, inf]`` is ``inf``; for an even count it is the
    mean of the two middle values, ``inf`` when either of them is.
    """
    if len(trials_by_study) == 0:
        raise ValueError("workload_time needs at least one study")
    if measure == "cost_s":  # one per-step cost for the cell, pooled over all its studies
        it = iter(_costed([t for s in trials_by_study for t in s], measure))
        trials_by_study = [[next(it) for _ in s] for s in trials_by_study]
    return median_time([study_time(s, measure) for s in trials_by_study])


def median_time(times: Sequence[float]) -> float:
    """Median of times that may be ``inf``: the middle value, or the mean of the two middle
    values for an even count (``inf`` if either is ``inf``).

    >>> median_time([1.0, math.inf, math.inf]), median_time([3.0, 5.0]), median_time([3.0, math.inf])
    (inf, 4.0, inf)
    """
    values = sorted(check_time(t, "a study time") for t in times)
    n = len(values)
    if n == 0:
        raise ValueError("median of no times")
    lo, hi = values[(n - 1) // 2], values[n // 2]
    if math.isinf(lo) or math.isinf(hi):
        return math.inf
    return (lo + hi) / 2.0


def workload_key(spec: TrialSpec) -> str:
    """``workload`` for the base variant, else ``workload:variant`` (as ``Workload.key``)."""
    return spec.workload if spec.variant in ("base", "") else f"{spec.workload}:{spec.variant}"


def time_table(
    trials: Iterable[TrialResult], measure: Measure = "time_s"
) -> dict[str, dict[str, float]]:
    """``{algorithm: {workload_key: time}}`` from a flat list of trials.

    Trials are grouped by ``spec.algorithm``, :func:`workload_key`, then ``spec.study_id``
    (each distinct id is one study, ``None`` included); each cell is
    :func:`workload_time` of its studies. Algorithms and workloads come out sorted. An
    algorithm that never ran a workload has no entry for it (see ``missing=`` below).
    """
    _check_measure(measure)
    groups: dict[str, dict[str, dict[int | None, list[TrialResult]]]] = {}
    for trial in _costed(trials, measure):
        spec = trial.spec
        by_study = groups.setdefault(spec.algorithm, {}).setdefault(workload_key(spec), {})
        by_study.setdefault(spec.study_id, []).append(trial)
    return {
        algorithm: {
            key: workload_time(list(groups[algorithm][key].values()), measure)
            for key in sorted(groups[algorithm])
        }
        for algorithm in sorted(groups)
    }


__all__ = [
    "COUNTED_STATUSES",
    "MEASURES",
    "STEP_COST_KEY",
    "Measure",
    "Table",
    "check_time",
    "ensure_step_costs",
    "median_time",
    "seconds_per_step",
    "step_costs",
    "study_time",
    "time_table",
    "trial_time",
    "workload_key",
    "with_step_costs",
    "workload_time",
]
