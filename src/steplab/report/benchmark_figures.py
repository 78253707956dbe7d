"""The figures of the benchmark report, each a base64 PNG for the HTML page: the performance
profiles (Dolan & Moré 2002; AlgoPerf, Dahl et al. 2023, "Performance profiles"), the traces of
each algorithm's best trial on a workload, and the accuracy-vs-training-time curves of one cyclic
run against separate runs (Portes et al. 2022). matplotlib is imported when a figure is drawn."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from steplab.analysis import profiles
from steplab.report.benchmark_data import base_workloads, ranking_of
from steplab.report.style import COLORS, LINE_STYLES, moving_average, mpl_label, png_base64
from steplab.results import TrialResult

if TYPE_CHECKING:
    from steplab.store import Store
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Curve
    from steplab.workloads.base import Target

__all__ = ["profile_figure", "tradeoff_figure", "workload_figure"]


def profile_figure(scores: Scores, colors: Mapping[str, str], *, r_max: float = 4.0) -> str:
    """The performance profiles as step functions on ``tau`` in ``[1, r_max]`` (log x),
    one line per algorithm; a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.subplots()
    base = base_workloads(scores.time_s)
    ratios = profiles.performance_ratios(scores.time_s, workloads=base, missing="inf")
    n_w = len(base)
    for k, (a, s) in enumerate(ranking_of(scores)):
        r = np.sort(np.array([v for v in ratios.get(a, {}).values() if v <= r_max]))
        xs = np.concatenate([[1.0], r, [r_max]])
        ys = np.concatenate([[float(np.sum(r <= 1.0)) / n_w], np.arange(1, len(r) + 1) / n_w, [len(r) / n_w]])
        ax.step(xs, ys, where="post", color=colors[a], linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                linewidth=2.2 - 0.25 * (k % 4), label=mpl_label(f"{a} (score {s:.2f})"))
    ax.set_xscale("log")
    ticks = [1, 1.25, 1.5, 2, 3, 4]
    ax.set_xticks([t for t in ticks if t <= r_max])
    ax.set_xticklabels([f"{t:g}" for t in ticks if t <= r_max])
    ax.minorticks_off()
    ax.set_xlim(1.0, r_max)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("tau (time relative to the fastest algorithm on the workload)")
    ax.set_ylabel("share of workloads within tau")
    ax.set_title(f"performance profiles over {n_w} workload{'s' if n_w != 1 else ''} (training time)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return png_base64(fig)



def workload_figure(
    store: Store,
    best: Mapping[str, TrialResult],
    target: Target | None,
    colors: Mapping[str, str],
) -> str:
    """Three panels for one workload: the target metric vs training seconds (dashed line:
    the target), the learning rate vs step and the smoothed training loss vs step, for the
    best trial of each algorithm; a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 3.6))
    ax_m, ax_lr, ax_loss = fig.subplots(1, 3)
    metric = target.metric if target is not None else None
    log_lr = True
    lo_hi: list[float] = []  # smoothed loss extremes: log scale when positive over > 1 decade
    for k, (a, t) in enumerate(best.items()):
        color, ls = colors[a], LINE_STYLES[k % len(LINE_STYLES)]
        label = mpl_label(a)
        if t.id is None:
            continue
        evals = [e for e in store.evals(t.id) if metric is None or e.metric == metric]
        if metric is None and evals:
            metric = evals[0].metric
            evals = [e for e in evals if e.metric == metric]
        if evals:
            ax_m.plot([e.time_s for e in evals], [e.value for e in evals], color=color, linestyle=ls,
                      marker="o", markersize=2.5, linewidth=1.6, label=label)
        if math.isfinite(t.time_to_target_s) and target is not None:
            hit = [e.value for e in evals if e.step == int(t.steps_to_target)]
            ax_m.plot([t.time_to_target_s], [hit[0] if hit else target.value], marker="*",
                      markersize=11, color=color, zorder=5)
        tr = store.steps(t.id)
        steps = tr["step"] + 1
        lr = tr["lr"].copy()
        if np.any(np.isfinite(lr)):
            lr[lr <= 0] = np.nan
            ax_lr.plot(steps, lr, color=color, linestyle=ls, linewidth=1.6, label=label)
        loss = tr["loss"]
        ok = np.isfinite(loss)
        if ok.any():
            smooth = moving_average(loss[ok])
            lo_hi.extend([float(smooth.min()), float(smooth.max())])
            ax_loss.plot(steps[ok], smooth, color=color, linestyle=ls, linewidth=1.4, label=label)
    if target is not None:
        ax_m.axhline(target.value, color="black", linestyle="--", linewidth=1.0,
                     label=f"target {'≥' if target.mode == 'max' else '≤'} {target.value:g}")
    ax_m.set_xlabel("training time (s, evaluation excluded)")
    ax_m.set_ylabel(mpl_label(metric or "metric"))
    ax_m.set_title(mpl_label(f"{metric or 'metric'} (★ = target reached)"), fontsize=10)
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("learning rate (log scale)" if log_lr else "learning rate", fontsize=10)
    if log_lr and ax_lr.lines:
        ax_lr.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss (moving average)", fontsize=10)
    if lo_hi and min(lo_hi) > 0 and max(lo_hi) / min(lo_hi) > 10:
        ax_loss.set_yscale("log")
    for ax in (ax_m, ax_lr, ax_loss):
        ax.grid(alpha=0.3)
    for ax, what in ((ax_m, "evaluations"), (ax_lr, "learning rates"), (ax_loss, "losses")):
        if not ax.lines:
            ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="#777777")
    if ax_m.get_legend_handles_labels()[0]:
        ax_m.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return png_base64(fig)


def tradeoff_figure(curves: Sequence[Curve], colors: Mapping[str, str]) -> str:
    """The metric vs training time on one workload: each algorithm's one-run cyclic curve
    (line, points at the cycle ends labelled with their budget in steps), its separate runs
    (squares), and the Pareto frontier over all cyclic points (thick grey steps); a base64 PNG."""
    from matplotlib.figure import Figure

    from steplab.studies.tradeoff import pareto_frontier

    fig = Figure(figsize=(8.0, 4.4))
    ax = fig.subplots()
    metric, mode = curves[0].metric, curves[0].mode
    for k, c in enumerate(curves):
        color = colors.get(c.algorithm, COLORS[k % len(COLORS)])
        pts = [p for p in c.cyclic if math.isfinite(p.time_s) and math.isfinite(p.value)]
        ax.plot([p.time_s for p in pts], [p.value for p in pts], color=color, linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                marker="o", markersize=5, linewidth=1.6, label=mpl_label(f"{c.algorithm}: one cyclic run"))
        for p in pts:
            ax.annotate(f"{p.budget_steps:,}", (p.time_s, p.value), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=color)
        sep = [p for p in c.separate if math.isfinite(p.time_s) and math.isfinite(p.value)]
        ax.plot([p.time_s for p in sep], [p.value for p in sep], color=color, linestyle="none", marker="s",
                markersize=7, markerfacecolor="none", markeredgewidth=1.5,
                label=mpl_label(f"{c.algorithm}: separate runs"))
    front = pareto_frontier([p for c in curves for p in c.cyclic], mode)
    if front:
        ax.step([p.time_s for p in front], [p.value for p in front], where="post", color="#555555",
                linewidth=5, alpha=0.3, zorder=0, label="Pareto frontier (cyclic points)")
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, evaluation excluded; log scale)")
    ax.set_ylabel(mpl_label(metric))
    better = "higher" if mode == "max" else "lower"
    ax.set_title(mpl_label(f"{curves[0].workload}: {metric} vs training time ({better} is better)"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return png_base64(fig)
