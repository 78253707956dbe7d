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
``p59`` (p = 59 with 40% of the pairs, 1392 training pairs). Two modifiers, for the dynamics
monitors (``steplab.monitors.grokking``), follow a ``+`` or stand alone (the base data):

* ``corrupt-<f>`` (``corrupt-0.1``, ``frac50+corrupt-0.35``): label corruption as in Doshi,
  Das, He & Gromov 2023 ("To grok or not to grok: Disentangling generalization and
  memorization on corrupted algorithmic datasets", arXiv 2310.13061, §2): the first
  ``floor(f * n_train)`` training pairs of a fixed shuffle (corruption seed 420, Doshi et
  al.'s pair seed) get labels drawn uniformly from ``0..p-1`` (a draw may equal the true
  label); validation labels stay clean.
* ``init-x<s>`` (``init-x2``, ``corrupt-0.3+init-x4``): every initial parameter multiplied by
  ``s`` (the same draws as the base model). A larger initialization makes training lazier
  and grokking later (Liu, Michaud & Tegmark 2023, "Omnigrok", arXiv 2210.01117, §3 scale
  the initialization this way; Kumar et al. 2023, arXiv 2310.06110, use an output
  multiplier ``alpha``, which for this bias-carrying 2-layer ReLU network ``s`` raises
  roughly as ``s^3`` from the embedding to the logits).
* ``alpha-<a>`` (``alpha-2``, ``p59+alpha-0.5``): Kumar, Bordelon, Gershman & Pehlevan's
  knob (2023, "Grokking as the transition from lazy to rich training dynamics", arXiv
  2310.06110, §2 and their modular-addition MLP): the model output is ``a * (f_theta(x) -
  f_theta0(x))``, the network's change since initialization times the output scale ``a``
  (:class:`CentredEmbedMLP`; ``f_theta0`` from a frozen copy of the initial weights, so the
  output is exactly 0 at step 0 and ``a`` changes how lazy training is, not the initial
  prediction), trained as they train it: squared error to the one-hot label, summed over the
  ``p`` outputs and averaged over examples (the metric stays validation accuracy;
  ``validation/loss`` is this squared error). Their modular-addition run does not divide the
  loss by ``a^2`` and scales the gradient-descent step as ``lr = 100 / a^2``; do the same
  (``lr ∝ 1/a^2`` for plain SGD, which keeps the early function-space dynamics the same for
  every ``a``, while the weights move ``∝ 1/a``: a larger ``a`` is lazier). With
  ``init-x<s>`` the scale applies to the initial weights first. The calibrated AdamW
  defaults were not tuned for this loss.

Modified variants share their base's data, hyperparameters, budget and target (not
calibrated separately). A name is written in one way only: modifiers in the order above,
numbers as Python's ``format(x, "g")`` writes them.

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

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from steplab.errors import WorkloadError
from steplab.workloads.base import Batch, Target, Workload, shuffled_batches

DATA_SEED, CORRUPT_SEED = 0, 420
EMBED, HIDDEN, N_EVAL = 128, 256, 1024
CONFIG = {"base": (97, 0.3), "frac50": (97, 0.5), "p59": (59, 0.4)}  # (p, train fraction)
_CACHE: dict[tuple[int, float, float, str], tuple[torch.Tensor, ...]] = {}
_FORM = "write e.g. 'corrupt-0.1', 'init-x2', 'alpha-2' or 'frac50+corrupt-0.35+init-x4'"


@dataclasses.dataclass(frozen=True)
class Setting:
    """A variant spelled out: base data ``p``/``frac``, label ``corrupt`` fraction, init scale,
    centred output scale ``alpha`` (``None``: the plain network and cross-entropy)."""

    base: str
    p: int
    frac: float
    corrupt: float = 0.0
    init_scale: float = 1.0
    alpha: float | None = None


def parse_variant(variant: str) -> Setting:
    """The :class:`Setting` of ``variant`` (``base``, ``frac50``, ``p59``, optionally followed
    by ``+corrupt-<f>``, ``+init-x<s>`` and ``+alpha-<a>``); one-line ``WorkloadError`` on anything else."""
    parts = variant.split("+")
    base = parts[0] if parts[0] in CONFIG else "base"
    mods = parts[1:] if parts[0] in CONFIG else parts
    if parts[0] == "base" and mods:
        raise WorkloadError(f"modarith variant {variant!r}: leave out 'base+' ({_FORM})")
    values: dict[str, float] = {}
    for prefix, key in (("corrupt-", "corrupt"), ("init-x", "init_scale"), ("alpha-", "alpha")):
        if mods and mods[0].startswith(prefix):
            text = mods.pop(0)[len(prefix):]
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (0 < value < 1 if key == "corrupt" else 0 < value < math.inf):
                bounds = "in (0, 1)" if key == "corrupt" else "> 0"
                raise WorkloadError(f"modarith variant {variant!r}: {prefix}{text} needs a number {bounds} ({_FORM})")
            if format(value, "g") != text:  # one name per setting
                raise WorkloadError(f"modarith variant {variant!r}: write {prefix}{format(value, 'g')} ({_FORM})")
            values[key] = value
    if mods or not variant:
        raise WorkloadError(f"unknown variant {variant!r} of workload 'modarith'; known: "
                            f"{', '.join(sorted(CONFIG))}, with +corrupt-<f>, +init-x<s> and +alpha-<a> ({_FORM})")
    return Setting(base, *CONFIG[base], **values)


