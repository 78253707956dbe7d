"""Figures a person would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from steplab import schedules  # noqa: E402


def plot_schedules(
    specs: Sequence[str | dict], steps: int, out: str | Path, *, peak_lr: float | None = None
) -> Path:
    """Plot several schedules' multipliers (or learning rates with ``peak_lr``) over
    ``steps`` updates on one figure and write it to ``out`` (PNG, SVG or PDF)."""
    parsed = [schedules.spec_from(s) for s in specs]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    xs = list(range(steps))
    scale = peak_lr if peak_lr is not None else 1.0
    for spec in parsed:
        ys = [scale * v for v in schedules.values(schedules.build(spec, steps), steps)]
        ax.plot(xs, ys, label=str(spec), linewidth=1.8)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate" if peak_lr is not None else "multiplier of the peak learning rate")
    ax.set_title(f"learning-rate schedules over {steps} steps")
    ax.set_xlim(0, steps)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
