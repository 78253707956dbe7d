"""The data model every analysis reads (DESIGN.md, "Data model").

A *trial* is one training run of one algorithm with fixed hyperparameters and seed on one
workload. Its *trace* is one row per recorded step plus one row per evaluation. These are
plain dataclasses: the store persists them, the recorder and the train loop produce them.

The run record has one constructor, :func:`trial_spec`, and one source of where it ran,
:func:`current_environment`: every caller that starts or finishes a trial uses them, so no
copy forgets a setting that changes the result (nanoGPT keeps its whole config beside each
checkpoint; :meth:`TrialSpec.to_dict` is that config).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import platform
import socket
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from steplab.errors import SpecError

Status = Literal["running", "reached", "budget", "diverged", "failed", "pruned", "interrupted"]
STATUSES: tuple[str, ...] = ("running", "reached", "budget", "diverged", "failed", "pruned", "interrupted")
#: a trial that ran to its end: a resumed study keeps it and does not run its key again
FINISHED: tuple[str, ...] = ("reached", "budget", "diverged", "failed", "pruned")
#: a trial no process runs any more: finished, or stopped by Ctrl-C/SIGTERM (``interrupted``:
#: kept with its trace, never reached, never scored, run again by a resumed study)
ENDED: tuple[str, ...] = (*FINISHED, "interrupted")

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


#: the settings of a run besides its spec's named fields that change its result, at their
#: defaults (``TrainConfig``'s): the divergence factor, evaluations at extra update counts,
#: the minibatches of ``train/loss`` at every evaluation, a target other than the
#: workload's own (``[metric, value, mode]``; ``None``: the workload's) and an evaluation
#: cadence other than the workload's (``None``: its ``eval_every``; a Ray Tune trial's), the
#: monitors recorded as ``dynamics/...`` metrics and their cadence (``None``: the evaluations'),
#: and the cadence of the recorded gradient and update norms
DEFAULT_SETTINGS: dict[str, Any] = {
    "divergence_factor": 20.0,
    "eval_steps": [],
    "train_eval_batches": 0,
    "target": None,
    "eval_every": None,
    "monitors": [],
    "monitor_every": None,
    "workload_sha256": None,
    "norm_every": 1,
}


@dataclasses.dataclass
class TrialSpec:
    """What to run: everything that determines a trial's result. Build it with
    :func:`trial_spec`; ``settings`` holds the :data:`DEFAULT_SETTINGS` keys."""

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
    settings: dict[str, Any] = dataclasses.field(default_factory=lambda: copy.deepcopy(DEFAULT_SETTINGS))

    def changed_settings(self) -> dict[str, Any]:
        """The settings that differ from :data:`DEFAULT_SETTINGS`."""
        return {k: v for k, v in self.settings.items() if DEFAULT_SETTINGS.get(k, object()) != v}

    def to_dict(self) -> dict[str, Any]:
        """The whole run config as JSON-able values (``steplab runs show`` prints it)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def key(self) -> str:
        """A stable hash of everything that determines the result: a benchmark that finds a
        finished trial with this key in the store does not run it again. Settings enter it
        only where they differ from the defaults, so keys stored before they were recorded
        still match."""
        changed = self.changed_settings()
        payload = json.dumps(
            {
                **({"settings": changed} if changed else {}),
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


class _WorkloadLike(Protocol):
    name: str
    variant: str

    @property
    def budget_steps(self) -> int: ...


class _AlgorithmLike(Protocol):
    name: str
    hyperparameters: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]: ...


def trial_spec(
    workload: _WorkloadLike,
    algorithm: _AlgorithmLike,
    seed: int,
    *,
    settings: Mapping[str, Any] | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    budget_steps: int | None = None,
    study_id: int | None = None,
    index: int = 0,
    stop_at_target: bool = True,
) -> TrialSpec:
    """The run record of training ``algorithm`` on ``workload`` with ``seed``: the one
    constructor every training caller uses. ``settings`` override :data:`DEFAULT_SETTINGS`
    (``TrainConfig.settings``); a workload target other than its default is recorded as
    ``settings["target"]``; ``budget_steps``/``hyperparameters`` default to the workload's
    budget and the algorithm's."""
    unknown = set(settings or {}) - set(DEFAULT_SETTINGS)
    if unknown:
        raise SpecError(f"unknown run settings {sorted(unknown)}; known: {sorted(DEFAULT_SETTINGS)}")
    full = {**DEFAULT_SETTINGS, **(settings or {})}
    target, default = getattr(workload, "target", None), getattr(workload, "default_target", None)
    if target is not None and target != default:
        full["target"] = [target.metric, target.value, target.mode]
    if getattr(workload, "source_sha256", None) is not None:  # a workload loaded from a file
        full["workload_sha256"] = workload.source_sha256
    full["eval_steps"] = sorted(int(k) for k in full["eval_steps"])
    return TrialSpec(
        workload=workload.name,
        variant=workload.variant,
        algorithm=algorithm.name,
        algorithm_spec=algorithm.to_dict(),
        hyperparameters=dict(algorithm.hyperparameters if hyperparameters is None else hyperparameters),
        seed=seed,
        budget_steps=workload.budget_steps if budget_steps is None else budget_steps,
        study_id=study_id,
        index=index,
        stop_at_target=stop_at_target,
        settings=full,
    )


def package_versions() -> dict[str, str]:
    """The versions that can change a result: steplab, torch and Python."""
    import torch

    from steplab.version import __version__

    return {"steplab": __version__, "torch": torch.__version__, "python": platform.python_version()}


@dataclasses.dataclass(frozen=True)
class RunEnvironment:
    """Where a trial ran: host, device and package versions (stored with every trial)."""

    host: str
    device: str
    versions: dict[str, str]

    def fields(self) -> dict[str, Any]:
        """As the keyword arguments of :class:`TrialResult` and ``Store.start_trial``."""
        return {"host": self.host, "device": self.device, "versions": dict(self.versions)}


def current_environment(device: str) -> RunEnvironment:
    """This process's :class:`RunEnvironment` on ``device`` (``"cpu"``, ``"cuda:0"``...)."""
    return RunEnvironment(host=socket.gethostname(), device=str(device), versions=package_versions())


def spec_digest(spec: dict[str, Any]) -> str:
    """8 hex digits of a spec dict without its ``name``: the default study name of a
    benchmark or tune, so the same spec run again finds (resumes) its study."""
    d = {k: v for k, v in spec.items() if k != "name"}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
