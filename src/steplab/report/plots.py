"""Figures a person would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from steplab import schedules

if TYPE_CHECKING:
    from steplab.analysis.refine import Refinement
    from steplab.analysis.sensitivity import SensitivityResult
    from steplab.studies.autolr import AutoLRSResult


def save_figure(fig: plt.Figure, out: str | Path) -> Path:
    """Lay out ``fig``, write it to ``out`` (creating its folder) and free it."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_schedules(
    specs: Sequence[str | dict], budget_steps: int, out: str | Path, *, peak_lr: float | None = None
) -> Path:
    """Plot several schedules' multipliers (or learning rates with ``peak_lr``) over
    ``budget_steps`` updates on one figure and write it to ``out`` (PNG, SVG or PDF)."""
    parsed = [schedules.spec_from(s) for s in specs]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    xs = list(range(budget_steps))
    scale = peak_lr if peak_lr is not None else 1.0
    for spec in parsed:
        ys = [scale * v for v in schedules.values(schedules.build(spec, budget_steps), budget_steps)]
        ax.plot(xs, ys, label=str(spec), linewidth=1.8)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate" if peak_lr is not None else "multiplier of the peak learning rate")
    ax.set_title(f"learning-rate schedules over {budget_steps} steps")
    ax.set_xlim(0, budget_steps)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, out)


def plot_trace(steps: dict, evals: list, out: str | Path, *, title: str = "") -> Path:
    """Four panels of one trial: training loss, learning rate, gradient norm (l2, and l1
    when recorded) against the step, and every evaluation metric against the step."""
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=110)
    x = steps["step"]
    ax = axes[0, 0]
    loss = steps["loss"]
    ax.plot(x, loss, lw=0.6, alpha=0.35, color="C0", label="per step")
    if len(loss) >= 20:
        w = max(5, len(loss) // 50)
        smooth = np.convolve(np.nan_to_num(loss), np.ones(w) / w, mode="valid")
        ax.plot(x[w - 1:], smooth, lw=1.6, color="C0", label=f"moving average ({w})")
    ax.set_title("training loss")
    ax.set_yscale("log" if np.nanmin(loss) > 0 else "linear")
    ax.legend(fontsize=8)
    axes[0, 1].plot(x, steps["lr"], color="C1")
    axes[0, 1].set_title("learning rate")
    ax = axes[1, 0]
    ax.plot(x, steps["grad_norm"], lw=0.8, color="C2", label="l2")
    if np.isfinite(steps["grad_norm_l1"]).any():
        ax2 = ax.twinx()
        ax2.plot(x, steps["grad_norm_l1"], lw=0.8, color="C3", alpha=0.6, label="l1 (right axis)")
        ax2.legend(loc="upper right", fontsize=8)
    ax.set_title("gradient norm")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1, 1]
    metrics = sorted({e.metric for e in evals})
    for i, m in enumerate(metrics):
        pts = [(e.step, e.value) for e in evals if e.metric == m]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", color=f"C{i + 4}", label=m)
    ax.set_title("evaluations")
    if metrics:
        ax.legend(fontsize=8)
    for a in axes.flat:
        a.set_xlabel("step")
        a.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_refinement(
    refinement: Refinement, out: str | Path, *, original: Sequence[float] | None = None, title: str = ""
) -> Path:
    """Two panels of a schedule refinement (Defazio et al. 2023): the gradient norms and
    their median-filtered copy, then the refined schedule beside the run's original one
    (``original``: the multipliers the run used, any length, drawn on normalized time)."""
    import numpy as np

    r = refinement
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 7), dpi=110, sharex=True)
    x = r.grid
    ax0.plot(x, r.norms, lw=0.6, alpha=0.4, color="C2", label=f"{r.norm} gradient norm")
    ax0.plot(x, r.smoothed, lw=1.8, color="C2",
             label=f"median filter, tau={r.tau:g}")
    ax0.set_yscale("log" if np.nanmin(r.norms) > 0 else "linear")
    ax0.set_ylabel("gradient norm")
    ax0.legend(fontsize=8)
    values = r.values()
    ax1.plot(np.arange(len(values)) / len(values), values, lw=1.8, color="C0",
             label=f"refined ({r.method}, {r.budget_steps} steps)")
    if original is not None and len(original):
        o = np.asarray(original, dtype=float)
        top = np.nanmax(o)
        if top > 0:
            ax1.plot(np.arange(len(o)) / len(o), o / top, lw=1.4, ls="--", color="C1", label="original (normalized)")
    ax1.set_xlabel("fraction of the run")
    ax1.set_ylabel("multiplier of the peak learning rate")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    for a in (ax0, ax1):
        a.grid(alpha=0.3)
    fig.suptitle(title or "schedule refinement")
    return save_figure(fig, out)


