"""The figures of the run report, each a base64 PNG for the HTML page: training loss (raw,
faint, and a moving average), learning rate, gradient norm (log scale) and each evaluation
metric against the step, the runs overlaid with one colour each; and the schedule as one run
ran it, for the TensorBoard and MLflow exporters. matplotlib is imported when a figure is drawn
(``Figure`` without pyplot, no global state)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steplab.report.run_report import Run, grad_norm_column, lower_is_better, metric_names
from steplab.report.style import COLORS, moving_average, mpl_label, png_base64

if TYPE_CHECKING:
    from steplab.workloads.base import Target

__all__ = ["figures", "run_colors", "schedule_figure"]


def _new(title: str, ylabel: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.subplots()
    ax.set_title(mpl_label(title), fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(mpl_label(ylabel))
    ax.grid(alpha=0.3)
    return fig, ax


def _finish(fig: Any, ax: Any) -> str:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return png_base64(fig)


def _loss_figure(runs: Sequence[Run], colors: Sequence[str]) -> str | None:
    fig, ax = _new("training loss: per step (faint) and moving average over ~2% of the run", "training loss")
    lo_hi: list[float] = []
    for r, color in zip(runs, colors):
        x, y = r.trace["step"], r.trace["loss"]
        ok = np.isfinite(y)
        if not ok.any():
            continue
        smooth = moving_average(y[ok])
        ax.plot(x[ok], y[ok], color=color, linewidth=0.7, alpha=0.25)
        ax.plot(x[ok], smooth, color=color, linewidth=1.7, label=mpl_label(r.label))
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
            col, kind = grad_norm_column(r.trace)
            if not col:
                continue
            label += " (l1)" if kind == "l1" else ""
        y = r.trace[col].copy()
        if log:
            y[y <= 0] = np.nan
        ok = np.isfinite(y)
        if ok.any():
            ax.plot(r.trace["step"][ok], y[ok], color=color, linewidth=1.2 if log else 1.7, label=mpl_label(label))
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
                    linewidth=1.6, label=mpl_label(r.label))
        if r.target is not None and r.target.metric == metric:
            targets[r.target.value] = r.target
    if not ax.lines:
        return None
    for t in targets.values():
        ax.axhline(t.value, color="black", linestyle="--", linewidth=1.0,
                   label=f"target {'≥' if t.mode == 'max' else '≤'} {t.value:g}")
    return _finish(fig, ax)


def run_colors(runs: Sequence[Run]) -> list[str]:
    """One colour per run, in order (the table swatches and the figure lines)."""
    return [COLORS[i % len(COLORS)] for i in range(len(runs))]


def figures(runs: Sequence[Run]) -> list[tuple[str, str | None]]:
    """``(title, base64 PNG or None)`` per figure: training loss, learning rate, gradient
    norm (log scale), then each evaluation metric, all against the step with one colour per
    run. ``None``: no run recorded that column (the HTML says so instead of a figure)."""
    colors = run_colors(runs)
    out = [
        ("Training loss", _loss_figure(runs, colors)),
        ("Learning rate", _line_figure(runs, colors, "lr", "learning rate", "learning rate")),
        ("Gradient norm", _line_figure(runs, colors, "grad_norm", "global gradient norm (log scale)",
                                       "gradient norm", log=True)),
    ]
    out += [(m, _eval_figure(runs, colors, m)) for m in metric_names(runs)]
    return out


def schedule_figure(trace: dict[str, Any], title: str) -> Any:
    """A figure of the learning rate each update used: the schedule as it ran (the TensorBoard
    and MLflow exporters of :mod:`steplab.integrations` log it with a trial)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    ax.plot(trace["step"], trace["lr"], color="C1")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
