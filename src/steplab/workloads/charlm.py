"""``charlm``: a tiny causal transformer character language model on English text.

The language-model workload of the suite: the one whose loss curve keeps falling through
the budget, so learning-rate schedules (and loss-curve prediction) show real differences --
the role of AlgoPerf's LM workloads (Dahl et al. 2023) at CPU scale, with the model of
nanoGPT's ``shakespeare_char`` preset shrunk (Karpathy, nanoGPT; decoder-only transformer
of Radford et al. 2019, pre-LayerNorm). The text is the Python documentation shipped with
the standard library, ``pydoc_data.topics.topics`` (~465k characters of English prose and
code; values joined in sorted key order), so nothing is downloaded. The vocabulary is the
set of characters of the text.

Split (no randomness): the text is cut into 1000-character blocks and every 10th block is
held out for validation (interleaved blocks, as the calibration notes recommend: holding
out the end of the text gives a different distribution). Training windows of 64+1
characters start at uniformly random positions of the concatenated training blocks (the
trial seed drives a ``torch.Generator``). ``validation/loss`` is the mean cross-entropy in
nats per character over a fixed set of 256 evenly spaced validation windows (16k
predicted characters; it costs ~2% of training time at the evaluation cadence).

Model: token + learned position embeddings, ``n_layers`` pre-LN blocks (causal
``scaled_dot_product_attention``, 4 heads; MLP 4x with GELU), final LayerNorm, linear head;
d_model 64, context 64, batch 32.

Variants: ``deeper`` (2 layers) and ``relu`` (ReLU MLP instead of GELU); and the two
stabilizers Wortsman et al. 2023 ("Small-scale proxies for large-scale Transformer training
instabilities", arXiv 2309.14322) study, for ``steplab sensitivity``: ``qk-ln``
(LayerNorm on each head's queries and keys before the dot product, Dehghani et al. 2023,
arXiv 2302.05442), ``zloss`` (the auxiliary loss ``c * mean((log Z)^2)`` on the output
log-partition ``log Z = logsumexp(logits)``, c = 1e-4, Chowdhery et al. 2022, PaLM, arXiv
2204.02311; training loss only: ``validation/loss`` stays the cross-entropy) and
``qk-ln+zloss``. Their weights are base's (same seed, same draws) plus the qk LayerNorms'
ones/zeros; their target is base's, not calibrated separately.

How the target was set
----------------------
``benchmarks/calibrate_targets.py``: AdamW (weight decay 0.01 on weights and embeddings),
linear warm-up 5% + cosine to 0, 3 seeds, one thread per run. Base variant (67k parameters,
vocabulary 103): ~13-15 ms/step on an idle core, so the 4000-step budget (~8.2M training
characters, ~20 passes over the 418k training characters) is a ~60 s trial; evaluation every
200 steps (1/20 of the budget; ~2.4% of training time). Per peak lr: median best validation
loss (nats/char), worst seed's best by 70% of the budget, steps at which seeds reached the
target:

=========  ======  ======  =============  ===========================
variant    target  lr      best / @70%    reach target (steps)
=========  ======  ======  =============  ===========================
base       1.30    1e-2    1.2549/1.3050  3/3 (2600, 2600, 3000)
                   2e-2    1.2450/1.2926  3/3 (2600, 2600, 2800)
                   4e-2    1.2382/1.3112  3/3 (2800, 3000, 3000)
deeper     1.19    1e-2    1.1359/1.1827  3/3 (2600, 2600, 2800)
                   2e-2    1.1334/1.1851  3/3 (2600, 2800, 2800)
                   4e-2    1.1464/1.2251  3/3 (3200, 3200, 3200)
relu       1.31    1e-2    1.2670/1.3175  3/3 (2800, 2800, 3000)
                   2e-2    1.2567/1.3083  3/3 (2600, 2800, 2800)
                   4e-2    1.2395/1.3069  3/3 (2800, 2800, 2800)
=========  ======  ======  =============  ===========================

The loss still falls at the end of the budget (as a language model's should: the schedule's
decay matters here), so the target is the tuned lr's worst seed at 70%, rounded up (tuned:
2e-2 for base, where 2e-2 and 4e-2 end within 0.6%; 2e-2 for deeper; 4e-2 for relu). Every
lr of the grid reaches it at 65-80% of the budget (the variants' rows were measured with
weight decay on every parameter, base's with decay on weights only: base moved by <0.5%); lr
3e-3 (7x smaller) stopped at 1.358 in an earlier 2-seed run and missed it. ``deeper`` (2
layers, 117k parameters) costs about twice as much per step. Seeds differ by ~0.5-1% in best
validation loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from steplab.workloads.base import Batch, Target, Workload

CONTEXT, D_MODEL, N_HEADS, BLOCK, HOLDOUT_EVERY, N_EVAL = 64, 64, 4, 1000, 10, 256
CONFIG = {"base": (1, "gelu"), "deeper": (2, "gelu"), "relu": (1, "relu"),  # layers, act
          "qk-ln": (1, "gelu"), "zloss": (1, "gelu"), "qk-ln+zloss": (1, "gelu")}
TARGET = {"base": 1.30, "deeper": 1.19, "relu": 1.31,  # nats/char, calibrated
          "qk-ln": 1.30, "zloss": 1.30, "qk-ln+zloss": 1.30}  # base's, not calibrated
QK_LN = ("qk-ln", "qk-ln+zloss")  # variants with LayerNorm on queries and keys
Z_LOSS = {"zloss": 1e-4, "qk-ln+zloss": 1e-4}  # variant -> z-loss coefficient c (PaLM)
_CACHE: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_VOCAB: list[str] = []


def _text() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def _data(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_ids, val_windows): a 1-d id stream and (N_EVAL, CONTEXT + 1) windows."""
    key = str(device)
    if key not in _CACHE:
        text = _text()
        if not _VOCAB:
            _VOCAB.extend(sorted(set(text)))
        index = {c: i for i, c in enumerate(_VOCAB)}
        ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        blocks = ids.split(BLOCK)
        train = torch.cat([b for i, b in enumerate(blocks) if i % HOLDOUT_EVERY != 0])
        val = torch.cat([b for i, b in enumerate(blocks) if i % HOLDOUT_EVERY == 0])
        starts = torch.linspace(0, len(val) - CONTEXT - 1, N_EVAL).long()
        windows = val[starts[:, None] + torch.arange(CONTEXT + 1)]
        _CACHE[key] = (train.to(device), windows.to(device))
    return _CACHE[key]


