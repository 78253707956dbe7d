"""Time-to-result scoring: study times, per-workload tables, performance profiles, score.

The rules follow AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training
Algorithms", arXiv:2306.07179), section "Scoring" and its parts "Performance profiles" and
"Integrating performance profiles for the benchmark score"; profiles themselves are Dolan &
Moré 2002 ("Benchmarking optimization software with performance profiles").

The pipeline, each step a pure function:

1. :func:`study_time` - external-tuning rule: one study (one algorithm x workload, N tuning
   trials) scores the time of its *fastest trial that reached the target*; ``inf`` if none.
2. :func:`workload_time` - the median of the study times over the S independent studies.
3. :func:`time_table` - ``{algorithm: {workload_key: time}}`` from a flat list of trials.
4. :func:`performance_ratios` / :func:`performance_profile` - the ratio of each
   algorithm's time to the fastest one on the workload, and the fraction of workloads
   with ratio ``<= tau``.
5. :func:`benchmark_score` - the normalised area under the profile on ``[1, r_max]``,
   computed exactly (the profile is a step function).

Decisions (each tested in ``tests/test_scoring.py``):

* A time of ``inf`` means "did not reach the target". Diverged and failed trials never
  count as reaching it, whatever time they recorded; nor do trials still running.
* A workload on which *every* algorithm misses has ratio ``inf`` for all of them and still
  counts in ``n_w`` (so nobody can score 1 on a suite with such a workload), as in AlgoPerf.
* Tied fastest algorithms all get ratio exactly 1.
* An algorithm with *no entry* for a workload another algorithm has is an error by default
  (``missing="raise"``: a workload that was never run is not a failure to train);
  ``missing="inf"`` scores the absent entry as a miss instead.
* Workload keys are ``name`` or ``name:variant`` (``Workload.key``); every key in the table
  is one workload of the profile unless ``workloads=`` selects some.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
from scipy import stats

from steplab.results import TrialResult, TrialSpec

Measure = Literal["time_s", "steps"]
Missing = Literal["raise", "inf"]
#: algorithm -> workload key -> time (seconds or steps); ``inf`` = target not reached
Table = Mapping[str, Mapping[str, float]]

#: statuses whose recorded time-to-target counts (diverged/failed/running never count)
COUNTED_STATUSES: tuple[str, ...] = ("reached", "budget", "pruned")
MEASURES: tuple[str, ...] = ("time_s", "steps")


# ----------------------------------------------------------------------------------
# Trials -> study time -> workload time -> table
# ----------------------------------------------------------------------------------
def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; use one of {', '.join(MEASURES)}")


def _check_time(value: float, what: str) -> float:
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
    return _check_time(value, f"{measure}-to-target of trial {trial.spec.key()[:8]}")


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
    values = sorted(_check_time(t, "a study time") for t in times)
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


# ----------------------------------------------------------------------------------
# Table -> ratios -> profiles -> score
# ----------------------------------------------------------------------------------
def _matrix(
    table: Table, workloads: Sequence[str] | None, missing: Missing
) -> tuple[list[str], list[str], np.ndarray]:
    """(algorithms, workloads, times[a, w]) with the missing-entry rule applied."""
    if missing not in ("raise", "inf"):
        raise ValueError(f"missing must be 'raise' or 'inf', got {missing!r}")
    algorithms = list(table)
    if not algorithms:
        raise ValueError("the time table has no algorithms")
    if workloads is None:
        keys = sorted({w for row in table.values() for w in row})
    else:
        keys = list(dict.fromkeys(workloads))
    if not keys:
        raise ValueError("the time table has no workloads")
    absent = [f"{a}@{w}" for a in algorithms for w in keys if w not in table[a]]
    if absent and missing == "raise":
        raise ValueError(
            f"no time for {', '.join(absent)}; run them, select workloads=..., "
            "or pass missing='inf' to score them as misses"
        )
    times = np.array(
        [
            [_check_time(table[a].get(w, math.inf), f"time of {a} on {w}") for w in keys]
            for a in algorithms
        ],
        dtype=float,
    )
    if np.any(times == 0.0):
        raise ValueError("times must be > 0 to form ratios; a zero time means a broken trial")
    return algorithms, keys, times


def _ratios(times: np.ndarray) -> np.ndarray:
    """r[a, w] = t[a, w] / min_b t[b, w]; inf on a miss, inf everywhere on an all-miss."""
    best = times.min(axis=0)
    ratios = np.full_like(times, math.inf)
    finite = np.isfinite(times)  # implies best is finite in that column
    ratios[finite] = (times / np.where(np.isfinite(best), best, 1.0))[finite]
    ratios[times == best] = 1.0  # ties: exactly 1 for every tied fastest (finite) entry
    ratios[:, ~np.isfinite(best)] = math.inf
    return ratios


def performance_ratios(
    table: Table, *, workloads: Sequence[str] | None = None, missing: Missing = "raise"
) -> dict[str, dict[str, float]]:
    """``r(a, w) = t(a, w) / min_b t(b, w)`` for every algorithm and compared workload.

    AlgoPerf "Performance profiles" (Dolan & Moré 2002). ``inf`` where ``a`` missed the
    target, and for every algorithm on a workload where all missed; tied fastest
    algorithms get exactly 1. Only workloads present for all algorithms are compared:
    with ``missing="raise"`` (default) a ``ValueError`` names the absent
    ``algorithm@workload`` entries; ``missing="inf"`` counts them as misses. ``workloads``
    restricts (and orders) the compared workloads, e.g. the base workloads only.
    """
    algorithms, keys, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    return {
        a: {w: float(ratios[i, j]) for j, w in enumerate(keys)} for i, a in enumerate(algorithms)
    }


def performance_profile(
    table: Table,
    taus: float | Sequence[float] | np.ndarray,
    *,
    workloads: Sequence[str] | None = None,
    missing: Missing = "raise",
) -> dict[str, np.ndarray]:
    """``rho_a(tau) = #{w : r(a, w) <= tau} / n_w`` at each ``tau``.

    AlgoPerf "Performance profiles": the fraction of workloads on which algorithm ``a`` is
    within a factor ``tau`` of the fastest. ``n_w`` counts every compared workload, all-miss
    ones included. See :func:`performance_ratios` for ``workloads`` and ``missing``.

    >>> prof = performance_profile({"a": {"w1": 1.0, "w2": 4.0}, "b": {"w1": 2.0, "w2": 2.0}}, [1, 2])
    >>> prof["a"].tolist(), prof["b"].tolist()
    ([0.5, 1.0], [0.5, 1.0])
    """
    algorithms, _, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    tau = np.atleast_1d(np.asarray(taus, dtype=float))
    n_w = ratios.shape[1]
    counts = (ratios[:, :, None] <= tau[None, None, :]).sum(axis=1)
    return {a: counts[i] / n_w for i, a in enumerate(algorithms)}


def benchmark_score(
    table: Table,
    r_max: float = 4.0,
    *,
    workloads: Sequence[str] | None = None,
    missing: Missing = "raise",
) -> dict[str, float]:
    """Normalised area under the profile, ``B_a = 1/(r_max - 1) * integral_1^r_max rho_a``.

    AlgoPerf "Integrating performance profiles for the benchmark score" (r_max = 4 there).
    The profile is a step function of ``tau`` that jumps by ``1/n_w`` at each ratio, so the
    integral is exact without sampling: a ratio ``r <= r_max`` contributes
    ``(r_max - r) / (r_max - 1) / n_w`` and a larger (or infinite) one nothing. The score
    lies in ``[0, 1]`` and is 1 exactly when the algorithm is (tied) fastest on every
    compared workload.

    >>> benchmark_score({"a": {"w": 1.0}, "b": {"w": 2.5}})
    {'a': 1.0, 'b': 0.5}
    """
    r_max = float(r_max)
    if not (r_max > 1.0 and math.isfinite(r_max)):
        raise ValueError(f"r_max must be a finite number > 1, got {r_max!r}")
    algorithms, _, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    n_w = ratios.shape[1]
    area = np.where(ratios <= r_max, r_max - ratios, 0.0).sum(axis=1)
    scores = np.clip(area / ((r_max - 1.0) * n_w), 0.0, 1.0)
    return {a: float(scores[i]) for i, a in enumerate(algorithms)}


def ranking(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(algorithm, score)`` best first; equal scores in name order.

    >>> ranking({"b": 0.5, "a": 0.5, "c": 0.9})
    [('c', 0.9), ('a', 0.5), ('b', 0.5)]
    """
    return sorted(((a, float(s)) for a, s in scores.items()), key=lambda item: (-item[1], item[0]))


