"""Time to result: from trials to per-workload times, the table that profiles and scores read.

The rules follow AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training
Algorithms", arXiv:2306.07179), section "Scoring":

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

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from steplab.results import TrialResult, TrialSpec

Measure = Literal["time_s", "steps"]
#: algorithm -> workload key -> time (seconds or steps); ``inf`` = target not reached
Table = Mapping[str, Mapping[str, float]]

#: statuses whose recorded time-to-target counts (diverged/failed/running never count)
COUNTED_STATUSES: tuple[str, ...] = ("reached", "budget", "pruned")
MEASURES: tuple[str, ...] = ("time_s", "steps")


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
    excluded, as AlgoPerf's "Measuring runtime"); ``"steps"`` reads ``steps_to_target``.
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
    value = trial.time_to_target_s if measure == "time_s" else trial.steps_to_target
    return check_time(value, f"{measure}-to-target of trial {trial.spec.key()[:8]}")


def study_time(trials: Iterable[TrialResult], measure: Measure = "time_s") -> float:
    """Score of one study: the time of its fastest trial that reached the target.

    AlgoPerf "Scoring", external-tuning ruleset: each study runs N hyperparameter trials
    and is scored by the fastest of them to reach the validation target. ``inf`` when no
    trial reached it (an empty study included); see :func:`trial_time` for which trials
    count.

    >>> study_time([])
    inf
    """
    return min((trial_time(t, measure) for t in trials), default=math.inf)


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
    for trial in trials:
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
    "Measure",
    "Table",
    "check_time",
    "median_time",
    "study_time",
    "time_table",
    "trial_time",
    "workload_key",
    "workload_time",
]
