"""What the Lightning and Hugging Face callbacks record and analyse: one options object
shared by both (:class:`~steplab.integrations.lightning.SteplabLightningCallback`,
:class:`~steplab.integrations.hf.SteplabTrainerCallback`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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

    def live(self) -> LiveAnalysis:
        """The live analyses these options ask for."""
        return LiveAnalysis(predict_every=self.predict_every, law=self.law, lr_at=self.lr_at,
                            refine=self.refine, tau=self.tau, norm=self.norm)

    def recorder(self, optimizer: Any, *, default_name: str | None, config: Mapping[str, Any],
                 **norms: bool) -> Recorder:
        """A Recorder for a new trial that stores ``config``; ``norms`` are the Recorder's
        ``grad_norm``/``l1``/``update_norm``."""
        return Recorder(optimizer, db=self.db, name=self.name or default_name, config=dict(config),
                        flush_every=self.flush_every, **norms)

    def refine_at_end(self, live: LiveAnalysis, recorder: Recorder | None) -> None:
        """Refine the finished trial's schedule when :attr:`refine` asks for it."""
        if recorder is None or live.refine is None or recorder.trial_id is None:
            return
        from steplab.store import open_store

        with open_store(self.db) as store:
            live.refine_run(store, recorder.trial_id)
