"""steplab.analysis.intervals: the stratified two-level bootstrap of a benchmark (Agarwal et al.
2021) against hand-computed distributions and against ``analysis.profiles`` on the data."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from steplab.analysis import intervals as iv
from steplab.analysis import profiles, scoring
from steplab.results import TrialResult, TrialSpec

INF = math.inf
# the hand-computed suite of tests/test_scoring.py: ties, an all-miss column, a miss, r = r_max
TABLE = {
    "A": {"w_tie": 10.0, "w_allmiss": INF, "w_miss": 30.0, "w_rmax": 5.0},
    "B": {"w_tie": 10.0, "w_allmiss": INF, "w_miss": INF, "w_rmax": 20.0},
    "C": {"w_tie": 20.0, "w_allmiss": INF, "w_miss": 15.0, "w_rmax": 8.0},
}


def test_doctests():
    assert doctest.testmod(iv).failed == 0


def _matrix(table):
    algos, keys = sorted(table), sorted({w for row in table.values() for w in row})
    return algos, keys, np.array([[table[a][w] for w in keys] for a in algos])


def test_batch_statistics_equal_the_profiles_module_on_the_data():
    rng = np.random.default_rng(3)
    tables = [TABLE]
    for _ in range(20):  # random tables with ties (rounded times) and misses
        t = np.round(rng.uniform(1, 6, size=(4, 5)))
        t[rng.random((4, 5)) < 0.25] = INF
        tables.append({f"a{i}": {f"w{j}": float(t[i, j]) for j in range(5)} for i in range(4)})
    taus = [1.0, 1.25, 2.0, 4.0]
    for table in tables:
        algos, keys, times = _matrix(table)
        ratios = iv.batch_ratios(times)
        ref = profiles.performance_ratios(table)
        assert np.array_equal(ratios, np.array([[ref[a][w] for w in keys] for a in algos]))
        for r_max in (4.0, 2.0):
            want = profiles.benchmark_score(table, r_max)
            assert iv.batch_scores(ratios, r_max).tolist() == pytest.approx([want[a] for a in algos], abs=1e-15)
        prof = profiles.performance_profile(table, taus)
        assert np.array_equal(iv.batch_profiles(ratios, taus), np.array([prof[a] for a in algos]))
    # the same on a batch: every slice of a stacked array is its own benchmark
    stacked = np.stack([_matrix(TABLE)[2], _matrix(TABLE)[2] * 2.0])
    assert np.array_equal(iv.batch_ratios(stacked)[0], iv.batch_ratios(stacked)[1])


def test_medians_follow_scoring_median_time():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5):
        for _ in range(30):
            x = np.round(rng.uniform(1, 9, n))
            x[rng.random(n) < 0.3] = INF
            assert iv.medians(x) == scoring.median_time(list(x))


def test_percentile_interval_is_order_statistics_widened_to_the_point():
    x = np.arange(1.0, 101.0)
    assert iv.percentile_interval(50.0, x, 0.9) == iv.Interval(50.0, 5.0, 95.0, 0.9)
    assert iv.percentile_interval(99.5, x, 0.9) == iv.Interval(99.5, 5.0, 99.5, 0.9)  # widened up to its point
    assert iv.percentile_interval(3.0, x, 0.8) == iv.Interval(3.0, 3.0, 90.0, 0.8)  # ... and down
    with_inf = np.array([1.0] * 50 + [INF] * 50)
    assert iv.percentile_interval(1.0, with_inf, 0.9) == iv.Interval(1.0, 1.0, INF, 0.9)  # "may miss"
    assert math.isnan(iv.percentile_interval(1.0, np.array([1.0, np.nan]), 0.9).low)
    with pytest.raises(ValueError, match="between 0 and 1"):
        iv.percentile_interval(1.0, x, 1.0)


def test_a_study_keeps_its_fastest_trial_unless_trials_are_resampled():
    cells = {"a": {"w": [[5.0], [1.0, INF]]}}
    boot = iv.bootstrap_benchmark(cells, n_resamples=20_000, seed=2)
    st = boot.study_times[("a", "w")]
    assert set(np.unique(st)) == {1.0, 5.0}  # studies drawn whole: each is its fastest trial
    assert np.mean(st == 1.0) == pytest.approx(0.5, abs=0.01)
    # two-stage: one study with trials (1, 2) misses the 1 in two draws with probability 1/4
    boot = iv.bootstrap_benchmark({"a": {"w": [[1.0, 2.0]]}}, n_resamples=40_000, seed=1, resample_trials=True)
    assert np.mean(boot.study_times[("a", "w")][:, 0] == 2.0) == pytest.approx(0.25, abs=0.01)
    # unequal trial counts: a study with one trial never draws the other study's second trial;
    # P(draw study 2) * P(both of its draws miss) = 1/2 * 1/4
    st = iv.bootstrap_benchmark(cells, n_resamples=20_000, seed=2, resample_trials=True).study_times[("a", "w")]
    assert set(np.unique(st)) == {1.0, 5.0, INF} and np.mean(st == INF) == pytest.approx(0.125, abs=0.01)


def test_the_bootstrap_spread_of_the_score_matches_its_spread_over_repeated_benchmarks():
    # 200 benchmarks drawn from one model (2 algorithms x 2 workloads, 5 studies of 2 trials,
    # reach probability 0.6 per trial, lognormal times): the resampled score's sd should be
    # near the sd of the score across the benchmarks (measured: 1.0-1.5x for S = 3-8, the bootstrap of a
    # few studies with misses errs wide); the two-stage bootstrap overstates it further (1.5-2.4x)
    rng = np.random.default_rng(21)
    points, sd_studies, sd_two_stage = [], [], []
    for _ in range(200):
        cells = {a: {w: [[f * s * math.exp(0.3 * rng.standard_normal()) if rng.random() < 0.6 else INF
                          for _ in range(2)] for _ in range(5)] for w, s in (("w1", 1.0), ("w2", 2.0))}
                 for a, f in (("a", 1.0), ("b", 1.3))}
        one = iv.bootstrap_benchmark(cells, n_resamples=300, seed=0)
        points.append(iv.batch_scores(iv.batch_ratios(one.point_times), 4.0)[0])
        sd_studies.append(one.scores[:, 0].std())
        sd_two_stage.append(iv.bootstrap_benchmark(cells, n_resamples=300, seed=0, resample_trials=True).scores[:, 0].std())
    truth = np.std(points)
    assert 0.75 < np.mean(sd_studies) / truth < 1.6
    assert np.mean(sd_two_stage) > 1.25 * np.mean(sd_studies)


def test_studies_are_resampled_within_each_cell():
    # three one-trial studies 1, 2, 3: the median of three draws is 1 w.p. 7/27, 3 w.p. 7/27
    boot = iv.bootstrap_benchmark({"a": {"w": [[1.0], [2.0], [3.0]]}, "b": {"w": [[9.0]] * 3}},
                                  n_resamples=40_000, seed=3)
    med = boot.times[:, 0, 0]
    assert np.mean(med == 1.0) == pytest.approx(7 / 27, abs=0.01)
    assert np.mean(med == 3.0) == pytest.approx(7 / 27, abs=0.01)
    assert np.all(boot.times[:, 1, 0] == 9.0)  # stratified: b's cell never draws a's studies
    assert boot.point_times.tolist() == [[2.0], [9.0]]


def _trial(a, w, study, index, t):
    spec = TrialSpec(w, "base", a, {}, {}, seed=index, budget_steps=100, study_id=study, index=index)
    status = "reached" if math.isfinite(t) else "budget"
    return TrialResult(spec, status, 100, 1.0, 0.0, time_to_target_s=t, steps_to_target=t * 10)


def test_study_trial_times_and_points_match_the_time_table():
    rng = np.random.default_rng(5)
    trials = []
    for a in ("x", "y", "z"):
        for w in ("w1", "w2"):
            for s in range(3):
                for i in range(2):
                    t = float(rng.uniform(1, 4)) if rng.random() > 0.3 else INF
                    trials.append(_trial(a, w, s, 2 * s + i, t))
    nested = iv.study_trial_times(reversed(trials))  # the order trials come in does not matter
    assert nested == iv.study_trial_times(trials)
    assert [len(s) for s in nested["x"]["w1"]] == [2, 2, 2]
    boot = iv.bootstrap_benchmark(nested, n_resamples=50)
    table = scoring.time_table(trials)
    assert boot.point_times.tolist() == [[table[a][w] for w in boot.workloads] for a in boot.algorithms]


def test_same_inputs_give_bit_identical_resamples_and_seeds_differ():
    cells = {"a": {"w": [[1.0, 3.0], [2.0, INF]], "v": [[4.0]]}, "b": {"w": [[2.0], [2.5]]}}
    one, two = (iv.bootstrap_benchmark(cells, n_resamples=500, seed=7) for _ in range(2))
    assert np.array_equal(one.times, two.times) and np.array_equal(one.scores, two.scores)
    assert one.score_intervals({"a": 0.5, "b": 0.5}, 0.9) == two.score_intervals({"a": 0.5, "b": 0.5}, 0.9)
    other = iv.bootstrap_benchmark(cells, n_resamples=500, seed=8)
    assert not np.array_equal(one.times, other.times)
    # an algorithm that never ran a workload misses it in every resample
    assert np.all(np.isinf(one.times[:, one.algorithms.index("b"), one.workloads.index("v")]))


def test_profile_bands_and_cell_intervals_contain_their_points():
    cells = {"a": {"w1": [[1.0, 1.4], [1.2, 2.0], [1.1, INF]], "w2": [[3.0], [2.0], [2.5]]},
             "b": {"w1": [[1.3, INF], [1.5, 1.6], [2.2, 1.9]], "w2": [[2.0], [4.0], [INF]]}}
    boot = iv.bootstrap_benchmark(cells, n_resamples=800, seed=0)
    taus = [1.0, 1.5, 2.0, 4.0]
    points = boot.point_profiles(taus)
    for k, a in enumerate(boot.algorithms):
        low, high = boot.profile_bands(taus, 0.9)[a]
        assert all(lo <= p <= hi for lo, p, hi in zip(low, points[k], high, strict=True))
    for kind in (False, True):
        for row in boot.cell_intervals(0.9, ratio=kind).values():
            assert all(i.contains(i.point) for i in row.values())


def test_resamples_for_and_bad_arguments():
    assert iv.resamples_for(6, 0.9) == 3000 and iv.resamples_for(3, 0.99) == 6000
    with pytest.raises(ValueError, match="scored workloads"):
        iv.bootstrap_benchmark({"a": {"w": [[1.0]]}}, scored=["nope"])
    with pytest.raises(ValueError, match="n_resamples"):
        iv.bootstrap_benchmark({"a": {"w": [[1.0]]}}, n_resamples=0)
