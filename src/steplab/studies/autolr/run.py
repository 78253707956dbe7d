"""One AutoLRS run (see :mod:`steplab.studies.autolr`): the kept run is the one training loop
(:func:`steplab.training.loop.train`) with a stage search at every stage start (its
``before_step`` hook); every candidate is the same loop on a scratch copy restored from the
stage's checkpoint."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from steplab.algorithms import ResolvedAlgorithm
from steplab.errors import SpecError, WorkloadError
from steplab.optim import optimizers
from steplab.results import EvalRow, StepRow, TrialResult, current_environment, trial_spec
from steplab.store import Store
from steplab.studies.autolr.fit import eval_points, score_curve
from steplab.studies.autolr.record import (
    AutoLRSConfig,
    AutoLRSResult,
    Candidate,
    Stage,
    default_lr_range,
    plan_stages,
)
from steplab.training.config import TrainConfig
from steplab.training.curriculum import require_uniform
from steplab.training.interrupts import RunInterrupted, kept
from steplab.training.loop import Hooks, Plan, Trainee, build, ready, recorder
from steplab.training.loop import train as train_loop
from steplab.training.recorder import Recorder
from steplab.workloads.base import Workload

_METRIC = "validation/loss"


@dataclasses.dataclass(frozen=True)
class StageEvent:
    """Progress of one stage: ``phase`` is ``search`` (``done`` candidates of ``total``) or
    ``train`` (``done`` steps of ``total``); ``info`` is a short text for a progress bar;
    ``explore_steps`` and ``steps`` are the stage's exploration and kept lengths."""

    stage: int
    stages: int
    phase: str
    done: int
    total: int
    info: str
    explore_steps: int = 0
    steps: int = 0


StageProgress = Callable[[StageEvent], None]


class _StageBatches:
    """The stage's minibatches, drawn once from the run's stream and replayed for every
    candidate and for the kept stage (the data-stream part of the checkpoint)."""

    def __init__(self, stream: Iterator[Any]) -> None:
        self.stream = stream
        self.cache: list[Any] = []
        self.kept = 0

    def new_stage(self) -> None:
        self.cache, self.kept = [], 0

    def __getitem__(self, i: int) -> Any:
        while len(self.cache) <= i:
            self.cache.append(next(self.stream))
        return self.cache[i]

    def replay(self) -> Iterator[Any]:
        """The stage's batches from its start (a candidate's)."""
        return (self[t] for t in itertools.count())

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        """The kept run's next batch of the stage."""
        self.kept += 1
        return self[self.kept - 1]


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class _Multiplier:
    """The stage's constant LR multiplier, the schedule of a trainee: ``lr = peak * m`` for
    every group (``initial_lr`` is the peak a ``LambdaLR`` keeps)."""

    def __init__(self) -> None:
        self.value = 1.0

    def schedule(self, step: int) -> float:
        del step
        return self.value

    def set(self, trainee: Trainee, value: float) -> None:
        self.value = value
        for g in trainee.opt.param_groups:
            g["lr"] = g["initial_lr"] * value


