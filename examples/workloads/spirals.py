"""Two interleaved spirals classified by a small MLP: a plain PyTorch model and two
``TensorDataset``s made a steplab workload with ``from_torch`` (docs/tutorials/workload.md).

    steplab run examples/workloads/spirals.py:TwoSpirals -a adamw-cosine
    steplab bench --workloads examples/workloads/spirals.py:TwoSpirals --algorithms adamw-cosine,sgd-nesterov-cosine

Nothing here is steplab-specific but the last statement. The target (validation accuracy
0.95) is met by AdamW at its default lr (3e-3, cosine) after about 60% of the 600-step
budget; a trial trains in under a second on one CPU thread.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import TensorDataset

from steplab.workloads import Target, from_torch


def spirals(n: int, seed: int, noise: float = 0.04) -> TensorDataset:
    """``n`` points of two interleaved spirals (label 0 or 1), radius growing from 0.1 to 1
    over 1.5 turns, Gaussian noise ``noise``; the same ``seed`` gives the same points."""
    gen = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=gen)
    t = torch.rand(n, generator=gen)
    angle = 3 * math.pi * t + math.pi * label
    radius = 0.1 + 0.9 * t
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return TensorDataset(x + noise * torch.randn(n, 2, generator=gen), label)


class SpiralNet(nn.Module):
    """MLP 2-64-64-2 with ReLU activations."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


TwoSpirals = from_torch(
    name="two-spirals",
    description="MLP 2-64-64-2 on two interleaved spirals (2000 train / 1000 validation points)",
    model=SpiralNet,
    train=lambda: spirals(2000, seed=0),
    validation=lambda: spirals(1000, seed=1),
    loss=nn.functional.cross_entropy,
    metric="accuracy",
    target=Target("validation/accuracy", 0.95, "max"),
    budget_steps=400,
    batch_size=64,
)
