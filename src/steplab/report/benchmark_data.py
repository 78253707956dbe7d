"""What the benchmark report shows, read from a store: the scores of a benchmark study
(``bench.score``; for a study whose spec is no benchmark spec, the same scores computed from its
trials), each workload's target, the trial to show per algorithm and workload, the tradeoff
curves, and the views of a score table that the terminal, HTML and figures share.

Scoring follows AlgoPerf (Dahl et al. 2023, arXiv:2306.07179, "Scoring"); the studies code is
imported inside the functions that need it, so ``import steplab.report`` stays free of torch and
the training stack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from steplab.analysis import profiles, scoring
from steplab.analysis.intervals import DEFAULT_LEVEL, Interval
from steplab.errors import SpecError
from steplab.results import TrialResult

if TYPE_CHECKING:
    from steplab.store import Store
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Curve
    from steplab.workloads.base import Target

__all__ = [
    "base_workloads",
    "benchmark_scores",
    "best_trial",
    "cell_interval_fields",
    "fastest_time",
    "final_value",
    "interval_of",
    "latest_benchmark",
    "n_studies",
    "no_signal_metric",
    "pair_rows",
    "ranking_of",
    "reached_in_time",
    "recorded_targets",
    "ratio_table",
    "score_interval_fields",
    "scored_workloads",
    "targets_of",
    "targets_reached",
    "tie_marks",
    "time_of",
    "tradeoff_curves",
    "verdict_data",
    "verdict_rule",
    "workload_keys",
]

def n_studies(scores: Scores) -> int:
    """How many independent studies (S) the scored trials come from."""
    return max(1, len({t.spec.study_id for t in scores.trials}))


def base_workloads(table: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The workloads the profile and score use (as ``bench.score``: base ones if any)."""
    keys = {w for row in table.values() for w in row}
    return sorted({w for w in keys if ":" not in w} or keys)


def workload_keys(scores: Scores) -> list[str]:
    """Every workload key (``name`` or ``name:variant``) in the scores, sorted."""
    return sorted({w for row in scores.time_s.values() for w in row})