@dataclasses.dataclass
class _Search:
    """The stage searches of one run: candidates explore on ``scratch`` from the checkpoint
    of ``main``, BO over log-LR proposes them."""

    workload: Workload
    algorithm: ResolvedAlgorithm
    seed: int
    cfg: AutoLRSConfig
    tcfg: TrainConfig
    lr_range: tuple[float, float]
    main: Trainee
    scratch: Trainee
    main_lr: _Multiplier
    scratch_lr: _Multiplier
    data: _StageBatches
    plan: list[int]
    progress: StageProgress | None
    stages: list[Stage] = dataclasses.field(default_factory=list)
    search_steps: int = 0
    search_time_s: float = 0.0

    def explore(self, mult: float, budget_steps: int, evals_at: list[int],
                start_value: float) -> tuple[list[tuple[int, float]], bool]:
        """Train a candidate ``budget_steps`` updates at ``mult`` on the stage's batches (the one
        loop, on the scratch trainee): its curve, and whether it diverged (the loop's rule,
        or a validation loss above ``divergence_factor`` times the stage's start value)."""
        self.scratch_lr.set(self.scratch, mult)
        observed: list[tuple[int, float]] = [(0, start_value)]

        def on_eval(steps_done: int, metrics: dict[str, float]) -> str | None:
            v = metrics.get(_METRIC, math.nan)
            observed.append((steps_done, v))
            return "above the divergence factor" if v > self.tcfg.divergence_factor * start_value else None

        rec = Recorder(self.scratch.opt, grad_norm=False, l1=False, update_norm=False)
        plan = Plan(budget_steps, budget_steps, _METRIC, eval_steps=tuple(evals_at), divergence_factor=self.tcfg.divergence_factor)
        out = train_loop(self.scratch, self.workload, self.data.replay(), rec, plan, Hooks(on_eval=on_eval))
        if out.error is not None:
            raise out.error
        self.search_steps += out.steps
        return observed, out.status != "budget"

    def stage(self, index: int, start: int, rec: Recorder) -> None:
        """Search the LR of stage ``index``, which starts at update ``start``, and set it on
        the main trainee (BO over log-LR, Optuna's ``GPSampler``)."""
        import optuna
        from optuna.samplers import GPSampler

        cfg, device, length = self.cfg, self.main.device, self.plan[index]
        tau = cfg_tau(cfg, self.workload.budget_steps)
        nominal = min(tau * 2**index, max(cfg_tau_max(cfg, tau), tau))
        explore = min(length, max(cfg.min_explore_steps, round(cfg.explore_frac * nominal)))
        evals_at = eval_points(explore, cfg.loss_points)
        self.data.new_stage()
        t_search = time.perf_counter()
        with rec.evaluating():  # the search is not training time of the kept run
            ckpt = self.main.checkpoint()
            rng = _rng_state(device)
            start_value = self.main.evaluate(self.workload).get(_METRIC, math.nan)
            if not math.isfinite(start_value):
                raise WorkloadError(f"workload {self.workload.name!r} reports no finite {_METRIC} at step "
                                    f"{start}; autolrs needs it")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sampler = GPSampler(seed=self.seed * 7919 + index, n_startup_trials=cfg.startup_candidates)
                study = optuna.create_study(sampler=sampler, direction="minimize")
            cands: list[Candidate] = []
            for j in range(cfg.candidates):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    trial = study.ask()
                    lr = trial.suggest_float("lr", *self.lr_range, log=True)
                mult = lr / self.algorithm.lr
                self.scratch.restore(ckpt)
                _set_rng_state(rng, device)
                observed, diverged = self.explore(mult, explore, evals_at, start_value)
                predicted, objective, cstatus, fit = score_curve(observed, length, diverged)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    study.tell(trial, objective)
                cands.append(Candidate(lr=self.algorithm.lr * mult, multiplier=mult, observed=observed,
                                       predicted=predicted, objective=objective, status=cstatus,
                                       fit=None if fit is None else {"a": fit.a, "b": fit.b, "c": fit.c}))
                if self.progress is not None:
                    bestc = min(cands, key=lambda c: c.objective)
                    self.progress(StageEvent(index, len(self.plan), "search", j + 1, cfg.candidates,
                                             f"best lr {bestc.lr:.3g} -> {bestc.objective:.4g}", explore, length))
            chosen = min(range(len(cands)), key=lambda i: (cands[i].objective, cands[i].observed[-1][1]))
            _set_rng_state(rng, device)
        elapsed = time.perf_counter() - t_search
        self.search_time_s += elapsed
        self.stages.append(Stage(start=start, steps=length, explore_steps=explore, start_value=start_value,
                                 candidates=cands, chosen=chosen, search_time_s=elapsed))
        self.main_lr.set(self.main, self.stages[-1].multiplier)


