"""Rows to and from objects: what each column of a trial, study, step or evaluation holds.

Numbers follow the contract of :class:`steplab.store.store.Store`: a target not reached
(``inf``) is SQL NULL, a trace value that is ``None`` or NaN is NULL, JSON keeps
``inf``/``nan`` as ``Infinity``/``NaN``.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from collections.abc import Sequence
from typing import Any

from steplab.errors import StoreError
from steplab.results import EvalRow, StepRow, TrialResult, TrialSpec
from steplab.store.engine import one_line
from steplab.store.schema import STEP_VALUE_COLUMNS
from steplab.store.trial_rows import null_to_inf as _null_to_inf  # noqa: F401
from steplab.store.trial_rows import trial_from_row  # noqa: F401  (re-exported)


def now_iso() -> str:
    """The current UTC time as ISO 8601 text, to the second (``created_at``, ``finished_at``)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def dumps(value: Any, what: str) -> str:
    """JSON text that round-trips ``value`` (``inf``/``nan`` kept as ``Infinity``/``NaN``)."""
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise StoreError(
            f"{what} is not JSON-serializable ({one_line(e)}): use plain "
            "numbers, strings, lists and dicts"
        ) from None


def _float_or_none(value: float | None) -> float | None:
    """SQL value of a trace number: ``None`` and NaN become NULL, infinities are kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _inf_to_null(value: float) -> float | None:
    value = float(value)
    if math.isnan(value):
        raise StoreError("time/steps to target is NaN: use math.inf for 'not reached'")
    return None if math.isinf(value) and value > 0 else value


def spec_values(spec: TrialSpec) -> dict[str, Any]:
    """The trials-table columns of what a trial trains (all of its spec but the study and key)."""
    return {
        "workload": spec.workload,
        "variant": spec.variant,
        "algorithm": spec.algorithm,
        "algorithm_spec": dumps(spec.algorithm_spec, "algorithm_spec"),
        "hyperparameters": dumps(spec.hyperparameters, "hyperparameters"),
        "seed": int(spec.seed),
        "budget_steps": int(spec.budget_steps),
        "idx": int(spec.index),
        "stop_at_target": bool(spec.stop_at_target),
        "settings": dumps(spec.settings, "settings"),
    }


def outcome_values(result: TrialResult) -> dict[str, Any]:
    """The trials-table columns of a trial's outcome (what finishing or importing it writes)."""
    return {
        "status": result.status,
        "steps": int(result.steps),
        "train_time_s": float(result.train_time_s),
        "eval_time_s": float(result.eval_time_s),
        "time_to_target_s": _inf_to_null(result.time_to_target_s),
        "steps_to_target": _inf_to_null(result.steps_to_target),
        "final_metrics": dumps(result.final_metrics, "final_metrics"),
        "message": result.message,
        "device": result.device,
        "host": result.host,
        "versions": dumps(result.versions, "versions"),
    }


def start_values(spec: TrialSpec, *, name: str | None, host: str, versions: dict[str, str] | None,
                 device: str, key: str | None, worker: str | None) -> dict[str, Any]:
    """The trials-table row of a trial that starts ``running`` (no outcome yet)."""
    return {
        "study_id": spec.study_id,
        "key": key or spec.key(),
        **spec_values(spec),
        "status": "running",
        "steps": 0,
        "train_time_s": 0.0,
        "eval_time_s": 0.0,
        "time_to_target_s": None,
        "steps_to_target": None,
        "final_metrics": "{}",
        "message": "",
        "device": device,
        "host": host,
        "versions": dumps(versions or {}, "versions"),
        "created_at": now_iso(),
        "finished_at": None,
        "name": name,
        "worker": worker,
        "heartbeat_at": time.time() if worker is not None else None,
    }


def step_values(trial_id: int, rows: Sequence[StepRow]) -> list[dict[str, Any]]:
    """The steps-table rows of a trace."""
    return [
        {"trial_id": trial_id, "step": int(r.step), **{c: _float_or_none(getattr(r, c)) for c in STEP_VALUE_COLUMNS}}
        for r in rows
    ]


def eval_values(trial_id: int, rows: Sequence[EvalRow]) -> list[dict[str, Any]]:
    """The evals-table rows of a trial's evaluations."""
    return [
        {"trial_id": trial_id, "step": int(r.step), "time_s": float(r.time_s), "split": r.split,
         "metric": r.metric, "value": _float_or_none(r.value)}
        for r in rows
    ]


def eval_from_row(row: Any) -> EvalRow:
    """An evals-table row as an :class:`EvalRow` (NULL value -> NaN)."""
    value = math.nan if row.value is None else row.value
    return EvalRow(step=row.step, time_s=row.time_s, split=row.split, metric=row.metric, value=value)


def study_from_row(row: Any) -> dict[str, Any]:
    """A studies-table row as ``{"id", "name", "kind", "spec", "created_at"}``."""
    return {"id": row.id, "name": row.name, "kind": row.kind, "spec": json.loads(row.spec),
            "created_at": row.created_at}


