"""Bootstrap confidence intervals for a time-to-target benchmark.

Agarwal, Schwarzer, Castro, Courville & Bellemare 2021, "Deep Reinforcement Learning at the
Edge of the Statistical Precipice" (NeurIPS; the ``rliable`` package): with a handful of runs,
report interval estimates from a *stratified* bootstrap - resample the runs within each task,
never across tasks - and recompute the aggregate on every resample. Intervals are percentile
intervals (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13).

The resampling scheme for a benchmark (:func:`bootstrap_benchmark`), per resample:

1. within each (algorithm, workload) cell, draw its S studies with replacement (stratified by
   cell, as rliable's ``StratifiedBootstrap``); a study keeps its own N tuning trials, so its
   time stays its fastest reaching trial (AlgoPerf, ``scoring.study_time``) and the luck of
   its tuning draws travels with it;
2. recompute the per-workload medians over studies, the ratios to the fastest algorithm, the
   benchmark score and the performance profile (``analysis.profiles``) from those times.

``resample_trials=True`` also draws the N trials of each drawn study with replacement (a
two-stage bootstrap). It is not the default: a study already carries the variation of its
trials, and resampling both stages counts it twice (Davison & Hinkley 1997, "Bootstrap Methods
and their Application", §3.8), worse here because a minimum of N = 2 draws from 2 trials
repeats one trial half the time. On simulated benchmarks (6 algorithms, 5 workloads, N = 2,
per-trial reach probability 0.6, lognormal times; 100 benchmarks per setting) the bootstrap
standard deviation of a score was 0.9-1.1x its true spread over benchmarks with S = 3 studies
(1.2-2x with S = 10: wide, not narrow) against 1.1-1.35x and 1.6-3.3x with both stages, and a
planted 2x faster algorithm was separated in 31 (S = 3) and 32 (S = 10) of 100 benchmarks
against 6 and 4; identical algorithms were separated in 3 and 0 of 100 (Holm at 0.9).
``tests/test_intervals.py`` keeps a smaller version of this check.

Why by hand and not a library: ``scipy.stats.bootstrap`` (already a dependency) and rliable's
``StratifiedBootstrap`` resample independent samples; neither keeps one set of draws for the
score, the profile, the ratios and the pairwise differences of one benchmark at once (the
paired tests need that), nor offers the two-stage variant. rliable would also pin
``pandas<3`` (its ``arch`` dependency breaks under pandas 3), pull in ``arch`` and ``seaborn``,
and its sampler uses the global NumPy RNG (two calls with one ``random_state`` differ). The percentile step itself is
``numpy.quantile``; ``tests/test_intervals.py`` checks the aggregates against
``analysis.profiles`` on the unresampled data.

Decisions:

* Seeded and deterministic: one ``numpy.random.Generator(PCG64(seed))``, cells drawn in sorted
  order; the same trials give bit-identical intervals.
* A miss is ``inf``; intervals use order statistics (``method="inverted_cdf"``), so an upper
  end can be ``inf`` ("may miss") without arithmetic on infinities.
* The point estimate is the statistic on the data as measured (not the resample mean). A
  bootstrap of a median of 3 studies or of a score capped at 1 is lumpy and biased, so the
  percentile interval can miss its own point; it is then widened to reach it
  (:func:`percentile_interval`), never shown beside a point it excludes.
* With 3-5 studies per cell percentile intervals are too narrow (Agarwal et al. 2021, §4);
  more studies (``steplab bench --studies``) is the cure.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from steplab.analysis.scoring import Measure, trial_time, workload_key
from steplab.results import TrialResult

#: the default confidence level of every interval and test (see ``steplab report --level``)
DEFAULT_LEVEL = 0.9
#: the fewest bootstrap resamples drawn
MIN_RESAMPLES = 2000

#: algorithm -> workload -> studies -> that study's trial times (``inf`` = did not reach)
StudyTimes = Mapping[str, Mapping[str, Sequence[Sequence[float]]]]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided confidence interval ``[low, high]`` at ``level``."""

    point: float
    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)

    def as_dict(self) -> dict[str, float]:
        """``{"point", "low", "high", "level"}`` (for ``--json``)."""
        return dataclasses.asdict(self)


