"""Performance profiles and the benchmark score over a table of times to target.

AlgoPerf (Dahl et al. 2023, "Benchmarking Neural Network Training Algorithms",
arXiv:2306.07179), "Scoring": parts "Performance profiles" and "Integrating performance
profiles for the benchmark score"; profiles themselves are Dolan & Moré 2002
("Benchmarking optimization software with performance profiles").

1. :func:`performance_ratios` / :func:`performance_profile` - the ratio of each algorithm's
   time to the fastest one on the workload, and the fraction of workloads with ratio
   ``<= tau``.
2. :func:`benchmark_score` - the normalised area under the profile on ``[1, r_max]``,
   computed exactly (the profile is a step function); :func:`algoperf_score` - the same area
   as AlgoPerf's code takes it, a trapezoid over 100 even points (0.1-0.2% apart).

Decisions (each tested in ``tests/test_scoring.py``):

* A workload on which *every* algorithm misses has ratio ``inf`` for all of them and still
  counts in ``n_w`` (so nobody can score 1 on a suite with such a workload), as in AlgoPerf.
* Tied fastest algorithms all get ratio exactly 1.
* An algorithm with *no entry* for a workload another algorithm has is an error by default
  (``missing="raise"``: a workload that was never run is not a failure to train);
  ``missing="inf"`` scores the absent entry as a miss instead.
* Every key in the table is one workload of the profile unless ``workloads=`` selects some.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from steplab.analysis.scoring import Table, check_time

Missing = Literal["raise", "inf"]


def _matrix(
    table: Table, workloads: Sequence[str] | None, missing: Missing
) -> tuple[list[str], list[str], np.ndarray]:
    """(algorithms, workloads, times[a, w]) with the missing-entry rule applied."""
    if missing not in ("raise", "inf"):
        raise ValueError(f"missing must be 'raise' or 'inf', got {missing!r}")
    algorithms = list(table)
    if not algorithms:
        raise ValueError("the time table has no algorithms")
    if workloads is None:
        keys = sorted({w for row in table.values() for w in row})
    else:
        keys = list(dict.fromkeys(workloads))
    if not keys:
        raise ValueError("the time table has no workloads")
    absent = [f"{a}@{w}" for a in algorithms for w in keys if w not in table[a]]
    if absent and missing == "raise":
        raise ValueError(
            f"no time for {', '.join(absent)}; run them, select workloads=..., "
            "or pass missing='inf' to score them as misses"
        )
    times = np.array(
        [
            [check_time(table[a].get(w, math.inf), f"time of {a} on {w}") for w in keys]
            for a in algorithms
        ],
        dtype=float,
    )
    if np.any(times == 0.0):
        raise ValueError("times must be > 0 to form ratios; a zero time means a broken trial")
    return algorithms, keys, times


def _ratios(times: np.ndarray) -> np.ndarray:
    """r[a, w] = t[a, w] / min_b t[b, w]; inf on a miss, inf everywhere on an all-miss."""
    best = times.min(axis=0)
    ratios = np.full_like(times, math.inf)
    finite = np.isfinite(times)  # implies best is finite in that column
    ratios[finite] = (times / np.where(np.isfinite(best), best, 1.0))[finite]
    ratios[times == best] = 1.0  # ties: exactly 1 for every tied fastest (finite) entry
    ratios[:, ~np.isfinite(best)] = math.inf
    return ratios


def performance_ratios(
    table: Table, *, workloads: Sequence[str] | None = None, missing: Missing = "raise"
) -> dict[str, dict[str, float]]:
    """``r(a, w) = t(a, w) / min_b t(b, w)`` for every algorithm and compared workload.

    AlgoPerf "Performance profiles" (Dolan & Moré 2002). ``inf`` where ``a`` missed the
    target, and for every algorithm on a workload where all missed; tied fastest
    algorithms get exactly 1. Only workloads present for all algorithms are compared:
    with ``missing="raise"`` (default) a ``ValueError`` names the absent
    ``algorithm@workload`` entries; ``missing="inf"`` counts them as misses. ``workloads``
    restricts (and orders) the compared workloads, e.g. the base workloads only.
    """
    algorithms, keys, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    return {
        a: {w: float(ratios[i, j]) for j, w in enumerate(keys)} for i, a in enumerate(algorithms)
    }


def performance_profile(
    table: Table,
    taus: float | Sequence[float] | np.ndarray,
    *,
    workloads: Sequence[str] | None = None,
    missing: Missing = "raise",
) -> dict[str, np.ndarray]:
    """``rho_a(tau) = #{w : r(a, w) <= tau} / n_w`` at each ``tau``.

    AlgoPerf "Performance profiles": the fraction of workloads on which algorithm ``a`` is
    within a factor ``tau`` of the fastest. ``n_w`` counts every compared workload, all-miss
    ones included. See :func:`performance_ratios` for ``workloads`` and ``missing``.

    >>> prof = performance_profile({"a": {"w1": 1.0, "w2": 4.0}, "b": {"w1": 2.0, "w2": 2.0}}, [1, 2])
    >>> prof["a"].tolist(), prof["b"].tolist()
    ([0.5, 1.0], [0.5, 1.0])
    """
    algorithms, _, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    tau = np.atleast_1d(np.asarray(taus, dtype=float))
    n_w = ratios.shape[1]
    counts = (ratios[:, :, None] <= tau[None, None, :]).sum(axis=1)
    return {a: counts[i] / n_w for i, a in enumerate(algorithms)}


def benchmark_score(
    table: Table,
    r_max: float = 4.0,
    *,
    workloads: Sequence[str] | None = None,
    missing: Missing = "raise",
) -> dict[str, float]:
    """Normalised area under the profile, ``B_a = 1/(r_max - 1) * integral_1^r_max rho_a``.

    AlgoPerf "Integrating performance profiles for the benchmark score" (r_max = 4 there).
    The profile is a step function of ``tau`` that jumps by ``1/n_w`` at each ratio, so the
    integral is exact without sampling: a ratio ``r <= r_max`` contributes
    ``(r_max - r) / (r_max - 1) / n_w`` and a larger (or infinite) one nothing. The score
    lies in ``[0, 1]`` and is 1 exactly when the algorithm is (tied) fastest on every
    compared workload. AlgoPerf's code samples the profile instead (:func:`algoperf_score`,
    0.1-0.2% apart).

    >>> benchmark_score({"a": {"w": 1.0}, "b": {"w": 2.5}})
    {'a': 1.0, 'b': 0.5}
    """
    r_max = _check_r_max(r_max)
    algorithms, _, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    n_w = ratios.shape[1]
    area = np.where(ratios <= r_max, r_max - ratios, 0.0).sum(axis=1)
    scores = np.clip(area / ((r_max - 1.0) * n_w), 0.0, 1.0)
    return {a: float(scores[i]) for i, a in enumerate(algorithms)}


def ranking(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(algorithm, score)`` best first; equal scores in name order.

    >>> ranking({"b": 0.5, "a": 0.5, "c": 0.9})
    [('c', 0.9), ('a', 0.5), ('b', 0.5)]
    """
    return sorted(((a, float(s)) for a, s in scores.items()), key=lambda item: (-item[1], item[0]))


