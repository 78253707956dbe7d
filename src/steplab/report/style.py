"""How the report figures look and travel: one colour and line style per algorithm or run,
labels matplotlib draws literally, a moving average for noisy losses, and a figure as a
base64 PNG for the HTML pages (``matplotlib.figure.Figure``, no pyplot, no global state)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

__all__ = ["COLORS", "LINE_STYLES", "mpl_label", "moving_average", "png_base64"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
LINE_STYLES = ("-", "--", "-.", ":")


def mpl_label(text: str) -> str:
    """A label matplotlib draws literally (``$`` would start mathtext).

    >>> mpl_label("cost $5")
    'cost \\\\$5'
    """
    return str(text).replace("$", r"\$")


def png_base64(fig: Any) -> str:
    """``fig`` as a PNG (100 dpi), base64-encoded for an HTML data URL."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def moving_average(y: np.ndarray) -> np.ndarray:
    """A trailing moving average over ~2% of the run (at least 1 step); the first points
    average what there is so far.

    >>> moving_average(np.arange(100.0))[:3].tolist()
    [0.0, 0.5, 1.5]
    """
    n = max(1, len(y) // 50)
    if n == 1 or len(y) == 0:
        return y
    kernel = np.ones(n) / n
    head = np.cumsum(y[: n - 1]) / np.arange(1, n)
    return np.concatenate([head, np.convolve(y, kernel, mode="valid")])
