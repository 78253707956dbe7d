"""Train/eval modes: schedule-free optimizers (and steplab's averaged DoG) hold a different
point in the parameters while training and while evaluating (schedulefree README,
"train/eval"). :func:`train_mode`/:func:`eval_mode` switch them and are no-ops for every
other optimizer; :func:`refresh_batchnorm` recomputes BatchNorm statistics at the evaluation
point (schedulefree README, "Caveats").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


def is_schedule_free(opt: torch.optim.Optimizer) -> bool:
    """True for the ``schedulefree`` package's optimizers (and pytorch-optimizer's ports):
    the parameters hold the gradient point ``y`` in train mode and ``x`` in eval mode."""
    cls = type(opt)
    return cls.__module__.split(".")[0] == "schedulefree" or "schedulefree" in cls.__name__.lower()


def has_modes(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt`` has ``train()``/``eval()`` methods (schedule-free, averaged DoG)."""
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


def is_train(opt: torch.optim.Optimizer) -> bool:
    """True while ``opt`` (one with modes) is in train mode."""
    return bool(opt.param_groups[0].get("train_mode", True))


class _Mode:
    """Switches ``opt`` on construction; used as a context manager it switches back on exit."""

    def __init__(self, opt: torch.optim.Optimizer, train: bool) -> None:
        self.opt = opt
        self.was_train = is_train(opt) if has_modes(opt) else None
        if has_modes(opt):
            self._switch(train)

    def _switch(self, train: bool) -> None:
        if train:
            self.opt.train()  # type: ignore[attr-defined]
        else:
            self.opt.eval()  # type: ignore[attr-defined]

    def __enter__(self) -> torch.optim.Optimizer:
        return self.opt

    def __exit__(self, *exc: object) -> None:
        if self.was_train is not None:
            self._switch(self.was_train)


def train_mode(opt: torch.optim.Optimizer) -> _Mode:
    """Put ``opt`` in train mode (``optimizer.train()``) if it has modes; no-op otherwise.

    Call before the first step and after every evaluation (schedulefree README). Usable as a
    context manager that restores the previous mode on exit."""
    return _Mode(opt, train=True)


def eval_mode(opt: torch.optim.Optimizer) -> _Mode:
    """Put ``opt`` in eval mode (``optimizer.eval()``) if it has modes; no-op otherwise.

    Schedule-free: the parameters become the averaged iterate ``x`` at which the loss should
    be measured and checkpoints saved (schedulefree README, "train/eval"). Usable as a
    context manager: ``with eval_mode(opt): evaluate(model)`` returns to the previous mode."""
    return _Mode(opt, train=False)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def refresh_batchnorm(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    batches: Iterable[Any],
    n: int = 50,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> None:
    """Recompute BatchNorm running statistics at the evaluation parameters.

    schedulefree README ("Caveats"): BatchNorm statistics gathered during training belong to
    the train-mode point ``y``; before evaluating, put the optimizer in eval mode, the model
    in train mode, and run ``n`` (50 there) training batches forward without gradients.
    The optimizer is left in eval mode (ready for the evaluation that follows; call
    :func:`train_mode` before the next step) and the model in its previous mode. A no-op for
    models without BatchNorm or optimizers without modes.

    Args:
        batches: an iterable of training batches (only ``n`` are consumed).
        forward: ``forward(model, batch)``; default ``model(batch[0])`` for a tuple/list batch,
            else ``model(batch)``. A workload's ``loss`` works too.
    """
    if not _has_batchnorm(model) or not has_modes(opt):
        return
    eval_mode(opt)
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in itertools.islice(batches, n):
            if forward is not None:
                forward(model, batch)
            else:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
    model.train(was_training)
