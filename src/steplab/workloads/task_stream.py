"""A continual stream of tasks: each task with its own training data and a fixed, seeded
evaluation subset, trained one after the other for ``steps_per_task`` updates each.

Built-in streams (all offline, CPU-sized; every one has a *tuning twin*, ``+twin``: the same
configuration on other data, for the "Reality Check" protocol of Cha & Cho 2024 -- tune on
the twin, report on the stream):

==================  ====================================================================
``split-digits``    sklearn's 8x8 digits in 5 tasks of 2 classes (0/1, 2/3, ...),
                    class-incremental (one 10-way head); ``scenario=task`` is the
                    task-incremental variant with a 2-way head per task. Twin: another
                    class pairing and train/test split.
``permuted-digits`` domain-incremental: ``tasks`` (5) fixed pixel permutations of all
                    digits (task 1 unpermuted). Twin: other permutations.
``rotated-digits``  domain-incremental: task ``i`` rotated by ``i * angle`` degrees
                    (default ``angle = 180 / tasks``); ``tasks=2,angle=A`` is the 2-task
                    variant whose dissimilarity is a dial. Twin: mirrored digits.
``charlm-shift``    a character LM (``charlm``'s transformer) trained on Python source of
                    the standard library, then continued on English prose (the stdlib's
                    ``pydoc_data`` topics): the continual pre-training proxy; the metric
                    is each domain's validation loss. Twin: the other half of both texts.
==================  ====================================================================

Replay (``replay=f``): from the second task on, ``f`` of every batch comes from earlier
tasks at equal total compute (the batch size is fixed): batch ``u`` of a stage carries
``floor((u + 1) f B) - floor(u f B)`` replayed examples, so after ``n`` batches exactly
``floor(n f B)`` (Ibrahim et al. 2024 replay at fixed token budget). Replayed examples are
drawn uniformly from a buffer: every earlier example (``buffer=all``), or experience replay
with ``buffer=M`` examples kept by reservoir sampling (Vitter 1985, Algorithm R; the
"tiny episodic memories" of Chaudhry et al. 2019), filled with each task's training set at

The streams' data and models are in :mod:`steplab.workloads.stream_data`, their specs in
:mod:`steplab.workloads.stream_spec`; :mod:`steplab.studies.continual` trains a stream as
one trial, :mod:`steplab.workloads.stream` wraps it as a workload for ``steplab bench``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from fractions import Fraction

import torch
from torch import nn
from torch.nn import functional as F

from steplab.workloads.stream_data import (
    CONTEXT,
    VOCAB,
    DigitsNet,
    StreamData,
    digits_data,
    lm_data,
)
from steplab.workloads.stream_spec import StreamSpec, parse_stream

__all__ = ["Batch", "Stream", "get_stream"]

Batch = tuple[torch.Tensor, ...]


def _replay_counts(batch: int, fraction: float) -> Callable[[int], int]:
    """Replayed examples in a stage's batch ``u``: ``floor((u+1) f B) - floor(u f B)``,
    exact in rational arithmetic (``0.05`` is ``1/20``, not a binary float)."""
    f = Fraction(str(fraction)) * batch
    return lambda u: math.floor((u + 1) * f) - math.floor(u * f)


class Stream:
    """The tasks of a :class:`StreamSpec` with their data, model, loss and evaluation.

    ``batches(seed, device)`` is the endless, seeded sequence of training batches of the whole
    stream (task by task, with replay); a batch is ``(x, y, task)`` for the digit streams
    and ``(windows, task)`` for ``charlm-shift``, ``task`` the 0-based task of each example."""

    def __init__(self, spec: StreamSpec | str) -> None:
        self.spec = parse_stream(spec)
        self.kind = self.spec.kind
        self.tasks = self.spec.tasks
        self.steps_per_task = self.spec.steps_per_task
        self.batch_size = int(self.spec.get("batch"))
        self.replay = float(self.spec.get("replay"))
        self.buffer = self.spec.get("buffer")
        self.eval_every = int(self.spec.get("eval_every"))
        self.budget_steps = self.spec.budget_steps
        self.metric = "accuracy" if self.kind == "classification" else "loss"
        self._data: dict[str, StreamData] = {}

    @property
    def key(self) -> str:
        return self.spec.key

    def stage_ends(self) -> list[int]:
        return self.spec.stage_ends()

    def data(self, device: torch.device | str = "cpu") -> StreamData:
        """The stream's tensors on ``device`` (built once, then cached per device)."""
        key = str(device)
        if key not in self._data:
            if "cpu" not in self._data:
                self._data["cpu"] = digits_data(self.spec) if self.kind == "classification" else lm_data(self.spec)
            if key != "cpu":
                self._data[key] = self._data["cpu"].to(torch.device(key))
        return self._data[key]

    def eval_sizes(self) -> list[int]:
        """Examples (windows for an LM stream) in each task's evaluation subset."""
        return [len(x) for x, _ in self.data().eval_sets]

    # -- model, batches, loss, evaluation --------------------------------------------------
    def init_model(self, seed: int) -> nn.Module:
        """A fresh model (the same seed gives the same weights)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.kind == "lm":
                from steplab.workloads.charlm import CharTransformer

                return CharTransformer(len(VOCAB), 1, "gelu")
            return DigitsNet(heads=self.tasks if self.spec.get("scenario") == "task" else 0)

    def _make(self, ids: torch.Tensor, task: torch.Tensor, data: StreamData) -> Batch:
        dev = data.x.device
        ids, task = ids.to(dev), task.to(dev)
        if self.kind == "lm":
            return data.x[ids[:, None] + torch.arange(CONTEXT + 1, device=dev)], task
        return data.x[ids], data.y[ids], task

    def batches(self, seed: int, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """Every training batch of the stream in order, then the last task's forever (see the
        module docstring for the replay composition). Deterministic in ``seed``; the data is
        built before the first batch is asked for."""
        data = self.data(device)
        return (self._make(ids, task, data) for ids, task in self.composition(seed))

    def composition(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """What :meth:`batches` gathers: per batch, the example ids (rows of the stream's
        training data, window starts for an LM stream) and the 0-based task of each, current
        task first, then the replayed examples."""
        data = self.data()
        gen = torch.Generator().manual_seed(seed)
        count = _replay_counts(self.batch_size, self.replay)
        buf_ids = torch.empty(0, dtype=torch.long)
        buf_task = torch.empty(0, dtype=torch.long)
        seen = 0  # examples offered to the reservoir so far
        for t in itertools.count():
            stage = min(t, self.tasks - 1)
            pool = data.pools[stage]
            order, cursor = torch.randperm(len(pool), generator=gen), 0
            for u in itertools.count() if t == self.tasks - 1 else range(self.steps_per_task):
                r = count(u) if len(buf_ids) else 0
                need = self.batch_size - r
                parts = []
                while need:
                    if cursor == len(order):
                        order, cursor = torch.randperm(len(pool), generator=gen), 0
                    take = min(need, len(order) - cursor)
                    parts.append(pool[order[cursor:cursor + take]])
                    cursor, need = cursor + take, need - take
                cur = torch.cat(parts)
                ids, task = cur, torch.full((len(cur),), stage, dtype=torch.long)
                if r:
                    pick = torch.randint(len(buf_ids), (r,), generator=gen)
                    ids, task = torch.cat([cur, buf_ids[pick]]), torch.cat([task, buf_task[pick]])
                yield ids, task
            # the task is over: its training examples enter the replay buffer
            if self.buffer == "all":
                buf_ids = torch.cat([buf_ids, pool])
                buf_task = torch.cat([buf_task, torch.full((len(pool),), stage, dtype=torch.long)])
            else:
                buf_ids, buf_task, seen = _reservoir(buf_ids, buf_task, pool, stage, seen, int(self.buffer), gen)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy over the batch (current and replayed examples alike)."""
        if self.kind == "lm":
            windows = batch[0]
            logits = model(windows[:, :-1])
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        x, y, task = batch
        return F.cross_entropy(model(x, task), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device | str, tasks: Iterable[int]) -> dict[str, float]:
        """``task{i}/accuracy`` and ``task{i}/loss`` (``task{i}/loss`` only for an LM stream)
        on the fixed subsets of ``tasks``; the caller sets eval mode."""
        data = self.data(device)
        out: dict[str, float] = {}
        for i in tasks:
            x, y = data.eval_sets[i]
            if self.kind == "lm":
                logits = model(x[:, :-1])
                out[f"task{i}/loss"] = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item()
            else:
                logits = model(x, torch.full((len(x),), i, dtype=torch.long, device=x.device))
                out[f"task{i}/accuracy"] = (logits.argmax(-1) == y).float().mean().item()
                out[f"task{i}/loss"] = F.cross_entropy(logits, y).item()
        return out

    def scores(self, metrics: Mapping[str, float]) -> dict[int, float]:
        """``{i: a_i}`` from evaluation metrics: the accuracy, or the negative loss."""
        out = {}
        for i in range(self.tasks):
            v = metrics.get(f"task{i}/{self.metric}")
            if v is not None:
                out[i] = v if self.metric == "accuracy" else -v
        return out

    def seen(self, step: int) -> list[int]:
        """Tasks evaluated after ``step`` updates: all of them at step 0 and at task ends
        (``b_i`` and the rows of ``R``), else the tasks trained so far."""
        ends = self.stage_ends()
        if step == 0 or step in ends:
            return list(range(self.tasks))
        return list(range(min(self.tasks, step // self.steps_per_task + 1)))


def _reservoir(ids: torch.Tensor, task: torch.Tensor, pool: torch.Tensor, stage: int, seen: int, size: int,
               gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Offer ``pool`` (in a seeded random order) to a reservoir of ``size`` examples that has
    seen ``seen`` before (Vitter 1985, Algorithm R: the ``c``-th offer, 0-based, replaces slot
    ``r ~ U{0..c}`` when ``r < size``)."""
    items = pool[torch.randperm(len(pool), generator=gen)]
    ids, task = ids.clone(), task.clone()
    fill = max(0, min(size - len(ids), len(items)))
    ids = torch.cat([ids, items[:fill]])
    task = torch.cat([task, torch.full((fill,), stage, dtype=torch.long)])
    rest = items[fill:]
    counts = torch.arange(seen + fill, seen + fill + len(rest), dtype=torch.float64)
    slots = torch.floor(torch.rand(len(rest), generator=gen, dtype=torch.float64) * (counts + 1)).long()
    for j in torch.nonzero(slots < size).flatten().tolist():
        ids[slots[j]] = rest[j]
        task[slots[j]] = stage
    return ids, task, seen + len(items)


def get_stream(text: str | StreamSpec) -> Stream:
    """The stream named by ``text`` (``"split-digits+replay=0.05"``)."""
    return Stream(text)

