"""``self-paced``: loss-thresholded self-paced learning (Kumar, Packer & Koller 2010,
"Self-Paced Learning for Latent Variable Models", NeurIPS, §3).

Kumar et al. minimise ``r(w) + sum_i v_i l_i(w) - (1/K) sum_i v_i`` over ``v in {0,1}^n``,
whose closed form is ``v_i = 1[l_i < lambda]`` with ``lambda = 1/K``, and anneal ``lambda``
up by a factor ``mu`` per outer iteration (``mu = 1.3`` in the paper, as recalled [U])
until every example is used. For SGD steplab adapts it as follows [U, steplab's design;
the sheet's proposal]:

* a warm-up of ``warmup`` updates walks through a seeded permutation, so (nearly) every
  example's loss is seen once (0 = ``min(ceil(N / batch), ceil(0.1 budget))``);
* each example's loss estimate is the loss it had the last time it was in a batch (the
  update's own forward pass); unseen examples count as easy;
* ``lambda_0`` is the ``q0`` quantile of the estimates after the warm-up and
  ``lambda_t = lambda_0 mu^floor((t - warmup) / period)`` (0 = ``period`` of 5% of the
  budget); from ``end * budget`` on, ``lambda = inf``;
* the pool holds the ``m_t`` examples with the lowest estimates, ``m_t = max(m_{t-1},
  #{i: l_i <= lambda_t})``: the selected fraction never shrinks (stale estimates could
  otherwise flicker) and reaches 1 at ``end``; the batch is drawn uniformly without
  replacement from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from steplab.curricula.base import BaseSampler, TaskPool, check_range


class SelfPaced(BaseSampler):
    """Self-paced learning with a growing loss threshold (module docstring)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        self.q0, self.mu = options["q0"], options["mu"]
        self.period = options["period"] or max(1, round(0.05 * budget_steps))
        self.warmup = options["warmup"] or min(math.ceil(self.n / batch_size), math.ceil(0.1 * budget_steps))
        self.end_step = options["end"] * budget_steps
        self.loss = np.full(self.n, -np.inf)
        self.perm, self.cursor = self.rng.permutation(self.n), 0
        self.lambda0: float | None = None
        self.lam = math.inf
        self.size = self.n

    def _warmup_batch(self) -> np.ndarray:
        out, need = [], self.batch_size
        while need:
            if self.cursor >= self.n:
                self.perm, self.cursor = self.rng.permutation(self.n), 0
            take = self.perm[self.cursor:self.cursor + need]
            out.append(take)
            self.cursor += take.size
            need -= take.size
        return np.concatenate(out)

    def _draw(self, step: int) -> np.ndarray:
        if step < self.warmup:
            return self._warmup_batch()
        if self.lambda0 is None:
            seen = self.loss[np.isfinite(self.loss)]
            self.lambda0 = float(np.quantile(seen, self.q0)) if seen.size else math.inf
            self.size = 0
        if step >= self.end_step:
            self.lam = math.inf
        else:
            self.lam = self.lambda0 * self.mu ** ((step - self.warmup) // self.period)
        count = int(np.count_nonzero(self.loss <= self.lam))
        self.size = max(self.size, count, min(self.batch_size, self.n))
        if self.size >= self.n:
            return self._subset(self.n, np.arange(self.n))
        lowest = np.argpartition(self.loss, self.size - 1)[: self.size]
        return self._subset(self.size, lowest)

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None:
        self.loss[np.asarray(indices)] = np.asarray(losses, dtype=float)

    def state(self) -> dict[str, Any]:
        """``lambda`` (None while infinite) and the selected ``pool_fraction``; both None
        during the warm-up, which measures losses and selects nothing."""
        if self.lambda0 is None:
            return {"lambda": None, "pool_fraction": None, "warmup": True}
        lam = None if math.isinf(self.lam) else float(self.lam)
        return {"lambda": lam, "pool_fraction": round(self.size / self.n, 6)}


def make_self_paced(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                    seed: int) -> SelfPaced:
    check_range("self-paced", "q0", options["q0"], 0.0, 1.0, low_open=True)
    check_range("self-paced", "mu", options["mu"], 1.0, float("inf"), low_open=True)
    check_range("self-paced", "end", options["end"], 0.0, 1.0)
    check_range("self-paced", "period", options["period"], 0, float("inf"))
    check_range("self-paced", "warmup", options["warmup"], 0, float("inf"))
    return SelfPaced(pool, options, budget_steps, batch_size, seed)