def ratio_table(table: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Each time over the fastest on its workload (``profiles.performance_ratios``, absent
    entries as misses); ``{}`` for an empty table."""
    if not table:
        return {}
    return profiles.performance_ratios(table, missing="inf")


def time_of(table: Mapping[str, Mapping[str, float]], a: str, w: str) -> float:
    """The time of algorithm ``a`` on workload ``w``; ``inf`` when absent."""
    return float(table.get(a, {}).get(w, math.inf))


def fastest_time(table: Mapping[str, Mapping[str, float]], w: str) -> float:
    """The fastest time of any algorithm on workload ``w``; ``inf`` when none reached it."""
    return min((time_of(table, a, w) for a in table), default=math.inf)


def targets_reached(scores: Scores, a: str) -> int:
    """On how many workloads algorithm ``a`` reached the target."""
    return sum(math.isfinite(v) for v in scores.time_s.get(a, {}).values())


def ranking_of(scores: Scores) -> list[tuple[str, float]]:
    """``(algorithm, score)`` by the time score, best first (``profiles.ranking``; the
    verdict's order, NaN scores last, when there is one)."""
    if scores.verdict is not None:
        return [(a, float(scores.score_time.get(a, math.nan))) for a in scores.verdict.order]
    return profiles.ranking(scores.score_time)


def scored_workloads(scores: Scores) -> list[str]:
    """The workloads the profile and score use: the base ones (as ``bench.score``) without
    the workloads that gave no signal."""
    if scores.bootstrap is not None:
        return list(scores.bootstrap.scored)
    return [w for w in base_workloads(scores.time_s) if w not in scores.no_signal]


def interval_of(table: Mapping[str, Mapping[str, Interval]], a: str, w: str) -> Interval | None:
    """The interval of algorithm ``a`` on workload ``w`` in a ``Scores.*_ci`` table, if any."""
    return table.get(a, {}).get(w)


def tie_marks(scores: Scores) -> dict[str, str]:
    """Per algorithm, its bracket in the ranking: ``┐``/``│``/``┘`` down a tie group of two
    or more, ``""`` for an algorithm alone in its group (or without a verdict)."""
    marks: dict[str, str] = {}
    for group in scores.verdict.groups if scores.verdict is not None else ():
        for i, a in enumerate(group):
            marks[a] = "" if len(group) == 1 else "┐" if i == 0 else "┘" if i == len(group) - 1 else "│"
    return marks


def verdict_rule(scores: Scores) -> str:
    """One sentence on how ties and wins are decided, with the level and the pair count."""
    v = scores.verdict
    if v is None:
        return "no statistics: the scores were computed without intervals"
    b = scores.bootstrap.n_resamples if scores.bootstrap is not None else 0
    return (f"{100 * v.level:g}% confidence: a pair is separated (a win) when the bootstrap test on the difference of "
            f"their scores ({b:,} resamples of the studies, paired) rejects a tie after Holm's correction over "
            f"{v.n_pairs} pair{'s' if v.n_pairs != 1 else ''}; algorithms not separated from their neighbour share a "
            "tie group")


def _ends(prefix: str, iv: Interval | None) -> dict[str, float]:
    return {f"{prefix}_low": iv.low if iv is not None else math.nan,
            f"{prefix}_high": iv.high if iv is not None else math.nan}


def cell_interval_fields(scores: Scores, a: str, w: str) -> dict[str, float]:
    """The interval ends of algorithm ``a`` on workload ``w`` for programs: ``steps_low``,
    ``steps_high``, ``ratio_steps_*``, ``time_s_*``, ``ratio_time_*`` (``inf`` = some
    resamples missed the target)."""
    return {**_ends("steps", interval_of(scores.steps_ci, a, w)),
            **_ends("ratio_steps", interval_of(scores.ratio_steps_ci, a, w)),
            **_ends("time_s", interval_of(scores.time_ci, a, w)),
            **_ends("ratio_time", interval_of(scores.ratio_ci, a, w))}


def score_interval_fields(scores: Scores, a: str) -> dict[str, Any]:
    """Algorithm ``a``'s score intervals (``score_time_low``/``_high``, ``score_steps_*``),
    its tie ``group`` (1 = best) and the algorithms it ``wins_over`` (separated and ahead)."""
    v = scores.verdict
    return {**_ends("score_time", scores.score_ci.get(a)), **_ends("score_steps", scores.score_steps_ci.get(a)),
            "group": v.group_of(a) + 1 if v is not None and a in v.order else None,
            "wins_over": v.wins(a) if v is not None else []}


def verdict_data(scores: Scores) -> dict[str, Any]:
    """The verdict for programs: ``level``, ``groups`` (best first), ``separated`` pairs
    ``[winner, loser]``, the Holm-adjusted ``p_values`` of every pair, the ``test`` and
    ``no_signal`` (workload -> algorithm -> best value of the target metric)."""
    v = scores.verdict
    if v is None:
        return {"level": scores.level, "groups": [], "separated": [], "p_values": [], "test": verdict_rule(scores),
                "no_signal": dict(scores.no_signal)}
    return {"level": v.level, "groups": [list(g) for g in v.groups],
            "separated": [[a, b] for a, b in v.p_values if (a, b) in v.separated],
            "p_values": [{"algorithm": a, "versus": b, "p_holm": p, "separated": (a, b) in v.separated}
                         for (a, b), p in v.p_values.items()],
            "test": verdict_rule(scores), "no_signal": dict(scores.no_signal)}


def pair_rows(scores: Scores) -> list[dict[str, Any]]:
    """``P(algorithm reaches the target faster than versus)`` with its interval, one row per
    ordered pair in ranking order (``verdicts.p_improvement``)."""
    if scores.verdict is None:
        return []
    order = scores.verdict.order
    return [{"algorithm": a, "versus": b, "p_faster": iv.point, "low": iv.low, "high": iv.high, "level": iv.level}
            for a in order for b in order if a != b for iv in [scores.verdict.p_improvement[a][b]]]


def no_signal_metric(scores: Scores, w: str) -> str:
    """The target metric of workload ``w`` as its trials recorded it (the override in
    ``settings["target"]``, else the ``best/METRIC`` final metric); ``"target metric"`` if none."""
    for t in scores.trials:
        if scoring.workload_key(t.spec) != w:
            continue
        if t.spec.settings.get("target"):
            return str(t.spec.settings["target"][0])
        best = [k[len("best/"):] for k in t.final_metrics if k.startswith("best/")]
        if best:
            return best[0]
    return "target metric"


def recorded_targets(trials: Sequence[TrialResult]) -> dict[str, Target]:
    """The target each workload key's trials ran against where they recorded it
    (``settings["target"]``: a benchmark's target when it differs from the workload's own),
    read without building a workload (that imports torch)."""
    from steplab.workloads.target import Target

    out: dict[str, Target] = {}
    for t in trials:
        recorded = t.spec.settings.get("target")
        key = scoring.workload_key(t.spec)
        if recorded and key not in out:
            metric, value, mode = recorded
            out[key] = Target(str(metric), float(value), mode)
    return out


def targets_of(study: Mapping[str, Any], trials: Sequence[TrialResult]) -> dict[str, Target | None]:
    """The target of every workload key of ``trials``: the one their trials recorded
    (:func:`recorded_targets`, which the study's spec gave them), else from the study's
    benchmark spec (a suite may override targets), else the workload's own, else ``None``."""
    from steplab import workloads
    from steplab.studies import bench

    recorded = recorded_targets(trials)
    if all(scoring.workload_key(t.spec) in recorded for t in trials):
        return dict(recorded)
    out: dict[str, Target | None] = {}
    try:
        for entry in bench.mapping_to_spec(study["spec"]).entries():
            out[entry.key] = entry.build().target
    except Exception:  # not a benchmark spec (e.g. a recorded run): fall back per workload
        out = {}
    for t in trials:
        key = scoring.workload_key(t.spec)
        if key in out:
            continue
        try:
            out[key] = workloads.get(t.spec.workload, t.spec.variant).target
        except Exception:
            out[key] = None
    return out


def final_value(t: TrialResult, metric: str | None) -> float:
    """The final value of ``metric`` of trial ``t`` (else its ``best/`` value); NaN when the
    trial recorded neither."""
    if metric is None:
        return math.nan
    v = t.final_metrics.get(metric, t.final_metrics.get(f"best/{metric}", math.nan))
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def reached_in_time(t: TrialResult) -> bool:
    """Whether trial ``t`` counts as reaching its target (``scoring.trial_time(t)`` finite),
    without the check that names a bad trial by its key (a JSON dump per call; the scores
    already checked every trial)."""
    return t.status in scoring.COUNTED_STATUSES and math.isfinite(t.time_to_target_s)


def best_trial(trials: Sequence[TrialResult], target: Target | None) -> TrialResult | None:
    """The trial to show for one algorithm on one workload: the fastest to reach the target
    (training seconds), else the one with the best final target metric, else the first."""
    reached = [t for t in trials if reached_in_time(t)]
    if reached:
        return min(reached, key=lambda t: (t.time_to_target_s, t.id or 0))
    if target is not None:
        scored = [t for t in trials if math.isfinite(final_value(t, target.metric))]
        if scored:
            sign = -1.0 if target.mode == "max" else 1.0
            return min(scored, key=lambda t: (sign * final_value(t, target.metric), t.id or 0))
    return trials[0] if trials else None


def _fallback_scores(store: Store, study_id: int, level: float) -> Scores:
    """Scores of a study whose spec is not a benchmark spec: each study id one study."""
    from steplab.studies.bench.scores import score_trials

    trials = [t for t in store.list_trials(study_id=study_id) if t.status != "running"]
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    return score_trials(trials, level=level)


def benchmark_scores(store: Store, study_id: int, *, level: float = DEFAULT_LEVEL) -> Scores:
    """The scores of study ``study_id``: ``bench.score`` for a benchmark spec, else the same
    tables computed from its finished trials (each study id one study); intervals and tests at
    confidence ``level``."""
    from steplab.studies import bench

    spec = store.get_study(study_id)["spec"]
    if isinstance(spec, Mapping) and "trials" in spec:
        return bench.score(store, study_id, level=level)
    return _fallback_scores(store, study_id, level)


def latest_benchmark(store: Store) -> int | None:
    """The id of the newest study of kind ``"benchmark"`` in ``store``, ``None`` if none."""
    ids = [int(s["id"]) for s in store.list_studies() if s["kind"] == "benchmark"]
    return max(ids) if ids else None


def tradeoff_curves(store: Store, study_id: int) -> list[Curve]:
    """The tradeoff curves of a benchmark study (``tradeoff.study_curves``) on the metric of
    each workload's target as the study's spec sets it."""
    from steplab.studies import tradeoff

    trials = [t for t in store.list_trials(study_id=study_id) if tradeoff.is_tradeoff(t.spec.algorithm)]
    return tradeoff.study_curves(store, study_id, targets_of(store.get_study(study_id), trials))
