"""Analyses a training callback can run while the user trains: the predicted final loss at
intervals (:mod:`steplab.analysis.predict`, a loss-curve law fitted on the trace so far and evaluated
on the whole run's learning rates) and a refined schedule at the end (:mod:`steplab.analysis.refine`,
Defazio et al. 2023, from the run's gradient norms). Shared by the Lightning and Hugging Face
callbacks; off unless asked for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steplab.errors import SteplabError
from steplab.store import Store
from steplab.training.recorder import Recorder

__all__ = ["LiveAnalysis", "scheduler_lrs"]

logger = logging.getLogger("steplab.integrations")


def scheduler_lrs(scheduler: Any, total_steps: int) -> np.ndarray | None:
    """The learning rate of each of ``total_steps`` updates that a ``LambdaLR`` (every
    Hugging Face ``get_scheduler`` schedule is one) gives its first param group:
    ``base_lr * lr_lambda(step)``; ``None`` for other schedulers, whose future is state."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) or total_steps <= 0:
        return None
    base, fn = scheduler.base_lrs[0], scheduler.lr_lambdas[0]
    return np.array([base * fn(s) for s in range(total_steps)], dtype=np.float64)


@dataclasses.dataclass
class LiveAnalysis:
    """What to run during and after training.

    Args:
        predict_every: every this many steps fit ``law`` on the trace so far and log the
            predicted final loss (0: never). Needs the learning rates of the whole run: read
            off a ``LambdaLR`` scheduler, or from ``lr_at``.
        law: ``"annealing"`` (Tissue et al. 2024) or ``"multipower"`` (Luo et al. 2025).
        lr_at: ``step -> learning rate`` for the whole run, when the scheduler is not a
            ``LambdaLR``.
        refine: write the refined schedule (a steplab schedule spec, JSON) here at the end
            of training and print where it went (None: do not refine).
        tau, norm: as ``steplab refine --tau/--norm``.
    """

    predict_every: int = 0
    law: str = "annealing"
    lr_at: Callable[[int], float] | None = None
    refine: str | Path | None = None
    tau: float = 0.1
    norm: str = "auto"
    #: ``(step, predicted final loss)`` for every prediction made
    predictions: list[tuple[int, float]] = dataclasses.field(default_factory=list, init=False)
    #: where the refined schedule was written
    refined_path: Path | None = dataclasses.field(default=None, init=False)
    _warned: bool = dataclasses.field(default=False, init=False, repr=False)

    def due(self, step: int) -> bool:
        """Whether a prediction is due after ``step`` recorded updates."""
        return self.predict_every > 0 and step > 0 and step % self.predict_every == 0

    def run_lrs(self, scheduler: Any, total_steps: int) -> np.ndarray | None:
        """The whole run's learning rates: ``lr_at`` when given, else the scheduler's."""
        if self.lr_at is not None and total_steps > 0:
            return np.array([float(self.lr_at(s)) for s in range(total_steps)], dtype=np.float64)
        return scheduler_lrs(scheduler, total_steps)

    def predict_final(self, recorder: Recorder, run_lrs: np.ndarray | None) -> float | None:
        """Fit the law on ``recorder``'s trace so far, log and return the predicted loss after
        the last update of the run (``None`` when it cannot be predicted yet). Flushes the
        recorder."""
        from steplab.analysis import predict

        if run_lrs is None:
            if not self._warned:
                logger.warning("steplab: cannot predict the final loss: the scheduler is not a "
                               "LambdaLR; pass lr_at=step->lr")
                self._warned = True
            return None
        trace = recorder.trace()
        lrs, loss, steps = trace["lr"], trace["loss"], trace["step"]
        n = len(lrs)
        if n < 10 or n >= len(run_lrs) or not np.isfinite(lrs).all():
            return None
        full = np.concatenate([lrs, run_lrs[n:]])
        warm = predict.warmup_steps_of(full)
        if warm >= n:
            return None  # still warming up: nothing to fit the decay on
        keep = np.isfinite(loss)
        run = predict.Run(int(recorder.trial_id or 0), steps[keep], lrs, loss[keep], predict.warmup_steps_of(lrs))
        try:
            fitted = predict.fit_runs([run], self.law)
            law = dataclasses.replace(fitted.law, warmup_steps=warm)
            value = float(law.predict(full, [len(full)])[0])
        except (SteplabError, ValueError, FloatingPointError) as e:
            logger.info("steplab: step %d: no prediction yet (%s)", n, e)
            return None
        self.predictions.append((n, value))
        logger.info("steplab: step %d of %d: predicted final loss %.4g (%s law)", n, len(full), value, self.law)
        return value

    def refine_run(self, store: Store, trial_id: int) -> Path | None:
        """Refine the schedule from the stored trial, write it to :attr:`refine`, print where."""
        if self.refine is None:
            return None
        from steplab.analysis import refine

        try:
            r = refine.refine_trial(store, trial_id, tau=self.tau, norm=self.norm)
        except SteplabError as e:
            print(f"steplab: no refined schedule for trial {trial_id}: {e}")
            return None
        path = Path(self.refine)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r.spec.to_dict()) + "\n")
        self.refined_path = path
        print(f"steplab: refined schedule of trial {trial_id} written to {path} (use it as --schedule {path})")
        return path