# ----------------------------------------------------------------------------------
# Variants and reference comparisons
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VariantAgreement:
    """How a workload variant ranks the algorithms compared with its base workload.

    ``kendall_tau``/``p_value`` come from ``scipy.stats.kendalltau`` (tau-b, ties allowed)
    on the times of ``algorithms`` (misses rank last, tied with each other); they are
    ``nan`` when fewer than two algorithms are compared or either ranking is all ties.
    ``base_winners``/``variant_winners`` are the (tied) fastest algorithms that reached the
    target, empty when none did; ``same_winner`` is whether those sets are equal and
    non-empty.
    """

    base: str
    variant: str
    algorithms: tuple[str, ...]
    kendall_tau: float
    p_value: float
    base_winners: tuple[str, ...]
    variant_winners: tuple[str, ...]
    same_winner: bool


def _winners(times: Mapping[str, float]) -> tuple[str, ...]:
    finite = {a: t for a, t in times.items() if math.isfinite(t)}
    if not finite:
        return ()
    best = min(finite.values())
    return tuple(sorted(a for a, t in finite.items() if t == best))


def variant_agreement(table: Table) -> dict[str, VariantAgreement]:
    """For each ``name:variant`` key whose base ``name`` is also in the table, whether the
    variant ranks the algorithms as the base workload does.

    AlgoPerf "Workload variants": a variant is a small change to a workload (activation,
    normalisation, width); algorithms that are robust keep their rank across variants,
    while a benchmark without variants can reward brittle tuning to one configuration.
    Only algorithms with an entry on both the base and the variant are compared; variants
    without a base entry in the table are skipped. Returns ``{variant_key: agreement}``
    in key order.
    """
    keys = sorted({w for row in table.values() for w in row})
    out: dict[str, VariantAgreement] = {}
    for key in keys:
        base, sep, variant = key.partition(":")
        if not sep or base not in keys:
            continue
        algorithms = tuple(sorted(a for a, row in table.items() if key in row and base in row))
        t_base = {a: _check_time(table[a][base], f"time of {a} on {base}") for a in algorithms}
        t_var = {a: _check_time(table[a][key], f"time of {a} on {key}") for a in algorithms}
        x = np.array([t_base[a] for a in algorithms], dtype=float)
        y = np.array([t_var[a] for a in algorithms], dtype=float)
        tau = p = math.nan
        if len(algorithms) >= 2 and len(set(x.tolist())) > 1 and len(set(y.tolist())) > 1:
            # ranks, so that misses (inf) compare as slowest and tie with each other
            res = stats.kendalltau(stats.rankdata(x), stats.rankdata(y))
            tau, p = float(res.statistic), float(res.pvalue)
        wb, wv = _winners(t_base), _winners(t_var)
        out[key] = VariantAgreement(
            base=base,
            variant=variant,
            algorithms=algorithms,
            kendall_tau=tau,
            p_value=p,
            base_winners=wb,
            variant_winners=wv,
            same_winner=bool(wb) and wb == wv,
        )
    return out


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with ``x/inf = 0``, ``inf/x = inf`` and ``inf/inf = nan``."""
    if math.isinf(numerator) and math.isinf(denominator):
        return math.nan
    if math.isinf(denominator):
        return 0.0
    if denominator == 0.0:
        return math.inf if numerator > 0 else math.nan
    return numerator / denominator


def _against_reference(
    table: Table, reference: str, *, invert: bool
) -> dict[str, dict[str, float]]:
    if reference not in table:
        known = ", ".join(sorted(table))
        raise ValueError(f"reference algorithm {reference!r} is not in the table; known: {known}")
    ref = table[reference]
    out: dict[str, dict[str, float]] = {}
    for algorithm, row in table.items():
        out[algorithm] = {}
        for w, t_ref in ref.items():
            if w not in row:
                continue
            t = _check_time(row[w], f"time of {algorithm} on {w}")
            t_ref = _check_time(t_ref, f"time of {reference} on {w}")
            out[algorithm][w] = _ratio(t_ref, t) if invert else _ratio(t, t_ref)
    return out


def time_ratio_table(table: Table, reference: str) -> dict[str, dict[str, float]]:
    """``t(a, w) / t(reference, w)`` per algorithm and workload (< 1: faster than it).

    Workloads are those of ``reference``; an algorithm without an entry for one is left
    out there. A miss against a reference hit is ``inf``, a hit against a reference miss is
    ``0``, two misses are ``nan`` (no comparison).

    >>> time_ratio_table({"ref": {"w": 4.0}, "new": {"w": 3.0}}, "ref")["new"]
    {'w': 0.75}
    """
    return _against_reference(table, reference, invert=False)


def speedup_table(table: Table, reference: str) -> dict[str, dict[str, float]]:
    """Speedup over a reference, ``t(reference, w) / t(a, w)`` (> 1: faster than it).

    The inverse of :func:`time_ratio_table`, same conventions: a miss against a reference
    hit is a speedup of ``0``, a hit against a reference miss is ``inf``, two misses
    ``nan``.

    >>> speedup_table({"ref": {"w": 4.0}, "new": {"w": 2.0}}, "ref")["new"]
    {'w': 2.0}
    """
    return _against_reference(table, reference, invert=True)


__all__ = [
    "COUNTED_STATUSES",
    "MEASURES",
    "Measure",
    "Missing",
    "Table",
    "VariantAgreement",
    "benchmark_score",
    "median_time",
    "performance_profile",
    "performance_ratios",
    "ranking",
    "speedup_table",
    "study_time",
    "time_ratio_table",
    "time_table",
    "trial_time",
    "variant_agreement",
    "workload_key",
    "workload_time",
]