def plot_lines(
    series: Sequence[tuple[str, Sequence[float], Sequence[float], dict]],
    out: str | Path,
    *,
    xlabel: str = "step",
    ylabel: str = "",
    title: str = "",
    logy: bool = False,
) -> Path:
    """Several labelled curves on one axis: ``(label, x, y, matplotlib kwargs)`` each (used
    by ``steplab predict`` for predicted loss curves and bound curves)."""
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    for label, x, y, kw in series:
        ax.plot(x, y, label=label, **{"linewidth": 1.6, **kw})
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def plot_autolrs(
    result: AutoLRSResult, out: str | Path, *, own_lrs: Sequence[float] | None = None,
    own_label: str = "the algorithm's own schedule", title: str = "",
) -> Path:
    """Two panels of an AutoLRS run (Jin et al. 2021): the emergent learning rate per step
    beside the algorithm's own schedule (``own_lrs``: its learning rate per step), with every
    stage's candidate LRs at the stage start (marker colour: predicted loss, darker is
    lower); then each stage's candidates' predicted loss against their LR, the chosen one
    ringed."""
    import numpy as np

    r = result
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8.5, 8), dpi=110)
    steps = np.arange(r.budget_steps)
    emergent = [r.stages[-1].lr] * r.budget_steps if r.stages else []
    for st in r.stages:
        for k in range(st.start, min(st.start + st.steps, r.budget_steps)):
            emergent[k] = st.lr
    if emergent:
        ax0.step(steps, emergent, where="post", lw=2.0, color="C0", label="AutoLRS (emergent)")
    if own_lrs is not None and len(own_lrs):
        ax0.plot(np.arange(len(own_lrs)), own_lrs, lw=1.4, ls="--", color="C1", label=own_label)
    objs = [c.objective for st in r.stages for c in st.candidates if np.isfinite(c.objective)]
    lo, hi = (min(objs), max(objs)) if objs else (0.0, 1.0)
    for st in r.stages:
        xs = [st.start] * len(st.candidates)
        ax0.scatter(xs, [c.lr for c in st.candidates], c=[c.objective for c in st.candidates], cmap="viridis",
                    vmin=lo, vmax=hi, s=14, zorder=3)
    ax0.set_yscale("log")
    shown = [c.lr for st in r.stages for c in st.candidates]
    if shown:  # a decay to 0 would stretch the log axis over decades nobody trains at
        ax0.set_ylim(min(shown) / 3, max(shown) * 3)
    ax0.set_xlabel("step")
    ax0.set_ylabel("learning rate")
    ax0.set_xlim(0, r.budget_steps)
    ax0.legend(fontsize=8, loc="best")
    ax0.set_title("learning rate: emergent schedule, candidates at each stage start")
    for i, st in enumerate(r.stages):
        pts = sorted((c.lr, c.objective) for c in st.candidates)
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", lw=0.8, color=f"C{i % 10}",
                 label=f"stage {i + 1} (steps {st.start}..{st.start + st.steps})")
        ax1.scatter([st.lr], [st.candidates[st.chosen].objective], s=80, facecolors="none",
                    edgecolors=f"C{i % 10}", linewidths=1.8, zorder=3)
    ax1.set_xscale("log")
    ax1.set_xlabel("candidate learning rate")
    ax1.set_ylabel("predicted validation loss at the stage end")
    ax1.legend(fontsize=7, loc="best")
    for a in (ax0, ax1):
        a.grid(alpha=0.3)
    fig.suptitle(title or f"AutoLRS on {r.workload}, seed {r.seed}")
    return save_figure(fig, out)


