"""Figures of long continual streams (loss of plasticity): the online accuracy of task ``k``
against ``k`` and the probe metrics at task starts, one line (mean over seeds, with a band)
per algorithm (Dohare et al. 2024, Fig. 1 and Extended Data Figs 3-4, in this shape)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from steplab.report.plots import plt, save_figure

__all__ = ["plot_long", "smooth"]


def smooth(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Running mean over ``window`` tasks (``valid`` part only; the input when ``window < 2``)."""
    v = np.asarray(values, dtype=np.float64)
    if window < 2 or len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def plot_long(panels: Sequence[Mapping[str, object]], out: str | Path, *, window: int = 1) -> Path:
    """One axis per panel: ``{"title", "ylabel", "lines": {label: (tasks, mean, low, high)}}``
    (``low``/``high`` may be None: no band); every series smoothed over ``window`` tasks."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), dpi=120, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        lines: Mapping[str, tuple] = panel["lines"]  # type: ignore[assignment]
        for label, (x, mean, low, high) in lines.items():
            m = smooth(mean, window)
            xs = np.asarray(x)[len(x) - len(m):]
            (line,) = ax.plot(xs, m, label=str(label), lw=1.4)
            if low is not None and high is not None:
                ax.fill_between(xs, smooth(low, window), smooth(high, window), color=line.get_color(), alpha=0.2)
        ax.set_title(str(panel.get("title", "")), fontsize=10)
        ax.set_xlabel("task")
        ax.set_ylabel(str(panel.get("ylabel", "")))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out)
