"""Reports of individual runs: one or more trials, whatever recorded them.

``steplab report`` (:mod:`steplab.report`) scores a benchmark study. This module reports
single trials, so the same command works on a ``steplab run`` trial, a user's own loop
recorded with :class:`steplab.training.recorder.Recorder` (or the Lightning / HF callbacks) and a
log imported from TensorBoard, MLflow or CSV (:mod:`steplab.integrations`) - GitHub issue 11.
Everything is read from the trace (DESIGN.md, "The flow of data"); a column the source did
not record (an imported log without gradient norms) is left out, never an error.

* :func:`load_runs` - the trials and their traces from a store.
* :func:`summarize` - the numbers of one run (:class:`RunSummary`): final loss (mean of
  the last 5% of the recorded per-step losses, as nanoGPT-style logs smooth the last
  iterations), min loss, final and best value of every evaluation metric, lr and
  gradient-norm ranges.
* :func:`print_report` - one ``rich`` table, a column per trial.
* :func:`summary_rows` - the rows of that table, shared with the HTML page
  (:mod:`steplab.report.run_html`); the figures are in :mod:`steplab.report.run_figures`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.algorithms.labels import run_label
from steplab.analysis.scoring import workload_key
from steplab.errors import SpecError, SteplabError
from steplab.report.format import DASH, format_steps, format_time
from steplab.results import EvalRow, TrialResult

if TYPE_CHECKING:
    from steplab.store import Store
    from steplab.workloads.base import Target

__all__ = [
    "FINAL_FRACTION",
    "Run",
    "RunSummary",
    "final_loss",
    "grad_norm_column",
    "load_runs",
    "lower_is_better",
    "metric_names",
    "print_report",
    "summarize",
    "summary_rows",
]

FINAL_FRACTION = 0.05
#: imported logs carry their source in the trial's variant (``traces.build_trial``)
_IMPORTED = ("csv", "tensorboard", "mlflow")
#: metric names (after ``split/``) where a lower value is better
_LOWER = ("loss", "error", "err", "perplexity", "ppl", "mse", "mae", "rmse", "nll", "wer", "cer", "bpc", "bpb")


@dataclasses.dataclass(frozen=True)
class Run:
    """One trial as read from the store: the trial, its label, its step trace
    (``Store.steps``: NaN where nothing was recorded), its evaluation rows, where it came
    from and, for a steplab workload, the workload's target."""

    trial: TrialResult
    name: str | None
    trace: dict[str, np.ndarray]
    evals: list[EvalRow]
    source: str
    target: Target | None = None

    @property
    def label(self) -> str:
        """``"#3 my-run"``, or without a name ``"#3 adamw-cosine lr=0.001 wd=0"`` (the
        algorithm and what differs from it, :func:`steplab.algorithms.labels.run_label`):
        the trial in tables and legends."""
        return f"#{self.trial.id} {run_label(self.trial.spec, self.name)}"


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """The numbers of one run. NaN means "not recorded"; ``grad_norm_kind`` is ``"l2"``,
    ``"l1"`` (only the l1 norm was recorded) or ``""`` (none)."""

    steps: int
    train_time_s: float
    final_loss: float
    min_loss: float
    lr_range: tuple[float, float]
    grad_norm_range: tuple[float, float]
    grad_norm_kind: str
    #: metric -> (final value, best value); best is the min for loss-like metrics
    evals: dict[str, tuple[float, float]]


# ---------------------------------------------------------------------------------- data
def lower_is_better(metric: str, target: Target | None = None) -> bool:
    """Whether a lower ``metric`` is better: the workload's target says so when it is on
    this metric, else the name does (loss, error, perplexity, ... are minimised).

    >>> lower_is_better("validation/loss"), lower_is_better("validation/accuracy")
    (True, False)
    """
    if target is not None and target.metric == metric:
        return target.mode == "min"
    leaf = metric.rsplit("/", 1)[-1].lower()
    return any(leaf == w or leaf.startswith(w + "_") or leaf.endswith("_" + w) for w in _LOWER)