def corruption(n: int, p: int, corrupt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, labels): the first ``floor(corrupt * n)`` positions of a fixed shuffle of the
    ``n`` training pairs and their uniform labels in ``0..p-1`` (Doshi et al. 2023)."""
    gen = torch.Generator().manual_seed(CORRUPT_SEED)
    count = math.floor(corrupt * n + 1e-9)
    index = torch.randperm(n, generator=gen)[:count]
    return index, torch.randint(p, (count,), generator=gen)


def _data(p: int, frac: float, device: torch.device, corrupt: float = 0.0) -> tuple[torch.Tensor, ...]:
    """(pairs_train, y_train, pairs_val, y_val): pairs are (n, 2) long tensors; with
    ``corrupt``, a fraction of ``y_train`` redrawn (:func:`corruption`)."""
    key = (p, frac, corrupt, str(device))
    if key not in _CACHE:
        a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
        pairs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)
        y = (pairs[:, 0] + pairs[:, 1]) % p
        perm = torch.randperm(p * p, generator=torch.Generator().manual_seed(DATA_SEED))
        n_train = round(frac * p * p)
        tr, va = perm[:n_train], perm[n_train:][:N_EVAL]
        y_train = y[tr]
        if corrupt:
            index, labels = corruption(n_train, p, corrupt)
            y_train = y_train.clone()
            y_train[index] = labels
        _CACHE[key] = tuple(t.to(device) for t in (pairs[tr], y_train, pairs[va], y[va]))
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


class CentredEmbedMLP(EmbedMLP):
    """``alpha * (f_theta(x) - f_theta0(x))`` for an :class:`EmbedMLP` ``f`` (Kumar et al.
    2023): the trained weights are the usual ``embed``/``hidden``/``out``; the initial ones are
    kept as buffers (``initial.*``, not trained, saved with the model) and ``f_theta0`` is
    recomputed on the same inputs by the same operations, so the output at step 0 is exactly 0."""

    def __init__(self, base: EmbedMLP, alpha: float) -> None:
        nn.Module.__init__(self)  # no fresh draws: take over base's layers
        self.embed, self.hidden, self.out = base.embed, base.hidden, base.out
        self.alpha = alpha
        self.initial = nn.Module()
        for name, param in base.named_parameters():
            self.initial.register_buffer(name.replace(".", "_"), param.detach().clone())

    def initial_output(self, pairs: torch.Tensor) -> torch.Tensor:
        """``f_theta0(pairs)``, the functional twin of :meth:`EmbedMLP.forward`."""
        w = self.initial
        h = nn.functional.embedding(pairs, w.embed_weight).flatten(1)
        h = torch.relu(nn.functional.linear(h, w.hidden_weight, w.hidden_bias))
        return nn.functional.linear(h, w.out_weight, w.out_bias)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            start = self.initial_output(pairs)
        return self.alpha * (super().forward(pairs) - start)


class ModArith(Workload):
    """``a + b mod p`` with an embedding-MLP, grokking under weight decay (see module doc)."""

    name = "modarith"
    description = "modular addition a+b mod 97, 30% of pairs for training (grokking)"
    evals_per_budget = 30
    variants = {
        "base": "p=97, 30% of the pairs for training",
        "frac50": "p=97, 50% of the pairs for training",
        "p59": "p=59, 40% of the pairs for training",
        "corrupt-0.1": "base with 10% of the training labels redrawn uniformly (Doshi et al. 2023)",
        "corrupt-0.3": "base with 30% of the training labels redrawn uniformly (Doshi et al. 2023)",
        "init-x2": "base with the initial parameters scaled by 2 (lazier start)",
        "init-x4": "base with the initial parameters scaled by 4 (lazier start)",
        "alpha-2": "base, output 2 * (f - f_init), squared error (Kumar et al. 2023; SGD lr ∝ 1/alpha^2)",
    }

    def __init__(self, variant: str = "base", **kwargs: Any) -> None:
        self.setting = parse_variant(variant)
        if variant not in self.variants:  # a composed variant: valid, listed for this instance
            self.variants = {**type(self).variants, variant: "composed variant (see the module doc)"}
        super().__init__(variant, **kwargs)

    @property
    def modulus(self) -> int:
        """``p``."""
        return self.setting.p

    def train_set(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(pairs, labels) of the training split, labels as trained on (corrupted or not)."""
        x, y, _, _ = _data(self.setting.p, self.setting.frac, device, self.setting.corrupt)
        return x, y

    def validation_set(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(pairs, labels) of the validation split (always clean)."""
        _, _, x, y = _data(self.setting.p, self.setting.frac, device)
        return x, y

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        """The calibrated adamw-cosine baseline (see "How the target was set")."""
        lr = 0.07 if self.setting.base == "frac50" else 0.14
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
            model = EmbedMLP(self.setting.p)
        if self.setting.init_scale != 1.0:
            with torch.no_grad():
                for param in model.parameters():
                    param.mul_(self.setting.init_scale)
        if self.setting.alpha is not None:
            return CentredEmbedMLP(model, self.setting.alpha)
        return model

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        x, y = self.train_set(device)  # built here, not at the first next()
        return shuffled_batches(x, y, self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return self._loss(model(x), y)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, or with ``alpha-<a>`` Kumar et al.'s squared error to the one-hot label."""
        if self.setting.alpha is None:
            return nn.functional.cross_entropy(logits, y)
        return (logits - nn.functional.one_hot(y, self.setting.p).to(logits.dtype)).square().sum(1).mean()

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        x, y = self.validation_set(device)
        with torch.no_grad():
            logits = model(x)
            return {
                "validation/accuracy": (logits.argmax(-1) == y).float().mean().item(),
                "validation/loss": self._loss(logits, y).item(),
            }
