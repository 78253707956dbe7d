"""What the benchmark report shows, read from a store: the scores of a benchmark study
(``bench.score``; for a study whose spec is no benchmark spec, the same scores computed from its
trials), each workload's target, the trial to show per algorithm and workload, the tradeoff
curves, and the views of a score table that the terminal, HTML and figures share.

Scoring follows AlgoPerf (Dahl et al. 2023, arXiv:2306.07179, "Scoring"); the studies code is
imported inside the functions that need it, so ``import steplab.report`` stays free of torch and
the training stack.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from steplab.analysis import comparisons, profiles, scoring
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
    "fastest_time",
    "final_value",
    "latest_benchmark",
    "n_studies",
    "ranking_of",
    "ratio_table",
    "targets_of",
    "targets_reached",
    "time_of",
    "tradeoff_curves",
    "workload_keys",
]

#: the tau at which the fallback scores tabulate the profile
PROFILE_TAUS = (1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


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
    """``(algorithm, score)`` by the time score, best first (``profiles.ranking``)."""
    return profiles.ranking(scores.score_time)


def targets_of(study: Mapping[str, Any], trials: Sequence[TrialResult]) -> dict[str, Target | None]:
    """The target of every workload key of ``trials``: from the study's benchmark spec
    (a suite may override targets), else the workload's own, else ``None``."""
    from steplab import workloads
    from steplab.studies import bench

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


def best_trial(trials: Sequence[TrialResult], target: Target | None) -> TrialResult | None:
    """The trial to show for one algorithm on one workload: the fastest to reach the target
    (training seconds), else the one with the best final target metric, else the first."""
    reached = [t for t in trials if math.isfinite(scoring.trial_time(t, "time_s"))]
    if reached:
        return min(reached, key=lambda t: (t.time_to_target_s, t.id or 0))
    if target is not None:
        scored = [t for t in trials if math.isfinite(final_value(t, target.metric))]
        if scored:
            sign = -1.0 if target.mode == "max" else 1.0
            return min(scored, key=lambda t: (sign * final_value(t, target.metric), t.id or 0))
    return trials[0] if trials else None


def _fallback_scores(store: Store, study_id: int) -> Scores:
    """Scores of a study whose spec is not a benchmark spec: each study id one study."""
    from steplab.studies.bench import Scores, noise_floor

    trials = [t for t in store.list_trials(study_id=study_id) if t.status != "running"]
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    t_time = scoring.time_table(trials, measure="time_s")
    t_steps = scoring.time_table(trials, measure="steps")
    base = base_workloads(t_time)
    taus = list(PROFILE_TAUS)
    prof = profiles.performance_profile(t_time, taus, workloads=base, missing="inf")
    return Scores(
        time_s=t_time,
        steps=t_steps,
        score_time=profiles.benchmark_score(t_time, workloads=base, missing="inf"),
        score_steps=profiles.benchmark_score(t_steps, workloads=base, missing="inf"),
        profiles_tau=taus,
        profiles={a: [float(v) for v in p] for a, p in prof.items()},
        variants={k: dataclasses.asdict(v) for k, v in comparisons.variant_agreement(t_steps).items()},
        noise=noise_floor(trials),
        trials=trials,
    )


def benchmark_scores(store: Store, study_id: int) -> Scores:
    """The scores of study ``study_id``: ``bench.score`` for a benchmark spec, else the same
    tables computed from its finished trials (each study id one study)."""
    from steplab.studies import bench

    spec = store.get_study(study_id)["spec"]
    if isinstance(spec, Mapping) and "trials" in spec:
        return bench.score(store, study_id)
    return _fallback_scores(store, study_id)


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
