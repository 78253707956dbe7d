"""Curricula fixed in advance: ``uniform`` (the control), the paced ``easy-to-hard`` /
``hard-to-easy`` / ``random-order`` family, and Kesgin & Amasyali's ``cyclical``.

None of them reads losses; each draws only from its private generator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from steplab.curricula.base import BaseSampler, TaskPool, check_range, tie_broken_order
from steplab.curricula.pacing import pacing_size


class Uniform(BaseSampler):
    """iid uniform over the pool, with replacement: update ``t`` gets the ``t``-th call of
    ``np.random.default_rng(seed).integers(0, N, batch_size)``, so ``uniform`` is the no-op
    control of every curriculum comparison (Weber et al. 2023, arXiv 2308.12202)."""

    def _draw(self, step: int) -> np.ndarray:
        return self.rng.integers(0, self.n, self.batch_size)


class Paced(BaseSampler):
    """A fixed order and a pacing function (Hacohen & Weinshall 2019, arXiv 1904.03626, §2):
    update ``t`` draws ``batch_size`` examples uniformly *without replacement* from the
    first ``g(t)`` of the order, independently at each step.

    ``order`` is ``easy`` (easy to hard: the curriculum), ``hard`` (hard to easy: the
    anti-curriculum) or ``random`` (a seeded shuffle with the same pacing: the control that
    separates ordering from the growing data-set size, Weber et al. 2023 §4; Hacohen &
    Weinshall's "random" baseline). Ties in difficulty are broken in a seeded random order.
    When ``g(t)`` is below the batch size the pool is widened to one batch (Hacohen &
    Weinshall require ``start * N >= batch_size``)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int, order: str) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        if order == "random":
            self.order = self.rng.permutation(self.n)
        else:
            self.order = tie_broken_order(pool.difficulty, self.rng, reverse=order == "hard")
        self.g = pacing_size(self.n, options["pacing"], start=options["start"],
                             end_steps=options["end"] * budget_steps, inc=options["inc"],
                             step_len=options["step_len"], stages=options["stages"])
        self.pool_size = self.g(0)

    def _draw(self, step: int) -> np.ndarray:
        self.pool_size = max(self.g(step), min(self.batch_size, self.n))
        return self._subset(self.pool_size, self.order)

    def state(self) -> dict[str, Any]:
        return {"pool_fraction": round(self.pool_size / self.n, 6)}


def _paced(order: str):
    def make(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
             seed: int) -> Paced:
        name = {"easy": "easy-to-hard", "hard": "hard-to-easy", "random": "random-order"}[order]
        check_range(name, "start", options["start"], 0.0, 1.0, low_open=True)
        check_range(name, "end", options["end"], 0.0, 1.0, low_open=True)
        check_range(name, "inc", options["inc"], 1.0, float("inf"), low_open=True)
        check_range(name, "step_len", options["step_len"], 0, float("inf"))
        check_range(name, "stages", options["stages"], 1, float("inf"))
        return Paced(pool, options, budget_steps, batch_size, seed, order)

    return make


def _cycle(start: float, end: float, alpha: float) -> Iterator[float]:
    """The endless cyclical sequence of :func:`steplab.curricula.pacing.cyclic_fractions`."""
    n, growing = start, True
    yield n
    while True:
        grow = n == start or (growing and n != end)
        nxt = min(n / alpha, end) if grow else max(n * alpha, start)
        growing, n = nxt > n, nxt
        yield n


class Cyclical(BaseSampler):
    """Cyclical curriculum (Kesgin & Amasyali, "Cyclical Curriculum Learning", IEEE TNNLS
    2023, arXiv 2202.05531, Algorithm 1): "epochs" whose size cycles between ``start`` and
    ``end`` of the data (growing by ``1/alpha``, shrinking by ``alpha``,
    :func:`~steplab.curricula.pacing.cyclic_fractions`). Each epoch takes ``floor(N f)``
    examples without replacement with probability proportional to a score that favours easy
    ones, shuffles them, and serves them in batches; a batch that crosses an epoch's end
    continues into the next, so every update still gets exactly ``batch_size`` examples.

    Score: the authors use 1/loss of a vanilla-trained model. steplab's difficulty may be a
    task parameter on any scale, so it is min-max scaled to [0, 1] first and the score is
    ``1 / (floor + scaled)`` (``floor`` = 0.1: the easiest example is 11 times as likely as
    the hardest) [our choice]. Weighted sampling without replacement uses the exponential
    keys of Efraimidis & Spirakis 2006 (the same law as drawing one by one in proportion
    to the score)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        d = pool.difficulty
        span = float(d.max() - d.min())
        scaled = (d - d.min()) / span if span > 0 else np.zeros_like(d)
        self.score = 1.0 / (options["floor"] + scaled)
        self.fractions = _cycle(options["start"], options["end"], options["alpha"])
        self.queue = np.empty(0, dtype=np.int64)
        self.pos, self.epoch, self.fraction = 0, -1, options["start"]

    def _next_epoch(self) -> None:
        self.fraction = next(self.fractions)
        self.epoch += 1
        m = max(1, int(self.n * self.fraction))
        keys = self.rng.exponential(size=self.n) / self.score
        chosen = np.argpartition(keys, m - 1)[:m] if m < self.n else np.arange(self.n)
        self.queue, self.pos = self.rng.permutation(chosen), 0

    def _draw(self, step: int) -> np.ndarray:
        out, need = [], self.batch_size
        while need:
            if self.pos >= self.queue.size:
                self._next_epoch()
            take = self.queue[self.pos:self.pos + need]
            out.append(take)
            self.pos += take.size
            need -= take.size
        return np.concatenate(out)

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pool_fraction": self.fraction}


def make_uniform(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                 seed: int) -> Uniform:
    del options
    return Uniform(pool, budget_steps, batch_size, seed)


def make_cyclical(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                  seed: int) -> Cyclical:
    check_range("cyclical", "start", options["start"], 0.0, options["end"], low_open=True)
    check_range("cyclical", "end", options["end"], 0.0, 1.0, low_open=True)
    check_range("cyclical", "alpha", options["alpha"], 0.0, 1.0 - 1e-9, low_open=True)
    check_range("cyclical", "floor", options["floor"], 0.0, float("inf"), low_open=True)
    return Cyclical(pool, options, budget_steps, batch_size, seed)


make_easy_to_hard = _paced("easy")
make_hard_to_easy = _paced("hard")
make_random_order = _paced("random")
