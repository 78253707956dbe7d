"""Least squares written directly against the ``Workload`` contract: the "minimal family" of
docs/tutorials/workload.md (that page shows this file's code; a test keeps them the same).

    steplab run examples/workloads/quadratic.py:Quadratic -a adamw-cosine
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from steplab.workloads.base import Batch, Target, Workload, shuffled_batches


class Quadratic(Workload):
    """Least squares on fixed synthetic data (a toy, to show the contract)."""

    name = "quadratic"
    description = "linear regression, d=20, n=2000"
    variants = {"base": "the reference configuration"}

    @property
    def default_budget_steps(self) -> int:
        return 300

    @property
    def default_target(self) -> Target:
        return Target("validation/loss", 0.02, "min")

    @property
    def batch_size(self) -> int:
        return 32

    def _data(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(0)          # the data seed, not the trial seed
        x = torch.randn(4000, 20, generator=gen)
        y = x @ (0.1 * torch.randn(20, 1, generator=gen)) + 0.1 * torch.randn(4000, 1, generator=gen)
        return tuple(t.to(device) for t in (x[:2000], y[:2000], x[2000:], y[2000:]))

    def init_model(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Linear(20, 1)

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        x, y, _, _ = self._data(device)
        return shuffled_batches(x, y, self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        _, _, x, y = self._data(device)
        with torch.no_grad():
            return {"validation/loss": float(nn.functional.mse_loss(model(x), y))}
