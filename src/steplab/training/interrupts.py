"""What becomes of a run stopped by Ctrl-C (SIGINT) or SIGTERM.

A single run (``steplab run``, ``autolr``, ``continual``, ``sensitivity``) keeps its trial:
:func:`keep_interrupted` records it as ``interrupted`` with the trace written so far
(never reached, never scored, :data:`steplab.results.ENDED`) and returns the
:class:`~steplab.errors.Interrupted` to raise, whose text says so. A benchmark's claimed
trial is given back instead (``steplab.training.jobs.claim_and_run``) and run again when the
benchmark resumes. Either way no trial stays ``running`` without a live owner.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from steplab.errors import Interrupted, StoreError
from steplab.results import RunEnvironment, TrialResult, TrialSpec

__all__ = ["RunInterrupted", "keep_interrupted", "kept"]


class RunInterrupted(Interrupted):
    """Ctrl-C/SIGTERM inside :func:`steplab.training.loop.train`: ``outcome`` is the run so
    far (status ``interrupted``, its steps, times and last metrics), the recorder closed (its
    rows written)."""

    def __init__(self, error: BaseException, outcome: Any) -> None:
        old = Interrupted.of(error)
        super().__init__(old.message, signum=old.signum, trial_id=old.trial_id)
        self.outcome = outcome


def keep_interrupted(store: Any, trial_id: int | None, spec: TrialSpec, env: RunEnvironment,
                     error: BaseException, final_metrics: dict[str, float] | None = None) -> Interrupted:
    """Record ``trial_id`` in ``store`` as ``interrupted`` (``time_to_target = inf``; its
    rows kept) and return the :class:`Interrupted` for ``error`` that says so. The steps,
    times and metrics come from the :class:`RunInterrupted` outcome when the loop was
    running, else from the stored trace. With no store or trial, the message says nothing
    was stored."""
    outcome = getattr(error, "outcome", None)
    if store is None or trial_id is None:
        return Interrupted.of(error, "interrupted before a trial was stored")
    steps = int(outcome.steps) if outcome is not None else _stored_steps(store, trial_id)
    metrics = {**(outcome.metrics if outcome is not None else {}), **(final_metrics or {})}
    result = TrialResult(
        spec=spec, status="interrupted", steps=steps,
        train_time_s=float(outcome.train_time_s) if outcome is not None else 0.0,
        eval_time_s=float(outcome.eval_time_s) if outcome is not None else 0.0,
        time_to_target_s=math.inf, steps_to_target=math.inf, final_metrics=metrics,
        message=f"interrupted after {steps} steps", id=trial_id, **env.fields(),
    )
    try:
        store.finish_trial(trial_id, result)
    except StoreError as e:  # the database went away under us: say so, the claim dies with us
        return Interrupted.of(error, f"trial {trial_id} could not be marked interrupted ({e})", trial_id)
    return kept(error, trial_id, steps)


def kept(error: BaseException, trial_id: int | None, steps: int) -> Interrupted:
    """The :class:`Interrupted` for ``error`` saying trial ``trial_id`` was kept as
    ``interrupted`` with ``steps`` steps."""
    return Interrupted.of(error, f"trial {trial_id} kept as 'interrupted' with {steps} steps", trial_id)


def _stored_steps(store: Any, trial_id: int) -> int:
    with contextlib.suppress(StoreError):
        rows = store.step_rows(trial_id)
        return int(rows[-1].step) + 1 if rows else 0
    return 0