def check_level(level: float) -> float:
    """``level`` as a float; a ``ValueError`` unless ``0 < level < 1``."""
    value = float(level)
    if not 0.0 < value < 1.0:
        raise ValueError(f"the confidence level must be between 0 and 1 (e.g. 0.9), got {level!r}")
    return value


def resamples_for(n_algorithms: int, level: float) -> int:
    """How many resamples the pairwise tests need: at least :data:`MIN_RESAMPLES`, and
    ``20 m / alpha`` for ``m = k(k-1)/2`` pairs, so that the smallest bootstrap p-value
    ``2/(B+1)`` sits well below Holm's strictest threshold ``alpha/m``.

    >>> resamples_for(6, 0.9), resamples_for(6, 0.95), resamples_for(2, 0.9)
    (3000, 6000, 2000)
    """
    alpha = 1.0 - check_level(level)
    m = max(1, n_algorithms * (n_algorithms - 1) // 2)
    return max(MIN_RESAMPLES, math.ceil(round(20 * m / alpha, 6)))


def percentile_interval(point: float, samples: np.ndarray, level: float) -> Interval:
    """The percentile interval of ``samples`` (1-D) at ``level``, widened to contain ``point``.

    The ends are the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles taken as order
    statistics (``numpy.quantile(method="inverted_cdf")``), so they are values a resample took
    (``inf`` included). NaN samples give a NaN interval.

    >>> percentile_interval(2.0, np.arange(1.0, 101.0), 0.9)
    Interval(point=2.0, low=2.0, high=95.0, level=0.9)
    """
    level = check_level(level)
    x = np.asarray(samples, dtype=float)
    if x.size == 0 or np.isnan(x).any() or math.isnan(point):
        return Interval(float(point), math.nan, math.nan, level)
    lo, hi = np.quantile(x, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="inverted_cdf")
    return Interval(float(point), float(min(lo, point)), float(max(hi, point)), level)


def study_trial_times(trials: Iterable[TrialResult], measure: Measure = "time_s") -> dict[str, dict[str, list[list[float]]]]:
    """``{algorithm: {workload_key: [[trial times of study 1], ...]}}`` in a fixed order.

    Grouped like ``scoring.time_table`` (algorithm, ``workload_key``, ``spec.study_id``);
    studies sorted by id, trials by their tuning index then id, so the same trials always
    give the same nesting (and the same bootstrap draws). Times are ``scoring.trial_time``.
    """
    groups: dict[str, dict[str, dict[int, list[tuple[int, int, float]]]]] = {}
    for t in trials:
        spec = t.spec
        by_study = groups.setdefault(spec.algorithm, {}).setdefault(workload_key(spec), {})
        sid = -1 if spec.study_id is None else int(spec.study_id)
        by_study.setdefault(sid, []).append((spec.index, t.id or 0, trial_time(t, measure)))
    return {
        a: {w: [[x for *_, x in sorted(groups[a][w][s])] for s in sorted(groups[a][w])] for w in sorted(groups[a])}
        for a in sorted(groups)
    }


def medians(study_times: np.ndarray) -> np.ndarray:
    """The median over the last axis with ``inf`` sorted last (``scoring.median_time``): the
    middle value, or the mean of the two middle ones (``inf`` if either is)."""
    v = np.sort(study_times, axis=-1)
    s = v.shape[-1]
    return (v[..., (s - 1) // 2] + v[..., s // 2]) / 2.0


def batch_ratios(times: np.ndarray) -> np.ndarray:
    """``r = t / min over algorithms`` for times shaped ``(..., algorithms, workloads)``, with
    the rules of ``profiles.performance_ratios``: ``inf`` on a miss and everywhere on a column
    that all missed; tied fastest exactly 1."""
    best = times.min(axis=-2, keepdims=True)
    finite_best = np.isfinite(best)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = times / np.where(finite_best, best, 1.0)
    r = np.where(np.isfinite(times), r, math.inf)
    r = np.where((times == best) & finite_best, 1.0, r)
    return np.where(finite_best, r, math.inf)


def batch_scores(ratios: np.ndarray, r_max: float) -> np.ndarray:
    """The benchmark score (``profiles.benchmark_score``: exact area under the profile on
    ``[1, r_max]`` over ``r_max - 1``) for ratios shaped ``(..., algorithms, workloads)``."""
    n_w = ratios.shape[-1]
    if n_w == 0:
        return np.full(ratios.shape[:-1], math.nan)
    area = np.where(ratios <= r_max, r_max - ratios, 0.0).sum(axis=-1)
    return np.clip(area / ((r_max - 1.0) * n_w), 0.0, 1.0)


def batch_profiles(ratios: np.ndarray, taus: Sequence[float]) -> np.ndarray:
    """``rho(tau)``: the share of workloads with ratio ``<= tau``; shape ``(..., algorithms, taus)``."""
    tau = np.asarray(taus, dtype=float)
    if ratios.shape[-1] == 0:
        return np.full((*ratios.shape[:-1], tau.size), math.nan)
    return (ratios[..., None] <= tau).sum(axis=-2) / ratios.shape[-1]


def _resample_cell(studies: Sequence[Sequence[float]], n: int, rng: np.random.Generator,
                   resample_trials: bool = False) -> np.ndarray:
    """``(n, S)`` resampled study times of one cell: studies with replacement (each its
    fastest trial), or with ``resample_trials`` each drawn study's trials with replacement
    too, the study time being the fastest drawn trial."""
    counts = np.array([len(s) for s in studies])
    n_max = int(counts.max())
    table = np.full((len(studies), n_max), math.inf)
    for i, s in enumerate(studies):
        table[i, : len(s)] = s
    pick = rng.integers(0, len(studies), size=(n, len(studies)))
    if n_max == 1 or not resample_trials:
        return table.min(axis=1)[pick]
    k = counts[pick][..., None]  # trials of each drawn study
    draw = (rng.random((n, len(studies), n_max)) * k).astype(np.int64)
    values = np.where(np.arange(n_max) < k, table[pick[..., None], draw], math.inf)
    return values.min(axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class Bootstrap:
    """The resamples behind every interval of one benchmark (see the module docstring).

    ``times[b, a, w]`` is the per-workload time of algorithm ``algorithms[a]`` on
    ``workloads[w]`` in resample ``b``; ``study_times[(a, w)]`` that cell's resampled study
    times ``(B, S)`` and ``point_study_times[(a, w)]`` the measured ones. ``scored`` are the
    workloads the score and profile use.
    """

    algorithms: tuple[str, ...]
    workloads: tuple[str, ...]
    scored: tuple[str, ...]
    r_max: float
    seed: int
    point_times: np.ndarray
    times: np.ndarray
    point_study_times: dict[tuple[str, str], np.ndarray]
    study_times: dict[tuple[str, str], np.ndarray]

    @property
    def n_resamples(self) -> int:
        return int(self.times.shape[0])

    @functools.cached_property
    def _scored_index(self) -> list[int]:
        return [self.workloads.index(w) for w in self.scored]

    @functools.cached_property
    def ratios(self) -> np.ndarray:
        """``(B, A, W)`` ratios to the fastest algorithm of each resample."""
        return batch_ratios(self.times)

    @functools.cached_property
    def point_ratios(self) -> np.ndarray:
        return batch_ratios(self.point_times)

    @functools.cached_property
    def scores(self) -> np.ndarray:
        """``(B, A)`` benchmark scores over the scored workloads."""
        return batch_scores(self.ratios[..., self._scored_index], self.r_max)

    def profiles(self, taus: Sequence[float]) -> np.ndarray:
        """``(B, A, T)`` performance profiles over the scored workloads at ``taus``."""
        return batch_profiles(self.ratios[..., self._scored_index], taus)

    def point_profiles(self, taus: Sequence[float]) -> np.ndarray:
        return batch_profiles(self.point_ratios[..., self._scored_index], taus)

    def score_intervals(self, points: Mapping[str, float], level: float) -> dict[str, Interval]:
        """Per algorithm, the interval of its benchmark score around ``points[algorithm]``."""
        return {a: percentile_interval(points.get(a, math.nan), self.scores[:, i], level)
                for i, a in enumerate(self.algorithms)}

    def cell_intervals(self, level: float, *, ratio: bool = False) -> dict[str, dict[str, Interval]]:
        """Per algorithm and workload, the interval of the time (or, ``ratio=True``, of the
        ratio to the fastest) around the measured value."""
        values, points = (self.ratios, self.point_ratios) if ratio else (self.times, self.point_times)
        return {a: {w: percentile_interval(float(points[i, j]), values[:, i, j], level)
                    for j, w in enumerate(self.workloads)} for i, a in enumerate(self.algorithms)}

    def profile_bands(self, taus: Sequence[float], level: float) -> dict[str, tuple[list[float], list[float]]]:
        """Per algorithm, the ``(low, high)`` band of the profile at each ``tau``."""
        boot, point = self.profiles(taus), self.point_profiles(taus)
        out = {}
        for i, a in enumerate(self.algorithms):
            ivs = [percentile_interval(float(point[i, k]), boot[:, i, k], level) for k in range(len(taus))]
            out[a] = ([iv.low for iv in ivs], [iv.high for iv in ivs])
        return out


def bootstrap_benchmark(
    study_times: StudyTimes,
    *,
    algorithms: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
    scored: Sequence[str] | None = None,
    r_max: float = 4.0,
    n_resamples: int = MIN_RESAMPLES,
    seed: int = 0,
    resample_trials: bool = False,
) -> Bootstrap:
    """Resample a benchmark ``n_resamples`` times (the module docstring's scheme; with
    ``resample_trials`` the two-stage variant).

    ``study_times`` is :func:`study_trial_times`; ``algorithms`` and ``workloads`` default to
    every one in it (sorted); a cell an algorithm never ran counts as a miss (``inf``, as
    ``missing="inf"`` in ``analysis.profiles``). ``scored`` (default: every workload) are the
    workloads of the score and the profile.
    """
    algos = tuple(algorithms if algorithms is not None else sorted(study_times))
    keys = tuple(workloads if workloads is not None else sorted({w for row in study_times.values() for w in row}))
    chosen = tuple(scored if scored is not None else keys)
    if not algos or not keys:
        raise ValueError("the bootstrap needs at least one algorithm and one workload")
    if unknown := [w for w in chosen if w not in keys]:
        raise ValueError(f"scored workloads {unknown} are not among the workloads {list(keys)}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    rng = np.random.default_rng(seed)
    times = np.empty((n_resamples, len(algos), len(keys)))
    point = np.empty((len(algos), len(keys)))
    point_st: dict[tuple[str, str], np.ndarray] = {}
    boot_st: dict[tuple[str, str], np.ndarray] = {}
    for i, a in enumerate(algos):
        for j, w in enumerate(keys):
            studies = [list(s) for s in study_times.get(a, {}).get(w, ()) if len(s)] or [[math.inf]]
            point_st[(a, w)] = np.array([min(s) for s in studies], dtype=float)
            boot_st[(a, w)] = _resample_cell(studies, n_resamples, rng, resample_trials)
            point[i, j] = medians(point_st[(a, w)])
            times[:, i, j] = medians(boot_st[(a, w)])
    return Bootstrap(algos, keys, chosen, float(r_max), int(seed), point, times, point_st, boot_st)


__all__ = [
    "DEFAULT_LEVEL",
    "MIN_RESAMPLES",
    "Bootstrap",
    "Interval",
    "StudyTimes",
    "batch_profiles",
    "batch_ratios",
    "batch_scores",
    "bootstrap_benchmark",
    "check_level",
    "medians",
    "percentile_interval",
    "resamples_for",
    "study_trial_times",
]
