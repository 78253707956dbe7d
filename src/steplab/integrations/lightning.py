"""Record a Lightning run into the steplab store (extra ``[lightning]``).

::

    from steplab.integrations.lightning import SteplabLightningCallback

    trainer = L.Trainer(max_steps=1000, callbacks=[SteplabLightningCallback("steplab.db")])
    trainer.fit(model, data)          # one trial, rows as the plain-loop Recorder writes them

It drives a :class:`steplab.training.recorder.Recorder` on the first of ``trainer.optimizers``, so the
rows are the Recorder's: per update the step (0-based), training time (validation time left
out), the learning rate the update used (``param_groups[0]``) and the update norm. Hooks used
(https://lightning.ai/docs/pytorch/stable/extensions/callbacks.html):

- ``on_before_optimizer_step``: the global l2 and l1 gradient norms, after gradient
  accumulation and *before* Lightning clips (its documented order). Lightning evaluates the
  training closure inside ``optimizer.step()``, so the Recorder's own pre-step hook would see
  the previous gradients; the callback measures them here instead, and snapshots the
  parameters for the update norm (the Recorder's recipe: preallocated buffers, ``_foreach``).
- ``on_train_batch_end``: the loss, ``outputs["loss"]`` summed over the micro-batches of the
  update (Lightning normalizes it by ``accumulate_grad_batches``).
- ``on_validation_start``/``on_validation_end``: validation time, and the logged metrics
  whose names start with ``val``/``validation`` (``val_loss`` -> ``validation/loss``).
- ``on_train_end`` finishes the trial (``budget``); ``on_exception`` marks it ``failed``.

``monitors="sharpness,gns,laziness,logits"`` (:class:`~steplab.integrations.options.CallbackOptions`)
measures training-dynamics monitors at the first update and every ``monitor_every`` updates
on fixed probe batches (the first examples of the training data set), recorded as
``dynamics/...`` evaluations; the loss of a probe batch is the module's ``training_step``
(its ``self.log`` calls are silenced while it is measured) unless ``loss_fn=`` is given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"steplab.integrations.lightning needs lightning: pip install 'steplab[lightning]' ({e})") from None

from steplab.errors import StoreError
from steplab.integrations import traces
from steplab.integrations.options import CallbackOptions
from steplab.training.recorder import Recorder
from steplab.training.trace_values import global_norm

__all__ = ["SteplabLightningCallback"]


def _hparams(module: Any) -> dict[str, Any]:
    hp = getattr(module, "hparams", None)
    try:
        return dict(hp) if hp is not None else {}
    except (TypeError, ValueError):
        return {}


def training_loss(module: Any, batch: Any) -> torch.Tensor:
    """The loss ``module.training_step`` returns for ``batch`` (its ``"loss"`` entry when it
    returns a mapping), with ``self.log``/``self.log_dict`` silenced (a monitor's probe is no
    training step to log)."""
    module.log, module.log_dict = (lambda *a, **k: None), (lambda *a, **k: None)
    try:
        out = module.training_step(batch, 0)
    finally:
        del module.log, module.log_dict
    return out["loss"] if isinstance(out, Mapping) else out


class SteplabLightningCallback(pl.Callback):
    """A Lightning ``Callback`` that records ``trainer.fit`` as one steplab trial.

    Keyword arguments are the fields of
    :class:`~steplab.integrations.options.CallbackOptions` (``db`` may be given first).
    """

    def __init__(self, db: str | Path = "steplab.db", **options: Any) -> None:
        super().__init__()
        self.options = CallbackOptions(db=db, **options)
        self.live = self.options.live()
        self.recorder: Recorder | None = None
        #: the trial id of the latest run
        self.trial_id: int | None = None
        self._norms: dict[str, torch.Tensor] | None = None
        self._loss: torch.Tensor | None = None
        self._seen = 0
        self._eval: Any = None
        self._run_lrs: Any = None
        self._params: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._buffers: dict[int, torch.Tensor] = {}

    # -- training ------------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the trial and attach the Recorder to the first optimizer."""
        if self.recorder is not None:
            self.recorder.close()
        optimizer = trainer.optimizers[0]
        total = trainer.estimated_stepping_batches
        budget = int(total) if isinstance(total, int | float) and math.isfinite(total) else 0
        config = {**_hparams(pl_module), **self.options.config, "budget_steps": budget}
        self.recorder = self.options.recorder(optimizer, default_name=type(pl_module).__name__, config=config,
                                              model=pl_module, loss_fn=training_loss,
                                              data=trainer.train_dataloader if self.options.monitors else None,
                                              grad_norm=False, l1=False, update_norm=False)
        self.trial_id = self.recorder.trial_id
        self._norms, self._loss, self._seen = None, None, 0
        scheduler = trainer.lr_scheduler_configs[0].scheduler if trainer.lr_scheduler_configs else None
        self._run_lrs = self.live.run_lrs(scheduler, budget) if self.live.predict_every else None

    @torch.no_grad()
    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Global gradient norms before clipping, kept on the device until the next flush."""
        rec = self.recorder
        if rec is None or optimizer is not rec.optimizer:
            return
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            self._norms = None
            return
        self._norms = {"grad_norm": global_norm(grads, 2.0)}
        if self.options.l1:
            self._norms["grad_norm_l1"] = global_norm(grads, 1.0)
        if self.options.update_norm:  # snapshot the parameters this update will change
            self._params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            self._before = [self._buffer(p) for p in self._params]
            torch._foreach_copy_(self._before, self._params)

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        buf = self._buffers.get(id(p))
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
            buf = self._buffers[id(p)] = torch.empty_like(p)
        return buf

    @torch.no_grad()
    def _update_norm(self) -> torch.Tensor | None:
        """``||theta_new - theta_old||_2`` of the update just taken (the Recorder's recipe)."""
        if not self._params:
            return None
        torch._foreach_sub_(self._before, self._params)  # old - new, in place
        norm = global_norm(self._before, 2.0)
        self._params, self._before = [], []
        return norm

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Attach loss and norms to the update just taken; predict when due."""
        rec = self.recorder
        if rec is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.detach().reshape(())
            self._loss = loss if self._loss is None else self._loss + loss
        if rec.step == self._seen:
            return  # accumulating gradients, or the step was skipped
        self._seen = rec.step
        if self._norms is not None:
            rec.amend(**self._norms, update_norm=self._update_norm())
            self._norms = None
        if self._loss is not None:
            rec.log(self._loss)
            self._loss = None
        if self.live.due(rec.step):
            self.live.predict_final(rec, self._run_lrs)

    # -- validation ----------------------------------------------------------------------
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Validation time is not training time."""
        if self.recorder is not None and not trainer.sanity_checking and self._eval is None:
            self._eval = self.recorder.evaluating()
            self._eval.__enter__()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record the validation metrics logged with ``self.log("val_...")``."""
        rec = self.recorder
        if rec is None or trainer.sanity_checking:
            return
        if self._eval is not None:
            self._eval.__exit__(None, None, None)
            self._eval = None
        out: dict[str, float] = {}
        for key, value in trainer.callback_metrics.items():
            found = traces.eval_metric(key)
            if found is None or found[0] != "validation":
                continue
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                out[found[1]] = float(value.item())
            elif isinstance(value, int | float):
                out[found[1]] = float(value)
        if out:
            rec.eval(step=rec.step, **out)

    # -- the end -------------------------------------------------------------------------
    def _finish(self, status: str = "budget", message: str = "") -> Recorder | None:
        rec, self.recorder = self.recorder, None
        self._buffers.clear()
        self._params, self._before = [], []
        if rec is not None:
            if self._eval is not None:
                self._eval.__exit__(None, None, None)
                self._eval = None
            if status == "failed":
                with contextlib.suppress(StoreError):  # never hide the user's exception
                    rec.close(status=status, message=message)
            else:
                rec.close(status=status, message=message)
        return rec

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Finish the trial (status ``budget``) and refine its schedule when asked."""
        self.options.refine_at_end(self.live, self._finish())

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """Mark the trial ``failed`` with the exception as its message."""
        self._finish("failed", " ".join(f"{type(exception).__name__}: {exception}".split()))
