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
* :func:`render_html` / :func:`write_html` - a self-contained HTML page in the look of the
  benchmark report (its CSS and base64 PNG helpers): the summary table, then training loss
  (raw, faint, and a moving average), learning rate, gradient norm (log scale) and each
  evaluation metric against the step, the trials overlaid with one colour each.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.errors import SpecError, SteplabError
from steplab.report import (
    _COLORS,
    _CSS,
    _DASH,
    _e,
    _img,
    _mpl,
    _png,
    _smooth,
    _td,
    format_hyperparameters,
    format_steps,
    format_time,
)
from steplab.results import EvalRow, TrialResult
from steplab.analysis.scoring import workload_key
from steplab.store import Store
from steplab.workloads.base import Target

__all__ = [
    "FINAL_FRACTION",
    "Run",
    "RunSummary",
    "figures",
    "final_loss",
    "load_runs",
    "lower_is_better",
    "print_report",
    "render_html",
    "summarize",
    "write_html",
]

#: the final loss is the mean of this last share of the recorded per-step losses
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
        """``"#3 my-run"`` (``"#3"`` without a name): the trial in tables and legends."""
        return f"#{self.trial.id} {self.name}" if self.name else f"#{self.trial.id}"


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


def _grad_column(trace: dict[str, np.ndarray]) -> tuple[str, str]:
    """The gradient-norm column to show: l2, else l1, else none (``("", "")``)."""
    for column, kind in (("grad_norm", "l2"), ("grad_norm_l1", "l1")):
        if np.isfinite(trace[column]).any():
            return column, kind
    return "", ""


def summarize(run: Run) -> RunSummary:
    """The numbers of ``run`` (see :class:`RunSummary`); the best of a metric is its max or
    min as :func:`lower_is_better` says."""
    tr = run.trace
    column, kind = _grad_column(tr)
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
    return f"{v:.{digits}g}" if math.isfinite(v) else _DASH


def _span(lo_hi: tuple[float, float], suffix: str = "") -> str:
    lo, hi = lo_hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _DASH
    text = _g(lo, 3) if lo == hi else f"{_g(lo, 3)} – {_g(hi, 3)}"
    return text + suffix


def _workload(t: TrialResult) -> str:
    return _DASH if t.spec.workload == "user" else workload_key(t.spec)


def _algorithm(t: TrialResult) -> str:
    return _DASH if t.spec.algorithm in ("", "unknown") else t.spec.algorithm


def _metrics(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(e.metric for r in runs for e in r.evals))


def _rows(runs: Sequence[Run], sums: Sequence[RunSummary]) -> list[tuple[str, list[str]]]:
    """``(field, one text per run)`` rows shared by the terminal and the HTML table."""
    rows: list[tuple[str, list[str]]] = [
        ("name", [r.name or _DASH for r in runs]),
        ("source", [r.source for r in runs]),
        ("workload", [_workload(r.trial) for r in runs]),
        ("algorithm", [_algorithm(r.trial) for r in runs]),
        ("status", [r.trial.status for r in runs]),
        ("steps", [format_steps(s.steps) for s in sums]),
        ("train time", [format_time(s.train_time_s) for s in sums]),
        (f"final loss (last {100 * FINAL_FRACTION:g}%)", [_g(s.final_loss) for s in sums]),
        ("min loss", [_g(s.min_loss) for s in sums]),
    ]
    for m in _metrics(runs):
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
    table.add_column("", style="bold")
    for r in runs:
        table.add_column(Text(f"trial {r.trial.id}"), justify="right", style="cyan" if len(runs) > 1 else "")
    for field, values in _rows(runs, sums):
        table.add_row(Text(field), *(Text(v) for v in values))
    console.print(table)
    for r in runs:
        if r.trial.message and r.trial.message != r.source:
            console.print(Text(f"  trial {r.trial.id}: {r.trial.message}"))


