"""The workload contract (after AlgoPerf's ``algoperf/spec.py``, Dahl et al. 2023).

A workload is a real learning problem with a fixed data set, a model family, a loss, a
held-out evaluation, a validation *target* and a step budget. Training algorithms are
compared by how fast they reach the target. Metric names carry a ``train/`` or
``validation/`` prefix, as AlgoPerf's ``eval_model`` does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from steplab.workloads.target import Target

Batch = Any


def shuffled_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, device: torch.device
) -> Iterator[Batch]:
    """Endless minibatches ``(x[idx], y[idx])`` of preloaded tensors, reshuffled every epoch
    by a CPU generator seeded ``seed`` (same order on every device); the ragged last batch
    of an epoch is dropped."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(x.shape[0], generator=gen).to(device)
        for i in range(0, x.shape[0] - batch_size + 1, batch_size):
            idx = perm[i : i + batch_size]
            yield x[idx], y[idx]


class Workload(ABC):
    """A learning problem with a budget and a target.

    Subclasses set ``name`` and ``variants`` (variant name -> one-line description) and
    implement the abstract members. ``variant`` picks one of ``variants``; ``"base"`` is
    always present. ``budget_steps`` and ``target`` may be overridden per instance (a
    suite's short budgets), everything else is fixed by the workload and variant.
    """

    name: str = ""
    description: str = ""
    variants: dict[str, str] = {"base": "the reference configuration"}
    #: the calibrated baseline that set the target (AlgoPerf sets targets from a tuned
    #: baseline): an algorithm name and its hyperparameters
    default_algorithm: str = "adamw-cosine"
    default_hyperparameters: dict[str, Any] = {}

    def __init__(
        self,
        variant: str = "base",
        *,
        budget_steps: int | None = None,
        target: Target | None = None,
    ) -> None:
        from steplab.errors import WorkloadError

        if variant not in self.variants:
            known = ", ".join(sorted(self.variants))
            raise WorkloadError(
                f"unknown variant {variant!r} of workload {self.name!r}; known: {known}"
            )
        if budget_steps is not None and (
            isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 1
        ):
            raise WorkloadError(f"budget_steps must be an integer >= 1, got {budget_steps!r}")
        if target is not None and not isinstance(target, Target):
            raise WorkloadError(f"target must be a Target(metric, value, mode), got {target!r}")
        self.variant = variant
        self._budget_steps = budget_steps
        self._target = target

    # -- budget and target -------------------------------------------------------------
    @property
    def budget_steps(self) -> int:
        """The step budget (AlgoPerf's ``step_hint``); schedules are built for it. Times
        ``STEPLAB_BUDGET_SCALE`` when that is set (:mod:`steplab.workloads.scale`)."""
        from steplab.workloads.scale import scaled_steps

        return scaled_steps(self._budget_steps if self._budget_steps is not None else self.default_budget_steps)

    @property
    def target(self) -> Target:
        """The validation target that defines time-to-result."""
        return self._target if self._target is not None else self.default_target

    @property
    @abstractmethod
    def default_budget_steps(self) -> int: ...

    @property
    @abstractmethod
    def default_target(self) -> Target: ...

    #: updates at which the training data changes on purpose (the task switches of a continual
    #: stream): the divergence check measures the loss against the loss there, not at step 0
    divergence_resets: tuple[int, ...] = ()

    #: evaluations per budget; ``eval_every`` follows the budget, so a suite's shorter
    #: budget keeps the same number of evaluations
    evals_per_budget: int = 20

    @property
    def eval_every(self) -> int:
        """Evaluate on held-out data every this many steps (a run scaled by
        ``STEPLAB_BUDGET_SCALE`` evaluates about 4 times)."""
        from steplab.workloads.scale import SCALED_EVALS, budget_scale

        evals = self.evals_per_budget if budget_scale() == 1.0 else min(SCALED_EVALS, self.evals_per_budget)
        return max(1, self.budget_steps // evals)

    @property
    @abstractmethod
    def batch_size(self) -> int: ...

    # -- model, data, loss, evaluation -------------------------------------------------
    @abstractmethod
    def init_model(self, seed: int) -> nn.Module:
        """A freshly initialised model; the same seed gives the same weights."""

    @abstractmethod
    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        """An endless, seeded stream of training batches already on ``device``."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The scalar training loss of ``model`` on ``batch`` (a 0-d tensor)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Metrics on the held-out split, names prefixed ``validation/`` (model in eval mode,
        no gradients; the caller sets the mode)."""

    #: seed of the fixed training sample that :meth:`train_loss` averages over (a stream
    #: no training run draws: run seeds are small integers)
    train_eval_seed: int = 2**31 - 1

    @torch.no_grad()
    def train_loss(self, model: nn.Module, device: torch.device, batches: int) -> float:
        """Mean training loss of ``model`` over the first ``batches`` minibatches of the
        training stream seeded :attr:`train_eval_seed`: the same sample at every call, so the
        values over a run form a smooth curve (AlgoPerf likewise evaluates ``train/`` metrics
        on a fixed subset of the training split). The caller sets eval mode."""
        if batches < 1:
            raise ValueError(f"train_loss needs batches >= 1, got {batches}")
        stream = self.batches(self.train_eval_seed, device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for _ in range(batches):
            total += self.loss(model, next(stream)).double()
        return float(total) / batches

    # -- identity ----------------------------------------------------------------------
    @property
    def key(self) -> str:
        """``name`` or ``name:variant`` for non-base variants."""
        return self.name if self.variant == "base" else f"{self.name}:{self.variant}"

    #: a workload loaded by reference (``path/file.py:Class``, ``package.module:Class``;
    #: :mod:`steplab.workloads.references`): that reference as stored (also its ``name``) and
    #: the SHA-256 of the source file that defined the class; ``None`` for a built-in
    reference: str | None = None
    source_sha256: str | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary; a workload loaded by reference adds ``reference`` and
        ``source_sha256`` (the run record stores the hash: ``TrialSpec.settings``)."""
        t = self.target
        return {
            "name": self.name,
            "variant": self.variant,
            "budget_steps": self.budget_steps,
            "eval_every": self.eval_every,
            "batch_size": self.batch_size,
            "target": {"metric": t.metric, "value": t.value, "mode": t.mode},
            **({"reference": self.reference, "source_sha256": self.source_sha256} if self.reference else {}),
        }
