"""Intervals over a handful of seeds: the mean of a metric with its Student-t interval.

With 2-10 seeds a percentile bootstrap is too narrow (it can only return values the seeds
took, Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", §4), so a mean over seeds gets the classical interval ``mean +- t s / sqrt(n)``
(Student 1908; ``scipy.stats.t``), which assumes roughly normal seed-to-seed noise and is
exact under it. Two such intervals that overlap do not show a tie; compare methods on the
interval of their difference (:func:`difference_interval`, Welch 1947)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from steplab.analysis.intervals import DEFAULT_LEVEL, Interval, check_level


def seed_interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """The mean of ``values`` (one per seed) and its two-sided Student-t interval at
    ``level``; NaN ends with fewer than two finite values (one seed has no spread), and a
    zero-width interval when the seeds agree exactly. Non-finite values (a diverged seed)
    make the interval NaN: report them, do not average them away.

    >>> iv = seed_interval([1.0, 2.0, 3.0], 0.95)  # 2 +- t(0.975, 2) x 1 / sqrt(3)
    >>> iv.point, round(iv.low, 4), round(iv.high, 4)
    (2.0, -0.4841, 4.4841)
    """
    from scipy import stats

    level = check_level(level)
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    if not np.isfinite(x).all():
        return Interval(float(np.mean(x)) if not np.isnan(x).any() else math.nan, math.nan, math.nan, level)
    mean = float(x.mean())
    if x.size < 2:
        return Interval(mean, math.nan, math.nan, level)
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, level)


def difference_interval(a: Sequence[float], b: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """``mean(a) - mean(b)`` with Welch's t interval (unequal variances, Welch-Satterthwaite
    degrees of freedom; Welch 1947, "The generalization of Student's problem when several
    different population variances are involved", Biometrika 34): a difference whose
    interval holds 0 is a tie. NaN ends with fewer than two finite values on a side.

    >>> iv = difference_interval([10.0, 11.0, 12.0], [1.0, 2.0, 3.0], 0.9)
    >>> round(iv.point, 6), iv.low > 0
    (9.0, True)
    """
    from scipy import stats

    level = check_level(level)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        point = float(x.mean() - y.mean()) if x.size and y.size else math.nan
        return Interval(point, math.nan, math.nan, level)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    point = float(x.mean() - y.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(point, point, point, level)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(stats.t.ppf((1 + level) / 2, df) * se)
    return Interval(point, point - half, point + half, level)


__all__ = ["difference_interval", "seed_interval"]
