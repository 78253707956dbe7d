"""The figure of ``steplab dynamics --plot``: panels of the monitors against the step, the
learning rate on a twin axis (matplotlib, Agg backend).

Sharpness is drawn with its stability threshold (``2/lr`` for gradient descent, Cohen et al.
2021; ``38/lr`` for Adam's preconditioned sharpness, Cohen et al. 2022) dashed in the same
colour, so the edge of stability shows where the two lines meet.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from steplab.report.plots import save_figure  # noqa: E402

if TYPE_CHECKING:
    from steplab.analysis.dynamics_trace import DynamicsTrace

#: the panels in display order: a title and the pattern of the metrics it draws (each
#: metric goes to the first panel that matches; a ``/threshold`` is drawn dashed beside its
#: metric); metrics of another monitor get a panel of their own
PANELS: tuple[tuple[str, str], ...] = (
    ("sharpness (dashed: 2/lr)", r"sharpness"),
    ("preconditioned sharpness (dashed: 38/lr)", r"sharpness/preconditioned"),
    ("gradient noise scale B_simple", r"gns/b_simple"),
    ("relative weight change", r"laziness(/(?!squared$|weight_norm$).+)?"),
    ("max attention logit", r"logits/attn_max/.+"),
    ("attention entropy (nats)", r"logits/attn_entropy/.+"),
    ("output logits", r"logits/(output_max|output_rms|log_z)"),
    ("Fourier IPR", r"grokking/ipr.*"),
    ("accuracy", r"grokking/.*accuracy"),
)
#: metrics no panel draws (second forms of a drawn one, step numbers)
HIDDEN = r"laziness/(squared|weight_norm)|gns/(g2|trace_sigma|critical_batch)|grokking/(fit_step|generalize_step|delay)"
LR_COLOR = "0.55"


def panels(trace: DynamicsTrace) -> dict[str, list[str]]:
    """The columns of each panel (see :data:`PANELS`), in display order."""
    out: dict[str, list[str]] = {title: [] for title, _ in PANELS}
    for column in trace.columns():
        if column.endswith("/threshold") or re.fullmatch(HIDDEN, column):
            continue
        title = next((t for t, pattern in PANELS if re.fullmatch(pattern, column)), column.split("/", 1)[0])
        out.setdefault(title, []).append(column)
    return {t: cols for t, cols in out.items() if cols}


def _log_scale(values: list[list[float]]) -> bool:
    flat = [v for vs in values for v in vs if math.isfinite(v)]
    return bool(flat) and min(flat) > 0 and max(flat) / min(flat) > 100


def plot_dynamics(trace: DynamicsTrace, out: str | Path, *, title: str = "") -> Path:
    """Write the panels of ``trace`` to ``out`` (PNG, SVG or PDF) and return the path."""
    groups = panels(trace)
    n = max(1, len(groups))
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 3.4 * rows), dpi=110, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (heading, columns) in zip(axes.flat, groups.items()):
        lines = []
        for i, column in enumerate(columns):
            color = colors[i % len(colors)]
            xs = [s for s, v in zip(trace.steps, trace.values[column]) if math.isfinite(v)]
            ys = [v for v in trace.values[column] if math.isfinite(v)]
            lines += ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.6, color=color, label=column)
            if f"{column}/threshold" in trace.values:
                limit = trace.values[f"{column}/threshold"]
                tx = [s for s, v in zip(trace.steps, limit) if math.isfinite(v)]
                ty = [v for v in limit if math.isfinite(v)]
                lines += ax.plot(tx, ty, linestyle="--", linewidth=1.4, color=color, label=f"{column}/threshold")
        if _log_scale([trace.values[c] for c in columns]):
            ax.set_yscale("log")
        ax.set_title(heading)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        lines += twin.plot(trace.steps, trace.lr, color=LR_COLOR, linewidth=1.0, linestyle=":", label="lr")
        twin.set_ylabel("learning rate", color=LR_COLOR)
        twin.tick_params(axis="y", colors=LR_COLOR)
        ax.legend(lines, [ln.get_label() for ln in lines], loc="best", fontsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out)
