"""What every curriculum shares: the :class:`TaskPool` the data side describes, the
:class:`Sampler` protocol the training loop drives, the registry entry
:class:`CurriculumInfo`, and small pure helpers (task bins, grouping, option checks).

A sampler is *pure*: it owns one private ``np.random.Generator`` (never the global RNG) and
its draws depend only on its seed and on what it was told through ``observe`` /
``observe_eval``. Every sampler returns exactly ``batch_size`` valid indices per step
(budget parity, Weber et al. 2023, arXiv 2308.12202, §4: compare curricula at equal
examples and steps).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from steplab.errors import SpecError, WorkloadError


@dataclasses.dataclass(frozen=True, eq=False)
class TaskPool:
    """What the data side tells a sampler about its ``N`` training examples.

    Attributes:
        difficulty: ``(N,)`` floats, larger = harder: a task parameter (e.g. MNIST-1D's
            noise scale) or a reference model's per-example loss (the "transfer teacher"
            scoring of Hacohen & Weinshall 2019, arXiv 1904.03626, §3.1).
        tasks: ``(N,)`` ints in ``0..K-1`` (skill / task id), or None: samplers that need
            discrete tasks then bin ``difficulty`` into quantile bins (option ``bins``).
        params: ``(N, d)`` continuous task parameters scaled to ``[0, 1]`` (ALP-GMM's task
            space), or None: the difficulty rank in ``[0, 1]`` as a 1-d parameter.
        skill_graph: ``(K, K)`` 0/1 adjacency (row = trained skill, column = skill it helps)
            for Skill-it, or None: the identity.
    """

    difficulty: np.ndarray
    tasks: np.ndarray | None = None
    params: np.ndarray | None = None
    skill_graph: np.ndarray | None = None

    def __post_init__(self) -> None:
        d = np.asarray(self.difficulty, dtype=float)
        if d.ndim != 1 or d.size == 0:
            raise WorkloadError(f"TaskPool.difficulty must be a non-empty 1-d array, got shape {d.shape}")
        if not np.all(np.isfinite(d)):
            raise WorkloadError("TaskPool.difficulty has NaN or infinite values; give a finite score per example")
        object.__setattr__(self, "difficulty", d)
        n = d.size
        if self.tasks is not None:
            t = np.asarray(self.tasks)
            if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer) or t.min() < 0:
                raise WorkloadError(f"TaskPool.tasks must be {n} non-negative integers (one task id per example)")
            missing = np.setdiff1d(np.arange(t.max() + 1), t)
            if missing.size:
                raise WorkloadError(f"TaskPool.tasks has no example of task {int(missing[0])}; number tasks 0..K-1 without gaps")
            object.__setattr__(self, "tasks", t.astype(np.int64))
        if self.params is not None:
            p = np.asarray(self.params, dtype=float)
            if p.ndim == 1:
                p = p[:, None]
            if p.ndim != 2 or p.shape[0] != n:
                raise WorkloadError(f"TaskPool.params must have shape ({n}, d), got {np.shape(self.params)}")
            if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
                raise WorkloadError("TaskPool.params must be finite and scaled to [0, 1]; rescale each column first")
            object.__setattr__(self, "params", p)
        if self.skill_graph is not None:
            g = np.asarray(self.skill_graph, dtype=float)
            k = self.num_tasks if self.tasks is not None else g.shape[0]
            if g.shape != (k, k):
                raise WorkloadError(f"TaskPool.skill_graph must be ({k}, {k}) for {k} tasks, got {g.shape}")
            object.__setattr__(self, "skill_graph", g)

    @property
    def size(self) -> int:
        """``N``, the number of training examples."""
        return int(self.difficulty.size)

    @property
    def num_tasks(self) -> int:
        """``K`` when ``tasks`` is given, else 0."""
        return 0 if self.tasks is None else int(self.tasks.max()) + 1


@runtime_checkable
class Sampler(Protocol):
    """The data schedule of one run, driven by the training loop once per update.

    ``sample(step)`` gives the ``(batch_size,)`` int64 indices into the pool for update
    ``step`` (0-based; called once per step, in order; a repeated call for the same step
    returns the same batch). ``observe(step, indices, losses)`` gets the per-example training
    losses of that batch from the update's own forward pass (before the update).
    ``eval_every`` is 0, or every how many steps the sampler wants ``observe_eval(step,
    task_losses)`` with the ``(K,)`` mean held-out loss per task. ``state()`` is a small
    JSON-able summary for the run record.
    """

    eval_every: int

    def sample(self, step: int) -> np.ndarray: ...

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None: ...

    def observe_eval(self, step: int, task_losses: np.ndarray) -> None: ...

    def state(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class CurriculumInfo:
    """A registered curriculum.

    Attributes:
        name: the registry name (``"easy-to-hard"``).
        description: one line for listings.
        defaults: every option and its default (``0`` for an integer option means "derived
            from the budget", as the option's docs say).
        choices: the allowed values of text options (``{"pacing": ("linear", ...)}``).
        tunable: numeric options worth tuning, in steplab's search-space JSON form
            (``{"start": {"uniform": [0.05, 0.5]}}``, :mod:`steplab.algorithms.space`).
        make: ``make(pool, options, budget_steps, batch_size, seed) -> Sampler``.
        citation: the paper the sampler follows.
    """

    name: str
    description: str
    defaults: Mapping[str, Any]
    make: Callable[..., Sampler]
    choices: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    tunable: Mapping[str, Mapping[str, list[float]]] = dataclasses.field(default_factory=dict)
    citation: str = ""


class BaseSampler:
    """Shared plumbing: the private generator, the batch cache for a repeated ``sample``
    call, no-op observers. Subclasses implement ``_draw(step)``."""

    eval_every: int = 0

    def __init__(self, pool: TaskPool, budget_steps: int, batch_size: int, seed: int) -> None:
        self.pool, self.budget_steps, self.batch_size = pool, budget_steps, batch_size
        self.n = pool.size
        self.rng = np.random.default_rng(seed)
        self._last: tuple[int, np.ndarray] | None = None

    def sample(self, step: int) -> np.ndarray:
        if self._last is not None and self._last[0] == step:
            return self._last[1].copy()
        out = np.asarray(self._draw(step), dtype=np.int64)
        self._last = (step, out)
        return out.copy()

    def _draw(self, step: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _discrete_tasks(self, bins: int) -> None:
        """``tasks`` (a task id per example: ``pool.tasks``, else ``bins`` difficulty
        quantile bins), their ``edges``, ``groups`` and count ``k``: the task set of the
        samplers that choose among discrete tasks (``lp-bandit``, ``skill-it``)."""
        self.tasks, self.edges = task_labels(self.pool, bins)
        self.groups = Groups(self.tasks)
        self.k = int(self.groups.count.size)

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None:
        del step, indices, losses

    def observe_eval(self, step: int, task_losses: np.ndarray) -> None:
        del step, task_losses

    def state(self) -> dict[str, Any]:
        return {}

    def _subset(self, m: int, order: np.ndarray) -> np.ndarray:
        """``batch_size`` indices drawn uniformly from ``order[:m]``: without replacement
        when the prefix holds a batch (Hacohen & Weinshall 2019), with replacement only when
        the whole pool is smaller than a batch."""
        m = max(1, min(int(m), self.n))
        if m >= self.batch_size:
            return order[self.rng.choice(m, self.batch_size, replace=False)]
        return order[self.rng.integers(0, m, self.batch_size)]


# ---- pure helpers ---------------------------------------------------------------------------


def quantile_bins(difficulty: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(task id per example, bin edges): ``difficulty`` cut at its ``bins``-quantiles into
    at most ``bins`` non-empty bins, ids ``0..K-1`` easy to hard. Ties never straddle a
    bin edge, so equal difficulties share a task. Assign held-out examples with
    :func:`assign_bins` and the same edges."""
    d = np.asarray(difficulty, dtype=float)
    edges = np.unique(np.quantile(d, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        return np.zeros(d.size, dtype=np.int64), np.array([edges[0], edges[0]])
    ids = assign_bins(d, edges)
    used = np.unique(ids)
    remap = np.full(edges.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return remap[ids], np.concatenate([edges[used], edges[-1:]])


def assign_bins(difficulty: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each difficulty for ``edges`` from :func:`quantile_bins` (left-closed
    bins, the last one closed; values outside the edges go to the end bins)."""
    k = edges.size - 1
    return np.clip(np.searchsorted(edges, np.asarray(difficulty, dtype=float), side="right") - 1, 0, k - 1).astype(np.int64)


class Groups:
    """Examples grouped by a label (``0..G-1``): draw a uniform member of each given group,
    vectorised (used for tasks, bins and identical parameter vectors)."""

    def __init__(self, labels: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.order = np.argsort(labels, kind="stable")
        self.count = np.bincount(labels)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniform member of each of ``groups`` (with replacement across draws)."""
        within = (rng.random(groups.size) * self.count[groups]).astype(np.int64)
        return self.order[self.start[groups] + within]


def task_labels(pool: TaskPool, bins: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(task id per example, difficulty bin edges or None): ``pool.tasks`` when given, else
    ``bins`` quantile bins of the difficulty."""
    if pool.tasks is not None:
        return pool.tasks, None
    return quantile_bins(pool.difficulty, bins)


def tie_broken_order(difficulty: np.ndarray, rng: np.random.Generator, reverse: bool = False) -> np.ndarray:
    """Indices sorted by difficulty (ascending, or descending with ``reverse``), equal
    difficulties in a seeded random order, so that ties do not follow the data's storage
    order (often sorted by class)."""
    perm = rng.permutation(difficulty.size)
    key = -difficulty[perm] if reverse else difficulty[perm]
    return perm[np.argsort(key, kind="stable")]


def fraction_steps(fraction: float, budget_steps: int) -> int:
    """``round(fraction * budget_steps)``, at least 1."""
    return max(1, int(round(fraction * budget_steps)))


def check_range(curriculum: str, key: str, value: float, low: float, high: float,
                low_open: bool = False) -> None:
    """``SpecError`` unless ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise SpecError(f"curriculum {curriculum!r}: {key} must be in {bracket}{low}, {high}], got {value}")
