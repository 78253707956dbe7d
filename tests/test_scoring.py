"""Tests for steplab.analysis.scoring, .profiles and .comparisons against hand-computed values
(AlgoPerf "Scoring")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steplab.analysis import comparisons, profiles, scoring
from steplab.results import TrialResult, TrialSpec

INF = math.inf


# ----------------------------------------------------------------------------------
# The hand-computed suite: 3 algorithms x 4 workloads
# ----------------------------------------------------------------------------------
#            w_tie   w_allmiss   w_miss   w_rmax
#   A         10       inf         30        5
#   B         10       inf         inf      20
#   C         20       inf         15        8
#   best      10       inf         15        5
#
# ratios r = t / best:
#   A          1       inf          2        1
#   B          1       inf         inf       4      (20/5 = 4 = r_max exactly)
#   C          2       inf          1      1.6      (8/5)
#
# w_tie: A and B tie for fastest -> both exactly 1. w_allmiss: nobody reached the target ->
# inf for all, but it still counts in n_w = 4. w_miss: B missed -> inf.
TABLE = {
    "A": {"w_tie": 10.0, "w_allmiss": INF, "w_miss": 30.0, "w_rmax": 5.0},
    "B": {"w_tie": 10.0, "w_allmiss": INF, "w_miss": INF, "w_rmax": 20.0},
    "C": {"w_tie": 20.0, "w_allmiss": INF, "w_miss": 15.0, "w_rmax": 8.0},
}


def test_ratios_hand_computed():
    r = profiles.performance_ratios(TABLE)
    assert r["A"] == {"w_tie": 1.0, "w_allmiss": INF, "w_miss": 2.0, "w_rmax": 1.0}
    assert r["B"] == {"w_tie": 1.0, "w_allmiss": INF, "w_miss": INF, "w_rmax": 4.0}
    assert r["C"] == pytest.approx({"w_tie": 2.0, "w_allmiss": INF, "w_miss": 1.0, "w_rmax": 1.6})


def test_profile_hand_computed():
    # rho(tau) = #{w : r <= tau} / 4
    # A ratios {1, 1, 2, inf}:   tau=1 -> 2/4, 1.5 -> 2/4, 2 -> 3/4, 4 -> 3/4
    # B ratios {1, 4, inf, inf}: tau=1 -> 1/4, 1.5 -> 1/4, 2 -> 1/4, 4 -> 2/4 (4 <= 4)
    # C ratios {1, 1.6, 2, inf}: tau=1 -> 1/4, 1.5 -> 1/4, 2 -> 3/4, 4 -> 3/4
    prof = profiles.performance_profile(TABLE, [1.0, 1.5, 2.0, 4.0])
    np.testing.assert_array_equal(prof["A"], [0.5, 0.5, 0.75, 0.75])
    np.testing.assert_array_equal(prof["B"], [0.25, 0.25, 0.25, 0.5])
    np.testing.assert_array_equal(prof["C"], [0.25, 0.25, 0.75, 0.75])
    # below 1 nobody counts; a scalar tau works
    assert profiles.performance_profile(TABLE, 0.999)["A"].tolist() == [0.0]


def test_score_hand_computed():
    # B_a = sum_{r <= r_max} (r_max - r) / ((r_max - 1) * n_w), r_max = 4, n_w = 4 -> / 12
    # A: (4-1) + (4-2) + (4-1)       = 8   -> 8/12   = 0.6667
    # B: (4-1) + (4-4)               = 3   -> 3/12   = 0.25   (the ratio at r_max adds 0)
    # C: (4-2) + (4-1) + (4-1.6)     = 7.4 -> 7.4/12 = 0.61667
    s = profiles.benchmark_score(TABLE)
    assert s["A"] == pytest.approx(8 / 12)
    assert s["B"] == pytest.approx(3 / 12)
    assert s["C"] == pytest.approx(7.4 / 12)
    assert [a for a, _ in profiles.ranking(s)] == ["A", "C", "B"]


def test_score_hand_computed_r_max_2():
    # r_max = 2 -> denominator (2-1)*4 = 4
    # A: (2-1) + (2-2) + (2-1) = 2   -> 0.5
    # B: (2-1)                 = 1   -> 0.25   (ratio 4 > r_max adds nothing)
    # C: (2-2) + (2-1) + (2-1.6) = 1.4 -> 0.35
    s = profiles.benchmark_score(TABLE, r_max=2.0)
    assert s == pytest.approx({"A": 0.5, "B": 0.25, "C": 0.35})


def test_score_is_the_integral_of_the_profile():
    # Riemann sum of the step function on a fine grid agrees with the exact score
    taus = np.linspace(1.0, 4.0, 300_001)
    prof = profiles.performance_profile(TABLE, taus)
    exact = profiles.benchmark_score(TABLE)
    for a in TABLE:
        approx = prof[a][:-1].mean()  # left sums: width 3/300000, / (r_max - 1)
        assert approx == pytest.approx(exact[a], abs=1e-4)


def test_algoperf_score_hand_computed():
    # AlgoPerf's code: rho at taus 1 + k/33, k = 0..99 (np.linspace(1, 4, 100)), trapezoid
    # rule, / (4 - 1). One workload, b at ratio 2.02: rho_b = 1 from k = 34 (1 + 34/33 =
    # 2.0303) on, 66 ones; trapezoid = (1/33) * (66 - (rho_0 + rho_99)/2) = 65.5/33;
    # score = 65.5/99 = 0.661616... where the exact area is (4 - 2.02)/3 = 0.66
    table = {"a": {"w": 1.0}, "b": {"w": 2.02}}
    sampled = profiles.algoperf_score(table)
    assert sampled["b"] == pytest.approx(65.5 / 99, abs=1e-12)
    assert sampled["a"] == pytest.approx(1.0, abs=1e-12)  # 100 ones: (99.5 - 0.5)/99
    assert profiles.benchmark_score(table)["b"] == pytest.approx(0.66, abs=1e-12)
    # a jump halfway between two sample points: the trapezoid is exact (k >= 49.5: 50 ones)
    half = {"a": {"w": 1.0}, "b": {"w": 2.5}}
    assert profiles.algoperf_score(half)["b"] == pytest.approx(49.5 / 99, abs=1e-12)
    assert profiles.benchmark_score(half)["b"] == pytest.approx(0.5, abs=1e-12)
    # the hand-computed suite on 4 points (taus 1, 2, 3, 4, h = 1): rho_A = 1/4 * [2, 3, 3, 3]
    # -> (0.25 + 0.75 + 0.75 + 0.375) / 3; rho_B = 1/4 * [1, 1, 1, 2] (its ratio 4 counts at
    # tau = 4) -> (0.125 + 0.25 + 0.25 + 0.25) / 3
    coarse = profiles.algoperf_score(TABLE, num_points=4)
    assert coarse["A"] == pytest.approx((0.25 + 0.75 + 0.75 + 0.375) / 3)
    assert coarse["B"] == pytest.approx((0.125 + 0.25 + 0.25 + 0.25) / 3)


def test_algoperf_score_agrees_with_the_exact_area_to_a_fraction_of_a_percent():
    # 3 algorithms x 8 workloads, ratios spread over [1, 3]: AlgoPerf's 100-point trapezoid is
    # within 0.2% of the exact area, and each jump moves it at most half a grid step / n_w
    rng = np.random.default_rng(3)
    table = {a: {f"w{i}": float(v) for i, v in enumerate(rng.uniform(1.0, 3.0, 8))} for a in "abc"}
    exact = profiles.benchmark_score(table)
    sampled = profiles.algoperf_score(table)
    for a in table:
        assert sampled[a] == pytest.approx(exact[a], rel=2e-3)
        assert abs(sampled[a] - exact[a]) <= 8 * (0.5 / 99) / 8 / 3 + 1e-12
        assert sampled[a] != exact[a]
    with pytest.raises(ValueError, match="num_points"):
        profiles.algoperf_score(table, num_points=1)


def test_workloads_selection():
    # only w_tie and w_rmax: A {1, 1} -> 1.0; B {1, 4} -> (3 + 0)/6; C {2, 1.6} -> (2 + 2.4)/6
    s = profiles.benchmark_score(TABLE, workloads=["w_tie", "w_rmax"])
    assert s == pytest.approx({"A": 1.0, "B": 0.5, "C": 4.4 / 6})


def test_missing_entry_raises_or_counts_as_miss():
    table = {a: dict(row) for a, row in TABLE.items()}
    del table["B"]["w_miss"]
    with pytest.raises(ValueError, match="B@w_miss"):
        profiles.benchmark_score(table)
    with pytest.raises(ValueError, match="B@w_miss"):
        profiles.performance_profile(table, [1.0])
    # missing="inf": the same as B having missed the target there
    assert profiles.benchmark_score(table, missing="inf") == profiles.benchmark_score(TABLE)
    prof = profiles.performance_profile(table, [1.0, 4.0], missing="inf")
    np.testing.assert_array_equal(prof["B"], [0.25, 0.5])


def test_all_miss_everywhere_scores_zero():
    table = {"A": {"w": INF}, "B": {"w": INF}}
    assert profiles.benchmark_score(table) == {"A": 0.0, "B": 0.0}
    assert profiles.performance_profile(table, [1e9])["A"].tolist() == [0.0]


@pytest.mark.parametrize(
    "table, kwargs",
    [
        ({}, {}),
        ({"A": {}}, {}),
        ({"A": {"w": -1.0}}, {}),
        ({"A": {"w": math.nan}}, {}),
        ({"A": {"w": 0.0}}, {}),
        ({"A": {"w": 1.0}}, {"r_max": 1.0}),
        ({"A": {"w": 1.0}}, {"missing": "zero"}),
    ],
)
def test_bad_tables_raise(table, kwargs):
    with pytest.raises(ValueError):
        profiles.benchmark_score(table, **kwargs)


def test_ranking_ties_by_name():
    assert profiles.ranking({"zeta": 0.5, "alpha": 0.5, "mid": 0.7}) == [
        ("mid", 0.7),
        ("alpha", 0.5),
        ("zeta", 0.5),
    ]


# ----------------------------------------------------------------------------------
# Trials -> study -> workload -> table
# ----------------------------------------------------------------------------------
def _trial(
    status: str,
    time_s: float = INF,
    steps: float = INF,
    *,
    algorithm: str = "adamw",
    workload: str = "mnist",
    variant: str = "base",
    study_id: int | None = 0,
    index: int = 0,
) -> TrialResult:
    spec = TrialSpec(
        workload,
        variant,
        algorithm,
        {},
        {},
        seed=index,
        budget_steps=1000,
        study_id=study_id,
        index=index,
    )
    return TrialResult(
        spec,
        status,
        steps=1000,
        train_time_s=99.0,
        eval_time_s=1.0,
        time_to_target_s=time_s,
        steps_to_target=steps,
    )


def test_study_time_fastest_reaching_trial():
    trials = [
        _trial("reached", 12.0, 300),
        _trial("reached", 9.0, 400),  # fastest in seconds, not in steps
        _trial("diverged", 5.0, 100),  # crossed the target then diverged: does not count
        _trial("failed", 1.0, 10),
        _trial("running", 2.0, 50),
        _trial("budget"),
    ]
    assert scoring.study_time(trials) == 9.0
    assert scoring.study_time(trials, "steps") == 300.0
    assert scoring.study_time([_trial("budget"), _trial("diverged")]) == INF
    assert scoring.study_time([]) == INF
    with pytest.raises(ValueError, match="measure"):
        scoring.study_time(trials, "epochs")


def test_trial_time_budget_status_with_finite_time_counts():
    # stop_at_target=False: ran to the budget after reaching the target at 7 s
    assert scoring.trial_time(_trial("budget", 7.0, 70)) == 7.0


@pytest.mark.parametrize(
    "times, expected",
    [
        ([3.0], 3.0),
        ([1.0, INF, INF], INF),  # odd: middle value inf
        ([3.0, 5.0, INF], 5.0),  # odd: middle finite
        ([INF, 2.0, 8.0], 8.0),  # order does not matter: sorted [2, 8, inf]
        ([3.0, 5.0], 4.0),  # even: mean of the two middle
        ([3.0, INF], INF),  # even: one middle is inf
        ([1.0, 2.0, 3.0, INF], 2.5),  # even: middle pair (2, 3)
        ([1.0, 2.0, INF, INF], INF),  # even: middle pair (2, inf)
        ([INF, INF], INF),
    ],
)
def test_median_time(times, expected):
    assert scoring.median_time(times) == expected


def test_workload_time_median_over_studies():
    # study times: 10, inf, 4 -> median 10; with a 4th study at 6: (6 + 10) / 2 = 8
    studies = [
        [_trial("reached", 10.0), _trial("budget")],
        [_trial("diverged"), _trial("budget")],
        [_trial("reached", 4.0)],
    ]
    assert scoring.workload_time(studies) == 10.0
    assert scoring.workload_time([*studies, [_trial("reached", 6.0)]]) == 8.0
    assert scoring.workload_time(studies[:2]) == INF  # (10 + inf) / 2
    with pytest.raises(ValueError):
        scoring.workload_time([])


def test_time_table_groups_by_algorithm_workload_study():
    trials = [
        # adamw on mnist, study 0: reached 10 s, a diverged and a budget trial -> 10
        _trial("reached", 10.0, 100, study_id=0, index=0),
        _trial("diverged", study_id=0, index=1),
        _trial("budget", study_id=0, index=2),
        # adamw on mnist, study 1: 14 and 12 -> 12; median of [10, 12] = 11
        _trial("reached", 14.0, 140, study_id=1, index=0),
        _trial("reached", 12.0, 150, study_id=1, index=1),
        # adamw on the "wide" variant, one study without an id -> its own key
        _trial("reached", 7.0, 70, variant="wide", study_id=None),
        # sgd on mnist: study 0 never reached, study 1 at 20 -> median [20, inf] = inf
        _trial("budget", algorithm="sgd", study_id=0),
        _trial("diverged", algorithm="sgd", study_id=0, index=1),
        _trial("reached", 20.0, 200, algorithm="sgd", study_id=1),
    ]
    assert scoring.time_table(trials) == {
        "adamw": {"mnist": 11.0, "mnist:wide": 7.0},
        "sgd": {"mnist": INF},
    }
    # steps: adamw study 0 -> 100, study 1 -> min(140, 150) = 140; median 120
    assert scoring.time_table(trials, measure="steps") == {
        "adamw": {"mnist": 120.0, "mnist:wide": 70.0},
        "sgd": {"mnist": INF},
    }
    # sgd has no entry for mnist:wide: profiles refuse by default
    with pytest.raises(ValueError, match="sgd@mnist:wide"):
        profiles.benchmark_score(scoring.time_table(trials))


def test_workload_key():
    assert scoring.workload_key(_trial("budget").spec) == "mnist"
    assert scoring.workload_key(_trial("budget", variant="wide").spec) == "mnist:wide"


# ----------------------------------------------------------------------------------
# Variants and reference tables
# ----------------------------------------------------------------------------------
def test_variant_agreement():
    table = {
        "A": {"w": 1.0, "w:v": 1.0, "w:rev": 3.0, "u:orphan": 1.0},
        "B": {"w": 2.0, "w:v": 3.0, "w:rev": 2.0, "u:orphan": 2.0},
        "C": {"w": 3.0, "w:v": 2.0, "w:rev": 1.0},
    }
    agree = comparisons.variant_agreement(table)
    assert set(agree) == {"w:v", "w:rev"}  # u:orphan has no base "u"
    v = agree["w:v"]
    # pairs (A,B) concordant, (A,C) concordant, (B,C) discordant -> (2 - 1) / 3
    assert v.kendall_tau == pytest.approx(1 / 3)
    assert (v.base, v.variant, v.algorithms) == ("w", "v", ("A", "B", "C"))
    assert v.base_winners == v.variant_winners == ("A",)
    assert v.same_winner
    rev = agree["w:rev"]
    assert rev.kendall_tau == pytest.approx(-1.0)
    assert rev.variant_winners == ("C",) and not rev.same_winner


def test_variant_agreement_misses_rank_last_and_degenerate_cases():
    table = {
        "A": {"w": 1.0, "w:v": INF, "w:one": 1.0},
        "B": {"w": INF, "w:v": INF},
        "C": {"w": 2.0, "w:v": 5.0},
    }
    agree = comparisons.variant_agreement(table)
    # base ranks A < C < B(inf); variant C < {A, B}(inf, tied). Pairs: AC discordant,
    # CB concordant, AB tied in the variant -> tau_b = (1 - 1) / sqrt((3 - 0) * (3 - 1)) = 0
    assert agree["w:v"].kendall_tau == pytest.approx(0.0)
    assert agree["w:v"].base_winners == ("A",) and agree["w:v"].variant_winners == ("C",)
    one = agree["w:one"]  # a single algorithm: no ranking to compare
    assert one.algorithms == ("A",) and math.isnan(one.kendall_tau)
    assert one.same_winner
    all_miss = comparisons.variant_agreement({"A": {"w": INF, "w:v": INF}, "B": {"w": INF, "w:v": INF}})
    assert math.isnan(all_miss["w:v"].kendall_tau) and not all_miss["w:v"].same_winner


def test_time_ratio_and_speedup_tables():
    ratio = comparisons.time_ratio_table(TABLE, "A")
    assert math.isnan(ratio["A"].pop("w_allmiss"))  # inf / inf: no comparison
    assert ratio["A"] == {"w_tie": 1.0, "w_miss": 1.0, "w_rmax": 1.0}
    assert ratio["B"]["w_miss"] == INF and ratio["C"]["w_miss"] == 0.5
    assert ratio["C"]["w_rmax"] == pytest.approx(1.6)
    assert math.isnan(ratio["B"]["w_allmiss"])
    speed = comparisons.speedup_table(TABLE, "A")
    assert speed["B"]["w_miss"] == 0.0 and speed["C"]["w_miss"] == 2.0
    assert speed["B"]["w_rmax"] == 0.25
    assert comparisons.speedup_table({"ref": {"w": INF}, "x": {"w": 3.0}}, "ref")["x"]["w"] == INF
    with pytest.raises(ValueError, match="nope"):
        comparisons.speedup_table(TABLE, "nope")


# ----------------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------------
_time = st.one_of(st.floats(min_value=0.1, max_value=1e3), st.just(INF))


@st.composite
def tables(draw, min_algorithms=1):
    n_a = draw(st.integers(min_algorithms, 4))
    n_w = draw(st.integers(1, 5))
    return {f"a{i}": {f"w{j}": draw(_time) for j in range(n_w)} for i in range(n_a)}


@settings(max_examples=200, deadline=None)
@given(tables(), st.floats(min_value=1.01, max_value=10.0))
def test_scores_in_unit_interval(table, r_max):
    for s in profiles.benchmark_score(table, r_max).values():
        assert 0.0 <= s <= 1.0


@settings(max_examples=200, deadline=None)
@given(tables())
def test_score_one_iff_fastest_everywhere(table):
    """Fastest everywhere scores exactly 1; anything slower scores below 1, except a ratio
    within float resolution of 1 (0.1 against 0.10000000000000002: the area it loses,
    (r - 1) / (r_max - 1) ~ 7e-17, is below the spacing of doubles near 1)."""
    workloads = list(next(iter(table.values())))
    best = {w: min(row[w] for row in table.values()) for w in workloads}
    scores = profiles.benchmark_score(table)
    for a, row in table.items():
        fastest = all(math.isfinite(row[w]) and row[w] == best[w] for w in workloads)
        if fastest:
            assert scores[a] == 1.0
        else:
            worst_ratio = max(row[w] / best[w] if math.isfinite(row[w]) else math.inf for w in workloads)
            assert scores[a] < 1.0 or worst_ratio - 1.0 < 1e-12


def test_a_ratio_at_float_resolution_is_not_a_loss_worth_a_digit():
    """The case Hypothesis found: a second algorithm 1 ulp slower scores 1.0 to the last
    digit (exact area 1 - 7.4e-17), and one 1e-9 slower scores visibly below 1."""
    scores = profiles.benchmark_score({"a0": {"w0": 0.1}, "a1": {"w0": 0.10000000000000002}})
    assert scores == {"a0": 1.0, "a1": 1.0}
    scores = profiles.benchmark_score({"a0": {"w0": 1.0}, "a1": {"w0": 1.0 + 3e-9}})
    assert scores["a1"] == pytest.approx(1.0 - 1e-9, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(tables(), st.integers(-10, 10), st.floats(min_value=0.01, max_value=100.0))
def test_scaling_a_workload_leaves_profiles_unchanged(table, power, factor):
    w = "w0"
    taus = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 10.0]
    before = profiles.performance_profile(table, taus)
    # a power of two scales exactly: profiles identical, even at taus equal to a ratio
    exact = {a: {**row, w: row[w] * 2.0**power} for a, row in table.items()}
    after = profiles.performance_profile(exact, taus)
    for a in table:
        np.testing.assert_array_equal(before[a], after[a])
    # any factor: the ratios (hence the score) agree to rounding
    scaled = {a: {**row, w: row[w] * factor} for a, row in table.items()}
    r0, r1 = profiles.performance_ratios(table), profiles.performance_ratios(scaled)
    for a in table:
        assert r1[a][w] == pytest.approx(r0[a][w])
    assert profiles.benchmark_score(scaled) == pytest.approx(profiles.benchmark_score(table))


@settings(max_examples=200, deadline=None)
@given(tables(), st.data())
def test_adding_a_dominated_algorithm(table, data):
    workloads = list(next(iter(table.values())))
    best = {w: min(row[w] for row in table.values()) for w in workloads}
    taus = np.linspace(0.5, 12.0, 47)
    before = profiles.performance_profile(table, taus)
    # never faster than the best (ties allowed): the others' profiles do not move
    slack = {w: data.draw(st.sampled_from([1.0, 1.5, 3.0, INF])) for w in workloads}
    dominated = {w: best[w] * slack[w] for w in workloads}
    after = profiles.performance_profile({**table, "new": dominated}, taus)
    for a in table:
        np.testing.assert_array_equal(before[a], after[a])
    # strictly best somewhere: the others can only lose (profiles pointwise <=)
    target = data.draw(st.sampled_from(workloads))
    fast = dict(dominated)
    fast[target] = (best[target] if math.isfinite(best[target]) else 10.0) * 0.5
    after = profiles.performance_profile({**table, "new": fast}, taus)
    assert np.all(after["new"][taus >= 1.0] > 0)
    for a in table:
        assert np.all(after[a] <= before[a])


@settings(max_examples=100, deadline=None)
@given(tables(min_algorithms=2))
def test_score_matches_integrated_profile(table):
    taus = np.linspace(1.0, 4.0, 30_001)
    prof = profiles.performance_profile(table, taus)
    exact = profiles.benchmark_score(table)
    for a in table:
        assert prof[a][:-1].mean() == pytest.approx(exact[a], abs=1e-3)
