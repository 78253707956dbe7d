"""TensorBoard event files <-> steplab trials (extra ``[tensorboard]``).

Reading uses TensorBoard's own ``EventAccumulator``
(``tensorboard.backend.event_processing.event_accumulator``), which knows every event-file
version and both scalar encodings (``simple_value`` from ``SummaryWriter.add_scalar`` and
scalar tensors from the ``tf.summary`` v2 API); writing uses
``torch.utils.tensorboard.SummaryWriter`` (https://pytorch.org/docs/stable/tensorboard.html)
with the HParams plugin summary it builds for ``add_hparams``.

::

    steplab import tensorboard runs/exp1 --tags loss=train/loss,lr=lr,grad_norm=grad_norm
    steplab export tensorboard --logdir tb-steplab --study 3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steplab.errors import SourceError
from steplab.integrations import summary, traces
from steplab.report.run_figures import schedule_figure
from steplab.store import Store

__all__ = ["read_scalars", "import_logdir", "export_trials"]

_HINT = "pip install 'steplab[tensorboard]'"


def _accumulator(run_dir: Path) -> Any:
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        raise SourceError(f"reading TensorBoard logs needs the tensorboard package: {_HINT}") from None
    # size_guidance 0 = keep every event (the default samples scalars down to 10,000)
    acc = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    try:
        acc.Reload()
    except Exception as e:  # a corrupt or truncated file: tensorboard raises many types
        raise SourceError(f"cannot read the TensorBoard log in {run_dir} ({type(e).__name__}: {e})") from None
    return acc


def _run_dir(logdir: Path) -> Path:
    """The one run folder under ``logdir`` (``logdir`` itself when it holds event files)."""
    if not logdir.exists():
        raise SourceError(f"TensorBoard log folder {str(logdir)!r} does not exist")
    if logdir.is_file():
        if "tfevents" in logdir.name:
            return logdir.parent
        raise SourceError(f"{str(logdir)!r} is not a TensorBoard event file or folder")
    if any("tfevents" in p.name for p in logdir.iterdir() if p.is_file()):
        return logdir
    runs = sorted({p.parent for p in logdir.rglob("*tfevents*") if p.is_file()})
    if not runs:
        raise SourceError(f"no TensorBoard event files (*tfevents*) under {str(logdir)!r}: nothing to import")
    if len(runs) > 1:
        names = ", ".join(str(r.relative_to(logdir)) for r in runs[:6])
        raise SourceError(f"{str(logdir)!r} holds {len(runs)} runs ({names}): import one of them at a time")
    return runs[0]


def read_scalars(logdir: str | Path) -> dict[str, traces.Series]:
    """Every scalar series of the single run in ``logdir``, by tag, in logged order."""
    run = _run_dir(Path(logdir))
    acc = _accumulator(run)
    out: dict[str, traces.Series] = {}
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = traces.Series(tag, [int(e.step) for e in events], [float(e.value) for e in events],
                                 [float(e.wall_time) for e in events])
    if tags.get("tensors"):
        from tensorboard.util import tensor_util

        for tag in tags["tensors"]:
            events = acc.Tensors(tag)
            values = [tensor_util.make_ndarray(e.tensor_proto) for e in events]
            if tag in out or not values or any(v.size != 1 or v.dtype.kind not in "fiu" for v in values):
                continue  # not a scalar series (text, histograms, hparams)
            out[tag] = traces.Series(tag, [int(e.step) for e in events], [float(v.item()) for v in values],
                                     [float(e.wall_time) for e in events])
    return out


def import_logdir(
    store: Store,
    logdir: str | Path,
    *,
    tags: dict[str, str] | None = None,
    name: str | None = None,
    optimizer: str | None = None,
    offset: int = 0,
) -> int:
    """Import one TensorBoard run as a finished trial (one transaction) and return its id.

    ``tags`` maps trace columns to tags (``{"loss": "train/loss"}``); columns it leaves out
    take the first of :data:`~steplab.integrations.traces.DEFAULT_TAGS` present. Tags named
    ``val_*``, ``eval/*``, ``validation/*``, ``test/*`` become evaluation rows.
    """
    path = Path(logdir)
    source = f"TensorBoard log {str(path)!r}"
    series = read_scalars(path)
    if not series:
        raise SourceError(f"{source} has no scalar series: nothing to import")
    chosen = traces.resolve_tags(list(series), tags or {}, source)
    used = set(chosen.values())
    evals = []
    for tag, s in series.items():
        found = traces.eval_metric(tag) if tag not in used else None
        if found is not None:
            evals.append(traces.Series(found[1], s.steps, s.values, s.times))
    built = traces.build_trial(
        source=source, variant="tensorboard", columns={k: series[t] for k, t in chosen.items()},
        evals=evals, optimizer=optimizer, origin={"logdir": str(path.resolve()), "tags": chosen}, offset=offset,
    )
    return traces.save_trial(store, built, name=name or path.resolve().name)


def export_trials(store: Store, logdir: str | Path, *, study_id: int | None = None) -> list[Path]:
    """Write each trial (of ``study_id``, or all) as a TensorBoard run ``logdir/trial-ID``:
    every trace column and evaluation as scalars (``loss``, ``lr``, ``grad_norm``, ...,
    ``validation/...``), the settings in the HParams tab, the schedule as a figure. Returns
    the run folders."""
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:
        raise SourceError(f"writing TensorBoard logs needs the tensorboard package: {_HINT}") from None
    import math

    trials = store.list_trials(study_id=study_id)
    if not trials:
        where = f"study {study_id}" if study_id is not None else "the store"
        raise SourceError(f"{where} has no trials to export")
    out = []
    for t in trials:
        run = Path(logdir) / f"trial-{t.id}"
        trace = store.steps(t.id)  # type: ignore[arg-type]
        evals = store.evals(t.id)  # type: ignore[arg-type]
        t0 = summary.start_time(store, t.id)  # type: ignore[arg-type]
        with SummaryWriter(log_dir=str(run)) as w:
            for column in traces.TRACE_KEYS:
                for step, value, ts in zip(trace["step"], trace[column], trace["time_s"]):
                    if math.isfinite(value):
                        w.add_scalar(column, float(value), int(step), walltime=t0 + float(ts) if math.isfinite(ts) else None)
            for e in evals:
                w.add_scalar(e.metric, e.value, e.step, walltime=t0 + e.time_s)
            params = {k: v if v is not None else "" for k, v in summary.trial_params(t).items()}
            metrics = {k: float(v) for k, v in t.final_metrics.items() if isinstance(v, int | float)}
            for proto in hparams(params, metrics or {"steps": float(t.steps)}):
                w.file_writer.add_summary(proto)  # what add_hparams does, in this run's folder
            w.add_text("steplab/trial", json.dumps({"id": t.id, "status": t.status, "message": t.message}))
            if len(trace["step"]):
                w.add_figure("schedule", schedule_figure(trace, f"trial {t.id}: {t.spec.algorithm}"), 0)
        out.append(run)
    return out