def algoperf_score(
    table: Table,
    r_max: float = 4.0,
    *,
    num_points: int = 100,
    workloads: Sequence[str] | None = None,
    missing: Missing = "raise",
) -> dict[str, float]:
    """The benchmark score as AlgoPerf's own code computes it: the profile sampled at
    ``num_points`` even taus on ``[1, r_max]`` and integrated with the trapezoid rule, divided
    by ``r_max - 1``.

    ``mlcommons/algorithmic-efficiency``, ``scoring/performance_profile.py``:
    ``compute_performance_profiles(..., min_tau=1.0, max_tau, num_points=100,
    scale="linear")`` takes ``np.linspace(min_tau, max_tau, num_points)`` and
    ``compute_leaderboard_score(df, normalize=True)`` is ``np.trapz`` over those points
    divided by their range. The trapezoid cuts each jump of the step-function profile by a
    straight line one grid step wide, so it differs from the exact area of
    :func:`benchmark_score` by at most ``(r_max - 1) / (num_points - 1) / 2`` per jump before
    normalising: for 100 points on ``[1, 4]`` at most ``0.5 / 99 / n_w`` per workload, in
    practice 0.1-0.2% of the score. Use it to compare with AlgoPerf's published numbers;
    :func:`benchmark_score` is the quantity the paper defines.

    >>> round(algoperf_score({"a": {"w": 1.0}, "b": {"w": 2.02}})["b"], 6)  # exact: 0.66
    0.661616
    """
    r_max = _check_r_max(r_max)
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2, got {num_points!r}")
    algorithms, _, times = _matrix(table, workloads, missing)
    ratios = _ratios(times)
    taus = np.linspace(1.0, r_max, num_points)
    rho = (ratios[:, :, None] <= taus[None, None, :]).sum(axis=1) / ratios.shape[1]
    h = taus[1] - taus[0]
    area = h * (rho.sum(axis=1) - (rho[:, 0] + rho[:, -1]) / 2.0)  # the trapezoid rule on even points
    return {a: float(area[i] / (r_max - 1.0)) for i, a in enumerate(algorithms)}


def _check_r_max(r_max: float) -> float:
    r_max = float(r_max)
    if not (r_max > 1.0 and math.isfinite(r_max)):
        raise ValueError(f"r_max must be a finite number > 1, got {r_max!r}")
    return r_max


__all__ = [
    "Missing",
    "algoperf_score",
    "benchmark_score",
    "performance_profile",
    "performance_ratios",
    "ranking",
]
