"""The figure of a tune (``steplab tune --plot``): every trial's validation curve against
the compute it used, pruned trials faded, the best complete trial in bold, and the running
best final value against the budget spent (what a tuning strategy buys per step)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from steplab.report.plots import plt, save_figure


def plot_tune(store: Any, result: Any, out: str | Path) -> Path:
    """Two panels: curves of ``result.spec.metric`` per trial over its steps, and the best
    final value found so far against the cumulative steps spent, with the budget marked."""
    from steplab.studies import tuning

    spec = result.spec
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for t in sorted(result.trials, key=lambda t: t.id):
        pts = sorted((e.step, e.value) for e in store.evals(t.id) if e.metric == spec.metric and math.isfinite(e.value))
        if not pts:
            continue
        best = result.best is not None and t.id == result.best.id
        complete = tuning.is_complete(t, max(p[0] for p in pts) if t.steps < 2 else t.spec.budget_steps)
        ax0.plot([p[0] for p in pts], [p[1] for p in pts], lw=2.2 if best else 0.9,
                 alpha=1.0 if best else (0.75 if complete else 0.3), color="C3" if best else ("C0" if complete else "0.5"),
                 label="best" if best else None)
    ax0.set_xlabel("step of the trial")
    ax0.set_ylabel(spec.metric)
    if spec.metric.endswith("loss"):
        ax0.set_yscale("log")
    ax0.set_title(f"{len(result.trials)} trials (grey: stopped early)")
    used, best_so_far, xs, ys = 0, math.inf if spec.mode == "min" else -math.inf, [], []
    for t in sorted(result.trials, key=lambda t: t.id):
        used += t.steps
        v = tuning.final_value(t, spec.metric)
        if tuning.is_complete(t, t.spec.budget_steps) and math.isfinite(v):
            best_so_far = min(best_so_far, v) if spec.mode == "min" else max(best_so_far, v)
        if math.isfinite(best_so_far):
            xs.append(used)
            ys.append(best_so_far)
    ax1.step(xs, ys, where="post", lw=1.8, color="C3")
    ax1.axvline(spec.budget_steps, ls="--", color="0.4", label="budget")
    ax1.set_xlabel("compute spent (training steps, all trials)")
    ax1.set_ylabel(f"best final {spec.metric}")
    ax1.set_title("best complete trial so far")
    ax1.legend(fontsize=8)
    for a in (ax0, ax1):
        a.grid(alpha=0.3)
    fig.suptitle(f"steplab tune: {spec.strategy} on {spec.workload} ({spec.algorithm})")
    return save_figure(fig, out)
