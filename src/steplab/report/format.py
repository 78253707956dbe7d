"""Numbers and names for people, shared by the terminal tables and the HTML pages of every
report: times, step counts, ratios, noise floors, hyperparameters (DESIGN.md, "Output":
names never truncated, ``inf`` shown as a miss)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DASH",
    "MISS",
    "format_hyperparameters",
    "format_noise",
    "format_number",
    "format_ratio",
    "format_steps",
    "format_time",
]

#: what a missed target (``inf``) shows as in tables
MISS = "miss"
#: what a value that was not recorded shows as
DASH = "—"


def format_time(seconds: float, *, missing: str = DASH) -> str:
    """Seconds for people: ``"0.412 s"``, ``"4m 05s"``, ``"1h 02m"``; ``missing`` for
    ``inf``/NaN (a target not reached).

    >>> format_time(0.4123), format_time(245.0), format_time(3725.0), format_time(math.inf)
    ('0.412 s', '4m 05s', '1h 02m', '—')
    """
    s = float(seconds)
    if not math.isfinite(s):
        return missing
    if s < 60:
        return f"{s:#.3g} s"
    if s < 3600:
        m, r = divmod(int(round(s)), 60)
        return f"{m}m {r:02d}s"
    h, r = divmod(int(round(s)), 3600)
    return f"{h}h {r // 60:02d}m"


def format_steps(steps: float, *, missing: str = DASH) -> str:
    """Steps with thousands separators (a median over an even number of studies may end
    in ``.5``); ``missing`` for ``inf``/NaN.

    >>> format_steps(12000.0), format_steps(416.5), format_steps(math.inf)
    ('12,000', '416.5', '—')
    """
    v = float(steps)
    if not math.isfinite(v):
        return missing
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def format_ratio(ratio: float) -> str:
    """``"×1.00"`` style factor of the fastest; ``"—"`` when not comparable."""
    return f"×{ratio:.2f}" if math.isfinite(ratio) else DASH


def format_noise(spread: float, n_studies: int) -> str:
    """The noise floor (relative spread of per-study times) as ``"±12%"``; explains NaN."""
    if math.isfinite(spread):
        return f"{100 * spread:.0f}%"
    return "n/a (1 study)" if n_studies <= 1 else "n/a (<2 studies reached)"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_fmt_value(x) for x in v) + ")"
    return str(v)


def format_hyperparameters(hp: Mapping[str, Any]) -> str:
    """``"lr=0.0356, weight_decay=0.00964"`` (floats to 3 significant digits).

    >>> format_hyperparameters({"lr": 0.035625, "nesterov": True})
    'lr=0.0356, nesterov=True'
    """
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in hp.items())


def format_number(v: Any, digits: int = 2) -> str:
    """``v`` with ``digits`` decimals; ``"—"`` for ``inf``/NaN or anything not a number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return DASH
    return f"{f:.{digits}f}" if math.isfinite(f) else DASH

