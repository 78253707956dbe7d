"""Curricula in the training loop (issue 25): the batches come from the algorithm's sampler.

:func:`feed` gives :func:`steplab.training.loop.run_trial` what it trains on. With the
default data schedule (uniform, task score) that is the workload and its own
``batches(seed, device)``, untouched, so every existing result stays what it was. Otherwise
the workload must have task structure (:class:`~steplab.workloads.curriculum_data.TaskWorkload`)
and :class:`CurriculumFeed` drives a :mod:`steplab.curricula` sampler once per update:

1. ``sample(step)`` picks the batch's indices into the pool;
2. the update's own forward pass computes per-example losses (:meth:`CurriculumTask.loss`,
   whose mean is the loss the optimizer steps on, as the workload's ``loss`` is);
3. before the next batch, ``observe(step, indices, losses)`` gets those losses, and every
   ``sampler.eval_every`` steps ``observe_eval(step, task_losses)`` gets the model's mean
   loss on each task's probe split.

All of it runs inside the training clock (the batch is drawn in the timed part of the
loop): choosing data is the algorithm's cost, as AlgoPerf counts a submission's data
selection (Dahl et al. 2023: the submission's ``data_selection`` function). The one exception is
``score=reference``: a reference model trained once per (workload, seed) and process on
uniform batches for :data:`REFERENCE_FRACTION` of the budget with Adam at the workload's
calibrated lr, whose per-example losses become the difficulty (Hacohen & Weinshall 2019,
§3.1, "self-taught" scoring, arXiv 1904.03626); it is data preparation, made before the
clock starts and cached.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from steplab.algorithms import ResolvedAlgorithm
from steplab.algorithms import curriculum as table
from steplab.errors import SpecError, WorkloadError
from steplab.workloads.base import Batch, Workload

#: the reference model's training steps, as a fraction of the workload's budget
REFERENCE_FRACTION = 0.1
_REFERENCE: dict[tuple[str, int, int, str], np.ndarray] = {}


@dataclasses.dataclass
class CurriculumTask:
    """The loop's task for a curriculum run: the workload's loss, keeping the per-example
    losses of the last forward pass for the sampler."""

    workload: Any
    last: torch.Tensor | None = None

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        per = self.workload.example_losses(model, batch)
        self.last = per.detach()
        return per.mean()

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        return self.workload.evaluate(model, device)

    def train_loss(self, model: torch.nn.Module, device: torch.device, batches: int) -> float:
        return self.workload.train_loss(model, device, batches)


@dataclasses.dataclass
class CurriculumFeed:
    """What the loop trains on: ``task`` and ``batches``; ``sampler`` is None for uniform."""

    task: Any
    batches: Iterator[Batch]
    sampler: Any = None
    #: the initial model's mean loss over the whole pool, the divergence rule's reference
    #: (a curriculum's first batch is no fair reference); NaN for uniform
    reference_loss: float = math.nan

    def metrics(self) -> dict[str, float]:
        """The sampler's numeric state (``curriculum/<key>``) for the final metrics."""
        if self.sampler is None:
            return {}
        out: dict[str, float] = {}
        for k, v in self.sampler.state().items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
                out[f"curriculum/{k}"] = float(v)
        return out


def has_tasks(workload: Workload) -> bool:
    """True when ``workload`` carries a task parameter per example."""
    return bool(getattr(workload, "has_tasks", False))


def check(workload: Workload, algorithm: ResolvedAlgorithm) -> None:
    """One-line ``WorkloadError`` when a non-uniform curriculum meets a workload without tasks."""
    if table.is_uniform(algorithm.curriculum) or has_tasks(workload):
        return
    from steplab.workloads import task_workload_names

    raise WorkloadError(
        f"workload {workload.key!r} has no task structure, so curriculum {table.key(algorithm.curriculum)!r} "
        f"cannot choose its examples; use the uniform curriculum, or a workload with tasks: "
        f"{', '.join(task_workload_names())}")


def require_uniform(algorithm: ResolvedAlgorithm, who: str) -> None:
    """One-line ``SpecError`` for a caller whose loop does not drive samplers yet."""
    if not table.is_uniform(algorithm.curriculum):
        raise SpecError(f"{who} trains with uniform batches only; curriculum {table.key(algorithm.curriculum)!r} "
                        "needs steplab run, bench or tune (the other strategies); drop the curriculum")


def feed(workload: Workload, algorithm: ResolvedAlgorithm, seed: int, device: torch.device,
         model: torch.nn.Module, step: Callable[..., torch.Tensor], start_step: int = 0) -> CurriculumFeed:
    """The task and batches of a run (see the module doc); a uniform task-score run uses the
    workload's own batches (a task workload's are the uniform sampler's draws). ``step`` is
    the loop's ``train_step``, for the reference model of ``score=reference``."""
    check(workload, algorithm)
    if table.is_uniform(algorithm.curriculum):
        return CurriculumFeed(workload, workload.batches(seed, device))
    from steplab import curricula

    spec_dict, score = table.split_score(algorithm.curriculum)
    difficulty = reference_difficulty(workload, seed, device, step) if score == "reference" else None
    pool = workload.task_pool(device, difficulty)  # type: ignore[attr-defined]
    sampler = curricula.build(curricula.spec_from(spec_dict), pool, workload.budget_steps, workload.batch_size, seed)
    task = CurriculumTask(workload)
    start = float(workload.pool_losses(model, device).mean())  # type: ignore[attr-defined]
    return CurriculumFeed(task, _batches(workload, sampler, task, model, device, start_step), sampler, start)


def _batches(workload: Any, sampler: Any, task: CurriculumTask, model: torch.nn.Module, device: torch.device,
             step: int) -> Iterator[Batch]:
    """The sampler's batches; before each, the last batch's losses and (when due) the
    per-task probe losses go back to the sampler."""
    previous: np.ndarray | None = None
    while True:
        if previous is not None and task.last is not None:
            sampler.observe(step - 1, previous, task.last.float().cpu().numpy())
        if sampler.eval_every and step > 0 and step % sampler.eval_every == 0:
            sampler.observe_eval(step, workload.task_losses(model, device))
        previous = np.asarray(sampler.sample(step), dtype=np.int64)
        task.last = None
        yield workload.examples(previous, device)
        step += 1


def reference_difficulty(workload: Any, seed: int, device: torch.device, step: Callable[..., torch.Tensor]) -> np.ndarray:
    """Per-example losses of a reference model (see the module doc), cached per process;
    ``step`` is the loop's ``train_step`` (the one place steplab takes optimizer steps)."""
    steps = max(20, math.ceil(REFERENCE_FRACTION * workload.budget_steps))
    key = (workload.key, seed, steps, str(device))
    if key not in _REFERENCE:
        ref_seed = 10_000 + seed  # another initialisation and batch order than the run's
        with torch.random.fork_rng(devices=[]):
            model = workload.init_model(ref_seed).to(device)
            model.train()
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.Adam(params, lr=float(workload.default_hyperparameters.get("lr", 1e-3)))
            constant = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
            batches = workload.batches(ref_seed, device)
            for _ in range(steps):
                step(workload.loss, model, next(batches), opt, constant, grad_clip=None, params=params, needs_loss=False,
                     needs_graph=False)
            model.eval()
            _REFERENCE[key] = workload.pool_losses(model, device)
    return _REFERENCE[key]
