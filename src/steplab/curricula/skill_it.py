"""``skill-it``: Skill-it's online mixture over skills (Chen, Roberts, Bhatia, Wang, Zhang,
Sala & Ré 2023, "Skill-it! A Data-Driven Skills Framework for Understanding and Training
Language Models", NeurIPS, arXiv 2307.14430, Algorithm 1; authors' code
HazyResearch/skill-it ``trainer/mw_trainer.py``).

Training runs in rounds of ``update_steps`` updates. After each round the mixture over the
K skills becomes

    p  proportional to  w_init * exp(eta * A @ S)

where ``S`` is the *sum* of the last ``window`` (3) held-out loss vectors (one mean loss per
skill, evaluated every ``eval_every`` updates: the window covers evaluations, not rounds)
and ``A`` the skill graph: the identity without one; from a 0/1 adjacency the diagonal stays
1 and every off-diagonal edge becomes ``edge`` (0.5). ``w_init = 1`` and the first mixture
uses ``S = 1`` (the code's ``L_init``). The authors use ``eta`` = 0.5 (LEGO) or 0.1
(addition) with 6 rounds of 1000 updates and an evaluation every 50. steplab's defaults for
short runs [our choice]: ``update_steps`` = 10% of the budget, ``eval_every`` a third of
that, ``eta`` = 0.5. Within a step each example picks its skill from the mixture, then a
uniform example of that skill (with replacement, like ``uniform``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from steplab.curricula.base import BaseSampler, TaskPool, check_range
from steplab.errors import WorkloadError


def graph_weights(adjacency: np.ndarray | None, k: int, edge: float = 0.5) -> np.ndarray:
    """Skill-it's ``A`` from a 0/1 adjacency (row = trained skill, column = skill it helps):
    1 on the diagonal, ``edge`` on every off-diagonal edge; the identity for None."""
    if adjacency is None:
        return np.eye(k)
    a = np.where(np.asarray(adjacency) != 0, edge, 0.0)
    np.fill_diagonal(a, 1.0)
    return a


def skill_it_mixture(a: np.ndarray, s: np.ndarray, eta: float,
                     w_init: np.ndarray | None = None) -> np.ndarray:
    """p proportional to w_init * exp(eta * A @ S) (Chen et al. 2023, Algorithm 1), computed
    with the largest exponent factored out.

    >>> skill_it_mixture(np.eye(3), np.array([6.0, 3.0, 3.0]), 0.1).round(4)
    array([0.403 , 0.2985, 0.2985])
    """
    z = eta * (np.asarray(a, dtype=float) @ np.asarray(s, dtype=float))
    p = np.exp(z - z.max())
    if w_init is not None:
        p = p * w_init
    return p / p.sum()


class SkillIt(BaseSampler):
    """Skill-it's online data selection over K skills (module docstring)."""

    def __init__(self, pool: TaskPool, options: Mapping[str, Any], budget_steps: int,
                 batch_size: int, seed: int) -> None:
        super().__init__(pool, budget_steps, batch_size, seed)
        self._discrete_tasks(options["bins"])
        graph = pool.skill_graph if pool.tasks is not None else None
        self.a = graph_weights(graph, self.k, options["edge"])
        self.eta, self.window = options["eta"], options["window"]
        self.update_steps = options["update_steps"] or max(1, round(0.1 * budget_steps))
        self.eval_every = options["eval_every"] or max(1, self.update_steps // 3)
        self.evals: list[np.ndarray] = []
        self.mixture = skill_it_mixture(self.a, np.ones(self.k), self.eta)
        self.round = 0

    def _draw(self, step: int) -> np.ndarray:
        if step > 0 and step % self.update_steps == 0 and self.evals:
            s = np.sum(self.evals[-self.window:], axis=0)
            self.mixture = skill_it_mixture(self.a, s, self.eta)
            self.round += 1
        cdf = np.cumsum(self.mixture)
        skills = np.minimum(np.searchsorted(cdf, self.rng.random(self.batch_size) * cdf[-1], side="right"), self.k - 1)
        return self.groups.draw(skills, self.rng)

    def observe_eval(self, step: int, task_losses: np.ndarray) -> None:
        losses = np.asarray(task_losses, dtype=float)
        if losses.shape != (self.k,) or not np.all(np.isfinite(losses)):
            raise WorkloadError(f"skill-it needs a finite held-out loss for each of its {self.k} skills, "
                                f"got shape {losses.shape}")
        self.evals.append(losses)
        del self.evals[: -self.window]

    def state(self) -> dict[str, Any]:
        return {"mixture": [round(float(p), 6) for p in self.mixture], "round": self.round}


def make_skill_it(pool: TaskPool, options: Mapping[str, Any], budget_steps: int, batch_size: int,
                  seed: int) -> SkillIt:
    check_range("skill-it", "eta", options["eta"], 0.0, float("inf"))
    check_range("skill-it", "edge", options["edge"], 0.0, 1.0)
    for key in ("update_steps", "eval_every"):
        check_range("skill-it", key, options[key], 0, float("inf"))
    check_range("skill-it", "window", options["window"], 1, float("inf"))
    check_range("skill-it", "bins", options["bins"], 1, float("inf"))
    return SkillIt(pool, options, budget_steps, batch_size, seed)
