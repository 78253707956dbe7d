"""Rank agreement: does a small suite rank the algorithms as a big one does, and does a short
budget of a workload rank them as a long one does?

The statistic is Kendall's tau-b (Kendall 1945, "The treatment of ties in ranking problems",
Biometrika 33; ``scipy.stats.kendalltau``, variant ``"b"``) between two rankings of the
algorithms the two benchmarks share: 1 = same order, -1 = reversed, tau-b corrects for tied
ranks. Its interval is a percentile bootstrap over studies (Efron & Tibshirani 1993, "An
Introduction to the Bootstrap", ch. 13):

* A benchmark's sampling unit is the *study*: one of its S independent repetitions of every
  algorithm x workload (AlgoPerf, Dahl et al. 2023, arXiv:2306.07179, "Scoring": the
  per-workload time is the median over studies). A resample draws S study ids with
  replacement, the same ids for every algorithm and workload of that benchmark, and each
  benchmark is resampled on its own (they are separate experiments).
* Each resample recomputes both rankings from the drawn studies (median over them, then the
  benchmark score, as :mod:`steplab.analysis.scoring` and :mod:`steplab.analysis.profiles`
  do) and their tau; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
  percentiles of those taus. A resample whose ranking is all ties has no tau: it is dropped
  and counted (``Agreement.n_defined``).
* What it does not cover: which workloads and algorithms were chosen. With S = 3 studies a
  benchmark has only 10 distinct resamples, so the interval is coarse: read it as "how much
  the rankings move between repetitions", not as a fine confidence statement (the
  percentile interval need not be centred on the point). The two benchmarks must be
  independent (other seeds, as ``examples/bench-standard.toml`` has against the demo's):
  resampling them separately is right only then; two runs with the same seeds share draws.

Per workload (:func:`budget_agreements`): algorithms rank by their median time to target over
studies; those that miss the target tie on time and are ordered by their median final
target metric (how close they came), so a short budget that nobody finishes still ranks.

Decisions (tested in ``tests/test_agreement.py``): ``nan`` tau when fewer than two
algorithms are shared or either ranking is all ties; misses (``inf``) rank last, tied with
each other; a study id a cell lacks is skipped in that cell.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from steplab.analysis import profiles, scoring
from steplab.analysis.intervals import DEFAULT_LEVEL
from steplab.results import TrialResult

#: the sort key of one algorithm in one ranking (smaller = better)
Key = tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One study of one algorithm on one workload: its time to target (``inf`` = no trial
    reached it) and its best final target metric as a loss (lower is better; ``inf`` when
    unknown)."""

    time: float
    loss: float = math.inf


#: algorithm -> workload key -> study id -> outcome of that study
Outcomes = Mapping[str, Mapping[str, Mapping[Hashable, Outcome]]]


@dataclasses.dataclass(frozen=True)
class Agreement:
    """Kendall tau-b between ranking ``a`` and ranking ``b`` of ``algorithms``, with a
    percentile bootstrap interval over studies [``low``, ``high``] at ``level``.

    ``values_a``/``values_b`` are what each side ranks by (benchmark scores, higher is better,
    or median times, lower is better: ``higher_is_better``); ``p_value`` is scipy's test of
    tau = 0 with the algorithms as the sample (nan when tau is); ``n_defined`` of ``n_boot``
    resamples had a tau.
    """

    algorithms: tuple[str, ...]
    ranking_a: tuple[str, ...]
    ranking_b: tuple[str, ...]
    values_a: dict[str, float]
    values_b: dict[str, float]
    higher_is_better: bool
    tau: float
    p_value: float
    low: float
    high: float
    level: float
    n_boot: int
    n_defined: int


