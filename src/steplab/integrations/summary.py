"""What an export shows of a stored trial, shared by the TensorBoard and MLflow exporters:
flat params (dashboards take no nesting) and the run's start as a wall time (the schedule as
run is drawn by :func:`steplab.report.run_figures.schedule_figure`)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from steplab.store import Store

__all__ = ["trial_params", "start_time"]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is None or isinstance(value, bool | int | float | str):
        out[prefix] = value
    else:
        out[prefix] = json.dumps(value)


def trial_params(trial: Any) -> dict[str, Any]:
    """A stored trial's settings as flat ``name -> scalar`` params: workload, variant,
    algorithm, seed, budget, status, ``hp.*`` (hyperparameters), ``algorithm_spec.*``."""
    out: dict[str, Any] = {"workload": trial.spec.workload, "variant": trial.spec.variant,
                           "algorithm": trial.spec.algorithm, "seed": trial.spec.seed,
                           "budget_steps": trial.spec.budget_steps, "status": trial.status}
    _flat("hp", trial.spec.hyperparameters, out)
    _flat("algorithm_spec", trial.spec.algorithm_spec, out)
    return out


def start_time(store: Store, trial_id: int) -> float:
    """When the trial was created, as a POSIX time (trace times count from there)."""
    created = store.trial_info(trial_id)["created_at"]
    try:
        return datetime.datetime.fromisoformat(created).timestamp()
    except (TypeError, ValueError):
        return 0.0
