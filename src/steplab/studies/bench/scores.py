"""A benchmark's scores: time-to-target tables in seconds and steps, performance profiles
and benchmark scores (AlgoPerf, Dahl et al. 2023, arXiv 2306.07179, §4.3;
``steplab.analysis.scoring``), the refined algorithms' two views, and the statistics that say
which differences are real: bootstrap intervals (``steplab.analysis.intervals``), tie groups,
wins and the probability of improvement (``steplab.analysis.verdicts``; Agarwal et al. 2021).

A workload on which no algorithm reached the target in any study gives no signal: it is left
out of the profile and the score (instead of scoring 0 for everyone) and listed in
``Scores.no_signal`` with each algorithm's best value of the target metric."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from steplab.analysis import scoring
from steplab.analysis.comparisons import variant_agreement
from steplab.analysis.intervals import (
    DEFAULT_LEVEL,
    Bootstrap,
    Interval,
    bootstrap_benchmark,
    check_level,
    resamples_for,
    study_trial_times,
)
from steplab.analysis.profiles import benchmark_score, performance_profile
from steplab.analysis.verdicts import Verdict, decide
from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies import tradeoff
from steplab.studies.bench.costs import costed_trials
from steplab.training.jobs import FIRST_PASS

#: suffix of the view of a refined algorithm that counts its second pass only
SECOND_PASS = " 2nd pass"
#: the measure of the time table that is ranked (``scoring.MEASURES``): steps to target x the
#: cell's per-step cost (``analysis.timing.trace_step_costs``), so that the machine's
#: load while a trial ran does not decide the ranking (issue 21); raw wall time stays in
#: ``TrialResult.time_to_target_s`` and the timing table
TIME_MEASURE = "cost_s"
#: the tau at which the profile (and its bands) is tabulated
PROFILE_TAUS = (1.0, 1.25, 1.5, 2.0, 3.0, 4.0)


def scored_trials(store: Store, study_id: int, stored: Sequence[TrialResult] | None = None) -> list[TrialResult]:
    """The study's finished trials with ``spec.study_id`` set to their *tuning study* (the
    repetition ``s`` of the spec), which is what ``scoring.time_table`` groups by; from
    ``stored`` (the study's ``list_trials``) when the caller read them already."""
    study = store.get_study(study_id)
    per_study = study["spec"]["trials"] if study["spec"].get("ruleset", "external") == "external" else 1
    out = []
    for t in store.list_trials(study_id=study_id) if stored is None else stored:
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
    """Everything the report shows about one benchmark.

    Point values: ``time_s``/``steps`` (``{algorithm: {workload: time}}``, ``inf`` = missed),
    ``score_time``/``score_steps`` and ``profiles`` (rho at ``profiles_tau``). Intervals at
    ``level`` (``analysis.intervals``): ``score_ci``/``score_steps_ci`` per algorithm,
    ``time_ci``/``steps_ci`` and ``ratio_ci``/``ratio_steps_ci`` (ratio to the fastest) per
    algorithm and workload, ``profile_bands[a] = (low, high)`` per tau. ``verdict``: tie groups,
    wins and P(improvement) on the time score (``analysis.verdicts``). ``no_signal``:
    ``{workload: {algorithm: best value of the target metric}}`` for workloads nobody reached,
    left out of the profile and score. ``bootstrap``: the resamples behind the intervals.
    """

    time_s: dict[str, dict[str, float]]
    steps: dict[str, dict[str, float]]
    score_time: dict[str, float]
    score_steps: dict[str, float]
    profiles_tau: list[float]
    profiles: dict[str, list[float]]
    variants: dict[str, Any]
    trials: list[TrialResult]
    level: float = DEFAULT_LEVEL
    score_ci: dict[str, Interval] = dataclasses.field(default_factory=dict)
    score_steps_ci: dict[str, Interval] = dataclasses.field(default_factory=dict)
    time_ci: dict[str, dict[str, Interval]] = dataclasses.field(default_factory=dict)
    steps_ci: dict[str, dict[str, Interval]] = dataclasses.field(default_factory=dict)
    ratio_ci: dict[str, dict[str, Interval]] = dataclasses.field(default_factory=dict)
    ratio_steps_ci: dict[str, dict[str, Interval]] = dataclasses.field(default_factory=dict)
    profile_bands: dict[str, tuple[list[float], list[float]]] = dataclasses.field(default_factory=dict)
    verdict: Verdict | None = None
    no_signal: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    bootstrap: Bootstrap | None = dataclasses.field(default=None, repr=False, compare=False)
    #: every trial of the study as stored (running ones too), when :func:`score` read them:
    #: the report lists them without reading the study again
    stored: list[TrialResult] | None = dataclasses.field(default=None, repr=False, compare=False)


def score(store: Store, study_id: int, *, r_max: float = 4.0, level: float = DEFAULT_LEVEL,
          n_resamples: int | None = None, seed: int = 0) -> Scores:
    """Time-to-target tables (seconds and steps), profiles, benchmark scores, their bootstrap
    intervals and the verdict (tie groups, wins, P(improvement)) for a benchmark study.

    ``level`` (default 0.9) is the confidence of every interval and the family-wise level
    of the pairwise tests (Holm across all pairs: at most a 10% chance that any reported win
    is a tie); 0.9 rather than 0.95 because a few studies per cell rarely separate anything at
    0.95 after the correction. ``n_resamples`` defaults to ``intervals.resamples_for``;
    ``seed`` seeds the bootstrap (same trials and seed: bit-identical intervals)."""
    stored = store.list_trials(study_id=study_id)
    trials = scored_trials(store, study_id, stored)
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    trials = costed_trials(store, trials)
    scores = score_trials(trials, r_max=r_max, level=level, n_resamples=n_resamples, seed=seed)
    scores.stored = stored
    return scores


def score_trials(trials: Sequence[TrialResult], *, r_max: float = 4.0, level: float = DEFAULT_LEVEL,
                 n_resamples: int | None = None, seed: int = 0) -> Scores:
    """:func:`score` of a list of trials (each distinct ``spec.study_id`` one study). Trials
    without a measured step cost (``costs.costed_trials``) get one pooled from their cell's
    ``train_time_s / steps`` (``scoring.ensure_step_costs``)."""
    trials = scoring.ensure_step_costs(trials)
    try:
        level = check_level(level)
    except ValueError as e:
        raise SpecError(f"{e}; pass --level 0.9 for 90% intervals") from None
    t_time = scoring.time_table(trials, measure=TIME_MEASURE)  # type: ignore[arg-type]
    t_steps = scoring.time_table(trials, measure="steps")
    keys = sorted({w for row in t_time.values() for w in row})
    nested = {m: study_trial_times(trials, m) for m in (TIME_MEASURE, "steps")}  # type: ignore[arg-type]
    reached = {w for row in nested[TIME_MEASURE].values() for w, studies in row.items()
               if any(math.isfinite(x) for study in studies for x in study)}
    no_signal = {w: best_metrics(trials, w) for w in keys if w not in reached}  # no trial of any study reached it
    base = [w for w in sorted({w for w in keys if ":" not in w} or set(keys)) if w not in no_signal]
    algos = sorted(t_time)
    taus = list(PROFILE_TAUS)
    n = n_resamples if n_resamples is not None else resamples_for(len(algos), level)
    boots = {m: bootstrap_benchmark(nested[m], algorithms=algos, workloads=keys, scored=base, r_max=r_max,
                                    n_resamples=n, seed=seed) for m in (TIME_MEASURE, "steps")}
    if base:
        score_time = benchmark_score(t_time, r_max, workloads=base, missing="inf")
        score_steps = benchmark_score(t_steps, r_max, workloads=base, missing="inf")
        profiles = {a: [float(v) for v in p]
                    for a, p in performance_profile(t_time, taus, workloads=base, missing="inf").items()}
    else:  # every workload gave no signal: nothing to score
        score_time = {a: math.nan for a in algos}
        score_steps = {a: math.nan for a in algos}
        profiles = {a: [math.nan] * len(taus) for a in algos}
    bt, bs = boots[TIME_MEASURE], boots["steps"]
    return Scores(
        time_s=t_time,
        steps=t_steps,
        score_time=score_time,
        score_steps=score_steps,
        profiles_tau=taus,
        profiles=profiles,
        variants={k: dataclasses.asdict(v) for k, v in variant_agreement(t_steps).items()},
        trials=list(trials),
        level=level,
        score_ci=bt.score_intervals(score_time, level),
        score_steps_ci=bs.score_intervals(score_steps, level),
        time_ci=bt.cell_intervals(level),
        steps_ci=bs.cell_intervals(level),
        ratio_ci=bt.cell_intervals(level, ratio=True),
        ratio_steps_ci=bs.cell_intervals(level, ratio=True),
        profile_bands=bt.profile_bands(taus, level),
        verdict=decide(bt, score_time, level),
        no_signal=no_signal,
        bootstrap=bt,
    )


def target_metric(trial: TrialResult) -> tuple[str, str] | None:
    """``(metric, mode)`` of the target a trial ran against: the recorded override
    (``settings["target"]``), else the workload's own target (building the workload),
    ``None`` when neither is known."""
    recorded = trial.spec.settings.get("target")
    if recorded:
        return str(recorded[0]), str(recorded[2])
    try:
        from steplab import workloads

        target = workloads.get(trial.spec.workload, trial.spec.variant).target
    except Exception:  # a user workload that cannot be imported here: no mode to compare by
        return None
    return target.metric, target.mode


def best_metrics(trials: Sequence[TrialResult], workload: str) -> dict[str, float]:
    """Per algorithm, the best value of the target metric any of its trials on ``workload``
    reached (``best/METRIC`` of the final metrics: the best evaluation of the run, else the
    final value); NaN when unknown."""
    mine = [t for t in trials if scoring.workload_key(t.spec) == workload]
    target = target_metric(mine[0]) if mine else None
    out: dict[str, float] = {}
    for t in mine:
        best = out.setdefault(t.spec.algorithm, math.nan)
        if target is None:
            continue
        metric, mode = target
        value = t.final_metrics.get(f"best/{metric}", t.final_metrics.get(metric))
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if math.isnan(best) or (value > best if mode == "max" else value < best):
            out[t.spec.algorithm] = float(value)
    return dict(sorted(out.items()))


def noise_floor(trials: Sequence[TrialResult]) -> dict[str, dict[str, float]]:
    """Per algorithm and workload, the relative spread (max/min - 1) of the per-study
    steps-to-target: a description of run-to-run spread, not a test (the report compares
    algorithms with the intervals and tests of :func:`score` instead)."""
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