def study_outcomes(
    trials: Iterable[TrialResult],
    measure: scoring.Measure = "time_s",
    metrics: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, dict[str, dict[Hashable, Outcome]]]:
    """``{algorithm: {workload_key: {study_id: Outcome}}}`` from a flat list of trials.

    The time of a study is :func:`scoring.study_time` (its fastest trial to reach the target,
    external tuning); its loss is the best final value of ``metrics[workload_key] = (metric,
    mode)`` over its trials, negated for ``mode="max"`` (the ``best/`` value when the final one
    is absent; ``inf`` when neither was recorded or the workload has no entry).
    """
    groups: dict[str, dict[str, dict[Hashable, list[TrialResult]]]] = {}
    for t in trials:
        by = groups.setdefault(t.spec.algorithm, {}).setdefault(scoring.workload_key(t.spec), {})
        by.setdefault(t.spec.study_id, []).append(t)
    out: dict[str, dict[str, dict[Hashable, Outcome]]] = {}
    for a, by_workload in sorted(groups.items()):
        for w, by_study in sorted(by_workload.items()):
            metric, mode = (metrics or {}).get(w, (None, "min"))
            out.setdefault(a, {})[w] = {
                s: Outcome(scoring.study_time(ts, measure), min((_loss(t, metric, mode) for t in ts), default=math.inf))
                for s, ts in by_study.items()
            }
    return out


def _loss(t: TrialResult, metric: str | None, mode: str) -> float:
    if metric is None:
        return math.inf
    v = t.final_metrics.get(metric, t.final_metrics.get(f"best/{metric}", math.nan))
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.inf
    if math.isnan(v):
        return math.inf
    return -v if mode == "max" else v


def _draw(cell: Mapping[Hashable, Outcome], draw: Sequence[Hashable] | None) -> list[Outcome]:
    return list(cell.values()) if draw is None else [cell[s] for s in draw if s in cell]


def scored_workloads(outcomes: Outcomes) -> list[str]:
    """The workloads a benchmark score counts, as ``bench.score`` picks them: the base
    workloads (keys without ``:variant``) if there are any, else every key; less those that
    give no signal (no algorithm reached the target in any study)."""
    keys = {w for row in outcomes.values() for w in row}
    reached = {w for row in outcomes.values() for w, cell in row.items() if any(math.isfinite(o.time) for o in cell.values())}
    return [w for w in sorted({w for w in keys if ":" not in w} or keys) if w in reached]


def suite_scores(
    outcomes: Outcomes,
    draw: Sequence[Hashable] | None = None,
    *,
    r_max: float = 4.0,
    workloads: Sequence[str] | None = None,
) -> dict[str, float]:
    """Each algorithm's benchmark score (``profiles.benchmark_score``, absent cells as misses)
    over the studies in ``draw`` (ids, repeats allowed; ``None`` = every study).

    A workload's time is the median over the drawn studies (``scoring.median_time``), so with
    ``draw=None`` this is the score ``bench.score`` reports. ``workloads`` defaults to
    :func:`scored_workloads` (``{}`` when there are none).
    """
    table: dict[str, dict[str, float]] = {}
    for a, row in outcomes.items():
        table[a] = {}
        for w, cell in row.items():
            times = [o.time for o in _draw(cell, draw)]
            if times:
                table[a][w] = scoring.median_time(times)
    keys = list(workloads) if workloads is not None else scored_workloads(outcomes)
    if not keys or not table:  # no workload gives a signal: nothing ranks
        return {}
    return profiles.benchmark_score(table, r_max, workloads=keys, missing="inf")


def _workload_keys(cells: Mapping[str, Mapping[Hashable, Outcome]], draw: Sequence[Hashable] | None) -> dict[str, Key]:
    """Per algorithm: (median time, median loss) over the drawn studies; no entry without one."""
    out = {}
    for a, cell in cells.items():
        drawn = _draw(cell, draw)
        if drawn:
            out[a] = (scoring.median_time([o.time for o in drawn]), float(np.median([o.loss for o in drawn])))
    return out


