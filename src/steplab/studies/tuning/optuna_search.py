"""The Optuna strategies of a tune: ``qmc`` (``QMCSampler``, scrambled Sobol), ``tpe``
(``TPESampler``, Bergstra et al. 2011), ``median`` and ``hyperband`` (Optuna's
``MedianPruner`` / ``HyperbandPruner``, Li et al. 2018) and ``predict``
(:class:`~steplab.studies.tuning.predict_pruner.PredictPruner`), run in this process under one
compute budget counted in training steps; a resumed tune replays its stored trials into the
sampler first."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from steplab.algorithms import space
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies.tuning.predict_pruner import PredictPruner, optuna_pruner
from steplab.studies.tuning.spec import BUDGET_MESSAGE, Setup, final_value, is_complete
from steplab.training.loop import run_trial


def _sampler(strategy: str, seed: int) -> Any:
    from optuna.samplers import QMCSampler, TPESampler

    if strategy == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "QMCSampler is experimental"
            return QMCSampler(qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False)
    return TPESampler(seed=seed)


def _pruner(su: Setup, predict_pruner: PredictPruner | None) -> Any:
    from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner

    s = su.spec.strategy
    if s == "median":  # Optuna's defaults, but no decision on the first tenth (noise)
        return MedianPruner(n_startup_trials=5, n_warmup_steps=su.trial_steps // 10)
    if s == "hyperband":
        return HyperbandPruner(min_resource=max(1, su.trial_steps // su.spec.evals), max_resource=su.trial_steps,
                               reduction_factor=3)
    if s == "predict":
        assert predict_pruner is not None
        return optuna_pruner(predict_pruner)
    return NopPruner()


def _trial_value(t: TrialResult, su: Setup) -> float | None:
    v = final_value(t, su.spec.metric)
    return v if math.isfinite(v) else None


def _replay(study: Any, trials: Sequence[TrialResult], su: Setup, dists: dict[str, Any], store: Store) -> None:
    """Tell a fresh Optuna study the stored trials of a resumed tune."""
    import optuna
    from optuna.trial import TrialState, create_trial

    for t in trials:
        point = {k: t.spec.hyperparameters[k] for k in su.space if k in t.spec.hyperparameters}
        if set(point) != set(su.space) or not space.contains(su.space, point):
            continue  # not a point of this space (should not happen): leave it out of the sampler
        inter = {e.step: e.value for e in store.evals(t.id) if e.metric == su.spec.metric and math.isfinite(e.value)}
        value = _trial_value(t, su)
        if is_complete(t, su.trial_steps) and value is not None:
            state, val = TrialState.COMPLETE, value
        elif t.status == "pruned":
            state, val = TrialState.PRUNED, None
        else:
            state, val = TrialState.FAIL, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.add_trial(create_trial(params=point, distributions=dists, value=val,
                                         intermediate_values=inter, state=state))


def run_optuna(su: Setup, store: Store, study_id: int, done: list[TrialResult],
                on_trial: Callable[[TrialResult, int], None] | None) -> tuple[list[TrialResult], PredictPruner | None]:
    import optuna

    spec = su.spec
    dists = space._distributions(su.space)
    pp = None
    if spec.strategy == "predict":
        pp = PredictPruner(lambda tr: su.lrs(tr.params), su.trial_steps, checkpoints=spec.checkpoints)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(direction="minimize" if spec.mode == "min" else "maximize",
                                    sampler=_sampler(spec.strategy, spec.seed), pruner=_pruner(su, pp))
        _replay(study, done, su, dists, store)
        used = sum(t.steps for t in done)
        out = list(done)
        while used < spec.budget_steps:
            cap = min(su.trial_steps, spec.budget_steps - used)
            trial = study.ask(dists)
            point = dict(trial.params)

            def report(step: int, budget_steps: int, metrics: dict[str, float], train_s: float,
                       trial: Any = trial, cap: int = cap) -> bool:
                v = metrics.get(spec.metric, math.nan)
                if math.isfinite(v):
                    trial.report(v, step)
                    if trial.should_prune():
                        return True
                return step >= cap and step < su.trial_steps

            result = run_trial(su.workload, su.resolve(point), spec.seed, store=store, study_id=study_id,
                               index=trial.number, config=su.config(cap), progress=report)
            if result.status == "pruned" and result.steps >= cap and cap < su.trial_steps:
                result = _mark_budget_stop(store, result)
            used += result.steps
            value = _trial_value(result, su)
            if is_complete(result, su.trial_steps) and value is not None:
                study.tell(trial, value)
            elif result.status == "pruned":
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            out.append(result)
            if on_trial is not None:
                on_trial(result, used)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return out, pp


def _mark_budget_stop(store: Store, result: TrialResult) -> TrialResult:
    """A trial the budget cut short: say so in its stored message."""
    result = dataclasses.replace(result, message=f"{BUDGET_MESSAGE} after {result.steps} steps")
    if result.id is not None:
        store.set_message(result.id, result.message)
    return result