def cfg_tau(cfg: AutoLRSConfig, budget_steps: int) -> int:
    """The first stage's length: ``cfg.tau`` or ``max(40, budget_steps // 15)``, at most the budget."""
    return min(cfg.tau if cfg.tau is not None else max(40, budget_steps // 15), budget_steps)


def cfg_tau_max(cfg: AutoLRSConfig, tau: int) -> int:
    """The longest stage: ``cfg.tau_max`` or ``8 tau``."""
    return cfg.tau_max if cfg.tau_max is not None else 8 * tau


def run_autolrs(
    workload: Workload,
    algorithm: ResolvedAlgorithm,
    seed: int,
    *,
    config: AutoLRSConfig | None = None,
    train: TrainConfig | None = None,
    store: Store | None = None,
    name: str | None = None,
    progress: StageProgress | None = None,
) -> AutoLRSResult:
    """Train ``algorithm`` on ``workload`` with AutoLRS choosing a constant LR per stage (see
    the package docstring); the algorithm's own schedule is replaced, its optimizer, peak lr
    (the reference for the schedule's multipliers), weight decay and clipping are kept.

    The kept run is the one training loop (evaluation cadence, stop at target, divergence, a
    failure is a recorded outcome); with ``store`` it is stored as one trial (algorithm
    ``<name>+autolrs``, the emergent schedule in its algorithm spec, the search cost in its
    final metrics as ``autolrs/search_steps`` and ``autolrs/search_time_s``) in a study of
    kind ``autolrs`` whose spec is the full record (:func:`load_result`).

    Raises:
        SpecError: bad settings, or an optimizer whose state lives outside ``state_dict``
            (``dog``/``ldog``: their iterate averager cannot be checkpointed).
    """
    import optuna

    cfg = config or AutoLRSConfig()
    tcfg = train or TrainConfig()
    if optimizers.info(algorithm.optimizer).averaged:
        raise SpecError(f"autolrs cannot checkpoint optimizer {algorithm.optimizer!r} (its iterate averager "
                        "lives outside state_dict); pick another algorithm")
    if algorithm.label_smoothing:
        raise SpecError(f"algorithm {algorithm.name!r} sets label_smoothing={algorithm.label_smoothing}, which the "
                        "train loop does not apply yet; set it to 0")
    lr_min, lr_max = default_lr_range(algorithm)
    lr_min = cfg.lr_min if cfg.lr_min is not None else lr_min
    lr_max = cfg.lr_max if cfg.lr_max is not None else lr_max
    if lr_min >= lr_max:
        raise SpecError(f"autolrs: the LR range is empty ({lr_min:g} .. {lr_max:g}); set lr_min below lr_max")
    budget = workload.budget_steps
    tau = cfg_tau(cfg, budget)
    plan = plan_stages(budget, tau, max(cfg_tau_max(cfg, tau), tau))
    device = tcfg.start()
    target = workload.target

    require_uniform(algorithm, "autolrs")
    main_lr, scratch_lr = _Multiplier(), _Multiplier()
    scratch = build(workload, algorithm, seed, device, budget, scratch_lr.schedule)
    main = build(workload, algorithm, seed, device, budget, main_lr.schedule)
    data = _StageBatches(ready(workload.batches(seed, device)))
    rec = recorder(main, tcfg)
    search = _Search(workload, algorithm, seed, cfg, tcfg, (lr_min, lr_max), main, scratch, main_lr, scratch_lr,
                     data, plan, progress)
    starts = {start: i for i, start in enumerate(itertools.accumulate([0, *plan[:-1]]))}

    def before_step(step: int) -> None:
        if step in starts:
            search.stage(starts[step], step, rec)

    def on_eval(steps_done: int, metrics: dict[str, float]) -> None:
        if progress is not None:
            st = search.stages[-1]
            progress(StageEvent(len(search.stages) - 1, len(plan), "train", steps_done - st.start, st.steps,
                                f"lr {st.lr:.3g}, {target.metric.split('/')[-1]} "
                                f"{metrics.get(target.metric, math.nan):.4g}", st.explore_steps, st.steps))

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    stopped: RunInterrupted | None = None
    try:
        out = train_loop(main, workload, data, rec, Plan.of(workload, tcfg), Hooks(before_step, on_eval))
    except RunInterrupted as e:  # Ctrl-C, SIGTERM: the run so far is stored as interrupted, then raised
        out, stopped = e.outcome, e
    finally:
        optuna.logging.set_verbosity(verbosity)
    if isinstance(out.error, (SpecError, WorkloadError)) and not search.stages:
        raise out.error
    out.eval_time_s -= search.search_time_s  # the search is neither training nor evaluation
    rows, eval_rows = rec.rows, rec.eval_rows
    final = {**out.metrics, f"best/{target.metric}": out.best, "autolrs/search_steps": float(search.search_steps),
             "autolrs/search_time_s": search.search_time_s, "autolrs/stages": float(len(search.stages))}
    result = AutoLRSResult(
        workload=workload.key, algorithm=algorithm.to_dict(), seed=seed, budget_steps=budget,
        config=cfg.to_dict(), lr_range=(lr_min, lr_max), stages=search.stages, status=out.status, steps=out.steps,
        steps_to_target=out.steps_to_target, time_to_target_s=out.time_to_target_s, train_time_s=out.train_time_s,
        eval_time_s=out.eval_time_s, search_steps=search.search_steps, search_time_s=search.search_time_s,
        final_metrics=final, message=out.message, losses=[math.nan if r.loss is None else r.loss for r in rows],
        lrs=[math.nan if r.lr is None else r.lr for r in rows],
    )
    if store is not None:
        _store(store, workload, algorithm, result, rows, eval_rows, str(device), name, tcfg)
    if stopped is not None:
        raise kept(stopped, result.trial_id, out.steps) if store is not None else stopped
    return result


def _store(store: Store, workload: Workload, algorithm: ResolvedAlgorithm, result: AutoLRSResult,
           rows: list[StepRow], eval_rows: list[EvalRow], device: str, name: str | None, tcfg: TrainConfig) -> None:
    """Write the record (a study of kind ``autolrs``) and the kept run (one trial in it)."""
    algo = dataclasses.replace(algorithm, name=f"{algorithm.name}+autolrs",
                               schedule=result.schedule_spec() if result.stages else {"name": "constant"})
    study_id = store.create_study(f"autolrs {name or workload.key} {uuid.uuid4().hex[:10]}", "autolrs",
                                  result.to_dict())
    spec = trial_spec(workload, algo, result.seed, settings=tcfg.settings(), study_id=study_id,
                      hyperparameters={**algorithm.hyperparameters, "autolrs": result.config},
                      stop_at_target=tcfg.stop_at_target)
    env = current_environment(device)
    trial_id = store.start_trial(spec, name=name, **env.fields())
    store.append_steps(trial_id, rows)
    store.append_evals(trial_id, eval_rows)
    result.trial_id = trial_id
    store.finish_trial(trial_id, TrialResult(
        spec, result.status, result.steps, result.train_time_s, result.eval_time_s,  # type: ignore[arg-type]
        result.time_to_target_s, result.steps_to_target, result.final_metrics, result.message,
        id=trial_id, **env.fields()))
