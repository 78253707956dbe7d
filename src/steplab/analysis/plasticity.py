"""Loss of plasticity read from traces: the per-task online curve of a long stream and the
probe metrics at task starts (Dohare et al. 2024, "Loss of plasticity in deep continual
learning", Nature 632; the streams and the metrics on tensors are in
:mod:`steplab.workloads.long_streams` and :mod:`steplab.workloads.plasticity_metrics`).

A long-stream trial stores, at the evaluation that ends task ``k`` (0-based, after
``(k + 1) x steps`` updates), ``online/task = k`` and ``online/accuracy`` (regression:
``online/loss``); at every probed task start ``plasticity/...`` (step ``k x steps``, step 0
included). :func:`task_curve` turns the rows into "accuracy on task k against k", one query;
:func:`probe_curve` gives a probe metric against the task it was measured before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from steplab.results import EvalRow
from steplab.workloads.long_streams import online_summary

__all__ = ["curve_from_rows", "online_summary", "probe_curve", "probe_from_rows", "task_curve"]


def curve_from_rows(rows: Iterable[EvalRow], metric: str = "online/accuracy") -> tuple[np.ndarray, np.ndarray]:
    """``(tasks, values)``: ``metric`` at each evaluation that also records ``online/task``,
    sorted by task (the last row wins when a step repeats)."""
    by_step: dict[int, dict[str, float]] = {}
    for r in rows:
        by_step.setdefault(int(r.step), {})[r.metric] = float(r.value)
    pts = sorted((int(m["online/task"]), m[metric]) for m in by_step.values() if "online/task" in m and metric in m)
    return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)


def probe_from_rows(rows: Iterable[EvalRow], metric: str, steps_per_task: int) -> tuple[np.ndarray, np.ndarray]:
    """``(tasks, values)`` of a probe metric (``plasticity/erank``...): the value measured at
    step ``k x steps_per_task``, before task ``k`` trained (``k = tasks`` is the end)."""
    if steps_per_task < 1:
        raise ValueError(f"steps_per_task must be >= 1, got {steps_per_task}")
    pts = {int(r.step) // steps_per_task: float(r.value) for r in rows
           if r.metric == metric and int(r.step) % steps_per_task == 0}
    keys = sorted(pts)
    return np.array(keys, dtype=np.int64), np.array([pts[k] for k in keys], dtype=np.float64)


def task_curve(store: Any, trial_id: int, metric: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Online accuracy (or ``metric``; ``online/loss`` for a regression stream) of every task
    of stored long-stream trial ``trial_id``, against the 0-based task."""
    rows = store.evals(trial_id)
    if metric is None:
        metric = "online/accuracy" if any(r.metric == "online/accuracy" for r in rows) else "online/loss"
    return curve_from_rows(rows, metric)


def probe_curve(store: Any, trial_id: int, metric: str = "plasticity/erank") -> tuple[np.ndarray, np.ndarray]:
    """A probe metric of stored trial ``trial_id`` against the task it was measured before."""
    trial = store.get_trial(trial_id)
    steps = int(trial.final_metrics.get("online/steps_per_task", 0)) or _steps_of(trial.spec.variant)
    return probe_from_rows(store.evals(trial_id), metric, steps)


def _steps_of(variant: str) -> int:
    from steplab.workloads.stream_spec import parse_stream

    text = "+".join(p for p in variant.split("+") if not p.strip().startswith("target="))
    return parse_stream(text).steps_per_task