def final_loss(loss: np.ndarray, fraction: float = FINAL_FRACTION) -> float:
    """The mean of the last ``fraction`` (at least one) of the recorded losses; steps without
    a loss (NaN) are left out; NaN when none was recorded.

    >>> final_loss(np.array([4.0, 3.0, 2.0, 1.0]), fraction=0.5)
    1.5
    """
    x = np.asarray(loss, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan
    k = max(1, math.ceil(fraction * x.size - 1e-9))
    return float(np.mean(x[-k:]))


def _range(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if x.size else (math.nan, math.nan)


def grad_norm_column(trace: dict[str, np.ndarray]) -> tuple[str, str]:
    """The gradient-norm column to show and its kind: l2, else l1, else none (``("", "")``)."""
    for column, kind in (("grad_norm", "l2"), ("grad_norm_l1", "l1")):
        if np.isfinite(trace[column]).any():
            return column, kind
    return "", ""


def summarize(run: Run) -> RunSummary:
    """The numbers of ``run`` (see :class:`RunSummary`); the best of a metric is its max or
    min as :func:`lower_is_better` says."""
    tr = run.trace
    column, kind = grad_norm_column(tr)
    evals: dict[str, tuple[float, float]] = {}
    for metric in dict.fromkeys(e.metric for e in run.evals):
        values = [e.value for e in run.evals if e.metric == metric and math.isfinite(e.value)]
        if not values:
            evals[metric] = (math.nan, math.nan)
            continue
        best = min(values) if lower_is_better(metric, run.target) else max(values)
        evals[metric] = (values[-1], best)
    recorded_time = bool(np.isfinite(tr["time_s"]).any()) or tr["step"].size == 0
    loss = tr["loss"][np.isfinite(tr["loss"])]
    return RunSummary(
        steps=int(run.trial.steps),
        train_time_s=float(run.trial.train_time_s) if recorded_time else math.nan,
        final_loss=final_loss(tr["loss"]),
        min_loss=float(loss.min()) if loss.size else math.nan,
        lr_range=_range(tr["lr"]),
        grad_norm_range=_range(tr[column]) if column else (math.nan, math.nan),
        grad_norm_kind=kind,
        evals=evals,
    )


def _source(store: Store, t: TrialResult) -> str:
    spec = t.spec
    if spec.workload == "user":
        if spec.variant in _IMPORTED:
            return t.message if t.message.startswith("imported") else f"imported from {spec.variant}"
        return "your training loop (steplab Recorder)"
    if spec.study_id is None:
        return "steplab run"
    try:
        study = store.get_study(spec.study_id)
    except SteplabError:
        return f"study {spec.study_id}"
    return f"{study['kind']} study {study['name']} (id {spec.study_id})"


def _target(t: TrialResult) -> Target | None:
    if t.spec.workload == "user":
        return None
    from steplab import workloads

    try:
        return workloads.get(t.spec.workload, t.spec.variant).target
    except Exception:  # a workload this steplab no longer has: report without its target
        return None


def load_runs(store: Store, trial_ids: Sequence[int]) -> list[Run]:
    """The trials ``trial_ids`` of ``store`` (duplicates once, in the given order) with their
    traces. Raises ``SpecError`` for no ids and ``StoreError`` for an unknown id."""
    ids = list(dict.fromkeys(int(i) for i in trial_ids))
    if not ids:
        raise SpecError("no trial to report: pass --trial ID (list them with `steplab runs list`)")
    runs = []
    for tid in ids:
        t = store.get_trial(tid)
        runs.append(Run(trial=t, name=store.trial_info(tid).get("name"), trace=store.steps(tid),
                        evals=store.evals(tid), source=_source(store, t), target=_target(t)))
    return runs


# ---------------------------------------------------------------------------------- format
def _g(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if math.isfinite(v) else DASH


def _span(lo_hi: tuple[float, float], suffix: str = "") -> str:
    lo, hi = lo_hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return DASH
    text = _g(lo, 3) if lo == hi else f"{_g(lo, 3)} – {_g(hi, 3)}"
    return text + suffix


def _workload(t: TrialResult) -> str:
    return DASH if t.spec.workload == "user" else workload_key(t.spec)


def _algorithm(t: TrialResult) -> str:
    return DASH if t.spec.algorithm in ("", "unknown") else run_label(t.spec)


def metric_names(runs: Sequence[Run]) -> list[str]:
    """Every evaluation metric any of ``runs`` recorded, in order of first appearance."""
    return list(dict.fromkeys(e.metric for r in runs for e in r.evals))


def summary_rows(runs: Sequence[Run], sums: Sequence[RunSummary]) -> list[tuple[str, list[str]]]:
    """``(field, one text per run)`` rows shared by the terminal and the HTML table."""
    rows: list[tuple[str, list[str]]] = [
        ("name", [r.name or DASH for r in runs]),
        ("source", [r.source for r in runs]),
        ("workload", [_workload(r.trial) for r in runs]),
        ("algorithm", [_algorithm(r.trial) for r in runs]),
        ("status", [r.trial.status for r in runs]),
        ("steps", [format_steps(s.steps) for s in sums]),
        ("train time", [format_time(s.train_time_s) for s in sums]),
        (f"final loss (last {100 * FINAL_FRACTION:g}%)", [_g(s.final_loss) for s in sums]),
        ("min loss", [_g(s.min_loss) for s in sums]),
    ]
    for m in metric_names(runs):
        finals, bests = [], []
        for r, s in zip(runs, sums):
            final, best = s.evals.get(m, (math.nan, math.nan))
            finals.append(_g(final))
            bests.append(_g(best) + (f" ({'min' if lower_is_better(m, r.target) else 'max'})"
                                     if math.isfinite(best) else ""))
        rows += [(f"{m} final", finals), (f"{m} best", bests)]
    rows += [
        ("lr range", [_span(s.lr_range) for s in sums]),
        ("grad norm range", [_span(s.grad_norm_range, " (l1)" if s.grad_norm_kind == "l1" else "")
                             for s in sums]),
    ]
    return rows


# ---------------------------------------------------------------------------------- terminal
def print_report(runs: Sequence[Run], console: Console | None = None) -> None:
    """Print one table on ``console``, a column per run: name, source, workload, algorithm,
    status, steps, training time, final and min loss, final and best of each evaluation
    metric, lr and gradient-norm ranges ("—": not recorded). Names from the data are printed
    as plain text, never as rich markup."""
    console = console or Console()
    sums = [summarize(r) for r in runs]
    table = Table(title=Text(f"run report: {len(runs)} trial{'s' if len(runs) != 1 else ''}"),
                  title_justify="left")
    table.add_column("", style="bold", overflow="fold")
    for r in runs:
        table.add_column(Text(f"trial {r.trial.id}"), justify="right", style="cyan" if len(runs) > 1 else "",
                         overflow="fold")
    for field, values in summary_rows(runs, sums):
        table.add_row(Text(field), *(Text(v) for v in values))
    console.print(table)
    for r in runs:
        if r.trial.message and r.trial.message != r.source:
            console.print(Text(f"  trial {r.trial.id}: {r.trial.message}"))
