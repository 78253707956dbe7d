"""The monitor contract: a :class:`Probe` of the run, a :class:`Monitor` that reads it, and
:func:`measure`, which runs monitors without touching the training trajectory.

A monitor turns the state of a run at one step (the model, the fixed probe batches, the
optimizer's state, the parameters at step 0) into a few numbers: sharpness (Cohen et al.
2021, 2022), the gradient noise scale (McCandlish et al. 2018), the relative weight change
(Kumar et al. 2023), attention and output logits (Wortsman et al. 2023; Zhai et al. 2023),
the Fourier sparsity and grokking delay of modular arithmetic (Doshi et al. 2023). The
numbers are recorded as ordinary evaluation metrics named ``dynamics/<monitor>...``, so
every analysis that reads a trace reads them too.

:func:`measure` keeps the promise that monitors never change the run (DESIGN.md,
"Conventions"): it forks the torch random state (CPU and the probe's CUDA device), puts the
model in eval mode (no dropout draws, no batch-norm statistics updated) and back, and puts
every ``param.grad`` back as it was; the monitors themselves take gradients only with
``torch.autograd.grad`` and never write to a parameter or to the optimizer.
"""

from __future__ import annotations

import abc
import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from steplab.errors import SteplabError

#: the prefix of every monitor metric in a trace
PREFIX = "dynamics/"


class MonitorError(SteplabError):
    """A monitor does not apply to this run (no attention layers, no token embedding, too
    few probe batches): :func:`measure` turns it into one warning and no values."""


class MonitorWarning(UserWarning):
    """A monitor was skipped (the message says why); training goes on."""


@dataclasses.dataclass
class Probe:
    """What a monitor may look at: the run at one step. Read-only by contract."""

    model: nn.Module
    #: the training loss, ``workload.loss(model, batch)``: a 0-d tensor, a mean over the batch
    loss: Callable[[nn.Module, Any], torch.Tensor]
    #: fixed probe batches, drawn once before training from a separate seed
    batches: Sequence[Any]
    optimizer: torch.optim.Optimizer | None
    #: updates done so far
    step: int
    #: the current learning rate of the first parameter group
    lr: float | None
    #: detached copies of the parameters at step 0, by name (empty unless a monitor needs them)
    initial: Mapping[str, torch.Tensor]
    workload: Any | None = None
    device: torch.device = torch.device("cpu")

    def named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The trainable parameters, by name, in the model's order."""
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def current_lr(self) -> float | None:
        """:attr:`lr`, else the first parameter group's ``lr`` (a schedule may set it)."""
        if self.lr is not None:
            return float(self.lr)
        if self.optimizer is not None and self.optimizer.param_groups:
            lr = self.optimizer.param_groups[0].get("lr")
            return float(lr) if lr is not None else None
        return None


def batch_examples(batch: Any) -> int:
    """The number of examples in ``batch``: the leading size of its first tensor (a tensor,
    a tuple/list or a dict of them)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    for item in items:
        if isinstance(item, torch.Tensor) or isinstance(item, (tuple, list, Mapping)):
            return batch_examples(item)
    raise MonitorError(f"cannot tell the batch size of a {type(batch).__name__} batch; pass batch_size=")


class Monitor(abc.ABC):
    """One signal of the training dynamics. Subclasses are dataclasses whose fields are the
    options (``sharpness:iters=30``); state kept between measurements (EMAs, a warm-start
    vector, the steps a threshold was crossed) lives on the instance, one instance per run.
    """

    #: the registry name and the metric prefix after ``dynamics/``
    name: ClassVar[str] = ""
    #: the runner keeps detached parameters of step 0 (:attr:`Probe.initial`) only when a
    #: monitor needs them
    needs_initial: ClassVar[bool] = False

    @property
    def probe_batches(self) -> int:
        """How many probe batches this monitor reads (the runner draws the most any
        monitor asks for)."""
        return int(getattr(self, "batches", 1))

    @abc.abstractmethod
    def __call__(self, probe: Probe) -> dict[str, float]:
        """The values at ``probe.step``, keys without the ``dynamics/`` prefix (``{"sharpness":
        41.2}``); ``{}`` or :class:`MonitorError` when the monitor does not apply."""


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda" or not torch.cuda.is_available():
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def measure(monitors: Sequence[Monitor], probe: Probe) -> dict[str, float]:
    """Run ``monitors`` on ``probe``: ``{"dynamics/<key>": value}`` plus each monitor's
    wall-clock cost ``dynamics/<name>/cost_s``.

    The training trajectory cannot tell it ran: the torch RNG state (CPU and CUDA) is
    forked, the model is measured in eval mode and every submodule's mode restored, every ``param.grad``
    is put back (the same tensor object), and gradients are taken with
    ``torch.autograd.grad`` only (grad mode on, whatever the caller's). A monitor that does
    not apply raises :class:`MonitorError`: one :class:`MonitorWarning` per monitor
    instance, the others go on. Non-finite values are left out (a trace stores numbers).
    """
    out: dict[str, float] = {}
    model = probe.model
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    devices = _rng_devices(probe.device)
    try:
        for monitor in monitors:
            start = time.perf_counter()
            with torch.random.fork_rng(devices=devices), torch.enable_grad():
                model.eval()
                try:
                    values = monitor(probe)
                except MonitorError as e:
                    if not getattr(monitor, "_warned", False):
                        warnings.warn(f"monitor {monitor.name!r} skipped: {e}", MonitorWarning, stacklevel=2)
                        monitor._warned = True  # type: ignore[attr-defined]
                    values = {}
                if probe.device.type == "cuda":
                    torch.cuda.synchronize(probe.device)
            cost = time.perf_counter() - start
            kept = {k: float(v) for k, v in values.items() if _finite(v)}
            out.update({PREFIX + k: v for k, v in kept.items()})
            if kept:
                out[f"{PREFIX}{monitor.name}/cost_s"] = cost
    finally:
        for m, mode in modes:
            m.training = mode
        for p, g in grads:
            p.grad = g
    return out


def _finite(value: float) -> bool:
    v = float(value)
    return v == v and abs(v) != float("inf")
