"""``lp-bandit``: a non-stationary bandit over K discrete tasks, rewarded by absolute
learning progress (Graves, Bellemare, Menick, Munos & Kavukcuoglu 2017, "Automated
Curriculum Learning for Neural Networks", ICML, arXiv 1704.03003, §2-3).

Exp3.S (Auer et al. 2002; Graves et al. 2017, Algorithm 1), weights ``w`` over K arms:

    pi_t(i)    = (1 - eps) softmax(w_t)_i + eps / K
    rhat_i     = (r_t 1[i = k] + beta) / pi_t(i)
    w_{t+1,i}  = log[(1 - alpha_t) e^{w_i + eta rhat_i} + alpha_t / (K - 1) sum_{j != i} e^{w_j + eta rhat_j}]

with ``alpha_t = 1/t`` by default (Graves et al.'s values as recalled: eta = 1e-3,
beta = 0, eps = 0.05 [U, no official code; checked against a third-party port]).

Reward rescaling (Graves et al. §3): raw rewards go into a reservoir sample (Vitter's
Algorithm R, 50,000 by default); with ``lo``/``hi`` its 20th/80th percentiles, ``r = -1``
below ``lo``, ``+1`` above ``hi``, else ``2 (raw - lo)/(hi - lo) - 1``.

Progress signal [U, steplab's design]: the loop reports only the losses of a batch *before*
its update, so the raw reward of task k at update t is the absolute change of k's mean
batch loss since k was last drawn, ``|L_k(t) - L_k(t')|`` (the "online" absolute
learning progress of Matiisen et al. 2017, "Teacher-Student Curriculum Learning", arXiv
1707.00183, §3.1; the same-task ALP of Portelas et al. 2019). A task's first draw gives no
reward. Each batch comes from one task (Graves et al.: one task per step), uniformly with
replacement within it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from steplab.curricula.base import BaseSampler, TaskPool, check_range


def exp3s_probabilities(w: np.ndarray, eps: float) -> np.ndarray:
    """pi = (1 - eps) softmax(w) + eps / K (Graves et al. 2017, Algorithm 1)."""
    e = np.exp(w - w.max())
    return (1.0 - eps) * e / e.sum() + eps / w.size


def exp3s_update(w: np.ndarray, arm: int, reward: float, pi: np.ndarray, *, eta: float,
                 beta: float, alpha: float) -> np.ndarray:
    """One Exp3.S weight update (module docstring), computed with the largest exponent
    factored out for numerical stability. ``pi`` is the policy the arm was drawn from."""
    k = w.size
    rhat = np.full(k, beta, dtype=float)
    rhat[arm] += reward
    v = w + eta * rhat / pi
    if k == 1:
        return v - v.max()
    top = v.max()
    e = np.exp(v - top)
    return top + np.log((1.0 - alpha) * e + alpha / (k - 1) * (e.sum() - e))


def rescale(raw: float, lo: float, hi: float) -> float:
    """Graves et al.'s reward rescaling to [-1, 1] between the quantiles ``lo`` and ``hi``
    (``hi == lo``: -1 below, +1 above, 0 at the value)."""
    if raw < lo:
        return -1.0
    if raw > hi:
        return 1.0
    if hi == lo:
        return 0.0
    return 2.0 * (raw - lo) / (hi - lo) - 1.0


class Reservoir:
    """A uniform sample of at most ``size`` of the values seen so far (Vitter 1985,
    Algorithm R), drawn from the caller's generator."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.values = np.empty(size)
        self.seen, self.rng = 0, rng

    def add(self, value: float) -> None:
        if self.seen < self.values.size:
            self.values[self.seen] = value
        else:
            j = int(self.rng.integers(0, self.seen + 1))
            if j < self.values.size:
                self.values[j] = value
        self.seen += 1

    def quantiles(self, low: float = 0.2, high: float = 0.8) -> tuple[float, float]:
        """numpy's linear-interpolated ``low``/``high`` quantiles of the sample."""
        held = self.values[: min(self.seen, self.values.size)]
        lo, hi = np.quantile(held, [low, high])
        return float(lo), float(hi)


class LPBandit(BaseSampler):
    """Exp3.S over tasks on absolute learning progress (module docstring)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        self._discrete_tasks(options["bins"])
        self.eta, self.eps, self.beta = options["eta"], options["eps"], options["beta"]
        self.alpha = options["alpha"]
        self.w = np.zeros(self.k)
        self.pi = exp3s_probabilities(self.w, self.eps)
        self.reservoir = Reservoir(options["reservoir"], self.rng)
        self.last_loss = np.full(self.k, np.nan)
        self.rounds = 0
        self.chosen: dict[int, tuple[int, np.ndarray]] = {}
        self.last_reward = 0.0

    def _draw(self, step: int) -> np.ndarray:
        arm = int(self.rng.choice(self.k, p=self.pi))
        self.chosen[step] = (arm, self.pi)
        for old in [s for s in self.chosen if s < step - 8]:  # a batch never observed
            del self.chosen[old]
        return self.groups.draw(np.full(self.batch_size, arm), self.rng)

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None:
        if step not in self.chosen:
            return
        arm, pi = self.chosen.pop(step)
        loss = float(np.mean(losses))
        prev, self.last_loss[arm] = self.last_loss[arm], loss
        if np.isnan(prev) or not np.isfinite(loss):
            return
        raw = abs(loss - prev)
        self.reservoir.add(raw)
        self.last_reward = rescale(raw, *self.reservoir.quantiles())
        self.rounds += 1
        alpha = self.alpha if self.alpha > 0 else 1.0 / self.rounds
        self.w = exp3s_update(self.w, arm, self.last_reward, pi, eta=self.eta, beta=self.beta, alpha=alpha)
        self.pi = exp3s_probabilities(self.w, self.eps)

    def state(self) -> dict[str, Any]:
        return {"probabilities": [round(float(p), 6) for p in self.pi], "rounds": self.rounds}


def make_lp_bandit(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                   seed: int) -> LPBandit:
    check_range("lp-bandit", "eta", options["eta"], 0.0, float("inf"), low_open=True)
    check_range("lp-bandit", "eps", options["eps"], 0.0, 1.0, low_open=True)
    check_range("lp-bandit", "beta", options["beta"], 0.0, float("inf"))
    check_range("lp-bandit", "alpha", options["alpha"], 0.0, 1.0)
    check_range("lp-bandit", "bins", options["bins"], 1, float("inf"))
    check_range("lp-bandit", "reservoir", options["reservoir"], 1, float("inf"))
    return LPBandit(pool, options, budget_steps, batch_size, seed)
