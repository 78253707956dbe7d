"""Running a tune: open (or resume) its study, run its strategy (Optuna here, Ray Tune in
:mod:`steplab.studies.tuning_ray`), and summarize the best complete trial and the compute
used; also read a stored tune back."""

from __future__ import annotations

import math
from collections.abc import Callable

from steplab.errors import SpecError
from steplab.results import FINISHED, TrialResult
from steplab.store import Store
from steplab.studies.resume import open_study
from steplab.studies.tuning.optuna_search import run_optuna
from steplab.studies.tuning.seeds import check_seeds, stored_seeds
from steplab.studies.tuning.spec import (
    RAY_STRATEGIES,
    TuneResult,
    TuneSpec,
    final_value,
    is_complete,
    setup,
)


def open_tune(spec: TuneSpec, store: Store) -> tuple[int, list[TrialResult]]:
    """Find or create the study of ``spec`` (``resume.open_study``: dead attempts are
    dropped); return it and its finished trials."""
    study_id = open_study(store, spec.study_name(), "tune", spec.to_dict())
    return study_id, store.list_trials(study_id=study_id, status=FINISHED)


def run_tune(spec: TuneSpec, store: Store, *, db_url: str | None = None,
             on_trial: Callable[[TrialResult, int], None] | None = None, verbose: bool = False) -> TuneResult:
    """Run (or resume) the tune ``spec`` in ``store``; ``on_trial(result, steps_used)`` after
    each trial. Ray strategies need ``db_url`` (their workers open the store themselves) and
    print Ray's own logs only when ``verbose``. With ``spec.seeds``, the best point is then
    trained on that many fresh seeds (``seeds.check_seeds``, outside the budget)."""
    su = setup(spec)
    study_id, done = open_tune(spec, store)
    if spec.strategy in RAY_STRATEGIES:
        from steplab.studies import tuning_ray

        if db_url is None:
            raise SpecError(f"strategy {spec.strategy!r} runs trials in Ray workers: give the store's URL (--db)")
        trials = tuning_ray.run(su, store, study_id, done, db_url, on_trial=on_trial, verbose=verbose)
        res = summarize(spec, study_id, trials, su.trial_steps, used=store.leased_steps(study_id))
    else:
        trials, _ = run_optuna(su, store, study_id, done, on_trial)
        res = summarize(spec, study_id, trials, su.trial_steps)
    res.seed_check = check_seeds(spec, store, res)
    return res


def summarize(spec: TuneSpec, study_id: int, trials: list[TrialResult], trial_steps: int,
              used: int | None = None) -> TuneResult:
    """The best complete trial and the compute used: the trials' steps, or ``used`` (the
    steps leased in the store) for the Ray strategies, whose trials' lengths do not add up
    to the compute: a PBT member restarted from a donor's checkpoint drops what it trained
    since and goes on from the donor's step."""
    sign = 1.0 if spec.mode == "min" else -1.0
    complete = [t for t in trials if is_complete(t, trial_steps) and math.isfinite(final_value(t, spec.metric))]
    best = min(complete, key=lambda t: sign * final_value(t, spec.metric)) if complete else None
    return TuneResult(spec, study_id, trials, best, used if used is not None else sum(t.steps for t in trials),
                      sum(t.train_time_s for t in trials))


def load_result(store: Store, name: str) -> TuneResult:
    """The :class:`TuneResult` of the stored tune called ``name``."""
    found = store.find_study(name)
    if found is None or found["kind"] != "tune":
        raise SpecError(f"no tune named {name!r} in {store.url}: list studies with `steplab runs list`")
    d = dict(found["spec"])
    for k in ("params", "checkpoints", "overrides"):
        if d.get(k) is not None:
            d[k] = tuple(d[k])
    spec = TuneSpec(**d)
    trials = store.list_trials(study_id=int(found["id"]), status=FINISHED)
    res = summarize(spec, int(found["id"]), trials, setup(spec).trial_steps,
                    used=store.leased_steps(int(found["id"])))
    res.seed_check = stored_seeds(spec, store)
    return res