def vocab_size() -> int:
    """Number of distinct characters in the text."""
    if not _VOCAB:
        _VOCAB.extend(sorted(set(_text())))
    return len(_VOCAB)


def _windows(
    ids: torch.Tensor, batch_size: int, seed: int, device: torch.device
) -> Iterator[Batch]:
    """Endless batches of ``CONTEXT + 1``-character windows at seeded random positions."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(CONTEXT + 1, device=device)
    while True:
        starts = torch.randint(len(ids) - CONTEXT - 1, (batch_size,), generator=gen)
        yield ids[starts.to(device)[:, None] + offsets]


class Block(nn.Module):
    """Pre-LN transformer block: causal self-attention then an MLP, both residual;
    ``qk_ln`` adds a LayerNorm over each head's queries and keys (Dehghani et al. 2023)."""

    def __init__(self, act: str, qk_ln: bool = False) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.proj = nn.Linear(D_MODEL, D_MODEL)
        self.mlp = nn.Sequential(
            nn.Linear(D_MODEL, 4 * D_MODEL),
            nn.GELU() if act == "gelu" else nn.ReLU(),
            nn.Linear(4 * D_MODEL, D_MODEL),
        )
        # created last and drawing no random numbers: the other weights stay base's
        self.q_ln = nn.LayerNorm(D_MODEL // N_HEADS) if qk_ln else None
        self.k_ln = nn.LayerNorm(D_MODEL // N_HEADS) if qk_ln else None

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values ``(B, heads, T, d_head)`` of the block input ``x``."""
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, N_HEADS, c // N_HEADS).transpose(1, 2) for z in (q, k, v))
        if self.q_ln is not None:
            q, k = self.q_ln(q), self.k_ln(k)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self._heads(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.ln2(x))

    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-softmax attention scores ``q k^T / sqrt(d_head)`` ``(B, heads, T, T)`` that
        :meth:`forward`'s ``scaled_dot_product_attention`` turns into weights, future keys at
        ``-inf``, for the block input ``x`` (read by ``steplab.monitors.logits``)."""
        q, k, _ = self._heads(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        future = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).triu(1)
        return scores.masked_fill(future, float("-inf"))


class CharTransformer(nn.Module):
    """Token + position embeddings, ``n_layers`` blocks, final LayerNorm, linear head."""

    def __init__(self, vocab: int, n_layers: int, act: str, qk_ln: bool = False) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, D_MODEL)
        self.pos = nn.Embedding(CONTEXT, D_MODEL)
        self.blocks = nn.Sequential(*(Block(act, qk_ln) for _ in range(n_layers)))
        self.ln = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.head(self.ln(self.blocks(self.tok(idx) + self.pos(pos))))


class CharLM(Workload):
    """1-layer char transformer on the stdlib's pydoc topics text (see module doc)."""

    name = "charlm"
    description = "char transformer (1 layer, d=64, context 64) on pydoc_data topics text"
    variants = {
        "base": "1 layer, d_model 64, 4 heads, GELU MLP",
        "deeper": "2 layers, d_model 64, 4 heads, GELU MLP",
        "relu": "1 layer, d_model 64, 4 heads, ReLU MLP",
        "qk-ln": "base + LayerNorm on queries and keys (Dehghani et al. 2023)",
        "zloss": "base + z-loss 1e-4 * (log Z)^2 in the training loss (PaLM)",
        "qk-ln+zloss": "base + qk-layernorm + z-loss",
    }

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        """The calibrated adamw-cosine baseline (see "How the target was set")."""
        return {"lr": 0.04 if self.variant == "relu" else 0.02, "weight_decay": 0.01}

    @property
    def default_budget_steps(self) -> int:
        return 4000

    @property
    def default_target(self) -> Target:
        return Target("validation/loss", TARGET[self.variant], "min")

    @property
    def batch_size(self) -> int:
        return 32

    def init_model(self, seed: int) -> nn.Module:
        layers, act = CONFIG[self.variant]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CharTransformer(vocab_size(), layers, act, qk_ln=self.variant in QK_LN)

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        train, _ = _data(device)  # built here, not at the first next()
        return _windows(train, self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Cross-entropy in nats/char, plus ``c * mean(logsumexp(logits)^2)`` for the z-loss
        variants (PaLM's auxiliary loss, averaged over the predicted characters)."""
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        c = Z_LOSS.get(self.variant)
        if c is not None:
            loss = loss + c * torch.logsumexp(logits, dim=-1).square().mean()
        return loss

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        _, windows = _data(device)
        with torch.no_grad():
            logits = model(windows[:, :-1])  # the cross-entropy alone, z-loss or not
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
            return {"validation/loss": ce.item()}
