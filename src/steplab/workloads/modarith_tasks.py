"""``modarith-skills``: several modular operations as skills (Skill-it's setting).

Chen et al. 2023 ("Skill-it! A Data-Driven Skills Framework for Understanding and Training
Language Models", arXiv 2307.14430) train on a mixture of skills (their addition task: digit
positions) and choose the mixture online. Here the skills are four operations ``a o b mod
p`` with ``p = 31`` -- ``a + b``, ``a - b``, ``a * b`` and ``a^2 + b^2`` -- learned by one
embedding-MLP (the grokking network of :mod:`steplab.workloads.modarith`, Liu et al. 2022:
embedding 128, hidden 256) that reads three tokens: ``a``, ``b`` and the operation. Per
operation, a fixed 75% of the ``p^2`` pairs are training examples (721 each, 2,884 in all),
32 other pairs are the probe split (per-skill held-out loss), and 128 more are the
validation split; data seed 0.

The task parameter is the operation; its difficulty score is the operation's rank in the
order above (addition and subtraction are one Fourier feature apart, products and squares
need more of them; a reference model's loss, ``score=reference``, measures it instead). The
skill graph for Skill-it is the identity. The target is the validation accuracy over all
four operations equally (the uniform task distribution).

How the target was set
----------------------
AdamW (wd 1, betas 0.9/0.98, as modarith) + cosine, uniform sampling, one seed (a first
calibration; the benchmark's uniform runs check it on 3 more). Within a few hundred steps
only ``a^2 + b^2`` generalizes (0.95-0.99 held-out accuracy); the three others stay at
0.15-0.3 (with 40% of the pairs, or ``p = 59``, none of them rose above chance in 800
steps). Budget 600: best accuracy over all four 0.29 (lr 1e-2), 0.43 (3e-2, 0.37 by step
200), 0.40 (1e-1). Target 0.35 at lr 3e-2 over a 500-step budget: the skills still to learn
are where a sampler could move the mixture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from steplab.workloads.base import Batch, Target
from steplab.workloads.curriculum_data import TaskData, TaskWorkload

DATA_SEED, P, FRAC, N_PROBE, N_VALIDATION = 0, 31, 0.75, 32, 128
EMBED, HIDDEN = 128, 256
OPS = ("a+b", "a-b", "a*b", "a^2+b^2")
BUDGET, TARGET, LR = 500, 0.35, 3e-2
_CACHE: dict[str, tuple[TaskData, torch.Tensor, torch.Tensor]] = {}


def answers(a: np.ndarray, b: np.ndarray, op: int) -> np.ndarray:
    """``a o b mod P`` for operation ``OPS[op]``."""
    return [(a + b), (a - b), (a * b), (a * a + b * b)][op] % P


def build_splits() -> dict[str, np.ndarray]:
    """(train, probe, validation) rows ``(a, b, op)`` and answers, per operation a fixed shuffle."""
    rng = np.random.default_rng(DATA_SEED)
    a, b = (g.reshape(-1) for g in np.meshgrid(np.arange(P), np.arange(P), indexing="ij"))
    n_train = round(FRAC * P * P)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("train", "probe", "validation")}
    for op in range(len(OPS)):
        perm = rng.permutation(P * P)
        rows = np.stack([a, b, np.full_like(a, P + op), answers(a, b, op), np.full_like(a, op)], axis=1)[perm]
        parts["train"].append(rows[:n_train])
        parts["probe"].append(rows[n_train:n_train + N_PROBE])
        parts["validation"].append(rows[n_train + N_PROBE:n_train + N_PROBE + N_VALIDATION])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _data(device: torch.device) -> tuple[TaskData, torch.Tensor, torch.Tensor]:
    key = str(device)
    if key not in _CACHE:
        s = build_splits()
        t = lambda v: torch.as_tensor(v, dtype=torch.int64).to(device)  # noqa: E731
        ops = s["train"][:, 4]
        data = TaskData(x=t(s["train"][:, :3]), y=t(s["train"][:, 3]), difficulty=ops / (len(OPS) - 1.0),
                        tasks=ops.astype(np.int64), task_names=OPS, probe_x=t(s["probe"][:, :3]),
                        probe_y=t(s["probe"][:, 3]), probe_tasks=s["probe"][:, 4].astype(np.int64))
        _CACHE[key] = (data, t(s["validation"][:, :3]), t(s["validation"][:, 3]))
    return _CACHE[key]


class SkillMLP(nn.Module):
    """Embeddings of ``a``, ``b`` and the operation token (one table), concatenated, one
    ReLU layer, logits over the ``P`` answers."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(P + len(OPS), EMBED)
        self.hidden = nn.Linear(3 * EMBED, HIDDEN)
        self.out = nn.Linear(HIDDEN, P)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.embed(rows).flatten(1))))


class ModArithSkills(TaskWorkload):
    """Four modular operations as skills for one network (see the module doc)."""

    name = "modarith-skills"
    description = "a+b, a-b, a*b, a^2+b^2 mod 31 as four skills, 40% of each table (Skill-it's setting)"
    evals_per_budget = 30
    variants = {"base": "p=31, four operations, 40% of each table for training"}

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        return {"lr": LR, "weight_decay": 1.0, "beta2": 0.98}

    @property
    def default_budget_steps(self) -> int:
        return BUDGET

    @property
    def default_target(self) -> Target:
        return Target("validation/accuracy", TARGET, "max")

    @property
    def batch_size(self) -> int:
        return 256

    def task_data(self, device: torch.device) -> TaskData:
        return _data(device)[0]

    def init_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SkillMLP()

    def example_losses(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(model(x), y, reduction="none")

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        _, x, y = _data(device)
        with torch.no_grad():
            logits = model(x)
            return {"validation/accuracy": (logits.argmax(-1) == y).float().mean().item(),
                    "validation/loss": nn.functional.cross_entropy(logits, y).item()}
