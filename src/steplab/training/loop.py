"""THE training loop: the only place steplab takes optimizer steps.

:func:`train` reads top to bottom like nanoGPT's ``train.py``: for each step, a batch, loss,
backward, clip, step, record; check divergence; every ``eval_every`` steps (and at any extra
``eval_steps``) pause the clock, evaluate in eval mode (schedule-free optimizers switched
too), and stop once the target is met. Time-to-target counts training time only (AlgoPerf,
Dahl et al. 2023, "Timing": evaluation time is excluded and stored apart), and so is the
loop's own bookkeeping between updates (recording, the divergence check, progress and
pruning: the clock is paused from the end of one update to the start of the next;
``steplab.training.clock``). What that work does to the caches of the next update is not
excluded: ``benchmarks/overhead.py`` measures it. :func:`build`
seeds and builds what it trains; :func:`run_trial` is one benchmark trial around both.

What other callers add hooks in through :class:`Hooks` (one call before each step, one
after each evaluation) and :meth:`Trainee.checkpoint`/:meth:`Trainee.restore`: AutoLRS
searches at its stage starts (``steplab.studies.autolr``), continual streams save and
restore at stage boundaries (``steplab.studies.continual``), the Ray Tune trainable leases
steps and reports (``steplab.studies.tuning_ray``), tuners prune. Monitors of the training
dynamics (``TrainConfig.monitors``, :mod:`steplab.training.monitoring`) are measured like an
evaluation, outside the clock, and never change the trajectory.

One divergence rule for all (:class:`Divergence`): a non-finite loss, or a loss above
``divergence_factor`` times its reference (the first step's loss, taken again at
``divergence_resets``, e.g. a continual stream's task switches), or a non-finite watched
loss metric. A diverged run and a run that raises are *recorded outcomes* with infinite
time-to-target, never a crash of the benchmark.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import torch

from steplab import schedules
from steplab.algorithms import ResolvedAlgorithm
from steplab.analysis.timing import TRIAL_STEP_KEY, UNTIMED_KEY, cell_step_seconds
from steplab.errors import SpecError
from steplab.optim import optimizers
from steplab.optim.modes import eval_mode, train_mode
from steplab.results import RunEnvironment, TrialResult, TrialSpec, current_environment, trial_spec
from steplab.store import Store, new_worker_id
from steplab.training import curriculum
from steplab.training.config import TrainConfig
from steplab.training.device import seed_everything, sync
from steplab.training.interrupts import RunInterrupted, keep_interrupted
from steplab.training.monitoring import Monitoring, check_every, monitor_list
from steplab.training.recorder import Recorder
from steplab.workloads.base import Target, Workload

#: called after every evaluation with (step, budget, metrics, train_time_s), for progress bars
#: and tuners: returning True stops the trial there, recorded as ``pruned``
Progress = Callable[[int, int, dict[str, float], float], "bool | None"]


class Task(Protocol):
    """What the loop trains on: a :class:`Workload`, or a view of one (a continual stream)."""

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor: ...

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]: ...


def train_step(
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    model: torch.nn.Module,
    batch: Any,
    opt: torch.optim.Optimizer,
    lr_scheduler: Any,
    *,
    grad_clip: float | None,
    params: list[torch.Tensor],
    needs_loss: bool,
    needs_graph: bool,
) -> torch.Tensor:
    """One update: loss, backward, clip the global gradient norm at ``grad_clip``, optimizer
    step (Polyak-type steps, ``needs_loss``, read the loss just computed:
    ``steplab.optim.polyak``; UPGD's second-order utility, ``needs_graph``, differentiates the
    gradient again: ``optimizers.needs_graph``), schedule step. Returns the loss (before the
    update). ``needs_loss`` and ``needs_graph`` are read once per run, not per step."""
    loss = loss_fn(model, batch)
    opt.zero_grad(set_to_none=True)
    if needs_graph:  # UPGD's second-order utility (optimizers.needs_graph): its step detaches the
        with warnings.catch_warnings():  # gradients again, so no reference cycle is left
            warnings.filterwarnings("ignore", "Using backward\\(\\) with create_graph", UserWarning)
            loss.backward(create_graph=True)
    else:
        loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if needs_loss:
        opt.step(lambda loss=loss: loss)
    else:
        opt.step()
    lr_scheduler.step()
    return loss


@dataclasses.dataclass
class Trainee:
    """A model with its optimizer and LR scheduler on ``device``."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    lr_scheduler: Any
    grad_clip: float | None
    device: torch.device

    def __post_init__(self) -> None:
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.needs_loss = optimizers.needs_loss(self.opt)
        self.needs_graph = optimizers.needs_graph(self.opt)

    def step(self, task: Task, batch: Any) -> torch.Tensor:
        """One update on ``batch`` (:func:`train_step`); the loss before it."""
        return train_step(task.loss, self.model, batch, self.opt, self.lr_scheduler, grad_clip=self.grad_clip,
                          params=self.params, needs_loss=self.needs_loss, needs_graph=self.needs_graph)

    def evaluate(self, task: Task, train_eval_batches: int = 0) -> dict[str, float]:
        """``task.evaluate`` in eval mode (model and optimizer), plus ``train/loss`` over
        ``train_eval_batches`` fixed training minibatches when > 0."""
        with eval_mode(self.opt):
            self.model.eval()
            metrics = task.evaluate(self.model, self.device)
            if train_eval_batches:
                metrics["train/loss"] = task.train_loss(self.model, self.device, train_eval_batches)  # type: ignore[attr-defined]
            self.model.train()
        return metrics

    def checkpoint(self) -> dict[str, Any]:
        """Copies of the model's, the optimizer's and the scheduler's state."""
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "opt": copy.deepcopy(self.opt.state_dict()), "lr_scheduler": self.lr_scheduler.state_dict()}

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Load a :meth:`checkpoint` (which stays intact: torch's ``load_state_dict`` copies,
        the copy here covers optimizers that override it)."""
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(copy.deepcopy(ckpt["opt"]))
        self.lr_scheduler.load_state_dict(ckpt["lr_scheduler"])
        train_mode(self.opt)


def build(source: Any, algorithm: ResolvedAlgorithm, seed: int, device: torch.device, budget_steps: int,
          schedule: schedules.Schedule | None = None) -> Trainee:
    """Seed everything, then ``source.init_model(seed)`` (a workload or a stream) on
    ``device`` in train mode with ``algorithm``'s optimizer and its schedule over
    ``budget_steps`` updates (or ``schedule``)."""
    seed_everything(seed)
    model = source.init_model(seed).to(device)
    model.train()
    opt = algorithm.build_optimizer(model)
    lr_scheduler = schedules.to_lr_scheduler(
        opt, algorithm.build_schedule(budget_steps) if schedule is None else schedule)
    train_mode(opt)
    return Trainee(model, opt, lr_scheduler, algorithm.grad_clip, device)


def ready(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches`` with its first batch drawn: that builds the data set, before the clock starts."""
    return itertools.chain([next(batches)], batches)


