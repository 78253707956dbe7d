"""Record a Hugging Face ``Trainer`` run into the steplab store (extra ``[hf]``).

::

    from steplab.integrations.hf import SteplabTrainerCallback

    trainer = Trainer(model, args, train_dataset=ds, callbacks=[SteplabTrainerCallback("steplab.db")])
    trainer.train()                   # one trial, rows as the plain-loop Recorder writes them

It drives a :class:`steplab.training.recorder.Recorder` on the Trainer's optimizer, so the rows are
the Recorder's: per update the step (0-based), training time, the learning rate the update
used (``param_groups[0]``, i.e. the scheduler's value for that step), and the update norm.
From the Trainer's logs (``TrainerCallback.on_log``,
https://huggingface.co/docs/transformers/main_classes/callback) it takes the training loss
and ``grad_norm``, the global l2 norm *before* clipping that the Trainer computes; evaluation
metrics come from ``on_evaluate`` (``eval_loss`` -> ``validation/loss``) and the Trainer's
``eval_runtime`` counts as evaluation time, not training time.

Per-update loss and gradient norm need ``logging_steps=1``; with a larger interval the loss
of a logged step is the Trainer's mean over the interval. Without clipping
(``max_grad_norm=0``) the Recorder's own pre-step norms (l2 and l1) fill every row; with
clipping, rows without a log have no gradient norm (the Trainer has no hook between
backward and clipping), and the l1 norm of a logged step is rescaled to before clipping
(clipping scales every gradient by the same factor). A run that raises inside
``trainer.train()`` leaves its trial ``running`` (the Trainer has no exception hook).

``monitors="sharpness,gns,laziness,logits"`` (:class:`~steplab.integrations.options.CallbackOptions`)
measures training-dynamics monitors at the first update and every ``monitor_every`` updates
on fixed probe batches (the first examples of the training data set, collated by the
Trainer's data loader), recorded as ``dynamics/...`` evaluations. The loss of a probe batch
is the model's own (``model(**batch).loss``: the batch must carry labels) unless
``loss_fn=`` is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"steplab.integrations.hf needs transformers: pip install 'steplab[hf]' ({e})") from None

from steplab.integrations import traces
from steplab.integrations.options import CallbackOptions
from steplab.training.recorder import Recorder

__all__ = ["SteplabTrainerCallback", "unwrap_optimizer"]

_EVAL_BOOKKEEPING = ("_runtime", "_samples_per_second", "_steps_per_second")


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The ``torch.optim.Optimizer`` inside Accelerate's ``AcceleratedOptimizer`` (and
    similar wrappers that keep it as ``.optimizer``): its step hooks are the ones that run."""
    seen = 0
    while not type(optimizer).__module__.startswith("torch.") and isinstance(
        getattr(optimizer, "optimizer", None), torch.optim.Optimizer
    ) and seen < 8:
        optimizer, seen = optimizer.optimizer, seen + 1
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch optimizer, got {type(optimizer).__name__}")
    return optimizer


def model_loss(model: Any, batch: Any) -> torch.Tensor:
    """A Hugging Face model's own loss of ``batch`` (a mapping with labels)."""
    return model(**batch).loss


class SteplabTrainerCallback(TrainerCallback):  # type: ignore[misc]
    """A ``TrainerCallback`` that records the run as one steplab trial.

    Keyword arguments are the fields of
    :class:`~steplab.integrations.options.CallbackOptions` (``db`` may be given first).
    """

    def __init__(self, db: str | Path = "steplab.db", **options: Any) -> None:
        self.options = CallbackOptions(db=db, **options)
        self.live = self.options.live()
        self.recorder: Recorder | None = None
        #: the trial id of the latest run
        self.trial_id: int | None = None
        self._clipping = False
        self._post: dict[str, Any] = {}
        self._seen = 0
        self._logged_at = -1
        self._predicted_at = -1
        self._run_lrs: Any = None

    # -- training ------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                       lr_scheduler: Any = None, **kwargs: Any) -> None:
        """Start the trial and attach the Recorder to the Trainer's optimizer."""
        if self.recorder is not None:
            self.recorder.close()
        if optimizer is None:
            raise TypeError("SteplabTrainerCallback needs the Trainer's optimizer in on_train_begin")
        opts = self.options
        config = {**args.to_dict(), **opts.config, "seed": args.seed, "budget_steps": int(state.max_steps)}
        self.recorder = opts.recorder(unwrap_optimizer(optimizer), default_name=args.run_name, config=config,
                                      model=kwargs.get("model"), loss_fn=model_loss, data=kwargs.get("train_dataloader"),
                                      grad_norm=True, l1=opts.l1, update_norm=opts.update_norm)
        self.trial_id = self.recorder.trial_id
        self._clipping = bool(args.max_grad_norm and args.max_grad_norm > 0)
        self._seen = 0
        self._logged_at = -1
        self._predicted_at = -1
        self._post = {}
        self._run_lrs = self.live.run_lrs(lr_scheduler, int(state.max_steps)) if self.live.predict_every else None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Predict the final loss when due (the previous row is complete by now)."""
        rec = self.recorder
        if rec is not None and self.live.due(rec.step) and rec.step != self._predicted_at:
            self._predicted_at = rec.step
            self.live.predict_final(rec, self._run_lrs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """After the update: with clipping on, the Recorder saw clipped gradients; keep their
        norms aside until the Trainer logs the pre-clip norm."""
        rec = self.recorder
        if rec is None or rec.step == self._seen:
            return  # the optimizer step was skipped (fp16 overflow)
        self._seen = rec.step
        if self._clipping:
            self._post = rec.amend(grad_norm=None, grad_norm_l1=None)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Training logs: attach ``loss`` and the pre-clip ``grad_norm`` to the latest update."""
        rec = self.recorder
        if rec is None or not logs or "loss" not in logs or rec.step != self._seen or rec.step == 0:
            return
        if self._logged_at == rec.step:
            return
        self._logged_at = rec.step
        rec.log(float(logs["loss"]))
        pre = logs.get("grad_norm")
        if isinstance(pre, torch.Tensor):
            pre = pre.item()
        if isinstance(pre, int | float) and math.isfinite(pre):
            values: dict[str, Any] = {"grad_norm": float(pre)}
            post_l2, post_l1 = self._post.get("grad_norm"), self._post.get("grad_norm_l1")
            if self._clipping and post_l2 is not None and post_l1 is not None:
                # clipping multiplied every gradient by post_l2 / pre: undo it for the l1 norm
                scale = torch.as_tensor(post_l2, dtype=torch.float32).clamp_min(1e-30)
                values["grad_norm_l1"] = torch.as_tensor(post_l1, dtype=torch.float32) * (float(pre) / scale)
            rec.amend(**values)
        self._post = {}

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> None:
        """Evaluation metrics as eval rows; the Trainer's ``eval_runtime`` is evaluation time."""
        rec = self.recorder
        if rec is None or not metrics:
            return
        out: dict[str, float] = {}
        for key, value in metrics.items():
            if key == "epoch" or key.endswith(_EVAL_BOOKKEEPING) or not isinstance(value, int | float):
                continue
            found = traces.eval_metric(key)
            out[found[1] if found else f"validation/{key}"] = float(value)
        runtime = next((v for k, v in metrics.items() if k.endswith("_runtime")), None)
        if isinstance(runtime, int | float):
            rec.eval_time_s += float(runtime)
        if out:
            rec.eval(step=rec.step, **out)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Finish the trial (status ``budget``) and refine its schedule when asked."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        rec.close()
        self.options.refine_at_end(self.live, rec)
