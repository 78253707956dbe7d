"""MLflow runs <-> steplab trials (extra ``[mlflow]``, i.e. ``mlflow-skinny``).

Both directions use ``mlflow.tracking.MlflowClient``
(https://mlflow.org/docs/latest/python_api/mlflow.client.html): ``get_run`` and
``get_metric_history`` to read, ``create_run``, ``log_batch``, ``log_figure`` and
``set_terminated`` to write. Any tracking URI MLflow accepts works; a local folder such as
``./mlruns`` is MLflow's file store, which MLflow 3 keeps behind ``MLFLOW_ALLOW_FILE_STORE``:
steplab sets that variable (when unset) for a file-store URI it is asked to use.

::

    steplab import mlflow --tracking-uri ./mlruns 3f2a...e1
    steplab export mlflow --tracking-uri ./mlruns --study 3
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from steplab.errors import SourceError
from steplab.integrations import summary, traces
from steplab.report.run_figures import schedule_figure
from steplab.store import Store

__all__ = ["client", "import_run", "export_trials"]

_HINT = "pip install 'steplab[mlflow]'"
#: MLflow's limits per ``log_batch`` call (https://mlflow.org/docs/latest/rest-api.html#log-batch)
_MAX_METRICS, _MAX_PARAMS, _MAX_PARAM_CHARS = 1000, 100, 6000


def client(tracking_uri: str | Path) -> Any:
    """An ``MlflowClient`` on ``tracking_uri``; a path or ``file:`` URI is MLflow's file store."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SourceError(f"MLflow import and export need mlflow-skinny: {_HINT}") from None
    uri = str(tracking_uri)
    if "://" not in uri or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if "://" not in uri:
            uri = Path(uri).resolve().as_uri()
    return MlflowClient(tracking_uri=uri)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "message", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _history(c: Any, run_id: str, key: str) -> traces.Series:
    metrics = c.get_metric_history(run_id, key)
    return traces.Series(key, [int(m.step) for m in metrics], [float(m.value) for m in metrics],
                         [m.timestamp / 1000.0 for m in metrics])


def import_run(
    store: Store,
    tracking_uri: str | Path,
    run_id: str,
    *,
    tags: dict[str, str] | None = None,
    name: str | None = None,
    optimizer: str | None = None,
    offset: int = 0,
) -> int:
    """Import one MLflow run as a finished trial (one transaction) and return its id.

    Metric keys map to trace columns as ``tags`` says (``{"loss": "train_loss"}``), the rest
    by :data:`~steplab.integrations.traces.DEFAULT_TAGS`; ``val_*``/``eval/*``/... keys
    become evaluation rows; the run's params become the trial's hyperparameters."""
    c = client(tracking_uri)
    from mlflow.exceptions import MlflowException

    source = f"MLflow run {run_id!r} in {str(tracking_uri)!r}"
    try:
        run = c.get_run(run_id)
    except (MlflowException, ImportError) as e:
        raise SourceError(f"{source}: cannot read it ({_first_line(e)}); list runs with `mlflow runs list`") from None
    keys = sorted(run.data.metrics)
    if not keys:
        raise SourceError(f"{source} has no metrics: nothing to import")
    chosen = traces.resolve_tags(keys, tags or {}, source)
    used = set(chosen.values())
    evals = []
    for key in keys:
        found = traces.eval_metric(key) if key not in used else None
        if found is not None:
            s = _history(c, run_id, key)
            evals.append(traces.Series(found[1], s.steps, s.values, s.times))
    params = {k: traces.param_value(v) for k, v in run.data.params.items()}
    opt = optimizer or next((str(params[k]) for k in ("optimizer", "optim") if k in params), None)
    built = traces.build_trial(
        source=source, variant="mlflow", columns={k: _history(c, run_id, t) for k, t in chosen.items()},
        evals=evals, params=params, optimizer=opt, offset=offset,
        origin={"tracking_uri": str(tracking_uri), "run_id": run_id, "tags": chosen},
        start_time=run.info.start_time / 1000.0 if run.info.start_time else None,
    )
    return traces.save_trial(store, built, name=name or run.info.run_name or run_id)


def export_trials(store: Store, tracking_uri: str | Path, *, study_id: int | None = None,
                  experiment: str | None = None) -> list[str]:
    """Log each trial (of ``study_id``, or all) as an MLflow run in ``experiment`` (default:
    the study's name, else ``"steplab"``): trace columns and evaluations as metrics with
    their steps, settings as params, the schedule as ``schedule.png``. Returns the run ids."""
    from mlflow.entities import Metric, Param, RunTag

    trials = store.list_trials(study_id=study_id)
    if not trials:
        where = f"study {study_id}" if study_id is not None else "the store"
        raise SourceError(f"{where} has no trials to export")
    from mlflow.exceptions import MlflowException

    c = client(tracking_uri)
    name = experiment or (store.get_study(study_id)["name"] if study_id is not None else "steplab")
    try:
        found = c.get_experiment_by_name(name)
        exp_id = found.experiment_id if found is not None else c.create_experiment(name)
    except (MlflowException, ImportError) as e:
        raise SourceError(f"cannot write to MLflow at {str(tracking_uri)!r} ({_first_line(e)})") from None
    ids = []
    for t in trials:
        tid: int = t.id  # type: ignore[assignment]
        info = store.trial_info(tid)
        t0 = summary.start_time(store, tid)
        trace = store.steps(tid)
        run = c.create_run(exp_id, start_time=int(t0 * 1000), run_name=info["name"] or f"trial-{tid}",
                           tags={"steplab.trial_id": str(tid), "steplab.db": store.url})
        rid = run.info.run_id
        metrics = []
        for column in traces.TRACE_KEYS:
            for step, value, ts in zip(trace["step"], trace[column], trace["time_s"]):
                if math.isfinite(value):
                    when = int((t0 + (ts if math.isfinite(ts) else 0.0)) * 1000)
                    metrics.append(Metric(column, float(value), when, int(step)))
        for e in store.evals(tid):
            if math.isfinite(e.value):
                metrics.append(Metric(e.metric, e.value, int((t0 + e.time_s) * 1000), e.step))
        params = [Param(k, ("" if v is None else str(v))[:_MAX_PARAM_CHARS])
                  for k, v in summary.trial_params(t).items()]
        for j in range(0, len(params), _MAX_PARAMS):
            c.log_batch(rid, params=params[j:j + _MAX_PARAMS])
        for i in range(0, len(metrics), _MAX_METRICS):
            c.log_batch(rid, metrics=metrics[i:i + _MAX_METRICS])
        if t.message:
            c.log_batch(rid, tags=[RunTag("steplab.message", t.message[:5000])])
        if len(trace["step"]):
            c.log_figure(rid, schedule_figure(trace, f"trial {tid}: {t.spec.algorithm}"), "schedule.png")
        status = {"reached": "FINISHED", "budget": "FINISHED", "interrupted": "KILLED", "running": None}.get(t.status, "FAILED")
        if status is not None:
            end = info["finished_at"]
            c.set_terminated(rid, status=status,
                             end_time=int((t0 + t.train_time_s + t.eval_time_s) * 1000) if end else None)
        ids.append(rid)
    return ids
