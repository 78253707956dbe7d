"""Workloads with task structure (issue 25): a task parameter per training example that a
curriculum (:mod:`steplab.curricula`) can choose from.

A :class:`TaskWorkload` holds its training examples in memory with, per example, a
difficulty (larger = harder), a discrete task id in ``0..K-1`` and optionally continuous
task parameters in ``[0, 1]`` (ALP-GMM's task space, Portelas et al. 2019). It also holds a
small *probe* split per task, apart from the validation split, for the samplers that want
per-task held-out losses (Skill-it, Chen et al. 2023, §3: the validation loss of each
skill). The target is always measured on the validation split, drawn from the full,
uniform task distribution.

Without a curriculum (``uniform``), :meth:`TaskWorkload.batches` draws each batch iid
uniformly with replacement, ``np.random.default_rng(seed).integers(0, N, batch_size)`` per
step: exactly the draws of the ``uniform`` sampler, so the uniform control and the plain
loop train the same trajectory.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from steplab.workloads.base import Batch, Workload

if TYPE_CHECKING:
    from steplab.curricula import TaskPool

#: examples per forward pass when scoring the whole pool or the probe split
CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A task-structured training set on one device, plus its per-task probe split."""

    x: torch.Tensor
    y: torch.Tensor
    #: (N,) larger = harder: the task parameter as a score
    difficulty: np.ndarray
    #: (N,) int task (skill) ids in 0..K-1
    tasks: np.ndarray
    #: names of the K tasks, for tables and the run record
    task_names: tuple[str, ...]
    probe_x: torch.Tensor
    probe_y: torch.Tensor
    #: (M,) task id of each probe example (every task has some)
    probe_tasks: np.ndarray
    #: (N, d) continuous task parameters in [0, 1], or None
    params: np.ndarray | None = None
    #: (K, K) 0/1 skill graph for Skill-it, or None (identity)
    skill_graph: np.ndarray | None = None


class TaskWorkload(Workload):
    """A workload whose training examples carry a task parameter (see the module doc).

    Subclasses implement :meth:`task_data` (built once per device and cached by the
    subclass) and :meth:`example_losses`; ``loss`` is their mean."""

    #: tells the training loop (and the error for other workloads) that this one has tasks
    has_tasks = True

    @abstractmethod
    def task_data(self, device: torch.device) -> TaskData:
        """The training set with its task structure and the probe split on ``device``."""

    @abstractmethod
    def example_losses(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The ``(B,)`` training losses of ``model`` on each example of ``batch``."""

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.example_losses(model, batch).mean()

    @property
    def num_tasks(self) -> int:
        """K, the number of discrete tasks."""
        return len(self.task_data(torch.device("cpu")).task_names)

    def examples(self, indices: np.ndarray, device: torch.device) -> Batch:
        """The batch of training examples ``indices`` (into the pool) on ``device``."""
        data = self.task_data(device)
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=device)
        return data.x[idx], data.y[idx]

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        """Endless iid uniform batches: ``default_rng(seed).integers(0, N, batch_size)`` per step."""
        n = len(self.task_data(device).difficulty)  # built here, not at the first next()
        return self._uniform(n, seed, device)

    def _uniform(self, n: int, seed: int, device: torch.device) -> Iterator[Batch]:
        rng = np.random.default_rng(seed)
        while True:
            yield self.examples(rng.integers(0, n, self.batch_size), device)

    def task_pool(self, device: torch.device, difficulty: np.ndarray | None = None) -> TaskPool:
        """What a sampler is told about the pool: difficulty (this workload's task parameter,
        or ``difficulty`` when given, e.g. a reference model's losses), tasks, parameters
        and skill graph."""
        from steplab.curricula import TaskPool

        data = self.task_data(device)
        score = data.difficulty if difficulty is None else np.asarray(difficulty, dtype=float)
        return TaskPool(difficulty=np.asarray(score, dtype=float), tasks=data.tasks, params=data.params,
                        skill_graph=data.skill_graph)

    @torch.no_grad()
    def pool_losses(self, model: nn.Module, device: torch.device) -> np.ndarray:
        """``(N,)`` per-example training losses of ``model`` on the whole pool."""
        data = self.task_data(device)
        out = [self.example_losses(model, (data.x[i:i + CHUNK], data.y[i:i + CHUNK])).float().cpu()
               for i in range(0, len(data.y), CHUNK)]
        return torch.cat(out).numpy().astype(float)

    @torch.no_grad()
    def task_losses(self, model: nn.Module, device: torch.device) -> np.ndarray:
        """``(K,)`` mean loss of ``model`` on each task's probe examples (held out from training)."""
        data = self.task_data(device)
        per = torch.cat([self.example_losses(model, (data.probe_x[i:i + CHUNK], data.probe_y[i:i + CHUNK])).float().cpu()
                         for i in range(0, len(data.probe_y), CHUNK)]).numpy()
        k = len(data.task_names)
        sums = np.bincount(data.probe_tasks, weights=per, minlength=k)
        counts = np.bincount(data.probe_tasks, minlength=k)
        return sums / np.maximum(counts, 1)

    def describe(self) -> dict[str, Any]:
        """The base summary plus the task names."""
        return {**super().describe(), "tasks": list(self.task_data(torch.device("cpu")).task_names)}