def _ranks(keys: Mapping[str, Key], algorithms: Sequence[str]) -> list[float]:
    """Average ranks (1 = best) of ``algorithms`` by their keys; equal keys share a rank."""
    order = sorted(keys[a] for a in algorithms)
    first = {}
    for i, k in enumerate(order):
        first.setdefault(k, i)
    count = {k: order.count(k) for k in first}
    return [first[keys[a]] + (count[keys[a]] + 1) / 2.0 for a in algorithms]


def kendall_tau(keys_a: Mapping[str, Key], keys_b: Mapping[str, Key]) -> tuple[float, float]:
    """``(tau_b, p_value)`` between two rankings given as sort keys (smaller = better) over the
    algorithms both have; ``(nan, nan)`` with fewer than two or when either is all ties.

    >>> round(kendall_tau({"x": (1.0,), "y": (2.0,), "z": (3.0,)}, {"x": (1.0,), "y": (3.0,), "z": (2.0,)})[0], 4)
    0.3333
    """
    algorithms = sorted(set(keys_a) & set(keys_b))
    if len(algorithms) < 2:
        return math.nan, math.nan
    ra, rb = _ranks(keys_a, algorithms), _ranks(keys_b, algorithms)
    if len(set(ra)) < 2 or len(set(rb)) < 2:
        return math.nan, math.nan
    from scipy import stats  # imported here: scipy.stats costs a second at start-up

    res = stats.kendalltau(ra, rb, variant="b")
    return float(res.statistic), float(res.pvalue)


