"""The figures of the benchmark report, each a base64 PNG for the HTML page: the performance
profiles (Dolan & Moré 2002; AlgoPerf, Dahl et al. 2023, "Performance profiles"), the traces of
each algorithm's best trial on a workload, and the accuracy-vs-training-time curves of one cyclic
run against separate runs (Portes et al. 2022). matplotlib is imported when a figure is drawn."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steplab.analysis import profiles
from steplab.report.benchmark_data import ranking_of, scored_workloads
from steplab.report.style import COLORS, LINE_STYLES, moving_average, mpl_label, png_base64
from steplab.results import TrialResult

if TYPE_CHECKING:
    from steplab.store import Store
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Curve
    from steplab.workloads.base import Target

__all__ = ["profile_bands_figure", "profile_figure", "tradeoff_figure", "workload_figure"]


def _profile_steps(ratios: Mapping[str, float], n_w: int, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The step function rho(tau) of one algorithm's ratios, as (x, y) for ``step(where="post")``."""
    r = np.sort(np.array([v for v in ratios.values() if v <= r_max]))
    xs = np.concatenate([[1.0], r, [r_max]])
    ys = np.concatenate([[float(np.sum(r <= 1.0)) / n_w], np.arange(1, len(r) + 1) / n_w, [len(r) / n_w]])
    return xs, ys


def _tau_axis(ax: Any, r_max: float, *, labels: bool = True) -> None:
    ax.set_xscale("log")
    ticks = [t for t in (1, 1.25, 1.5, 2, 3, 4) if t <= r_max]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(1.0, r_max)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    if labels:
        ax.set_xlabel("tau (time relative to the fastest algorithm on the workload)")
        ax.set_ylabel("share of workloads within tau")


def profile_figure(scores: Scores, colors: Mapping[str, str], *, r_max: float = 4.0) -> str:
    """The performance profiles as step functions on ``tau`` in ``[1, r_max]`` (log x),
    one line per algorithm over the scored workloads; a base64 PNG (the bands are in
    :func:`profile_bands_figure`)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.subplots()
    base = scored_workloads(scores)
    ratios = profiles.performance_ratios(scores.time_s, workloads=base, missing="inf") if base else {}
    for k, (a, s) in enumerate(ranking_of(scores)):
        xs, ys = _profile_steps(ratios.get(a, {}), max(1, len(base)), r_max)
        ax.step(xs, ys, where="post", color=colors[a], linestyle=LINE_STYLES[k % len(LINE_STYLES)],
                linewidth=2.2 - 0.25 * (k % 4), label=mpl_label(f"{a} (score {s:.2f})"))
    _tau_axis(ax, r_max)
    ax.set_title(f"performance profiles over {len(base)} workload{'s' if len(base) != 1 else ''} (training time)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return png_base64(fig)


def profile_bands_figure(scores: Scores, colors: Mapping[str, str], *, r_max: float = 4.0) -> str:
    """One small panel per algorithm: its profile (line) and the bootstrap band around it
    (shaded: the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the resampled profiles
    on a fine tau grid, ``Scores.bootstrap``), the other algorithms in grey; a base64 PNG, or
    ``""`` without resamples or scored workloads."""
    from matplotlib.figure import Figure

    boot, base = scores.bootstrap, scored_workloads(scores)
    if boot is None or not base:
        return ""
    order = [a for a, _ in ranking_of(scores) if a in boot.algorithms]
    ncols = min(3, len(order))
    nrows = -(-len(order) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)).ravel()
    ratios = profiles.performance_ratios(scores.time_s, workloads=base, missing="inf")
    grid = np.geomspace(1.0, r_max, 400)
    q = ((1.0 - scores.level) / 2.0, (1.0 + scores.level) / 2.0)
    bands = np.quantile(boot.profiles(grid), q, axis=0, method="inverted_cdf")  # (2, A, T)
    steps = {a: _profile_steps(ratios.get(a, {}), len(base), r_max) for a in order}
    for ax, a in zip(axes, order):
        for other in order:
            if other != a:
                ax.step(*steps[other], where="post", color="#b8bec9", linewidth=0.9)
        i = boot.algorithms.index(a)
        ax.fill_between(grid, bands[0, i], bands[1, i], step="post", color=colors[a], alpha=0.25, linewidth=0)
        ax.step(*steps[a], where="post", color=colors[a], linewidth=2.0)
        iv = scores.score_ci.get(a)
        score = f"{scores.score_time.get(a, float('nan')):.2f}" + (f" [{iv.low:.2f}, {iv.high:.2f}]" if iv else "")
        ax.set_title(mpl_label(f"{a}: score {score}"), fontsize=9)
        _tau_axis(ax, r_max, labels=False)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    fig.supxlabel("tau (time relative to the fastest)", fontsize=9)
    fig.supylabel("share of workloads within tau", fontsize=9)
    fig.suptitle(f"profiles with their {100 * scores.level:g}% bootstrap bands (shaded)", fontsize=10)
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
