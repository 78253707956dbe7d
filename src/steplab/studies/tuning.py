"""Tuning at a fraction of the cost: ``steplab tune``.

One algorithm on one workload, its hyperparameters searched under ONE compute budget
counted in training steps (seconds are recorded too). Every trial is a stored trial of a
study of kind ``tune`` (hyperparameters, trace, evaluations), so a killed tune resumes: the
finished trials are read back, counted against the budget and told to the sampler again.

Strategies (:data:`STRATEGIES`):

* ``qmc``: AlgoPerf-style quasi-random search, Optuna's ``QMCSampler`` (scrambled Sobol),
  full trials (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms", §4.2).
* ``tpe``: Optuna's ``TPESampler`` (Bergstra et al. 2011), full trials.
* ``median``, ``hyperband``: TPE with Optuna's ``MedianPruner`` / ``HyperbandPruner`` (Li et
  al. 2018), the validation metric reported at every evaluation.
* ``predict``: TPE with :class:`PredictPruner`, steplab's own pruner: at checkpoints of a
  trial (default 10%, 20%, 40% of its steps) it fits the annealing law (Tissue et al. 2024,
  Eq. 1; :mod:`steplab.analysis.laws`) to the trial's evaluations so far, *given the schedule the
  trial will follow to its end*, predicts the final validation loss with its uncertainty
  (delta method on the fit), and prunes when the prediction is worse than the incumbent by
  more than that uncertainty.
* ``asha``, ``pbt``: Ray Tune's ``ASHAScheduler`` (Li et al. 2020) and
  ``PopulationBasedTraining`` (Jaderberg et al. 2017), in :mod:`steplab.studies.tuning_ray`
  (``pip install 'steplab[ray]'``).

A trial that would pass the budget is stopped where the budget ends (recorded ``pruned``,
"compute budget exhausted"): the sum of the trials' steps never exceeds the budget. The
result is the best trial that trained its whole length (pruned trials are not eligible).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from steplab import algorithms as algos
from steplab.analysis import laws, predict
from steplab.algorithms import space
from steplab import workloads
from steplab.errors import SpecError
from steplab.results import FINISHED, TrialResult, spec_digest
from steplab.store import Store
from steplab.training.loop import TrainConfig, run_trial

OPTUNA_STRATEGIES = ("qmc", "tpe", "median", "hyperband", "predict")
RAY_STRATEGIES = ("asha", "pbt")
STRATEGIES = OPTUNA_STRATEGIES + RAY_STRATEGIES
#: the message of a trial stopped because the compute budget ran out
BUDGET_MESSAGE = "compute budget exhausted"


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """What a tune runs. ``budget_steps`` is the total compute (training steps summed over
    trials); ``trial_steps`` each trial's length (default: the workload's budget);
    ``params`` the hyperparameters searched (default: the algorithm's whole search space;
    the rest stay at the algorithm's and workload's defaults); ``evals`` evaluations per
    trial, the cadence every strategy reports at; ``name`` identifies the study (default: a
    hash of the rest), so running the same spec again resumes it."""

    workload: str
    algorithm: str
    strategy: str
    budget_steps: int
    variant: str = "base"
    trial_steps: int | None = None
    params: tuple[str, ...] | None = None
    seed: int = 0
    metric: str = "validation/loss"
    mode: str = "min"
    evals: int = 50
    checkpoints: tuple[float, ...] = (0.1, 0.2, 0.4)
    overrides: tuple[str, ...] = ()
    population: int | None = None  # pbt: members (default: as many full trials as the budget buys)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SpecError(f"unknown tuning strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        for what, v in (("budget_steps", self.budget_steps), ("evals", self.evals)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"tune: {what} must be a positive integer, got {v!r}")
        if self.trial_steps is not None and (not isinstance(self.trial_steps, int) or self.trial_steps < 2):
            raise SpecError(f"tune: trial_steps must be an integer >= 2, got {self.trial_steps!r}")
        if self.mode not in ("min", "max"):
            raise SpecError(f"tune: mode must be min or max, got {self.mode!r}")
        if not self.checkpoints or any(not 0 < c < 1 for c in self.checkpoints):
            raise SpecError(f"tune: checkpoints must be fractions in (0, 1), got {self.checkpoints!r}")
        if self.strategy == "predict" and not (self.metric.endswith("loss") and self.mode == "min"):
            raise SpecError(f"the predict pruner fits a loss curve: use a loss metric with mode min, "
                            f"not {self.metric!r} ({self.mode})")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("params", "checkpoints", "overrides"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    def study_name(self) -> str:
        if self.name:
            return self.name
        digest = spec_digest(self.to_dict())
        return f"tune-{self.workload}-{self.algorithm}-{self.strategy}-{digest}"


@dataclasses.dataclass
class TuneResult:
    """A tune's outcome: its study, every trial, the best complete trial (``None`` when no
    trial trained its whole length), and the compute used."""

    spec: TuneSpec
    study_id: int
    trials: list[TrialResult]
    best: TrialResult | None
    steps_used: int
    seconds_used: float

    @property
    def best_value(self) -> float:
        return math.nan if self.best is None else final_value(self.best, self.spec.metric)


# ---------------------------------------------------------------------------- the setup
def final_value(trial: TrialResult, metric: str) -> float:
    """The trial's last evaluated ``metric`` (NaN when absent or non-finite)."""
    v = trial.final_metrics.get(metric, math.nan)
    return float(v) if v is not None and math.isfinite(v) else math.nan


