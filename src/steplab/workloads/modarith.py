"""``modarith``: modular addition ``a + b mod p``, the grokking problem.

Power et al. 2022 ("Grokking: Generalization Beyond Overfitting on Small Algorithmic
Datasets", arXiv 2201.02177) train on a fraction of the table of ``a o b mod p`` and hold
out the rest: the network fits the training pairs early and generalizes to the held-out
pairs much later, and weight decay (AdamW, wd 1) is among the most effective levers on that
delay. For CPU speed steplab uses the embedding-MLP form of the problem (Liu et al. 2022,
"Towards Understanding Grokking: An Effective Theory of Representation Learning"; Gromov
2023, "Grokking modular arithmetic") rather than Power et al.'s 2-layer transformer: learned
embeddings of ``a`` and ``b`` (shared table, dimension 128) are concatenated and fed to one
hidden layer (width 256, ReLU) and a linear read-out over the ``p`` answers, cross-entropy.

Data (data seed 0): all ``p^2`` pairs with ``p = 97``; a fixed random 30% are the training
set (2823 pairs, the fraction of Nanda et al. 2023, "Progress measures for grokking via
mechanistic interpretability"), and a fixed 1024 of the other 6586 pairs are the validation
set (enough for the accuracy to 0.1%, and cheap to evaluate every 10 steps). Batch 512,
reshuffled each epoch (ragged last batch dropped). The metric is validation accuracy; the
training loss falls first while the validation loss *rises* (memorization), then the
validation accuracy jumps: time-to-target measures *time to grok*.

Variants: ``frac50`` (50% of the pairs for training: groks sooner and at lower lr) and
``p59`` (p = 59 with 40% of the pairs, 1392 training pairs).

How the target was set
----------------------
Target: 0.95 validation accuracy, the grokking criterion of Grokfast (Lee et al. 2024).
Budget from ``benchmarks/calibrate_targets.py``: AdamW with weight decay 1 (on weights and
embeddings, not biases) and betas (0.9, 0.98) as in Power et al., linear warm-up 5% + cosine
to 0, 3 seeds, one thread; ~3.3 ms/step (a trial trains for ~1 s), evaluation every 10 steps
(1/30 of the budget; ~7% of training time). Grokking speed is set by the product lr x weight
decay. A first scan (40% of the pairs, decay on every parameter): at lr 1e-3 (Power et al.'s
value) the model had not grokked after 3000 steps, at 3e-3 it reached 0.92 by 3000 steps, at
1e-2 0.95 by ~750, at 1e-1 by ~150; at 2e-1 and above training broke down. Base variant,
budget 300 steps, per peak lr (median best accuracy, worst seed's best by 70% of the budget,
steps at which seeds reached 0.95; the training loss never rose above 1.1x its initial
value):

=======  ======  ==========  =====================
lr       best    worst @70%  reach 0.95 (steps)
=======  ======  ==========  =====================
5e-2     0.0039  0.0010      0/3
7e-2     0.1758  0.0703      0/3
1e-1     0.9883  0.9229      3/3 (220, 230, 240)
1.4e-1   1.0000  0.9473      3/3 (150, 160, 220)
=======  ======  ==========  =====================

The tuned baseline reaches the target at 50-80% of the budget; an lr x wd below ~0.07 does
not grok in time: this workload rewards strong (decoupled) weight decay and a large step,
and punishes anything slower by a cliff, so report how many seeds reached it. Variants
(same budget): ``frac50`` reaches 0.95 at 100-120 steps for lr 5e-2..7e-2 and 130-170 for
1e-1, and fails at 1.4e-1; ``p59`` at 120-140 steps for lr 1.4e-1 (2/3 seeds at 1e-1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from steplab.workloads.base import Batch, Target, Workload, shuffled_batches

DATA_SEED = 0
EMBED, HIDDEN, N_EVAL = 128, 256, 1024
CONFIG = {"base": (97, 0.3), "frac50": (97, 0.5), "p59": (59, 0.4)}  # (p, train fraction)
_CACHE: dict[tuple[int, float, str], tuple[torch.Tensor, ...]] = {}


def _data(p: int, frac: float, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(pairs_train, y_train, pairs_val, y_val): pairs are (n, 2) long tensors."""
    key = (p, frac, str(device))
    if key not in _CACHE:
        a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
        pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
        y = (pairs[:, 0] + pairs[:, 1]) % p
        perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(DATA_SEED))
        n_train = round(frac * p * p)
        tr, va = perm[:n_train], perm[n_train:][:N_EVAL]
        _CACHE[key] = tuple(t.to(device) for t in (pairs[tr], y[tr], pairs[va], y[va]))
    return _CACHE[key]


class EmbedMLP(nn.Module):
    """Shared token embedding for ``a`` and ``b``, concatenated, one ReLU layer, logits."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(p, EMBED)
        self.hidden = nn.Linear(2 * EMBED, HIDDEN)
        self.out = nn.Linear(HIDDEN, p)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        h = self.embed(pairs).flatten(1)
        return self.out(torch.relu(self.hidden(h)))


class ModArith(Workload):
    """``a + b mod p`` with an embedding-MLP, grokking under weight decay (see module doc)."""

    name = "modarith"
    description = "modular addition a+b mod 97, 30% of pairs for training (grokking)"
    evals_per_budget = 30
    variants = {
        "base": "p=97, 30% of the pairs for training",
        "frac50": "p=97, 50% of the pairs for training",
        "p59": "p=59, 40% of the pairs for training",
    }

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        """The calibrated adamw-cosine baseline (see "How the target was set")."""
        lr = 0.07 if self.variant == "frac50" else 0.14
        return {"lr": lr, "weight_decay": 1.0, "beta2": 0.98}

    @property
    def default_budget_steps(self) -> int:
        return 300

    @property
    def default_target(self) -> Target:
        return Target("validation/accuracy", 0.95, "max")

    @property
    def batch_size(self) -> int:
        return 512

    def init_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return EmbedMLP(CONFIG[self.variant][0])

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        x, y, _, _ = _data(*CONFIG[self.variant], device)  # built here, not at the first next()
        return shuffled_batches(x, y, self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        _, _, x, y = _data(*CONFIG[self.variant], device)
        with torch.no_grad():
            logits = model(x)
            return {
                "validation/accuracy": (logits.argmax(-1) == y).float().mean().item(),
                "validation/loss": nn.functional.cross_entropy(logits, y).item(),
            }
