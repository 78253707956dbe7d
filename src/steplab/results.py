"""The data model every analysis reads (DESIGN.md, "Data model").

A *trial* is one training run of one algorithm with fixed hyperparameters and seed on one
workload. Its *trace* is one row per recorded step plus one row per evaluation. These are
plain dataclasses: the store persists them, the recorder and the train loop produce them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Literal

Status = Literal["running", "reached", "budget", "diverged", "failed", "pruned"]
STATUSES: tuple[str, ...] = ("running", "reached", "budget", "diverged", "failed", "pruned")
FINISHED: tuple[str, ...] = ("reached", "budget", "diverged", "failed", "pruned")

#: fixed per-step trace columns, in storage order
STEP_COLUMNS: tuple[str, ...] = (
    "step",
    "time_s",
    "lr",
    "loss",
    "grad_norm",
    "grad_norm_l1",
    "update_norm",
)


@dataclasses.dataclass
class StepRow:
    """One recorded optimizer step. ``time_s`` is cumulative *training* time (evaluation
    excluded); norms are global over all parameters (l2 unless named ``_l1``); a value that
    was not recorded is ``None``."""

    step: int
    time_s: float
    lr: float | None
    loss: float | None
    grad_norm: float | None = None
    grad_norm_l1: float | None = None
    update_norm: float | None = None


@dataclasses.dataclass
class EvalRow:
    """One evaluation: ``metric`` is e.g. ``"validation/accuracy"``; ``split`` its prefix."""

    step: int
    time_s: float
    split: str
    metric: str
    value: float


@dataclasses.dataclass
class TrialSpec:
    """What to run: everything that determines a trial's result."""

    workload: str
    variant: str
    algorithm: str
    algorithm_spec: dict[str, Any]
    hyperparameters: dict[str, Any]
    seed: int
    budget_steps: int
    study_id: int | None = None
    #: position of this trial inside its study (tuning index), for resuming
    index: int = 0
    stop_at_target: bool = True

    def key(self) -> str:
        """A stable hash of everything that determines the result: a benchmark that finds a
        finished trial with this key in the store does not run it again."""
        payload = json.dumps(
            {
                "workload": self.workload,
                "variant": self.variant,
                "algorithm": self.algorithm,
                "algorithm_spec": self.algorithm_spec,
                "hyperparameters": self.hyperparameters,
                "seed": self.seed,
                "budget_steps": self.budget_steps,
                "study_id": self.study_id,
                "index": self.index,
                "stop_at_target": self.stop_at_target,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclasses.dataclass
class TrialResult:
    """The outcome of a trial. ``time_to_target_s``/``steps_to_target`` are ``inf`` when the
    target was not reached (a diverged or failed trial is a recorded outcome, not a crash)."""

    spec: TrialSpec
    status: Status
    steps: int
    train_time_s: float
    eval_time_s: float
    time_to_target_s: float = math.inf
    steps_to_target: float = math.inf
    final_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    message: str = ""
    device: str = "cpu"
    host: str = ""
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    id: int | None = None

    @property
    def reached(self) -> bool:
        return self.status == "reached" or math.isfinite(self.time_to_target_s)


def spec_digest(spec: dict[str, Any]) -> str:
    """8 hex digits of a spec dict without its ``name``: the default study name of a
    benchmark or tune, so the same spec run again finds (resumes) its study."""
    d = {k: v for k, v in spec.items() if k != "name"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
