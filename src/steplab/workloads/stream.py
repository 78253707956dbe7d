"""``stream``: a continual stream (:mod:`steplab.workloads.task_stream`) as a workload, so that
``steplab bench`` (and anything else that runs :func:`steplab.training.loop.run_trial`) takes it.

The variant is the stream's text, ``stream:split-digits+replay=0.25`` (``stream`` alone is
``split-digits``). The trial trains the tasks one after the other with the stream's batches
(replay included), evaluates every ``eval_every`` updates on the tasks seen so far (all
tasks at each task end) and, at the last evaluation, adds the metrics of
:mod:`steplab.workloads.stream_metrics` (``continual/acc``, ``continual/min_acc``...) to the
metrics, hence to the trial's final metrics, where a benchmark target can read them:
the default target is ``continual/acc`` (final average accuracy; for ``charlm-shift`` the
negative mean validation loss of both domains), reported only at the end, so a trial
"reaches" it when its stream is done. Any ``continual/...`` metric can be the target, also
from the command line: ``stream:split-digits+replay=0.25+target=min_acc:0.2`` (the worst case
while later tasks train; lower-is-better metrics such as ``forgetting`` are reached at or
below the value).

The learning rate follows the algorithm's schedule over the whole stream: use a stage
schedule (``--set schedule=stages_rewarm:stages=5``, :mod:`steplab.schedules.stages`) for
per-stage re-warming. Two differences from ``steplab continual`` (:func:`run_continual`),
which records the same curves otherwise (``tests/test_continual.py`` checks it): the
evaluation before training (``b_i``, for forward transfer) is made when the model is built
and kept out of the eval rows, and ``stages_infinite`` keeps training the annealed model
(``run_trial`` has no way to load the non-annealed one back).

The workload counts the training batches it hands out to know which tasks to evaluate:
one instance runs one trial at a time (as ``run_trial`` uses it).

A long stream (``stream:input-permuted+tasks=200``, ``label-permuted``,
``slowly-changing-regression``: loss of plasticity, online accuracy per task) is built as a
:class:`steplab.workloads.long_workload.LongStreamWorkload` instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from steplab.algorithms.defaults import stream_hyperparameters
from steplab.errors import SpecError, WorkloadError
from steplab.workloads.base import Batch, Target, Workload
from steplab.workloads.stream_metrics import History, summarize
from steplab.workloads.stream_spec import STREAMS, parse_stream
from steplab.workloads.task_stream import Stream

#: ``continual/acc`` targets of the default target (see ``benchmarks/continual.py``)
TARGETS = {"split-digits": 0.7, "permuted-digits": 0.8, "rotated-digits": 0.8, "charlm-shift": -2.0}


#: continual metrics where lower is better (as targets: reached at or below the value)
LOWER = ("forgetting", "forgetting_since_learned", "wf10", "wf100", "gap_height", "gap_steps")


def _split_target(variant: str) -> tuple[str, Target | None]:
    """``"split-digits+replay=0.25+target=min_acc:0.2"`` -> the stream text and
    ``Target("continual/min_acc", 0.2, "max")`` (``min`` for forgetting, WF and the gap)."""
    parts = [p.strip() for p in variant.split("+")]
    keep = [p for p in parts if not p.startswith("target=")]
    given = [p[len("target="):] for p in parts if p.startswith("target=")]
    if not given:
        return variant, None
    metric, sep, value = given[-1].partition(":")
    metric = metric.strip().removeprefix("continual/")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not metric or not math.isfinite(number):
        raise WorkloadError(f"stream target {given[-1]!r}: write target=METRIC:VALUE, e.g. target=min_acc:0.2 "
                            "(METRIC a continual metric: acc, min_acc, wc_acc, bwt, forgetting, ...)")
    return "+".join(keep), Target(f"continual/{metric}", number, "min" if metric in LOWER else "max")


class StreamWorkload(Workload):
    """A continual stream trained by ``run_trial`` (see the module docstring)."""

    name = "stream"
    description = ("continual streams; variant STREAM[+key=value...], STREAM one of "
                   + ", ".join(sorted(STREAMS)) + " (steplab continual list)")
    # no fixed variants: any stream text is one (listing them here would put every stream
    # into the `full` suite, which enumerates variants)
    variants: dict[str, str] = {}
    default_algorithm = "adamw-cosine"

    def __new__(cls, variant: str = "base", **overrides: Any) -> Any:
        """A long stream's variant builds (and initializes) a ``LongStreamWorkload``, a
        workload of its own (online metrics, no accuracy matrix)."""
        if cls is StreamWorkload and isinstance(variant, str):
            info = STREAMS.get(variant.split("+", 1)[0].strip())
            if info is not None and info.kind in ("online", "regression"):
                from steplab.workloads.long_workload import LongStreamWorkload

                return LongStreamWorkload(variant, **overrides)
        return object.__new__(cls)

    def __init__(self, variant: str = "base", *, budget_steps: int | None = None,
                 target: Target | None = None) -> None:
        if budget_steps is not None and (
            isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 1
        ):
            raise WorkloadError(f"budget_steps must be an integer >= 1, got {budget_steps!r}")
        if target is not None and not isinstance(target, Target):
            raise WorkloadError(f"target must be a Target(metric, value, mode), got {target!r}")
        if not isinstance(variant, str):
            raise WorkloadError(f"a stream variant is a text such as 'split-digits+replay=0.05', got {variant!r}")
        try:
            text, found = _split_target(variant)
            spec = parse_stream("split-digits" if text == "base" else text)
            if budget_steps is not None:
                if budget_steps % spec.tasks:
                    raise WorkloadError(f"stream {spec.name!r}: budget_steps must be a multiple of its "
                                        f"{spec.tasks} tasks, got {budget_steps}")
                spec = spec.with_options(steps=budget_steps // spec.tasks)
        except SpecError as e:  # a bad variant of this workload
            raise WorkloadError(f"workload 'stream', variant {variant!r}: {e}") from None
        self.stream = Stream(spec)
        self.variant = variant
        self._budget_steps = budget_steps
        self._target = target if target is not None else found
        self.history = History(self.stream.stage_ends())
        self._drawn = 0

    @property
    def default_hyperparameters(self) -> dict[str, Any]:  # type: ignore[override]
        return stream_hyperparameters(self.stream.kind)

    @property
    def default_budget_steps(self) -> int:
        return self.stream.budget_steps

    @property
    def budget_steps(self) -> int:
        """The stream's updates (a ``budget_steps`` override already set its steps per task,
        and ``STEPLAB_BUDGET_SCALE`` is applied once, per task, by the stream)."""
        return self.stream.budget_steps

    @property
    def default_target(self) -> Target:
        return Target("continual/acc", TARGETS[self.stream.spec.name], "max")

    @property
    def divergence_resets(self) -> tuple[int, ...]:  # type: ignore[override]
        """The task switches: a class-incremental stream's loss jumps there by design."""
        return tuple(self.stream.stage_ends()[:-1])

    @property
    def eval_every(self) -> int:
        return self.stream.eval_every

    @property
    def batch_size(self) -> int:
        return self.stream.batch_size

    def init_model(self, seed: int) -> nn.Module:
        model = self.stream.init_model(seed)
        self.history = History(self.stream.stage_ends())
        self._drawn = 0
        was = model.training
        model.eval()
        with torch.no_grad():
            b = self.stream.evaluate(model, "cpu", range(self.stream.tasks))
        model.train(was)
        self.history.add(0, self.stream.scores(b))
        return model

    def batches(self, seed: int, device: torch.device) -> Iterator[Batch]:
        it = self.stream.batches(seed, device)
        if seed == self.train_eval_seed:
            return it

        def counted() -> Iterator[Batch]:
            for batch in it:
                self._drawn += 1
                yield batch

        return counted()

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.stream.loss(model, batch)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        step = self._drawn
        metrics = self.stream.evaluate(model, device, self.stream.seen(step))
        self.history.add(step, self.stream.scores(metrics))
        if step >= self.stream.budget_steps:
            metrics.update(summarize(self.history))
            metrics["continual/eval_every"] = float(self.stream.eval_every)
            metrics["continual/eval_subset"] = float(min(self.stream.eval_sizes()))
        return metrics