def plot_continual(
    panels: Sequence[dict],
    out: str | Path,
    *,
    title: str = "",
) -> Path:
    """The stability-gap picture (De Lange et al. 2023, "Continual evaluation for lifelong
    learning", Fig. 1): one panel per run, each task's curve ``a_i(t)`` from the moment it
    starts training, the stage boundaries as dashed lines, and the learning rate in grey on
    the right axis. A panel is a dict with ``title``, ``curves`` (``{task: [(step, value),
    ...]}``), ``stage_ends`` (``[B_1, ..., B_T]``), ``ylabel`` (``"accuracy"``/``"loss"``),
    optionally ``lr`` (``(steps, lrs)``) and ``note`` (text in the corner, e.g. the metrics)."""
    n = len(panels)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.9 * n + 0.6), dpi=110, sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        ends = list(panel["stage_ends"])
        starts = [0, *ends[:-1]]
        for i, pts in sorted(panel["curves"].items()):
            seen = [(t, v) for t, v in pts if t > starts[i]]
            if seen:
                ax.plot([p[0] for p in seen], [p[1] for p in seen], lw=1.1, color=f"C{i % 10}",
                        label=f"task {i + 1}")
        for b in ends[:-1]:
            ax.axvline(b, color="k", ls="--", lw=0.8, alpha=0.6)
        ax.set_ylabel(panel.get("ylabel", "accuracy"))
        ax.set_title(panel.get("title", ""), fontsize=9)
        ax.grid(alpha=0.25)
        ax.set_xlim(0, ends[-1])
        loss = panel.get("ylabel") == "loss"  # curves fall: keep the top free of them, not the bottom
        if panel.get("note"):
            ax.text(0.995, 0.97 if loss else 0.03, panel["note"], transform=ax.transAxes, ha="right",
                    va="top" if loss else "bottom", fontsize=7,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        if panel.get("lr") is not None:
            steps, lrs = panel["lr"]
            ax2 = ax.twinx()
            ax2.plot(steps, lrs, color="0.5", lw=0.9, alpha=0.7)
            ax2.set_ylabel("learning rate", color="0.45", fontsize=8)
            ax2.tick_params(axis="y", labelsize=7, colors="0.45")
            ax2.set_ylim(bottom=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper center" if loss else "lower left", ncol=min(5, len(panel["curves"])))
    axes[-1, 0].set_xlabel("training step (dashed: task boundaries)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, out)


def plot_lr_sensitivity(
    results: Mapping[str, SensitivityResult],
    out: str | Path,
    *,
    title: str = "",
) -> Path:
    """Final loss vs peak learning rate (log x) for one or more LR sweeps
    (:mod:`steplab.analysis.sensitivity`, Wortsman et al. 2023, Fig. 1 style): per labelled sweep the
    seed-mean loss clamped at ``L_init`` (line), each seed's loss (small dots), diverged runs
    as crosses drawn at ``L_init``, and ``L_init`` itself as a dashed line; the legend gives
    each sweep's LR sensitivity and grid-best loss."""
    import math

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    inits: list[float] = []
    for k, (label, r) in enumerate(results.items()):
        color = f"C{k % 10}"
        mean, _ = r.mean_curve()
        sens = r.sensitivity
        ax.plot(r.grid, mean, marker="o", color=color, linewidth=1.8,
                label=f"{label}: sensitivity {sens:.3f}, best {r.best_loss:.3f}" if math.isfinite(sens) else label)
        for p in r.points:
            if p.diverged:
                ax.plot([p.lr], [p.init_loss], marker="x", color=color, markersize=8, linestyle="none")
            else:
                ax.plot([p.lr], [min(p.loss, p.init_loss)], marker=".", color=color, alpha=0.35,
                        linestyle="none")
        init = r.mean_init_loss
        if math.isfinite(init) and all(abs(init - i) > 1e-3 * abs(i) for i in inits):
            inits.append(init)
            ax.axhline(init, color=color if len(results) > 1 else "black", linestyle="--", linewidth=1.0,
                       alpha=0.7, label=f"L_init {init:.3f}" + (f" ({label})" if len(results) > 1 else ""))
    ax.plot([], [], marker="x", color="0.3", linestyle="none", label="diverged run (counted as L_init)")
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final loss (min with L_init)")
    ax.set_title(title or "LR sensitivity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, out)