def _bootstrap(
    side_a: tuple[Callable[[Sequence[Hashable] | None], dict[str, Key]], Sequence[Hashable]],
    side_b: tuple[Callable[[Sequence[Hashable] | None], dict[str, Key]], Sequence[Hashable]],
    n_boot: int,
    level: float,
    seed: int,
) -> tuple[float, float, float, float, int]:
    """``(tau, p, low, high, n_defined)``: the point tau of the two sides and its percentile
    bootstrap interval, each side resampling its own study ids with replacement."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    (rank_a, ids_a), (rank_b, ids_b) = side_a, side_b
    tau, p = kendall_tau(rank_a(None), rank_b(None))
    rng = np.random.default_rng(seed)
    cache_a: dict[tuple, dict[str, Key]] = {}
    cache_b: dict[tuple, dict[str, Key]] = {}
    cache_tau: dict[tuple, float] = {}
    taus = []
    for _ in range(n_boot):
        # a median depends on the multiset of drawn studies only: sort the draw and cache
        da = tuple(sorted((ids_a[i] for i in rng.integers(len(ids_a), size=len(ids_a))), key=repr))
        db = tuple(sorted((ids_b[i] for i in rng.integers(len(ids_b), size=len(ids_b))), key=repr))
        if (da, db) not in cache_tau:
            ka = cache_a[da] if da in cache_a else cache_a.setdefault(da, rank_a(da))
            kb = cache_b[db] if db in cache_b else cache_b.setdefault(db, rank_b(db))
            cache_tau[(da, db)] = kendall_tau(ka, kb)[0]
        if math.isfinite(cache_tau[(da, db)]):
            taus.append(cache_tau[(da, db)])
    if taus:
        low, high = (float(v) for v in np.percentile(taus, [50.0 * (1 - level), 50.0 * (1 + level)]))
    else:
        low = high = math.nan
    return tau, p, low, high, len(taus)


def _study_ids(cells: Iterable[Mapping[Hashable, Outcome]]) -> list[Hashable]:
    ids = sorted({s for cell in cells for s in cell}, key=repr)
    if not ids:
        raise ValueError("no studies to compare: the benchmark has no finished trials")
    return ids


def _order(values: Mapping[str, float], higher_is_better: bool) -> tuple[str, ...]:
    sign = -1.0 if higher_is_better else 1.0
    return tuple(sorted(values, key=lambda a: (sign * values[a], a)))


def suite_agreement(
    a: Outcomes,
    b: Outcomes,
    *,
    r_max: float = 4.0,
    n_boot: int = 1000,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Agreement:
    """Kendall tau-b between the benchmark-score rankings of two benchmarks (e.g. the quick
    and the standard suite) over their shared algorithms, with its bootstrap interval over
    studies (see the module docstring). Each benchmark is scored on its own workloads
    (:func:`scored_workloads`)."""
    shared = sorted(set(a) & set(b))
    wa, wb = scored_workloads(a), scored_workloads(b)
    ca = {k: v for k, v in a.items() if k in shared}
    cb = {k: v for k, v in b.items() if k in shared}

    def ranker(outcomes: Outcomes, workloads: list[str]) -> Callable[[Sequence[Hashable] | None], dict[str, Key]]:
        return lambda draw: {k: (-s,) for k, s in suite_scores(outcomes, draw, r_max=r_max, workloads=workloads).items()}

    if len(shared) < 2:
        return _empty(shared, True, level, n_boot)
    ids_a = _study_ids(c for row in ca.values() for c in row.values())
    ids_b = _study_ids(c for row in cb.values() for c in row.values())
    tau, p, low, high, n_def = _bootstrap((ranker(ca, wa), ids_a), (ranker(cb, wb), ids_b), n_boot, level, seed)
    sa = suite_scores(ca, r_max=r_max, workloads=wa)
    sb = suite_scores(cb, r_max=r_max, workloads=wb)
    return Agreement(tuple(shared), _order(sa, True), _order(sb, True), sa, sb, True,
                     tau, p, low, high, float(level), n_boot, n_def)


def budget_agreement(
    short: Mapping[str, Mapping[Hashable, Outcome]],
    long: Mapping[str, Mapping[Hashable, Outcome]],
    *,
    n_boot: int = 1000,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> Agreement:
    """Kendall tau-b between two rankings of the algorithms on one workload, e.g. at a short
    and at a long budget: ``{algorithm: {study_id: Outcome}}`` on each side. Algorithms rank
    by median time to target over studies, misses last and ordered among themselves by
    their median loss; ``values_*`` are the median times."""
    shared = sorted(set(short) & set(long))
    if len(shared) < 2:
        return _empty(shared, False, level, n_boot)
    ca = {k: short[k] for k in shared}
    cb = {k: long[k] for k in shared}
    tau, p, low, high, n_def = _bootstrap(
        (lambda draw: _workload_keys(ca, draw), _study_ids(ca.values())),
        (lambda draw: _workload_keys(cb, draw), _study_ids(cb.values())),
        n_boot, level, seed,
    )
    ka, kb = _workload_keys(ca, None), _workload_keys(cb, None)
    return Agreement(tuple(shared), tuple(sorted(ka, key=lambda x: (ka[x], x))), tuple(sorted(kb, key=lambda x: (kb[x], x))),
                     {x: k[0] for x, k in ka.items()}, {x: k[0] for x, k in kb.items()}, False,
                     tau, p, low, high, float(level), n_boot, n_def)


def budget_agreements(a: Outcomes, b: Outcomes, **kwargs: float | int) -> dict[str, Agreement]:
    """:func:`budget_agreement` for every workload key both benchmarks ran (in key order),
    ``a`` the short side; keyword arguments as there."""
    keys = sorted({w for row in a.values() for w in row} & {w for row in b.values() for w in row})
    out = {}
    for w in keys:
        short = {x: row[w] for x, row in a.items() if w in row}
        long = {x: row[w] for x, row in b.items() if w in row}
        out[w] = budget_agreement(short, long, **kwargs)  # type: ignore[arg-type]
    return out


def _empty(shared: Sequence[str], higher_is_better: bool, level: float, n_boot: int) -> Agreement:
    nan = math.nan
    return Agreement(tuple(shared), tuple(shared), tuple(shared), {}, {}, higher_is_better,
                     nan, nan, nan, nan, float(level), n_boot, 0)


__all__ = [
    "Agreement",
    "Outcome",
    "Outcomes",
    "budget_agreement",
    "budget_agreements",
    "kendall_tau",
    "scored_workloads",
    "study_outcomes",
    "suite_agreement",
    "suite_scores",
]
