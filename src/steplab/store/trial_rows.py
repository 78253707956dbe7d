"""A trials-table row as a :class:`~steplab.results.TrialResult`, without SQLAlchemy: shared by
the store (:mod:`steplab.store.rows`) and the standard-library reader of
:mod:`steplab.store.quick_list`."""

from __future__ import annotations

import json
import math
from typing import Any

from steplab.results import TrialResult, TrialSpec


def null_to_inf(value: float | None) -> float:
    """``None`` (SQL NULL: not reached) as ``inf``."""
    return math.inf if value is None else float(value)


def trial_from_row(row: Any) -> TrialResult:
    """A trials-table row as a :class:`TrialResult` with ``id`` set."""
    spec = TrialSpec(
        workload=row.workload,
        variant=row.variant,
        algorithm=row.algorithm,
        algorithm_spec=json.loads(row.algorithm_spec),
        hyperparameters=json.loads(row.hyperparameters),
        seed=row.seed,
        budget_steps=row.budget_steps,
        study_id=row.study_id,
        index=row.idx,
        stop_at_target=bool(row.stop_at_target),
        settings=json.loads(row.settings),
    )
    return TrialResult(
        spec=spec,
        status=row.status,
        steps=row.steps,
        train_time_s=row.train_time_s,
        eval_time_s=row.eval_time_s,
        time_to_target_s=null_to_inf(row.time_to_target_s),
        steps_to_target=null_to_inf(row.steps_to_target),
        final_metrics=json.loads(row.final_metrics),
        message=row.message,
        device=row.device,
        host=row.host,
        versions=json.loads(row.versions),
        id=row.id,
    )
