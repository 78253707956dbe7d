"""The best point of a tune trained again on fresh seeds (``TuneSpec.seeds``), so that its
value comes with an interval: the search reports the best of many draws on one seed, which
is optimistic (the winner's curse; Cawley & Talbot 2010, "On over-fitting in model
selection and subsequent selection bias in performance evaluation", JMLR 11), and says
nothing about seed-to-seed spread. The runs are a study of their own (kind ``tune-seeds``,
named after the tune), outside the search's budget and its sampler, resumed like any study."""

from __future__ import annotations

from typing import Any

from steplab.analysis.intervals import DEFAULT_LEVEL
from steplab.analysis.seeds import seed_interval
from steplab.results import FINISHED, TrialResult
from steplab.store import Store
from steplab.studies.resume import open_study
from steplab.studies.tuning.spec import SeedCheck, Setup, TuneResult, TuneSpec, final_value, setup
from steplab.training.loop import run_trial


def seeds_study_name(spec: TuneSpec) -> str:
    """The study the fresh-seed runs of a tune are stored in."""
    return f"{spec.study_name()}:seeds"


def _point(su: Setup, best: TrialResult) -> dict[str, Any]:
    return {k: best.spec.hyperparameters[k] for k in su.space if k in best.spec.hyperparameters}


def check_seeds(spec: TuneSpec, store: Store, res: TuneResult, *, level: float = DEFAULT_LEVEL) -> SeedCheck | None:
    """Train the best point of ``res`` on seeds ``seed + 1 .. seed + spec.seeds`` (those not
    run yet), at the search's trial length and evaluation cadence, and return the values
    with their interval; ``None`` when no seeds are asked for or no trial was complete."""
    if spec.seeds < 1 or res.best is None:
        return None
    su = setup(spec)
    point = _point(su, res.best)
    study_id = open_study(store, seeds_study_name(spec), "tune-seeds", {"tune": spec.study_name(), "point": point})
    done = {t.spec.seed: t for t in store.list_trials(study_id=study_id, status=FINISHED)}
    seeds = tuple(spec.seed + 1 + k for k in range(spec.seeds))
    for k, seed in enumerate(seeds):
        if seed not in done:
            done[seed] = run_trial(su.workload, su.resolve(point), seed, store=store, study_id=study_id, index=k,
                                   config=su.config())
    return _check(spec, [done[s] for s in seeds], level)


def stored_seeds(spec: TuneSpec, store: Store, *, level: float = DEFAULT_LEVEL) -> SeedCheck | None:
    """The fresh-seed runs of a stored tune (``steplab tune`` ran them), or ``None``."""
    found = store.find_study(seeds_study_name(spec))
    if found is None:
        return None
    trials = sorted(store.list_trials(study_id=int(found["id"]), status=FINISHED), key=lambda t: t.spec.seed)
    return _check(spec, trials, level) if trials else None


def _check(spec: TuneSpec, trials: list[TrialResult], level: float) -> SeedCheck:
    values = tuple(final_value(t, spec.metric) for t in trials)
    return SeedCheck(tuple(t.spec.seed for t in trials), values, seed_interval(values, level), trials)


__all__ = ["check_seeds", "seeds_study_name", "stored_seeds"]