# ---------------------------------------------------------------------------------- figures
def _new(title: str, ylabel: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.subplots()
    ax.set_title(_mpl(title), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(_mpl(ylabel))
    ax.grid(alpha=0.3)
    return fig, ax


def _finish(fig: Any, ax: Any) -> str:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


def _loss_figure(runs: Sequence[Run], colors: Sequence[str]) -> str | None:
    fig, ax = _new("training loss: per step (faint) and moving average over ~2% of the run", "training loss")
    lo_hi: list[float] = []
    for r, color in zip(runs, colors):
        x, y = r.trace["step"], r.trace["loss"]
        ok = np.isfinite(y)
        if not ok.any():
            continue
        smooth = _smooth(y[ok])
        ax.plot(x[ok], y[ok], color=color, linewidth=0.7, alpha=0.25)
        ax.plot(x[ok], smooth, color=color, linewidth=1.7, label=_mpl(r.label))
        lo_hi += [float(smooth.min()), float(smooth.max())]
    if not lo_hi:
        return None
    if min(lo_hi) > 0 and max(lo_hi) / min(lo_hi) > 10:
        ax.set_yscale("log")
    return _finish(fig, ax)


def _line_figure(runs: Sequence[Run], colors: Sequence[str], column: str, title: str, ylabel: str,
                 *, log: bool = False) -> str | None:
    fig, ax = _new(title, ylabel)
    for r, color in zip(runs, colors):
        col, label = column, r.label
        if column == "grad_norm":
            col, kind = _grad_column(r.trace)
            if not col:
                continue
            label += " (l1)" if kind == "l1" else ""
        y = r.trace[col].copy()
        if log:
            y[y <= 0] = np.nan
        ok = np.isfinite(y)
        if ok.any():
            ax.plot(r.trace["step"][ok], y[ok], color=color, linewidth=1.2 if log else 1.7, label=_mpl(label))
    if not ax.lines:
        return None
    if log:
        ax.set_yscale("log")
    return _finish(fig, ax)


def _eval_figure(runs: Sequence[Run], colors: Sequence[str], metric: str) -> str | None:
    target = next((r.target for r in runs if r.target is not None and r.target.metric == metric), None)
    better = "lower" if lower_is_better(metric, target) else "higher"
    fig, ax = _new(f"{metric} ({better} is better)", metric)
    targets: dict[float, Target] = {}
    for r, color in zip(runs, colors):
        pts = [(e.step, e.value) for e in r.evals if e.metric == metric and math.isfinite(e.value)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, marker="o", markersize=3,
                    linewidth=1.6, label=_mpl(r.label))
        if r.target is not None and r.target.metric == metric:
            targets[r.target.value] = r.target
    if not ax.lines:
        return None
    for t in targets.values():
        ax.axhline(t.value, color="black", linestyle="--", linewidth=1.0,
                   label=f"target {'≥' if t.mode == 'max' else '≤'} {t.value:g}")
    return _finish(fig, ax)


def _colors(runs: Sequence[Run]) -> list[str]:
    return [_COLORS[i % len(_COLORS)] for i in range(len(runs))]


def figures(runs: Sequence[Run]) -> list[tuple[str, str | None]]:
    """``(title, base64 PNG or None)`` per figure: training loss, learning rate, gradient
    norm (log scale), then each evaluation metric, all against the step with one colour per
    run. ``None``: no run recorded that column (the HTML says so instead of a figure)."""
    colors = _colors(runs)
    out = [
        ("Training loss", _loss_figure(runs, colors)),
        ("Learning rate", _line_figure(runs, colors, "lr", "learning rate", "learning rate")),
        ("Gradient norm", _line_figure(runs, colors, "grad_norm", "global gradient norm (log scale)",
                                       "gradient norm", log=True)),
    ]
    out += [(m, _eval_figure(runs, colors, m)) for m in _metrics(runs)]
    return out


# ---------------------------------------------------------------------------------- html
_HOWTO = """<div class="howto">
<p><b>How to read this.</b> Each column of the table and each colour in the figures is one
trial, whatever recorded it: <code>steplab run</code>, your own loop with the steplab
<code>Recorder</code>, or a log imported from TensorBoard, MLflow or CSV. The <b>final loss</b>
is the mean of the last 5% of the recorded per-step training losses (at least one), so one
noisy batch does not decide it; the figure shows each step's loss faintly and a moving average
over about 2% of the run. The <b>best</b> value of an evaluation metric is its minimum for
losses and errors, its maximum otherwise. &ldquo;&mdash;&rdquo; and a missing figure mean the
source did not record that column (an imported log without gradient norms, for example).</p>
</div>"""


def _header(runs: Sequence[Run], title: str) -> str:
    ids = ", ".join(str(r.trial.id) for r in runs)
    versions: dict[str, str] = next((r.trial.versions for r in runs if r.trial.versions), {})
    rows = [
        ("trials", _e(ids)),
        ("sources", _e(", ".join(dict.fromkeys(r.source for r in runs)))),
        ("device / host", _e(", ".join(sorted({r.trial.device for r in runs if r.trial.device})) or _DASH)
         + " / " + _e(", ".join(sorted({r.trial.host for r in runs if r.trial.host})) or _DASH)),
        ("versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()) or _DASH)),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<h1>{_e(title)}</h1><p class='sub'>steplab run report</p><dl class='spec'>{dl}</dl>"


def _table_html(runs: Sequence[Run], sums: Sequence[RunSummary], colors: Sequence[str]) -> str:
    head = "<tr><th></th>" + "".join(
        f"<th class='n'><span class='swatch' style='background:{c}'></span>trial {_e(r.trial.id)}</th>"
        for r, c in zip(runs, colors)) + "</tr>"
    body = []
    for field, values in _rows(runs, sums):
        cells = []
        for v in values:
            if field == "status":
                cells.append(_td(f'<span class="status s-{_e(v)}">{_e(v)}</span>', "n"))
            else:
                cells.append(_td(_e(v), "n miss" if v == _DASH else "n"))
        body.append(f"<tr>{_td(_e(field))}{''.join(cells)}</tr>")
    hp = [_td(_e(format_hyperparameters(r.trial.spec.hyperparameters) or _DASH), "hp") for r in runs]
    body.append(f"<tr>{_td('hyperparameters')}{''.join(hp)}</tr>")
    if any(r.trial.message and r.trial.message != r.source for r in runs):
        msgs = [_td(_e(r.trial.message if r.trial.message != r.source else ""), "msg") for r in runs]
        body.append(f"<tr>{_td('message')}{''.join(msgs)}</tr>")
    return f"<div class='scroll'><table class='trials'>{head}{''.join(body)}</table></div>"


def _missing_note(runs: Sequence[Run], what: str, has: Any) -> str:
    lacking = [r.label for r in runs if not has(r)]
    if not lacking or len(lacking) == len(runs):
        return ""
    return f"<p class='note'>not recorded by {_e(', '.join(lacking))}: no {_e(what)} line for it.</p>"


def render_html(runs: Sequence[Run], *, title: str | None = None) -> str:
    """The HTML run report of ``runs`` as a string (see :func:`write_html`)."""
    if not runs:
        raise SpecError("no trial to report: pass --trial ID (list them with `steplab runs list`)")
    colors = _colors(runs)
    sums = [summarize(r) for r in runs]
    if title is None:
        title = (f"steplab run report: {runs[0].label}" if len(runs) == 1
                 else f"steplab run report: trials {', '.join(str(r.trial.id) for r in runs)}")
    has = {
        "Training loss": ("training loss", lambda r: np.isfinite(r.trace["loss"]).any()),
        "Learning rate": ("learning rate", lambda r: np.isfinite(r.trace["lr"]).any()),
        "Gradient norm": ("gradient norm", lambda r: bool(_grad_column(r.trace)[0])),
    }
    parts = [_header(runs, title), _HOWTO, "<h2>Summary</h2>" + _table_html(runs, sums, colors)]
    metrics = set(_metrics(runs))
    evals_open = False
    for name, png in figures(runs):
        if name in metrics and not evals_open:
            parts.append("<h2>Evaluations</h2>")
            evals_open = True
        heading = f"<h3>{_e(name)}</h3>" if name in metrics else f"<h2>{_e(name)}</h2>"
        if png is None:
            what = has[name][0] if name in has else name
            parts.append(heading + f"<p class='note miss'>no {_e(what)} recorded by "
                         f"{'this run' if len(runs) == 1 else 'these runs'}: figure skipped.</p>")
            continue
        note = _missing_note(runs, has[name][0], has[name][1]) if name in has else ""
        parts.append(heading + note + _img(png, name))
    if not metrics:
        parts.append("<h2>Evaluations</h2><p class='note miss'>no evaluation rows recorded.</p>")
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def write_html(runs: Sequence[Run], path: str | Path, *, title: str | None = None) -> Path:
    """Write the run report of ``runs`` (:func:`load_runs`) to ``path``: one self-contained
    HTML file (inline CSS, figures as base64 PNGs, no scripts or external URLs; strings from
    the data escaped) with the summary table and the loss, learning-rate, gradient-norm and
    evaluation figures; a column no run recorded gets a note instead of a figure."""
    out = Path(path)
    text = render_html(runs, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
