"""Which differences between algorithms are real: wins, ties and the probability of improvement.

The statistics follow Agarwal et al. 2021 ("Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS; the ``rliable`` package) on the resamples of
:mod:`steplab.analysis.intervals`:

1. **Pairwise test** on the difference of benchmark scores ``D = score(a) - score(b)``, paired
   by bootstrap resample (both scores come from the same draws). For the pair ordered by the
   measured scores (``a`` ahead), the p-value is the bootstrap percentile test
   ``p = min(1, 2 (#{D <= 0} + 1) / (B + 1))`` (Davison & Hinkley 1997, "Bootstrap Methods and
   their Application", ch. 4: the Monte Carlo ``+1`` keeps ``p > 0``): the smallest ``alpha`` at which the
   two-sided percentile interval of ``D`` at ``1 - alpha`` lies above 0. A pair whose
   resamples mostly disagree with the measured order gets ``p`` near 1, never a reversed win.
2. **Holm's correction** (Holm 1979, "A simple sequentially rejective multiple test
   procedure", Scand. J. Statist. 6:65-70) across the ``m = k(k-1)/2`` pairs at
   ``alpha = 1 - level`` (:func:`holm`): the chance of calling *any* tie a win is at most
   ``alpha``. A pair is **separated** when its Holm-adjusted p-value is ``<= alpha``; only
   separated pairs are wins.
3. **Tie groups**: walk the ranking; a new group starts only where an algorithm is separated
   from the one just above it. Groups are therefore chains: with ``A ~ B``, ``B ~ C`` but ``A``
   separated from ``C`` (ties need not be transitive), all three share a group and
   :meth:`Verdict.wins` still lists ``A`` over ``C``. This errs on the side of "tied".
4. **Probability of improvement** ``P(A faster than B)`` per workload: the Mann-Whitney
   ``U / (n_a n_b)`` over the two algorithms' per-study times, ``P(t_a < t_b) + P(t_a = t_b)/2``
   (a miss is ``inf``; two misses tie), averaged over the scored workloads, as rliable's
   ``metrics.probability_of_improvement`` (which counts ``P(x > y)`` for scores, higher better:
   :func:`probability_of_improvement`). Its interval comes from the same resamples.

Why by hand: scipy has no Holm (only ``false_discovery_control``, FDR); the bootstrap test
and the vectorised ``U`` reuse the shared resamples, which no library takes.
``tests/test_verdicts.py`` checks Holm on the reference sheet's example and ``U`` against
``scipy.stats.mannwhitneyu`` and rliable's test fixtures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from steplab.analysis.intervals import Bootstrap, Interval, check_level, percentile_interval


def holm(p_values: Sequence[float], alpha: float) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure: which hypotheses to reject at family-wise level ``alpha``
    and the adjusted p-values, both in the input order.

    Sort ``p_(1) <= ... <= p_(m)``; reject while ``p_(i) <= alpha / (m - i + 1)`` and stop at
    the first failure; the adjusted value is ``max_{j <= i} min(1, (m - j + 1) p_(j))``, so
    "reject" is "adjusted <= alpha" (Holm 1979).

    >>> holm([0.01, 0.04, 0.03, 0.005], 0.05)
    ([True, False, False, True], [0.03, 0.06, 0.06, 0.02])
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return [], []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got {list(p_values)}")
    m = p.size
    order = np.argsort(p, kind="stable")
    steps = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(steps)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    adjusted = np.round(adjusted, 15)  # (m - j + 1) p in floating point: 3 * 0.01 = 0.030000000000000002
    return [bool(x <= alpha) for x in adjusted], [float(x) for x in adjusted]


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``P(x > y) + P(x = y)/2`` over the last axes of ``x (..., n_x)`` and ``y (..., n_y)``."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """rliable's probability of improvement of scores ``x`` over ``y`` (higher is better):
    per task (column) the Mann-Whitney ``U / (n_x n_y)`` = ``P(x > y) + P(x = y)/2``, averaged
    over tasks. ``x`` is ``(runs, tasks)``, ``y`` ``(runs', tasks)``.

    >>> probability_of_improvement(np.array([[1, 2], [2, 2], [1, 1], [2, 1]]), np.array([[1, 1], [2, 2], [3, 3]]))
    0.3333333333333333
    """
    xa, ya = np.atleast_2d(np.asarray(x, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y need the same tasks (columns), got {xa.shape} and {ya.shape}")
    return float(np.mean(_improvement(xa.T, ya.T)))


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The decisions on one benchmark at confidence ``level``.

    ``order`` is the ranking (measured score, best first; equal scores by name), ``groups``
    its tie groups, ``p_values[(a, b)]`` the Holm-adjusted p-value of "``a`` ahead of ``b``"
    for ``a`` above ``b`` in ``order``, ``separated`` the pairs ``(winner, loser)`` with an
    adjusted p-value ``<= 1 - level``, and ``p_improvement[a][b]`` the interval of
    ``P(a reaches the target faster than b)``.
    """

    level: float
    order: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    p_values: dict[tuple[str, str], float]
    separated: frozenset[tuple[str, str]]
    p_improvement: dict[str, dict[str, Interval]]
    n_pairs: int = 0

    def is_separated(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` differ significantly, in either order."""
        return (a, b) in self.separated or (b, a) in self.separated

    def beats(self, a: str, b: str) -> bool:
        """Whether ``a`` is separated from ``b`` and ahead of it (a win)."""
        return (a, b) in self.separated

    def wins(self, a: str) -> list[str]:
        """The algorithms ``a`` is separated from and ahead of, in ranking order."""
        return [b for b in self.order if (a, b) in self.separated]

    def group_of(self, a: str) -> int:
        """The index (0 = best) of ``a``'s tie group."""
        return next(i for i, g in enumerate(self.groups) if a in g)

    @property
    def top_separated(self) -> bool:
        """Whether the best algorithm is separated from the second (``True`` with fewer than
        two algorithms: there is nothing left to separate)."""
        return len(self.order) < 2 or self.is_separated(self.order[0], self.order[1])


def ranking_order(points: Mapping[str, float]) -> tuple[str, ...]:
    """Algorithms by measured score, best first; equal scores by name; NaN scores last."""
    return tuple(sorted(points, key=lambda a: (-points[a] if math.isfinite(points[a]) else math.inf, a)))


def _bootstrap_p(diff: np.ndarray, point: float) -> float:
    """``min(1, 2 (#{D <= 0} + 1) / (B + 1))`` for ``D`` the resampled differences of a pair
    whose measured difference ``point`` is ``>= 0``; 1 when undefined (NaN) or equal."""
    if not math.isfinite(point) or point <= 0 or np.isnan(diff).any():
        return 1.0
    return min(1.0, 2.0 * (int(np.sum(diff <= 0)) + 1) / (diff.size + 1))


def p_improvement(boot: Bootstrap, level: float) -> dict[str, dict[str, Interval]]:
    """``P(a reaches the target faster than b)`` with its interval, for every ordered pair:
    per scored workload the ``U / (n_a n_b)`` of the per-study times (lower is faster, a miss
    is ``inf``), averaged over workloads; NaN intervals when no workload is scored. The pair
    ``(b, a)`` is ``1 -`` the pair ``(a, b)``, resample by resample."""
    out: dict[str, dict[str, Interval]] = {a: {} for a in boot.algorithms}
    algos = boot.algorithms
    for i, a in enumerate(algos):
        for b in algos[i + 1:]:
            if not boot.scored:
                out[a][b] = out[b][a] = Interval(math.nan, math.nan, math.nan, level)
                continue
            # faster = smaller time: negate so that "greater is better" as in rliable
            point = float(np.mean([_improvement(-boot.point_study_times[(a, w)], -boot.point_study_times[(b, w)])
                                   for w in boot.scored]))
            samples = np.mean([_improvement(-boot.study_times[(a, w)], -boot.study_times[(b, w)])
                               for w in boot.scored], axis=0)
            out[a][b] = percentile_interval(point, samples, level)
            out[b][a] = percentile_interval(1.0 - point, 1.0 - samples, level)
    return {a: {b: out[a][b] for b in algos if b != a} for a in algos}


def separate(algorithms: Sequence[str], score_samples: np.ndarray, points: Mapping[str, float], level: float
             ) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], dict[tuple[str, str], float], frozenset[tuple[str, str]]]:
    """Order, tie groups, Holm-adjusted p-values and separated pairs from resampled scores
    ``score_samples[b, i]`` of ``algorithms[i]`` (paired by row ``b``) and the measured
    ``points`` (the module docstring, steps 1-3)."""
    level = check_level(level)
    order = ranking_order({a: float(points.get(a, math.nan)) for a in algorithms})
    col = {a: i for i, a in enumerate(algorithms)}
    pairs = [(order[i], order[j]) for i in range(len(order)) for j in range(i + 1, len(order))]
    raw = [_bootstrap_p(score_samples[:, col[a]] - score_samples[:, col[b]],
                        float(points.get(a, math.nan)) - float(points.get(b, math.nan))) for a, b in pairs]
    reject, adjusted = holm(raw, 1.0 - level)
    separated = frozenset(pair for pair, r in zip(pairs, reject, strict=True) if r)
    groups: list[list[str]] = []
    for i, a in enumerate(order):
        if i == 0 or (order[i - 1], a) in separated:
            groups.append([a])
        else:
            groups[-1].append(a)
    return order, tuple(tuple(g) for g in groups), dict(zip(pairs, adjusted, strict=True)), separated


def decide(boot: Bootstrap, points: Mapping[str, float], level: float) -> Verdict:
    """The :class:`Verdict` of a benchmark from its resamples ``boot`` and the measured
    benchmark scores ``points`` (the module docstring: paired bootstrap test per pair, Holm
    across pairs at ``1 - level``, chained tie groups, probability of improvement)."""
    level = check_level(level)
    order, groups, p_values, separated = separate(boot.algorithms, boot.scores, points, level)
    return Verdict(level=level, order=order, groups=groups, p_values=p_values, separated=separated,
                   p_improvement=p_improvement(boot, level), n_pairs=len(p_values))


__all__ = ["Verdict", "decide", "holm", "p_improvement", "probability_of_improvement", "ranking_order", "separate"]
