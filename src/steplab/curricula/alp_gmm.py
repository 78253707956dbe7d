"""``alp-gmm``: absolute learning progress with Gaussian mixtures over a continuous task
space (Portelas, Colas, Hofmann & Oudeyer 2019, "Teacher algorithms for curriculum learning
of Deep RL in continuously parameterized environments", CoRL, arXiv 1910.07224, §4 and
Algorithm 1; authors' code flowersteam/teachDeepRL ``teachers/algos/alp_gmm.py``).

* **ALP** of an episode (task ``tau``, reward ``r`` in [0, 1]): ``|r - r'|`` with ``r'`` the
  reward of the *nearest earlier task* in Euclidean task space (over all earlier episodes),
  0 while the history has at most 5 entries (so the first 6 ALPs are 0).
* **Fit**: after every ``fit_rate`` episodes, fit ``sklearn.mixture.GaussianMixture``
  (full covariances, one EM initialisation) with k = 2..``max_k`` to the last ``fit_rate``
  rows ``[tau, ALP]`` and keep the lowest AIC (or BIC, or AICc = AIC + 2p(p+1)/(n-p-1),
  p = k((D^2 - D)/2 + 2D + 1) - 1 for rows of dimension D).
* **Sample**: uniform in the box before the first fit and with probability
  ``random_task_ratio`` (0.2); otherwise pick a Gaussian with probability proportional to
  its mean ALP (uniformly if all are 0), draw from it, drop the ALP coordinate, clip to the
  box.

For supervised batches [steplab's design, stated]: an "episode" is one example; its task
vector is its row of ``TaskPool.params`` (the box is [0, 1]^d, so the ALP coordinate and
the task coordinates share a scale); its reward is ``exp(-max(loss, 0))`` in (0, 1]; each
drawn task vector becomes a uniform member of the pool's examples nearest to it (examples with equal parameters form one task, so for a task
parameter with few levels every example of the level is reachable). The nearest earlier
task of an example whose parameters were seen before is the latest example with those
parameters (distance 0, most recent). ``fit_rate`` 0 means ``max(250, ceil(budget x
batch / 20))``: about 20 fits per run (the authors' 250 episodes is a few updates of a
supervised run). To bound a fit's cost at that scale, a fit on more than ``fit_rows``
(1000; 0 = all) rows uses a uniform subsample of them, which keeps the window of the last
``fit_rate`` episodes [our choice].
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steplab.curricula.base import BaseSampler, Groups, TaskPool, check_range

FITNESS = ("aic", "bic", "aicc")


class NearestALP:
    """The authors' ALP over any task vectors: brute-force nearest earlier task (ties go
    to the most recent), for tests and small continuous task sets."""

    def __init__(self, dim: int) -> None:
        self.tasks = np.empty((0, dim))
        self.rewards = np.empty(0)

    def __call__(self, task: np.ndarray, reward: float) -> float:
        n = self.rewards.size
        alp = 0.0
        if n > 5:
            d = np.linalg.norm(self.tasks - task, axis=1)
            nearest = n - 1 - int(np.argmin(d[::-1]))  # the latest of the closest
            alp = abs(reward - float(self.rewards[nearest]))
        self.tasks = np.vstack([self.tasks, task])
        self.rewards = np.append(self.rewards, reward)
        return alp


class GroupALP:
    """The same ALP for a fixed set of task vectors (``vectors[g]`` for group ``g``),
    vectorised over a batch of episodes taken in order: a group seen before answers with its
    latest reward; a group's first visit searches every group seen before it (brute force,
    ties to the most recent), looping only over those first visits."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
        self.last = np.full(len(vectors), np.nan)
        self.time = np.full(len(vectors), -1, dtype=np.int64)
        self.count = 0

    def __call__(self, groups: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        b = groups.size
        order = np.argsort(groups, kind="stable")
        g, r = groups[order], rewards[order]
        first = np.ones(b, dtype=bool)
        first[1:] = g[1:] != g[:-1]
        prev = np.empty(b)
        prev[first] = self.last[g[first]]
        prev[~first] = r[:-1][~first[1:]]
        alp = np.empty(b)
        alp[order] = np.abs(r - prev)
        new = np.sort(order[np.isnan(prev)])  # batch positions of first visits
        if new.size:
            alp[new] = self._first_visits(new, groups, rewards)
        alp[: max(0, 6 - self.count)] = 0.0  # the history has at most 5 entries
        final = np.ones(b, dtype=bool)
        final[:-1] = g[1:] != g[:-1]
        self.last[g[final]] = r[final]
        self.time[g[final]] = self.count + order[final]
        self.count += b
        return alp

    def _first_visits(self, new: np.ndarray, groups: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """ALPs at batch positions ``new``: the nearest of the groups seen before the batch
        and of the batch's earlier episodes (an earlier episode is the more recent)."""
        seen = np.flatnonzero(self.time >= 0)
        vec, rew, when = self.vectors[seen], self.last[seen], self.time[seen]
        out = np.zeros(new.size)
        for i, j in enumerate(new):
            here = self.vectors[groups[j]]
            cand_d = np.concatenate([np.linalg.norm(vec - here, axis=1),
                                     np.linalg.norm(self.vectors[groups[:j]] - here, axis=1)])
            if cand_d.size == 0:
                continue
            cand_r = np.concatenate([rew, rewards[:j]])
            cand_t = np.concatenate([when, self.count + np.arange(j)])
            close = np.flatnonzero(cand_d == cand_d.min())
            out[i] = abs(rewards[j] - cand_r[close[np.argmax(cand_t[close])]])
        return out


class ALPGMM:
    """The ALP-GMM teacher over the box [0, 1]^dim (module docstring): ``add`` episodes'
    (task, ALP) rows, ``sample`` task vectors. ``fits`` logs ``(episodes, k, score)`` of
    every fit; ``max_rows`` > 0 subsamples a larger fit window to that many rows."""

    def __init__(self, dim: int, *, fit_rate: int = 250, random_task_ratio: float = 0.2,
                 potential_ks: Sequence[int] = tuple(range(2, 11)), fitness: str = "aic",
                 nb_em_init: int = 1, max_rows: int = 0, seed: int = 0) -> None:
        self.dim, self.fit_rate, self.ratio = dim, fit_rate, random_task_ratio
        self.max_rows = max_rows
        self.ks, self.fitness, self.nb_em_init = tuple(potential_ks), fitness, nb_em_init
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.rows = np.zeros((fit_rate, dim + 1))
        self.n = 0
        self.fits: list[tuple[int, int, float]] = []
        self.means: np.ndarray | None = None
        self.chol = np.empty(0)
        self.probs = np.empty(0)

    def add(self, tasks: np.ndarray, alps: np.ndarray) -> None:
        """Append episodes (``tasks`` (n, dim), ``alps`` (n,)); fit at every multiple of
        ``fit_rate`` on exactly the last ``fit_rate`` rows."""
        rows = np.column_stack([np.asarray(tasks, dtype=float).reshape(len(alps), self.dim), alps])
        i = 0
        while i < len(rows):
            at = self.n % self.fit_rate
            chunk = rows[i:i + self.fit_rate - at]
            self.rows[at:at + len(chunk)] = chunk
            self.n += len(chunk)
            i += len(chunk)
            if self.n % self.fit_rate == 0:
                self._fit(self.rows)

    def _fit(self, x: np.ndarray) -> None:
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        if self.max_rows and len(x) > self.max_rows:
            x = x[np.sort(self.rng.choice(len(x), self.max_rows, replace=False))]
        best, best_score = None, math.inf
        # (d+1)x(d+1) matrices: BLAS threads only cost time (x5 on a busy 2-core machine)
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on flat ALP data
            for k in self.ks:
                if k > len(x):
                    break
                gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=self.seed,
                                      n_init=self.nb_em_init, warm_start=False).fit(x)
                score = self._score(gmm, x, k)
                if score < best_score:
                    best, best_score = gmm, score
        if best is None:
            return
        self.fits.append((self.n, int(best.n_components), float(best_score)))
        self.means = best.means_
        self.chol = np.linalg.cholesky(best.covariances_)
        alp = np.clip(best.means_[:, -1], 0.0, None)
        self.probs = alp / alp.sum() if alp.sum() > 0 else np.full(len(alp), 1.0 / len(alp))

    def _score(self, gmm: Any, x: np.ndarray, k: int) -> float:
        if self.fitness == "bic":
            return float(gmm.bic(x))
        aic = float(gmm.aic(x))
        if self.fitness == "aic":
            return aic
        d = x.shape[1]
        p = k * ((d * d - d) / 2 + 2 * d + 1) - 1
        n = len(x)
        return aic + 2 * p * (p + 1) / (n - p - 1) if n - p - 1 > 0 else math.inf

    def sample(self, size: int) -> np.ndarray:
        """``size`` task vectors (size, dim) in [0, 1]^dim."""
        out = self.rng.random((size, self.dim))
        if self.means is None:
            return out
        gauss = np.flatnonzero(self.rng.random(size) >= self.ratio)
        if gauss.size:
            comp = self.rng.choice(len(self.probs), size=gauss.size, p=self.probs)
            z = self.rng.standard_normal((gauss.size, self.dim + 1))
            draw = self.means[comp] + np.einsum("nij,nj->ni", self.chol[comp], z)
            out[gauss] = np.clip(draw[:, : self.dim], 0.0, 1.0)
        return out


class ALPGMMSampler(BaseSampler):
    """ALP-GMM over the pool's task parameters, one episode per example (module docstring)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        params = pool.params if pool.params is not None else _rank01(pool.difficulty)[:, None]
        self.vectors, labels = np.unique(params, axis=0, return_inverse=True)
        self.labels = labels.reshape(-1)
        self.groups = Groups(self.labels)
        from scipy.spatial import cKDTree  # imported on use: spec checks stay light

        self.tree = cKDTree(self.vectors)
        self.alp = GroupALP(self.vectors)
        fit_rate = options["fit_rate"] or max(250, math.ceil(budget_steps * batch_size / 20))
        self.teacher = ALPGMM(params.shape[1], fit_rate=fit_rate,
                              random_task_ratio=options["random_task_ratio"],
                              potential_ks=range(2, options["max_k"] + 1), fitness=options["fitness"],
                              max_rows=options["fit_rows"], seed=seed)
        self.teacher.rng = self.rng  # one private generator for the whole sampler

    def _draw(self, step: int) -> np.ndarray:
        _, nearest = self.tree.query(self.teacher.sample(self.batch_size))
        return self.groups.draw(np.asarray(nearest, dtype=np.int64).reshape(-1), self.rng)

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None:
        groups = self.labels[np.asarray(indices)]
        rewards = np.exp(-np.clip(np.asarray(losses, dtype=float), 0.0, None))
        rewards = np.nan_to_num(rewards, nan=0.0)
        self.teacher.add(self.vectors[groups], self.alp(groups, rewards))

    def state(self) -> dict[str, Any]:
        t = self.teacher
        last = t.fits[-1] if t.fits else None
        return {"episodes": t.n, "fits": len(t.fits), "k": None if last is None else last[1],
                "fit_rate": t.fit_rate}


def _rank01(d: np.ndarray) -> np.ndarray:
    """Average ranks of ``d`` scaled to [0, 1] (ties share a value)."""
    from scipy.stats import rankdata

    r = rankdata(d, method="average") - 1.0
    return r / max(1.0, d.size - 1.0)


def make_alp_gmm(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                 seed: int) -> ALPGMMSampler:
    check_range("alp-gmm", "random_task_ratio", options["random_task_ratio"], 0.0, 1.0)
    check_range("alp-gmm", "fit_rate", options["fit_rate"], 0, float("inf"))
    if 0 < options["fit_rate"] < options["max_k"]:
        check_range("alp-gmm", "fit_rate", options["fit_rate"], options["max_k"], float("inf"))
    check_range("alp-gmm", "max_k", options["max_k"], 2, 50)
    check_range("alp-gmm", "fit_rows", options["fit_rows"], 0, float("inf"))
    if 0 < options["fit_rows"] < options["max_k"]:
        check_range("alp-gmm", "fit_rows", options["fit_rows"], options["max_k"], float("inf"))
    return ALPGMMSampler(pool, options, budget_steps, batch_size, seed)
