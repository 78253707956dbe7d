"""A benchmark's scores: time-to-target tables in seconds and steps, performance profiles
and benchmark scores (AlgoPerf, Dahl et al. 2023, arXiv 2306.07179, §4.3;
``steplab.analysis.scoring``), the refined algorithms' two views, and the noise floor."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from steplab.analysis import scoring
from steplab.analysis.comparisons import variant_agreement
from steplab.analysis.profiles import benchmark_score, performance_profile
from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies import tradeoff
from steplab.training.jobs import FIRST_PASS

#: suffix of the view of a refined algorithm that counts its second pass only
SECOND_PASS = " 2nd pass"


def scored_trials(store: Store, study_id: int) -> list[TrialResult]:
    """The study's finished trials with ``spec.study_id`` set to their *tuning study* (the
    repetition ``s`` of the spec), which is what ``scoring.time_table`` groups by."""
    study = store.get_study(study_id)
    per_study = study["spec"]["trials"] if study["spec"].get("ruleset", "external") == "external" else 1
    out = []
    for t in store.list_trials(study_id=study_id):
        if t.status == "running" or t.spec.algorithm.endswith(FIRST_PASS) or tradeoff.is_tradeoff(t.spec.algorithm):
            continue
        spec = dataclasses.replace(t.spec, study_id=t.spec.index // per_study)
        t = dataclasses.replace(t, spec=spec)
        if "first_pass/train_time_s" in t.final_metrics:
            out.extend(refined_views(t))
        else:
            out.append(t)
    return out


def refined_views(trial: TrialResult) -> list[TrialResult]:
    """A refined algorithm's second pass seen twice: under its own name with the first
    pass's training time and steps added (the seed paper's protocol costs both passes), and
    as ``NAME 2nd pass`` with its own time only."""
    m = trial.final_metrics
    total = dataclasses.replace(
        trial,
        time_to_target_s=trial.time_to_target_s + m["first_pass/train_time_s"],
        steps_to_target=trial.steps_to_target + m["first_pass/steps"],
        train_time_s=trial.train_time_s + m["first_pass/train_time_s"],
    )
    second = dataclasses.replace(trial, spec=dataclasses.replace(trial.spec, algorithm=trial.spec.algorithm + SECOND_PASS))
    return [total, second]


@dataclasses.dataclass
class Scores:
    """Everything the report shows about one benchmark."""

    time_s: dict[str, dict[str, float]]
    steps: dict[str, dict[str, float]]
    score_time: dict[str, float]
    score_steps: dict[str, float]
    profiles_tau: list[float]
    profiles: dict[str, list[float]]
    variants: dict[str, Any]
    noise: dict[str, dict[str, float]]
    trials: list[TrialResult]


def score(store: Store, study_id: int, *, r_max: float = 4.0) -> Scores:
    """Time-to-target tables (seconds and steps), profiles, benchmark scores and the
    noise floor (the spread of per-study times) for a benchmark study."""
    trials = scored_trials(store, study_id)
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    t_time = scoring.time_table(trials, measure="time_s")
    t_steps = scoring.time_table(trials, measure="steps")
    base = sorted({w for row in t_time.values() for w in row if ":" not in w} or
                  {w for row in t_time.values() for w in row})
    taus = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
    profiles = performance_profile(t_time, taus, workloads=base, missing="inf")
    return Scores(
        time_s=t_time,
        steps=t_steps,
        score_time=benchmark_score(t_time, r_max, workloads=base, missing="inf"),
        score_steps=benchmark_score(t_steps, r_max, workloads=base, missing="inf"),
        profiles_tau=taus,
        profiles={a: [float(v) for v in p] for a, p in profiles.items()},
        variants={k: dataclasses.asdict(v) for k, v in variant_agreement(t_steps).items()},
        noise=noise_floor(trials),
        trials=trials,
    )


def noise_floor(trials: Sequence[TrialResult]) -> dict[str, dict[str, float]]:
    """Per algorithm and workload, the relative spread (max/min - 1) of the per-study
    steps-to-target: a ratio between algorithms smaller than this is within the noise."""
    by: dict[tuple[str, str], dict[int, list[TrialResult]]] = {}
    for t in trials:
        wk = scoring.workload_key(t.spec)
        by.setdefault((t.spec.algorithm, wk), {}).setdefault(t.spec.study_id or 0, []).append(t)
    out: dict[str, dict[str, float]] = {}
    for (a, w), studies in by.items():
        times = [scoring.study_time(ts, measure="steps") for ts in studies.values()]
        finite = [x for x in times if x != float("inf")]
        spread = (max(finite) / min(finite) - 1.0) if len(finite) >= 2 else float("nan")
        out.setdefault(a, {})[w] = spread
    return out
