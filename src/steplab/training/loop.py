"""One trial: build, train, evaluate on the workload's cadence, stop at target or budget.

The loop reads top to bottom like nanoGPT's ``train.py``: seed, build the model, the
optimizer and its schedule, then for each step: batch, loss, backward, clip, step, record;
every ``eval_every`` steps (and at any ``TrainConfig.eval_steps``) pause the clock, evaluate in
eval mode (schedule-free optimizers switched too), and stop once the target is met. Time-to-target counts training time only
(AlgoPerf, Dahl et al. 2023, "Timing": evaluation time is excluded and stored apart).

A diverged run (non-finite loss, or a loss above ``divergence_factor`` times its first
value) and a run that raises are *recorded outcomes* with infinite time-to-target, never a
crash of the benchmark.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from steplab.optim import optimizers
from steplab.algorithms import ResolvedAlgorithm
from steplab.errors import SpecError
from steplab.training.recorder import Recorder, package_versions
from steplab.results import TrialResult, TrialSpec
from steplab.store import Store, new_worker_id
from steplab.workloads.base import Workload

#: called after every evaluation with (step, budget, metrics, train_time_s), for progress bars
#: and tuners: returning True stops the trial there, recorded as ``pruned``
Progress = Callable[[int, int, dict[str, float], float], "bool | None"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a trial is run (not what is run: that is the ``TrialSpec``)."""

    #: "cpu", "cuda", "cuda:1"...; None picks CUDA when available
    device: str | None = None
    #: stop when the target is reached (False: train to the end of the budget)
    stop_at_target: bool = True
    #: a loss above this multiple of the first step's loss counts as diverged
    divergence_factor: float = 20.0
    #: torch intra-op threads for this trial (None leaves torch's setting)
    threads: int | None = None
    #: record gradient and update norms per step (the recorder's cost is measured in
    #: benchmarks/overhead.py)
    record_norms: bool = True
    #: also evaluate after exactly these update counts (e.g. the ends of the cycles of a
    #: ``budget_cycles`` schedule, ``steplab.studies.tradeoff``), besides every ``eval_every`` steps
    eval_steps: tuple[int, ...] = ()
    #: at every evaluation also record ``train/loss``, the mean loss over this many training
    #: minibatches of a fixed sample (:meth:`Workload.train_loss`); 0 (the default) skips it.
    #: A per-step minibatch loss is too noisy to score a loss-curve prediction against.
    train_eval_batches: int = 0


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given and available, else CUDA when present, else CPU."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
) -> torch.Tensor:
    """One update, as every steplab loop makes it: loss, backward, clip the global gradient
    norm at ``grad_clip``, optimizer step (Polyak-type steps, ``needs_loss``, read the loss
    just computed: ``steplab.optim.polyak``), schedule step. Returns the loss (before the update)."""
    loss = loss_fn(model, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if needs_loss:
        opt.step(lambda loss=loss: loss)
    else:
        opt.step()
    lr_scheduler.step()
    return loss


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
    processes on the same study know it is alive."""
    cfg = config or TrainConfig()
    if algorithm.label_smoothing:
        raise SpecError(
            f"algorithm {algorithm.name!r} sets label_smoothing={algorithm.label_smoothing}, which the "
            "train loop does not apply yet; set it to 0"
        )
    device = pick_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    budget = workload.budget_steps
    spec = TrialSpec(
        workload=workload.name,
        variant=workload.variant,
        algorithm=algorithm.name,
        algorithm_spec=algorithm.to_dict(),
        hyperparameters=dict(algorithm.hyperparameters),
        seed=seed,
        budget_steps=budget,
        study_id=study_id,
        index=index,
        stop_at_target=cfg.stop_at_target,
    )
    if store is None:
        return _train(workload, algorithm, seed, spec, None, None, cfg, device, progress, extra_metrics)
    worker = worker or new_worker_id()
    if trial_id is None:
        trial_id = store.start_trial(
            spec, name=name, host=socket.gethostname(), versions=package_versions(), device=str(device),
            key=key, worker=worker,
        )
    else:
        store.set_trial_spec(trial_id, spec)
    with store.heartbeat(worker):
        return _train(workload, algorithm, seed, spec, store, trial_id, cfg, device, progress, extra_metrics)


def _train(
    workload: Workload,
    algorithm: ResolvedAlgorithm,
    seed: int,
    spec: TrialSpec,
    store: Store | None,
    trial_id: int | None,
    cfg: TrainConfig,
    device: torch.device,
    progress: Progress | None,
    extra_metrics: dict[str, float] | None,
) -> TrialResult:
    """The loop of :func:`run_trial`, writing to ``trial_id`` when ``store`` is given."""
    budget = workload.budget_steps
    target = workload.target
    seed_everything(seed)
    model = workload.init_model(seed).to(device)
    model.train()
    opt, lr_scheduler = algorithm.build(model, budget)
    optimizers.train_mode(opt)
    batches = workload.batches(seed, device)
    # the first batch builds the data set: do that before the training clock starts
    batches = itertools.chain([next(batches)], batches)
    _sync(device)
    rec = Recorder(
        opt,
        store=store,
        trial_id=trial_id,
        grad_norm=cfg.record_norms,
        l1=cfg.record_norms,
        update_norm=cfg.record_norms,
    )
    params = [p for p in model.parameters() if p.requires_grad]
    check_every = 1 if device.type == "cpu" else workload.eval_every
    needs_loss = optimizers.needs_loss(opt)
    extra_evals = {int(k) for k in cfg.eval_steps}

    status, message = "budget", ""
    steps_done = 0
    first_loss = math.nan
    time_to_target, steps_to_target = math.inf, math.inf
    metrics: dict[str, float] = {}
    best = math.nan
    try:
        for step in range(budget):
            loss = train_step(workload.loss, model, next(batches), opt, lr_scheduler,
                              grad_clip=algorithm.grad_clip, params=params, needs_loss=needs_loss)
            rec.log(loss)
            steps_done = step + 1

            if step % check_every == 0 or steps_done == budget:
                value = float(loss.detach())
                if step == 0 or step in workload.divergence_resets:  # e.g. a continual stream's task switch
                    first_loss = value
                if not math.isfinite(value) or value > cfg.divergence_factor * max(first_loss, 1e-8):
                    status = "diverged"
                    message = f"loss {value:.4g} at step {step} (first loss {first_loss:.4g})"
                    break

            if steps_done % workload.eval_every == 0 or steps_done == budget or steps_done in extra_evals:
                _sync(device)
                with rec.evaluating(), optimizers.eval_mode(opt):
                    model.eval()
                    metrics = workload.evaluate(model, device)
                    if cfg.train_eval_batches:
                        metrics["train/loss"] = workload.train_loss(model, device, cfg.train_eval_batches)
                    model.train()
                rec.eval(**metrics)
                value = metrics.get(target.metric, math.nan)
                if not math.isfinite(value) and target.metric.endswith("loss"):
                    status, message = "diverged", f"{target.metric} is {value} at step {steps_done}"
                    break
                if math.isfinite(value):
                    better = max if target.mode == "max" else min
                    best = value if math.isnan(best) else better(best, value)
                if target.reached(value) and math.isinf(time_to_target):
                    time_to_target, steps_to_target = rec.train_time_s, float(steps_done)
                    if cfg.stop_at_target:
                        break
                if progress is not None and progress(steps_done, budget, metrics, rec.train_time_s):
                    status, message = "pruned", f"stopped by the caller after {steps_done} steps"
                    break
    except (KeyboardInterrupt, SystemExit):
        rec.close()  # the trial stays "running" until its claim is given back or dies (Store.claim_trial)
        raise
    except Exception as e:  # a broken trial is a recorded outcome, not a crash
        status = "failed"
        message = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]

    _sync(device)
    train_time = rec.train_time_s
    rec.close()
    if math.isfinite(time_to_target) and status not in ("diverged", "pruned"):
        status = "reached"
    elif status == "diverged":
        time_to_target, steps_to_target = math.inf, math.inf
    final = dict(metrics)
    final[f"best/{target.metric}"] = best
    final.update(extra_metrics or {})
    result = TrialResult(
        spec=spec,
        status=status,  # type: ignore[arg-type]
        steps=steps_done,
        train_time_s=train_time,
        eval_time_s=rec.eval_time_s,
        time_to_target_s=time_to_target,
        steps_to_target=steps_to_target,
        final_metrics=final,
        message=message,
        device=str(device),
        host=socket.gethostname(),
        versions=package_versions(),
        id=trial_id,
    )
    if store is not None and trial_id is not None:
        store.finish_trial(trial_id, result)
    return result

