"""What the Lightning and Hugging Face callbacks record and analyse: one options object
shared by both (:class:`~steplab.integrations.lightning.SteplabLightningCallback`,
:class:`~steplab.integrations.hf.SteplabTrainerCallback`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from steplab.integrations.live import LiveAnalysis
from steplab.training.recorder import Recorder

__all__ = ["CallbackOptions"]


@dataclasses.dataclass
class CallbackOptions:
    """The keyword arguments of both training callbacks.

    Args:
        db: results database (path or SQLAlchemy URL) for the new trial.
        name: the trial's label (default: the framework's run or module name).
        config: extra settings stored with the trial's hyperparameters (the framework's own
            settings are stored too).
        flush_every, l1, update_norm: as :class:`~steplab.training.recorder.Recorder`.
        predict_every, law, lr_at, refine, tau, norm: live analyses, see
            :class:`~steplab.integrations.live.LiveAnalysis`.
        monitors: training-dynamics monitors (``"sharpness,gns,laziness,logits"``,
            :mod:`steplab.monitors`) measured at the first update and every
            ``monitor_every`` updates, recorded as ``dynamics/...`` evaluation rows; they
            never change the run. ``laziness`` and ``logits`` need only the model;
            ``sharpness`` and ``gns`` take gradients of ``loss_fn(model, batch)`` (default:
            Lightning's ``training_step``, the Hugging Face model's own ``.loss``).
        probe_batches: the fixed batches the monitors read (default: the first examples of
            the training data set, in order, collated by the training data loader: no
            sampler is touched).
        loss_fn: the loss of a probe batch, ``loss_fn(model, batch) -> 0-d tensor``.
    """

    db: str | Path = "steplab.db"
    name: str | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    flush_every: int = 200
    l1: bool = True
    update_norm: bool = True
    predict_every: int = 0
    law: str = "annealing"
    lr_at: Any = None
    refine: str | Path | None = None
    tau: float = 0.1
    norm: str = "auto"
    monitors: str | Sequence[str] = ()
    monitor_every: int = 50
    probe_batches: Sequence[Any] | None = None
    loss_fn: Callable[[Any, Any], Any] | None = None

    def live(self) -> LiveAnalysis:
        """The live analyses these options ask for."""
        return LiveAnalysis(predict_every=self.predict_every, law=self.law, lr_at=self.lr_at,
                            refine=self.refine, tau=self.tau, norm=self.norm)

    def recorder(self, optimizer: Any, *, default_name: str | None, config: Mapping[str, Any],
                 model: Any = None, loss_fn: Callable[[Any, Any], Any] | None = None, data: Any = None,
                 **norms: bool) -> Recorder:
        """A Recorder for a new trial that stores ``config``; ``norms`` are the Recorder's
        ``grad_norm``/``l1``/``update_norm``. With :attr:`monitors`, it measures them on
        ``model`` with :attr:`loss_fn` (else ``loss_fn``) over :attr:`probe_batches` (else
        the first batches of the training data loader ``data``)."""
        monitoring: dict[str, Any] = {}
        if self.monitors:
            from steplab.training.monitoring import monitor_list

            count = max(m.probe_batches for m in monitor_list(self.monitors))
            batches = self.probe_batches if self.probe_batches is not None else first_batches(data, count, model)
            monitoring = {"monitors": self.monitors, "model": model, "loss_fn": self.loss_fn or loss_fn,
                          "probe_batches": batches, "monitor_every": self.monitor_every}
        return Recorder(optimizer, db=self.db, name=self.name or default_name, config=dict(config),
                        flush_every=self.flush_every, **norms, **monitoring)

    def refine_at_end(self, live: LiveAnalysis, recorder: Recorder | None) -> None:
        """Refine the finished trial's schedule when :attr:`refine` asks for it."""
        if recorder is None or live.refine is None or recorder.trial_id is None:
            return
        from steplab.store import open_store

        with open_store(self.db) as store:
            live.refine_run(store, recorder.trial_id)


def first_batches(loader: Any, count: int, model: Any) -> list[Any]:
    """The first ``count`` batches of a map-style training data set, examples taken in index
    order and collated as ``loader`` collates them, on ``model``'s device: fixed probe batches
    that leave the loader, its sampler and every random generator untouched."""
    import torch

    from steplab.errors import SpecError

    dataset = getattr(loader, "dataset", None)
    size = getattr(loader, "batch_size", None) or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    collate = getattr(loader, "collate_fn", None)
    if dataset is None or not size or collate is None or not hasattr(dataset, "__getitem__"):
        raise SpecError("monitors need probe batches: pass probe_batches=[...] (the training data loader "
                        "is not a map-style data set with a batch size)")
    n = min(len(dataset), count * int(size))
    batches = [collate([dataset[i] for i in range(start, min(start + size, n))]) for start in range(0, n, size)]
    device = next((p.device for p in model.parameters()), torch.device("cpu")) if model is not None else None

    def move(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return x.to(device)
        if isinstance(x, Mapping):
            return {k: move(v) for k, v in x.items()}
        if isinstance(x, tuple | list):
            return type(x)(move(v) for v in x) if type(x) in (tuple, list) else x
        return x

    return [move(b) for b in batches] if device is not None else batches
