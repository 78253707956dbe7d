"""A long stream (:mod:`steplab.workloads.long_streams`) as the ``stream`` workload, so that
``steplab bench`` and ``steplab run`` take ``stream:input-permuted+tasks=200``.

:class:`~steplab.workloads.stream.StreamWorkload` hands a long stream's variant to
:class:`LongStreamWorkload`. It evaluates at every task end (``eval_every`` = the updates per
task): the finished task's online accuracy (``online/accuracy``, ``online/task``) and the
probe metrics of the new task (``plasticity/...``); the last evaluation adds the summary of
the online curve (``online/first``, ``online/last``, ``online/mean``, ``online/drop``: the
first and last 10% of tasks). The default target is ``online/mean`` (the total online
accuracy; for the regression the online MSE, reached at or below) at a level the tuned SGD
baseline reaches (``benchmarks/plasticity.py``); it is reported at the end, so a trial
"reaches" it when its stream is done. ``+target=METRIC:VALUE`` sets another (``last:0.75``:
an ``online/`` metric; ``drop`` is reached at or below).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from steplab.algorithms.defaults import stream_hyperparameters
from steplab.errors import SpecError, WorkloadError
from steplab.workloads.base import Batch, Target, Workload
from steplab.workloads.long_streams import LongStream
from steplab.workloads.stream_spec import parse_stream

#: ``online/mean`` targets of the default target (total online accuracy; regression: MSE)
TARGETS = {"input-permuted": 0.7, "label-permuted": 0.7, "slowly-changing-regression": 0.5}


def _split_target(variant: str, regression: bool) -> tuple[str, Target | None]:
    parts = [p.strip() for p in variant.split("+")]
    given = [p[len("target="):] for p in parts if p.startswith("target=")]
    text = "+".join(p for p in parts if not p.startswith("target="))
    if not given:
        return text, None
    metric, sep, value = given[-1].partition(":")
    metric = metric.strip().removeprefix("online/")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or metric not in ("first", "last", "mean", "drop") or number != number:
        raise WorkloadError(f"long-stream target {given[-1]!r}: write target=METRIC:VALUE with METRIC one of "
                            "first, last, mean, drop (e.g. target=last:0.75)")
    lower = metric == "drop" or regression
    return text, Target(f"online/{metric}", number, "min" if lower else "max")


class LongStreamWorkload(Workload):
    """A long stream trained by ``run_trial`` (see the module docstring); the ``stream``
    workload builds it for a long stream's variant."""

    name = "stream"
    description = "a long continual stream (loss of plasticity); built by the `stream` workload"
    variants: dict[str, str] = {}
    default_algorithm = "adamw-cosine"

    def __init__(self, variant: str = "base", *, budget_steps: int | None = None,
                 target: Target | None = None) -> None:
        if budget_steps is not None and (
            isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 1
        ):
            raise WorkloadError(f"budget_steps must be an integer >= 1, got {budget_steps!r}")
        if target is not None and not isinstance(target, Target):
            raise WorkloadError(f"target must be a Target(metric, value, mode), got {target!r}")
        try:
            name = variant.split("+", 1)[0].strip()
            text, found = _split_target(variant, name == "slowly-changing-regression")
            spec = parse_stream(text)
            if budget_steps is not None:
                if budget_steps % spec.tasks:
                    raise WorkloadError(f"stream {spec.name!r}: budget_steps must be a multiple of its "
                                        f"{spec.tasks} tasks, got {budget_steps}")
                spec = spec.with_options(steps=budget_steps // spec.tasks)
        except SpecError as e:
            raise WorkloadError(f"workload 'stream', variant {variant!r}: {e}") from None
        self.stream = LongStream(spec)
        self.variant = variant
        self._budget_steps = budget_steps
        self._target = target if target is not None else found

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        return stream_hyperparameters(self.stream.kind)

    @property
    def default_budget_steps(self) -> int:
        return self.stream.budget_steps

    @property
    def budget_steps(self) -> int:
        return self.stream.budget_steps

    @property
    def default_target(self) -> Target:
        regression = self.stream.kind == "regression"
        return Target("online/mean", TARGETS[self.stream.name], "min" if regression else "max")

    @property
    def divergence_resets(self) -> tuple[int, ...]:  # type: ignore[override]
        """Every task start: a new task's first loss is the reference. The regression resets
        at every update (one example's squared error varies by orders of magnitude), so only
        a non-finite loss counts as divergence there."""
        if self.stream.kind == "regression":
            return tuple(range(self.stream.budget_steps))
        return tuple(self.stream.stage_ends()[:-1])

    @property
    def eval_every(self) -> int:
        return self.stream.eval_every

    @property
    def batch_size(self) -> int:
        return self.stream.batch_size

    def init_model(self, seed: int) -> nn.Module:
        return self.stream.init_model(seed)

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        return self.stream.batches(seed, device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.stream.loss(model, batch)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        return self.stream.evaluate(model, device)
