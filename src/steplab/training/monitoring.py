"""Monitors of the training dynamics inside a training loop (issue 23; :mod:`steplab.monitors`).

:class:`Monitoring` is what a loop holds when monitors are on, and nothing (``None``) when
they are off, so a run without monitors does no extra work at all: no copy of the step-0
parameters, no probe batches, no call. When on, it draws the probe batches once, before
training, from the workload's stream with :data:`PROBE_SEED`, a seed no run uses (like
:attr:`Workload.train_eval_seed <steplab.workloads.base.Workload.train_eval_seed>`), so
the training stream is untouched; keeps detached step-0 parameters only when a monitor
needs them (``needs_initial``); and measures at step 0 and every ``every`` updates through
:func:`steplab.monitors.measure`, which forks the random state and leaves gradients, modes
and parameters as they were: the same seed gives the same loss trace with and without
monitors (``tests/test_monitor_trajectory.py``). The values are evaluation metrics named
``dynamics/...``; the loop records them outside the training clock, like an evaluation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from steplab.errors import SpecError
from steplab.monitors import Monitor, Probe, measure, parse_monitors

__all__ = ["PROBE_SEED", "Monitoring", "initial_parameters", "draw_probe_batches"]

#: the seed of the probe batches' stream (run seeds are small integers; ``train_eval_seed``
#: is ``2**31 - 1``)
PROBE_SEED = 2**31 - 2


def initial_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of ``model``'s trainable parameters, by name (theta_0)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def draw_probe_batches(batches: Iterable[Any], count: int) -> list[Any]:
    """The first ``count`` batches of ``batches``, drawn with the torch random state forked
    (a stream that draws from the global generator leaves it as it was)."""
    with torch.random.fork_rng(devices=[]):
        return list(itertools.islice(iter(batches), count))


def monitor_list(monitors: str | Sequence[str] | Sequence[Monitor] | None) -> list[Monitor]:
    """Monitor instances from names (``"sharpness,gns"``, a list of names) or instances."""
    if not monitors:
        return []
    if isinstance(monitors, str):
        return parse_monitors(monitors)
    items = list(monitors)
    if all(isinstance(m, Monitor) for m in items):
        return items  # type: ignore[return-value]
    return parse_monitors([str(m) for m in items])


def check_every(every: int | None, what: str = "monitor_every") -> None:
    """Refuse a cadence below 1 (one line naming the fix)."""
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise SpecError(f"{what} must be an integer >= 1 (measure the monitors every N steps), got {every!r}")


@dataclasses.dataclass
class Monitoring:
    """Monitors measured on a fixed probe, every ``every`` updates and at step 0."""

    monitors: list[Monitor]
    every: int
    #: the model measured
    model: torch.nn.Module
    #: the fixed probe batches (drawn once)
    batches: list[Any]
    #: theta_0, by name (empty unless a monitor needs it)
    initial: Mapping[str, torch.Tensor]
    loss: Callable[[torch.nn.Module, Any], torch.Tensor]
    workload: Any = None
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def start(cls, monitors: str | Sequence[str] | Sequence[Monitor] | None, every: int, *, workload: Any,
              model: torch.nn.Module, device: torch.device) -> Monitoring | None:
        """The monitoring of a run of ``workload`` (its ``loss`` and its ``batches`` at
        :data:`PROBE_SEED`) that has just built ``model``; ``None`` when ``monitors`` is empty
        (then nothing is drawn or copied)."""
        chosen = monitor_list(monitors)
        if not chosen:
            return None
        check_every(every)
        count = max(m.probe_batches for m in chosen)
        batches = draw_probe_batches(workload.batches(PROBE_SEED, device), count)
        return cls.of(chosen, every, model=model, loss=workload.loss, batches=batches, workload=workload,
                      device=device)

    @classmethod
    def of(cls, monitors: list[Monitor], every: int, *, model: torch.nn.Module,
           loss: Callable[[torch.nn.Module, Any], torch.Tensor], batches: Sequence[Any], workload: Any = None,
           device: torch.device | None = None) -> Monitoring:
        """Monitoring of ``model`` with given probe ``batches`` (a user's own loop, a callback);
        theta_0 is ``model``'s parameters now when a monitor needs it."""
        needs = any(m.needs_initial for m in monitors)
        if device is None:
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return cls(monitors, every, model, list(batches), initial_parameters(model) if needs else {}, loss, workload,
                   device)

    def due(self, done: int) -> bool:
        """Whether to measure after ``done`` updates."""
        return done % self.every == 0

    def measure(self, step: int, optimizer: torch.optim.Optimizer | None) -> dict[str, float]:
        """The monitors' values after ``step`` updates, keys ``dynamics/...`` (the learning
        rate is the first parameter group's now: the one the next update uses)."""
        lr = None
        if optimizer is not None and optimizer.param_groups:
            value = optimizer.param_groups[0].get("lr")
            lr = float(value) if value is not None else None
        probe = Probe(model=self.model, loss=self.loss, batches=self.batches, optimizer=optimizer, step=step, lr=lr,
                      initial=self.initial, workload=self.workload, device=self.device)
        return measure(self.monitors, probe)

    def names(self) -> list[str]:
        """The monitors' names, in order."""
        return [m.name for m in self.monitors]