def is_complete(trial: TrialResult, trial_steps: int) -> bool:
    """Trained its whole length without diverging (eligible as the result)."""
    return trial.status in ("reached", "budget") and trial.steps >= trial_steps


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a strategy needs, built once from a :class:`TuneSpec`."""

    spec: TuneSpec
    workload: workloads.Workload
    algorithm: algos.Algorithm
    space: dict[str, space.Param]
    base: dict[str, Any]  # the defaults the searched point is laid over
    trial_steps: int

    def resolve(self, point: Mapping[str, Any]) -> algos.ResolvedAlgorithm:
        return self.algorithm.with_hyperparameters({**self.base, **point})

    def config(self, cap: int | None = None) -> TrainConfig:
        """``evals`` evaluations per trial, plus one at ``cap`` (where the budget ends)."""
        every = max(1, self.trial_steps // self.spec.evals)
        at = set(range(every, self.trial_steps + 1, every)) | ({cap} if cap else set())
        return TrainConfig(stop_at_target=False, threads=1, eval_steps=tuple(sorted(at)))

    def lrs(self, point: Mapping[str, Any]) -> tuple[np.ndarray, int]:
        """Absolute LRs of every update of a trial at ``point``, and its warm-up steps."""
        algo = self.resolve(point)
        return predict.schedule_lrs(algo.schedule, self.trial_steps, algo.lr)


def setup(spec: TuneSpec) -> Setup:
    """Resolve the workload, the algorithm (with ``--set`` overrides) and the space."""
    wl = workloads.get(spec.workload, spec.variant, budget_steps=spec.trial_steps)
    algo = algos.apply_overrides(algos.get_algorithm(spec.algorithm), spec.overrides)
    full = dict(algo.search_space)
    if not full:
        raise SpecError(f"algorithm {algo.name!r} has no search space to tune; add [search_space] or pick another")
    names = list(spec.params) if spec.params is not None else list(full)
    unknown = [n for n in names if n not in full]
    if unknown:
        raise SpecError(f"tune: {', '.join(unknown)} not in the search space of {algo.name!r} "
                        f"({', '.join(full)}); pass --params from those")
    hp = {k: v for k, v in wl.default_hyperparameters.items() if k not in names}
    defaults = {k: v for k, v in algo.defaults().items()
                if k not in names and not (k.startswith("one_minus_") and k.removeprefix("one_minus_") in hp)}
    if spec.budget_steps < wl.budget_steps:
        raise SpecError(f"tune: the budget ({spec.budget_steps} steps) is less than one trial "
                        f"({wl.budget_steps} steps): raise --budget")
    return Setup(spec, wl, algo, {n: full[n] for n in names}, {**defaults, **hp}, wl.budget_steps)


# -------------------------------------------------------------------- the predict pruner
def predict_final(steps: Sequence[int], values: Sequence[float], lrs: np.ndarray,
                  warmup_steps: int) -> tuple[float, float]:
    """Fit the annealing law ``L(s) = L0 + A S1^-alpha - C S2`` (Tissue et al. 2024, Eq. 1)
    to the losses ``values`` observed after ``steps`` updates of a run whose every LR
    ``lrs`` is known in advance, and predict the loss after all ``len(lrs)`` updates.

    Returns ``(prediction, sd)``: ``sd`` by the delta method, ``sd_log^2 = g' Cov g`` with
    ``Cov = s^2 (J'J)^-1`` from the Jacobian ``J`` of ``log L`` at the observed points, ``s^2``
    the mean squared log residual (n - 4 degrees of freedom) and ``g`` the gradient of
    ``log L(T)`` in the parameters; ``sd = L(T) * sd_log``. Where the data cannot identify a
    parameter (e.g. no annealing seen yet, so ``C`` is free) ``sd`` is ``inf``: no
    decision. Raises ``SpecError`` with fewer than ``laws.MIN_POINTS`` points after warm-up.
    """
    st = np.asarray(steps, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(y) & (y > 0) & (st >= 1) & (st <= lrs.size)
    curve = laws.Curve(lrs, st[ok], y[ok])
    fit = laws.fit_annealing(curve, warmup_steps=warmup_steps)
    law = fit.law
    s1, s2 = laws.annealing_areas(lrs, lam=law.lam, warmup_steps=warmup_steps)
    used = curve.steps[np.isfinite(s1[curve.steps - 1]) & (s1[curve.steps - 1] > 0)]
    obs = curve.losses[np.isin(curve.steps, used)]
    idx = np.concatenate([used - 1, [lrs.size - 1]])
    S1, S2 = s1[idx], s2[idx]
    pw = S1 ** (-law.alpha)
    pred = law.L0 + law.A * pw - law.C * S2
    jac = np.column_stack([np.ones_like(S1), pw, -law.A * pw * np.log(S1), -S2]) / pred[:, None]
    final = float(pred[-1])
    n = obs.size
    if not math.isfinite(final) or final <= 0 or n <= 4:
        return final, math.inf
    resid = np.log(obs) - np.log(pred[:-1])
    s2_hat = float(resid @ resid) / (n - 4)
    J, g = jac[:-1], jac[-1]
    scale = np.linalg.norm(J, axis=0)
    if np.any(scale == 0):
        return final, math.inf
    Js = J / scale
    sv = np.linalg.svd(Js, compute_uv=False)
    if sv[-1] < 1e-8 * sv[0]:  # a direction the data does not see: the fit cannot tell
        return final, math.inf
    cov = s2_hat * np.linalg.inv(Js.T @ Js)
    gs = g / scale
    return final, final * math.sqrt(max(float(gs @ cov @ gs), 0.0))


class PredictPruner:
    """An ``optuna.pruners.BasePruner`` that knows each trial's schedule in advance.

    At the first report at or past each checkpoint (fractions of ``total_steps``), it fits
    :func:`predict_final` to the trial's intermediate values and prunes when ``prediction -
    z * sd`` is worse than the best final value of the study's complete trials (the
    incumbent), ``sd`` at least ``min_rel_sd`` of the prediction. No incumbent, too few points
    or an unidentifiable fit: no pruning. ``lrs_of(trial)`` gives ``(lrs, warmup_steps)`` of
    the trial's whole run (``Setup.lrs`` of its params).

    Composes with any Optuna sampler (``optuna.create_study(pruner=PredictPruner(...))``).
    ``decisions`` records every checkpoint: ``(trial number, step, prediction, sd,
    incumbent, pruned)``.
    """

    def __init__(self, lrs_of: Callable[[Any], tuple[np.ndarray, int]], total_steps: int, *,
                 checkpoints: Sequence[float] = (0.1, 0.2, 0.4), z: float = 1.0, min_rel_sd: float = 0.0) -> None:
        self.lrs_of = lrs_of
        self.total_steps = int(total_steps)
        self.checkpoints = tuple(sorted(float(c) for c in checkpoints))
        self.z = float(z)
        self.min_rel_sd = float(min_rel_sd)
        self.decisions: list[tuple[int, int, float, float, float, bool]] = []
        self._seen: dict[int, int] = {}  # trial number -> checkpoints passed

    def prune(self, study: Any, trial: Any) -> bool:
        import optuna

        step = trial.last_step
        if step is None:
            return False
        passed = sum(step >= c * self.total_steps for c in self.checkpoints)
        if passed <= self._seen.get(trial.number, 0):
            return False
        self._seen[trial.number] = passed
        complete = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.value is not None and math.isfinite(t.value)]
        if not complete:
            return False
        incumbent = min(complete) if study.direction == optuna.study.StudyDirection.MINIMIZE else max(complete)
        values = trial.intermediate_values
        steps = sorted(values)
        lrs, warmup = self.lrs_of(trial)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred, sd = predict_final(steps, [values[s] for s in steps], lrs, warmup)
        except SpecError:  # too few points after warm-up: wait for the next checkpoint
            return False
        sd = max(sd, self.min_rel_sd * abs(pred))
        pruned = bool(math.isfinite(pred) and math.isfinite(sd) and pred - self.z * sd > incumbent)
        self.decisions.append((trial.number, int(step), pred, sd, incumbent, pruned))
        return pruned


def _as_optuna_pruner(p: PredictPruner) -> Any:
    """``p`` as a registered ``BasePruner`` subclass (Optuna checks the type)."""
    import optuna

    class _Pruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            return p.prune(study, trial)

    return _Pruner()


# --------------------------------------------------------------------- optuna strategies
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
        return _as_optuna_pruner(predict_pruner)
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


def _run_optuna(su: Setup, store: Store, study_id: int, done: list[TrialResult],
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

            def report(step: int, budget: int, metrics: dict[str, float], train_s: float,
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


# ---------------------------------------------------------------------------- the runner
def open_tune(spec: TuneSpec, store: Store) -> tuple[int, list[TrialResult]]:
    """Find or create the study of ``spec``; drop dead attempts; return its finished trials."""
    name = spec.study_name()
    found = store.find_study(name)
    if found is not None:
        if found["spec"] != spec.to_dict():
            raise SpecError(f"a different tune named {name!r} is already in the store; pick another --name")
        study_id = int(found["id"])
        store.reap_stale(study_id)
    else:
        study_id = store.create_study(name, "tune", spec.to_dict())
    return study_id, store.list_trials(study_id=study_id, status=FINISHED)


def run_tune(spec: TuneSpec, store: Store, *, db_url: str | None = None,
             on_trial: Callable[[TrialResult, int], None] | None = None) -> TuneResult:
    """Run (or resume) the tune ``spec`` in ``store``; ``on_trial(result, steps_used)`` after
    each trial. Ray strategies need ``db_url`` (their workers open the store themselves)."""
    su = setup(spec)
    study_id, done = open_tune(spec, store)
    if spec.strategy in RAY_STRATEGIES:
        from steplab.studies import tuning_ray

        if db_url is None:
            raise SpecError(f"strategy {spec.strategy!r} runs trials in Ray workers: give the store's URL (--db)")
        trials = tuning_ray.run(su, store, study_id, done, db_url, on_trial=on_trial)
        return summarize(spec, study_id, trials, su.trial_steps, used=store.leased_steps(study_id))
    trials, _ = _run_optuna(su, store, study_id, done, on_trial)
    return summarize(spec, study_id, trials, su.trial_steps)


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
    return summarize(spec, int(found["id"]), trials, setup(spec).trial_steps,
                     used=store.leased_steps(int(found["id"])))


# ------------------------------------------------------------------------ LR sweeps
def log_grid(low: float, high: float, n: int) -> list[float]:
    """``n`` log-spaced values from ``low`` to ``high`` (both included)."""
    if not (0 < low < high) or n < 2:
        raise SpecError(f"a log grid needs 0 < low < high and n >= 2, got {low}, {high}, {n}")
    return [float(v) for v in np.geomspace(low, high, n)]
