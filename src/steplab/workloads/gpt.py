"""nanoGPT's GPT (Karpathy, karpathy/nanoGPT ``model.py``), restated: a decoder-only
transformer (Radford et al. 2019, GPT-2) with pre-LayerNorm blocks.

* token embedding ``wte`` plus a *learned* position embedding ``wpe``, then dropout;
* ``n_layer`` blocks ``x += attn(ln_1(x)); x += mlp(ln_2(x))``; a final ``ln_f``;
* attention: one fused QKV ``Linear(d, 3d)``, ``n_head`` heads, causal
  ``scaled_dot_product_attention`` (scale ``1/sqrt(d/n_head)``), output ``c_proj``;
* MLP: ``Linear(d, 4d)``, exact GELU (``nn.GELU()``, not the tanh form), ``c_proj``
  ``Linear(4d, d)``, dropout;
* no biases (``bias=False``, nanoGPT's ``train.py`` default; LayerNorm without bias too);
* weight tying (Press & Wolf 2017): ``lm_head.weight`` *is* ``wte.weight``;
* init: every Linear and Embedding weight ``N(0, 0.02^2)``, biases 0, then every
  ``*c_proj.weight`` again from ``N(0, (0.02 / sqrt(2 n_layer))^2)`` (GPT-2's scaled
  residual init). Modules are created and initialised in nanoGPT's order, so one seed gives
  the same draws.

With vocabulary 65, d 128, 4 layers, 4 heads and context 64 (the CPU "baby GPT" of nanoGPT's
README) the model has 804,096 parameters (795,904 without ``wpe``: nanoGPT's "0.80M").
:meth:`CausalSelfAttention.attention_logits` gives the scores the softmax sees, for
monitors; ``forward`` keeps the fused SDPA kernel.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """nanoGPT's ``GPTConfig`` with the values of its CPU shakespeare-char command."""

    #: context length (characters)
    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    #: biases in Linear and LayerNorm (nanoGPT's ``train.py`` default is False)
    bias: bool = False


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused QKV projection (nanoGPT)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd {config.n_embd} is not a multiple of n_head {config.n_head}")
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)  # nanoGPT's slow path only; SDPA takes dropout_p
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        return tuple(z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))  # type: ignore[return-value]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self._heads(x)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c)))

    def attention_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-softmax attention scores ``q k^T / sqrt(head size)`` of input ``x``
        (``(B, T, C)``, the block's ``ln_1`` output), shape ``(B, n_head, T, T)``, with the
        future positions (key after query) set to ``-inf``: ``softmax(logits) @ v`` is what
        :meth:`forward`'s SDPA computes (without dropout)."""
        q, k, _ = self._heads(x)
        t = x.shape[1]
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        return logits.masked_fill(future, float("-inf"))


class MLP(nn.Module):
    """``c_fc`` (d -> 4d), exact GELU, ``c_proj`` (4d -> d), dropout."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT: ``forward(idx)`` maps ``(B, T)`` token ids to ``(B, T, vocab)`` logits."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(config.vocab_size, config.n_embd),
            "wpe": nn.Embedding(config.block_size, config.n_embd),
            "drop": nn.Dropout(config.dropout),
            "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias),
        })
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying: one Parameter
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence of length {t} is longer than the context {self.config.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))