def recorder(trainee: Trainee, cfg: TrainConfig, store: Store | None = None, trial_id: int | None = None) -> Recorder:
    """The recorder of a trainee's run (norms as ``cfg.record_norms`` and ``cfg.norm_every``
    say); its clock starts now."""
    n = cfg.record_norms
    return Recorder(trainee.opt, store=store, trial_id=trial_id, grad_norm=n, l1=n, update_norm=n,
                    norm_every=cfg.norm_every)


@dataclasses.dataclass(frozen=True)
class Plan:
    """When the loop evaluates and stops."""

    budget_steps: int
    eval_every: int
    #: the watched metric: its best value is kept; non-finite, a loss metric means diverged
    metric: str | None = None
    mode: str = "min"
    target: Target | None = None
    stop_at_target: bool = True
    #: extra update counts to evaluate after
    eval_steps: tuple[int, ...] = ()
    #: also evaluate before the first update (recorded at step 0)
    eval_at_start: bool = False
    train_eval_batches: int = 0
    divergence_factor: float = 20.0
    divergence_resets: tuple[int, ...] = ()
    #: the first update (a run resumed from a checkpoint)
    start_step: int = 0
    #: the divergence rule's reference loss instead of the first update's (a curriculum's
    #: first batches are its easiest: ``steplab.training.curriculum``); NaN: the first loss
    divergence_reference: float = math.nan

    @classmethod
    def of(cls, workload: Workload, cfg: TrainConfig) -> Plan:
        """The plan of a benchmark trial: the workload's budget, cadence and target."""
        target = workload.target
        return cls(budget_steps=workload.budget_steps, eval_every=workload.eval_every, metric=target.metric,
                   mode=target.mode, target=target, stop_at_target=cfg.stop_at_target,
                   eval_steps=tuple(int(k) for k in cfg.eval_steps), train_eval_batches=cfg.train_eval_batches,
                   divergence_factor=cfg.divergence_factor, divergence_resets=tuple(workload.divergence_resets))


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a caller adds to the loop. A hook that returns a text stops the run there,
    recorded ``pruned`` with that message."""

    #: before update ``step`` (0-based): a stage boundary (a search, a save, a lease)
    before_step: Callable[[int], str | None] | None = None
    #: after each evaluation but the one before training, with (updates done, metrics)
    on_eval: Callable[[int, dict[str, float]], str | None] | None = None


@dataclasses.dataclass
class Divergence:
    """The divergence rule of every steplab run (see the module docstring)."""

    factor: float
    #: the steps whose loss becomes the reference
    resets: frozenset[int]
    reference: float = math.nan

    def check_loss(self, step: int, value: float) -> str | None:
        """Why the loss ``value`` of update ``step`` means divergence, or None."""
        if step in self.resets:
            self.reference = value
        if not math.isfinite(value) or value > self.factor * max(self.reference, 1e-8):
            return f"loss {value:.4g} at step {step} (first loss {self.reference:.4g})"
        return None

    @staticmethod
    def check_metric(metric: str, value: float, step: int) -> str | None:
        """Why an evaluated ``metric`` means divergence (a non-finite loss), or None."""
        if not math.isfinite(value) and metric.endswith("loss"):
            return f"{metric} is {value} at step {step}"
        return None


@dataclasses.dataclass
class Outcome:
    """How a run of :func:`train` ended (``error``: the exception of a ``failed`` run)."""

    status: str = "budget"
    message: str = ""
    steps: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    time_to_target_s: float = math.inf
    steps_to_target: float = math.inf
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    best: float = math.nan
    error: Exception | None = None

    def result(self, spec: TrialSpec, env: RunEnvironment, final_metrics: dict[str, float],
               trial_id: int | None) -> TrialResult:
        """The finished trial of ``spec`` with ``final_metrics``."""
        return TrialResult(spec, self.status, self.steps, self.train_time_s, self.eval_time_s,  # type: ignore[arg-type]
                           self.time_to_target_s, self.steps_to_target, final_metrics, self.message,
                           id=trial_id, **env.fields())


def train(trainee: Trainee, task: Task, batches: Iterator[Any], rec: Recorder, plan: Plan,
          hooks: Hooks = Hooks(), monitoring: Monitoring | None = None) -> Outcome:
    """Train ``trainee`` on ``task`` with ``batches`` as ``plan`` says, recording into
    ``rec`` (closed at the end); see the module docstring. With ``monitoring``, its
    monitors are measured before the first update (a run from step 0) and every
    ``monitoring.every`` updates, outside the training clock, as ``dynamics/...`` metrics."""
    device, budget = trainee.device, plan.budget_steps
    # on the CPU the loss is read every step (one item(), which also goes to the recorder: no
    # tensor kept); on an accelerator at evaluations only, so nothing synchronizes per step
    on_host = device.type == "cpu"
    loss_every = 1 if on_host else plan.eval_every
    extra_evals = set(plan.eval_steps)
    rule = Divergence(plan.divergence_factor, frozenset({plan.start_step, *plan.divergence_resets}))
    if math.isfinite(plan.divergence_reference):
        rule = Divergence(plan.divergence_factor, frozenset(plan.divergence_resets), plan.divergence_reference)
    better = max if plan.mode == "max" else min
    out = Outcome(steps=plan.start_step)

    def evaluate() -> dict[str, float]:
        sync(device)
        with rec.evaluating():
            metrics = trainee.evaluate(task, plan.train_eval_batches)
        rec.eval(**metrics)
        return metrics

    def monitor(done: int) -> None:
        sync(device)
        with rec.evaluating():
            values = monitoring.measure(done, trainee.opt)  # type: ignore[union-attr]
        rec.eval(step=done, **values)

    def stop(status: str, message: str) -> None:
        out.status, out.message = status, message

    try:
        if monitoring is not None and plan.start_step == 0:
            monitor(0)
        if plan.eval_at_start:
            out.metrics = evaluate()
        for step in range(plan.start_step, budget):
            rec.resume()
            if hooks.before_step is not None and (why := hooks.before_step(step)):
                stop("pruned", why)
                break
            loss = trainee.step(task, next(batches))
            rec.pause()  # from here to the next update: the harness's bookkeeping, not training time
            logged = loss.item() if on_host else loss  # the CPU: one item() for the recorder and the check
            rec.log(logged)
            out.steps = done = step + 1
            if step % loss_every == 0 or done == budget:
                if why := rule.check_loss(step, logged if on_host else loss.item()):
                    stop("diverged", why)
                    break
            if monitoring is not None and monitoring.due(done):
                monitor(done)
            if not (done % plan.eval_every == 0 or done == budget or done in extra_evals):
                continue
            out.metrics = metrics = evaluate()
            value = metrics.get(plan.metric, math.nan) if plan.metric else math.nan
            if plan.metric and (why := rule.check_metric(plan.metric, value, done)):
                stop("diverged", why)
                break
            if math.isfinite(value):
                out.best = value if math.isnan(out.best) else better(out.best, value)
            if plan.target is not None and plan.target.reached(value) and math.isinf(out.time_to_target_s):
                out.time_to_target_s, out.steps_to_target = rec.train_time_s, float(done)
                if plan.stop_at_target:
                    break
            if hooks.on_eval is not None and (why := hooks.on_eval(done, metrics)):
                stop("pruned", why)
                break
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM: the rows so far are written; the caller keeps or gives back the trial
        rec.close()
        out.steps = max(out.steps, rec.step)  # an update whose row was recorded counts, logged or not
        out.status, out.message = "interrupted", f"interrupted after {out.steps} steps"
        out.train_time_s, out.eval_time_s = rec.train_time_s, rec.eval_time_s
        raise RunInterrupted(e, out) from None
    except SystemExit:
        rec.close()
        raise
    except Exception as e:  # a broken run is a recorded outcome, not a crash
        stop("failed", f"{type(e).__name__}: {e}".replace("\n", " ")[:500])
        out.error = e

    sync(device)
    out.train_time_s = rec.train_time_s
    rec.close()
    out.eval_time_s = rec.eval_time_s
    if out.status == "budget" and math.isfinite(out.time_to_target_s):
        out.status = "reached"
    elif out.status in ("diverged", "failed"):  # a run that reached its target, then crashed, is failed
        out.time_to_target_s, out.steps_to_target = math.inf, math.inf
    return out


def run_trial(
    workload: Workload,
    algorithm: ResolvedAlgorithm,
    seed: int,
    *,
    store: Store | None = None,
    study_id: int | None = None,
    index: int = 0,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    key: str | None = None,
    extra_metrics: dict[str, float] | None = None,
    trial_id: int | None = None,
    worker: str | None = None,
) -> TrialResult:
    """Train ``algorithm`` on ``workload`` with ``seed`` for the workload's budget; record the
    trace into ``store`` when given. Returns the finished ``TrialResult``. ``key`` overrides
    the stored key (see ``Store.start_trial``); ``extra_metrics`` are stored with the final
    metrics (a refined second pass records its first pass's cost there). ``trial_id`` is a
    trial already claimed by ``worker`` (``Store.claim_trial``) to fill instead of starting
    one. While it trains, the trial's worker beats (``Store.heartbeat``), so other
    processes on the same study know it is alive. On Ctrl-C/SIGTERM a trial this call started
    itself (no ``worker`` given) is kept as ``interrupted`` and an
    :class:`~steplab.errors.Interrupted` saying so is raised; a claimed one (``worker``) is
    left ``running`` for its claimant to give back (``jobs.claim_and_run``)."""
    cfg = config or TrainConfig()
    if algorithm.label_smoothing:
        raise SpecError(
            f"algorithm {algorithm.name!r} sets label_smoothing={algorithm.label_smoothing}, which the "
            "train loop does not apply yet; set it to 0"
        )
    chosen = monitor_list(cfg.monitors)  # bad names fail here, before anything is stored
    check_every(cfg.monitor_every, "monitor_every")
    device = cfg.start()
    spec = trial_spec(workload, algorithm, seed, settings=cfg.settings(), study_id=study_id, index=index,
                      stop_at_target=cfg.stop_at_target)
    env = current_environment(str(device))
    beating: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    keep = worker is None  # a claimed trial is its claimant's to give back
    # model and data first: a workload that cannot build (its data offline) stores nothing
    trainee = build(workload, algorithm, seed, device, workload.budget_steps)
    # the workload's own batches, or a curriculum's sampler's (steplab.training.curriculum)
    data = curriculum.feed(workload, algorithm, seed, device, trainee.model, train_step)
    batches = ready(data.batches)
    if store is not None:
        worker = worker or new_worker_id()
        if trial_id is None:
            trial_id = store.start_trial(spec, name=name, key=key, worker=worker, **env.fields())
        else:
            store.set_trial_spec(trial_id, spec)
        beating = store.heartbeat(worker)
    try:
        with beating:
            monitoring = Monitoring.start(chosen, cfg.monitor_every or workload.eval_every, workload=workload,
                                          model=trainee.model, device=device)
            rec = recorder(trainee, cfg, store, trial_id)
            budget = workload.budget_steps

            def on_eval(steps: int, metrics: dict[str, float]) -> str | None:
                if progress is not None and progress(steps, budget, metrics, rec.train_time_s):
                    return f"stopped by the caller after {steps} steps"
                return None

            plan = dataclasses.replace(Plan.of(workload, cfg), divergence_reference=data.reference_loss)
            out = train(trainee, data.task, batches, rec, plan, Hooks(on_eval=on_eval), monitoring)
        final = {**out.metrics, f"best/{workload.target.metric}": out.best,
                 TRIAL_STEP_KEY: cell_step_seconds([rec.step_times()]), UNTIMED_KEY: rec.untimed_s, **data.metrics(), **(extra_metrics or {})}
        result = out.result(spec, env, final, trial_id)
        if store is not None and trial_id is not None:
            store.finish_trial(trial_id, result)
    except KeyboardInterrupt as e:
        if not keep:
            raise
        raise keep_interrupted(store, trial_id, spec, env, e, extra_metrics) from None
    return result
