"""A plain PyTorch model, a training and a validation ``Dataset`` and a metric as a
:class:`~steplab.workloads.base.Workload`, in a few lines: :func:`from_torch`, or a subclass
of :class:`TorchWorkload` for more control (variants, a loss or metric of your own).

The contract is AlgoPerf's (Dahl et al. 2023, ``algoperf/spec.py``): training draws endless
minibatches in an order fixed by the trial seed alone (a CPU generator, so every device
sees the same order, as :func:`~steplab.workloads.base.shuffled_batches`), and evaluation
runs over the whole validation set, its metrics prefixed ``validation/``.

Dataset items are ``(input, target)`` pairs. A ``TensorDataset`` of two tensors is indexed
directly (fast); any other map-style ``Dataset`` is read item by item and collated with
``torch.utils.data.default_collate``. Both give the same batches for the same data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from steplab.errors import WorkloadError
from steplab.workloads.base import Batch, Workload, shuffled_batches
from steplab.workloads.target import Target

#: metrics the adapter computes itself; any other name needs :meth:`TorchWorkload.metric_value`
BUILTIN_METRICS = ("accuracy", "loss")
_DATA: dict[tuple[type, str], tuple[Any, Any]] = {}
_ON_DEVICE: dict[tuple[type, str, str], tuple[torch.Tensor, ...]] = {}


def _tensor_pair(ds: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
        return ds.tensors[0], ds.tensors[1]
    return None


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def collated_batches(ds: Any, batch_size: int, seed: int, device: torch.device) -> Iterator[Batch]:
    """Endless minibatches of any map-style dataset, reshuffled every epoch by a CPU
    generator seeded ``seed``, the ragged last batch dropped: the order of
    :func:`~steplab.workloads.base.shuffled_batches` on the same data."""
    gen = torch.Generator().manual_seed(seed)
    n = len(ds)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield _to(default_collate([ds[int(j)] for j in perm[i : i + batch_size]]), device)


class TorchWorkload(Workload):
    """A workload from a model, two datasets and a metric. Subclasses set ``batch_size``,
    ``default_budget_steps`` and ``default_target`` (class attributes will do) and implement
    :meth:`build_model` and :meth:`datasets`; :meth:`criterion` (the loss) defaults to
    cross-entropy and ``metric`` to ``"accuracy"`` (``"loss"`` reports the loss only; another
    name is computed by :meth:`metric_value`). ``self.variant`` may change either.

    Example (``examples/workloads/spirals.py`` uses :func:`from_torch` instead)::

        class Sine(TorchWorkload):
            batch_size, default_budget_steps, metric = 32, 400, "loss"
            default_target = Target("validation/loss", 0.01, "min")

            def build_model(self) -> nn.Module:
                return nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))

            def datasets(self) -> tuple[Dataset, Dataset]:
                x = torch.linspace(-3, 3, 600).unsqueeze(1)
                return TensorDataset(x[0::2], torch.sin(x[0::2])), TensorDataset(x[1::2], torch.sin(x[1::2]))

            def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
                return nn.functional.mse_loss(output, target)
    """

    metric: str = "accuracy"
    #: validation items per forward pass of :meth:`evaluate` (memory, not results)
    eval_batch_size: int = 1024

    def __init__(self, variant: str = "base", *, budget_steps: int | None = None,
                 target: Target | None = None) -> None:
        super().__init__(variant, budget_steps=budget_steps, target=target)
        if not isinstance(self.metric, str) or not self.metric:
            raise WorkloadError(f"{type(self).__name__}.metric must be a metric name such as 'accuracy', "
                                f"got {self.metric!r}")
        if self.metric not in BUILTIN_METRICS and type(self).metric_value is TorchWorkload.metric_value:
            raise WorkloadError(f"{type(self).__name__}: metric {self.metric!r} is not one of "
                                f"{', '.join(BUILTIN_METRICS)}; implement metric_value(output, target) for it")
        reported = self.metric_names()
        for what, t in (("default_target", self.default_target), ("target", self.target)):
            if isinstance(t, Target) and t.metric not in reported:
                raise WorkloadError(f"{type(self).__name__}: {what} metric {t.metric!r} is not reported; "
                                    f"it reports {', '.join(reported)}")

    # -- what a subclass gives -----------------------------------------------------------
    def build_model(self) -> nn.Module:
        """A new, randomly initialised model (torch's global generator is seeded already)."""
        raise NotImplementedError

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        """``(train, validation)``: map-style datasets of ``(input, target)`` items; built once
        per class and variant in a process, so keep them independent of the trial seed."""
        raise NotImplementedError

    def criterion(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The training loss, a batch mean (0-d tensor); default cross-entropy."""
        return nn.functional.cross_entropy(output, target)

    def metric_value(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor | float:
        """The batch mean of ``metric`` when it is not a built-in one."""
        raise NotImplementedError

    def metric_names(self) -> tuple[str, ...]:
        """The names :meth:`evaluate` reports."""
        return ("validation/loss",) if self.metric == "loss" else ("validation/loss", f"validation/{self.metric}")

    # -- the Workload contract -----------------------------------------------------------
    def init_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model()
        if not isinstance(model, nn.Module):
            raise WorkloadError(f"{type(self).__name__}.build_model() returned {type(model).__name__}, "
                                "not a torch.nn.Module")
        return model

    def _data(self) -> tuple[Any, Any]:
        key = (type(self), self.variant)
        if key not in _DATA:
            pair = self.datasets()
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise WorkloadError(f"{type(self).__name__}.datasets() must return (train, validation), "
                                    f"got {type(pair).__name__}")
            for what, ds in zip(("training", "validation"), pair):
                if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")) or len(ds) == 0:
                    raise WorkloadError(f"{type(self).__name__}: the {what} set must be a non-empty map-style "
                                        f"Dataset of (input, target) items, got {type(ds).__name__}")
                item = ds[0]
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise WorkloadError(f"{type(self).__name__}: {what} items must be (input, target) pairs, "
                                        f"got {type(item).__name__}")
            if len(pair[0]) < self.batch_size:
                raise WorkloadError(f"{type(self).__name__}: the training set has {len(pair[0])} items, fewer "
                                    f"than batch_size {self.batch_size}")
            _DATA[key] = pair
        return _DATA[key]

    def _on_device(self, which: int, device: torch.device) -> tuple[torch.Tensor, ...] | None:
        """Tensors of a two-tensor ``TensorDataset`` on ``device`` (moved once per process)."""
        pair = _tensor_pair(self._data()[which])
        if pair is None:
            return None
        key = (type(self), f"{self.variant}/{which}", str(device))
        if key not in _ON_DEVICE:
            _ON_DEVICE[key] = tuple(t.to(device) for t in pair)
        return _ON_DEVICE[key]

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        tensors = self._on_device(0, device)
        if tensors is not None:
            return shuffled_batches(tensors[0], tensors[1], self.batch_size, seed, device)
        return collated_batches(self._data()[0], self.batch_size, seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return self.criterion(model(x), y)

    def _validation_chunks(self, device: torch.device) -> Iterator[tuple[Any, Any]]:
        tensors = self._on_device(1, device)
        ds, size = self._data()[1], self.eval_batch_size
        for i in range(0, len(ds), size):
            if tensors is not None:
                yield tensors[0][i : i + size], tensors[1][i : i + size]
            else:
                yield _to(default_collate([ds[j] for j in range(i, min(i + size, len(ds)))]), device)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Means over the whole validation set: each chunk's batch mean weighted by its size,
        which is exact for losses and metrics that are means over items."""
        totals = dict.fromkeys(self.metric_names(), 0.0)
        n = 0
        for x, y in self._validation_chunks(device):
            out, k = model(x), len(y)
            totals["validation/loss"] += float(self.criterion(out, y)) * k
            if self.metric == "accuracy":
                totals["validation/accuracy"] += float((out.argmax(-1) == y).sum())
            elif self.metric != "loss":
                totals[f"validation/{self.metric}"] += float(self.metric_value(out, y)) * k
            n += k
        return {name: total / n for name, total in totals.items()}


def _lazy(value: Any, what: str) -> Callable[[], Any]:
    if not isinstance(value, type) and hasattr(value, "__getitem__") and hasattr(value, "__len__"):
        return lambda: value
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise WorkloadError(f"from_torch: {what} must be a Dataset or a function that returns one, got {type(value).__name__}")


def from_torch(
    *,
    model: Callable[[], nn.Module],
    train: Dataset[Any] | Callable[[], Dataset[Any]],
    validation: Dataset[Any] | Callable[[], Dataset[Any]],
    target: Target,
    budget_steps: int,
    batch_size: int,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    metric: str | Callable[[torch.Tensor, torch.Tensor], Any] = "accuracy",
    name: str = "",
    description: str = "",
) -> type[TorchWorkload]:
    """A :class:`TorchWorkload` class: ``model`` a module class or a function returning a new
    module; ``train``/``validation`` datasets of ``(input, target)`` items, or functions
    returning them (built at first use, not at import); ``loss(output, target)`` a batch
    mean (default cross-entropy); ``metric`` ``"accuracy"``, ``"loss"`` or a function
    ``(output, target) -> batch mean`` reported under its ``__name__``; the validation
    ``target`` and the step ``budget_steps``. Assign it to a module-level name and benchmark
    it as ``path/to/file.py:ThatName``."""
    if not callable(model):
        raise WorkloadError(f"from_torch: model must be an nn.Module class or a function, got {type(model).__name__}")
    if not isinstance(target, Target):
        raise WorkloadError(f"from_torch: target must be a steplab Target(metric, value, mode), got {target!r}")
    for what, v in (("budget_steps", budget_steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise WorkloadError(f"from_torch: {what} must be an integer >= 1, got {v!r}")
    train_fn, validation_fn = _lazy(train, "train"), _lazy(validation, "validation")
    metric_fn = metric if callable(metric) else None
    metric_name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric").strip("<>")
    namespace: dict[str, Any] = {
        "name": name, "description": description, "__doc__": description or None,
        "batch_size": batch_size, "default_budget_steps": budget_steps, "default_target": target,
        "metric": metric_name,
        "build_model": lambda self: model(),
        "datasets": lambda self: (train_fn(), validation_fn()),
        # the caller's module, as collections.namedtuple does: the class reads as defined there
        "__module__": sys._getframe(1).f_globals.get("__name__", __name__),
    }
    if loss is not None:
        namespace["criterion"] = lambda self, output, y: loss(output, y)
    if metric_fn is not None:
        namespace["metric_value"] = lambda self, output, y: metric_fn(output, y)
    title = "".join(part.capitalize() for part in (name or "torch-workload").replace("_", "-").split("-")) or "Workload"
    cls = type(title if title.isidentifier() else "TorchWorkloadOf", (TorchWorkload,), namespace)
    cls("base")  # a bad metric or target fails here, where the class is defined, not in a worker
    return cls
