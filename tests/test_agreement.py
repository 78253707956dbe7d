"""Rank agreement (steplab.analysis.agreement): Kendall tau-b against hand-computed values, the
bootstrap over studies, the per-workload budget agreement, and the report/CLI that print it."""

from __future__ import annotations

import doctest
import json
import math

import pytest
from rich.console import Console
from typer.testing import CliRunner

from steplab.analysis import agreement as ag
from steplab.analysis import profiles, scoring
from steplab.results import TrialResult, TrialSpec

INF = math.inf


def _keys(times: dict[str, float]) -> dict[str, tuple[float, ...]]:
    return {a: (t,) for a, t in times.items()}


def _one_workload(cells: dict[str, list[float]], workload: str = "w") -> dict:
    """{algorithm: [time per study]} -> Outcomes with study ids 0..S-1."""
    return {a: {workload: {s: ag.Outcome(t) for s, t in enumerate(ts)}} for a, ts in cells.items()}


# ------------------------------------------------------------------ Kendall tau-b by hand
def test_tau_of_identical_reversed_and_one_swapped_rankings():
    four = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    assert ag.kendall_tau(_keys(four), _keys(four))[0] == pytest.approx(1.0)
    reversed_ = {a: 5.0 - t for a, t in four.items()}
    assert ag.kendall_tau(_keys(four), _keys(reversed_))[0] == pytest.approx(-1.0)
    # swap c and d: 6 pairs, 5 concordant, 1 discordant -> (5 - 1) / 6
    swapped = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 3.0}
    assert ag.kendall_tau(_keys(four), _keys(swapped))[0] == pytest.approx(2 / 3)
    # the ranking is by value, not by name: a different scale gives the same tau
    assert ag.kendall_tau(_keys(four), _keys({a: 10 * t for a, t in swapped.items()}))[0] == pytest.approx(2 / 3)


def test_tau_b_with_ties_and_misses():
    # x = (1, 2, 3), y = (1, 1, 2): pairs (a,b) tied in y, (a,c) and (b,c) concordant;
    # tau_b = (2 - 0) / sqrt(3 * (3 - 1)) = 2 / sqrt(6)
    x = {"a": 1.0, "b": 2.0, "c": 3.0}
    y = {"a": 1.0, "b": 1.0, "c": 2.0}
    assert ag.kendall_tau(_keys(x), _keys(y))[0] == pytest.approx(2 / math.sqrt(6))
    # misses (inf) rank last and tie with each other: the same tie pattern
    y_inf = {"a": 5.0, "b": 5.0, "c": INF}
    assert ag.kendall_tau(_keys(x), _keys(y_inf))[0] == pytest.approx(2 / math.sqrt(6))
    # only shared algorithms count; fewer than two, or all ties, has no tau
    assert ag.kendall_tau(_keys(x), _keys({"a": 2.0, "b": 1.0, "zz": 0.0}))[0] == pytest.approx(-1.0)
    assert math.isnan(ag.kendall_tau(_keys(x), _keys({"a": 1.0}))[0])
    assert math.isnan(ag.kendall_tau(_keys(x), _keys({"a": INF, "b": INF, "c": INF}))[0])


def test_doctests():
    assert doctest.testmod(ag).failed == 0


# ------------------------------------------------------------------ scores from per-study times
def _trial(algorithm: str, workload: str, study: int, time_s: float, index: int = 0,
           metrics: dict[str, float] | None = None) -> TrialResult:
    spec = TrialSpec(workload, "base", algorithm, {}, {}, seed=index, budget_steps=100, study_id=study, index=index)
    status = "reached" if math.isfinite(time_s) else "budget"
    return TrialResult(spec, status, 100, 1.0, 0.1, time_s, time_s * 10, final_metrics=metrics or {})


def test_suite_scores_are_the_benchmark_score_of_the_median_table():
    trials = [
        _trial("A", "w1", 0, 2.0), _trial("A", "w1", 0, 1.0, index=1), _trial("A", "w1", 1, 3.0), _trial("A", "w1", 2, 2.5),
        _trial("B", "w1", 0, 4.0), _trial("B", "w1", 1, INF), _trial("B", "w1", 2, 2.0),
        _trial("A", "w2", 0, INF), _trial("A", "w2", 1, INF), _trial("A", "w2", 2, 9.0),
        _trial("B", "w2", 0, 5.0), _trial("B", "w2", 1, 6.0), _trial("B", "w2", 2, 7.0),
    ]
    outcomes = ag.study_outcomes(trials)
    assert outcomes["A"]["w1"][0].time == 1.0  # the study's fastest trial
    expected = profiles.benchmark_score(scoring.time_table(trials), missing="inf")
    assert ag.suite_scores(outcomes) == pytest.approx(expected)
    # by hand: w1 medians A 2.5, B 4 -> ratios 1, 1.6; w2 medians A inf, B 6 -> inf, 1
    assert ag.suite_scores(outcomes) == pytest.approx({"A": 0.5, "B": (1 + (4 - 1.6) / 3) / 2})
    # a draw with repeats, studies (2, 2, 0): w1 medians A (2.5, 2.5, 1) -> 2.5, B (2, 2, 4) -> 2;
    # w2 medians A (9, 9, inf) -> 9, B (7, 7, 5) -> 7: B fastest on both, A at 1.25 and 9/7
    drawn = ag.suite_scores(outcomes, [2, 2, 0])
    assert drawn["B"] == pytest.approx(1.0)
    assert drawn["A"] == pytest.approx(((4 - 1.25) / 3 + (4 - 9 / 7) / 3) / 2)


def test_the_score_counts_base_workloads_with_a_signal_like_bench_score():
    # "w:v" is a variant, "none" a workload nobody reached in any study (no signal)
    outcomes = {"A": {"w": {0: ag.Outcome(1.0)}, "w:v": {0: ag.Outcome(9.0)}, "none": {0: ag.Outcome(INF)}},
                "B": {"w": {0: ag.Outcome(2.0)}, "w:v": {0: ag.Outcome(1.0)}, "none": {0: ag.Outcome(INF)}}}
    assert ag.scored_workloads(outcomes) == ["w"]
    assert ag.suite_scores(outcomes) == pytest.approx({"A": 1.0, "B": 2 / 3})
    nothing = {a: {"none": row["none"]} for a, row in outcomes.items()}
    assert ag.suite_scores(nothing) == {} and math.isnan(ag.suite_agreement(nothing, outcomes, n_boot=5).tau)


# ------------------------------------------------------------------ the bootstrap over studies
def test_same_and_reversed_suites_have_degenerate_intervals():
    a = _one_workload({"x": [1.0, 1.1, 0.9], "y": [2.0, 2.1, 1.9], "z": [3.0, 3.2, 2.9]})
    b = _one_workload({"x": [10.0, 11.0], "y": [20.0, 21.0], "z": [30.0, 29.0]}, workload="other")
    same = ag.suite_agreement(a, b, n_boot=200)
    assert (same.tau, same.low, same.high) == pytest.approx((1.0, 1.0, 1.0))
    assert same.ranking_a == same.ranking_b == ("x", "y", "z") and same.n_defined == 200
    rev = ag.suite_agreement(a, _one_workload({"x": [3.0], "y": [2.0], "z": [1.0]}), n_boot=200)
    assert (rev.tau, rev.low, rev.high) == pytest.approx((-1.0, -1.0, -1.0))


def test_the_interval_spans_what_the_studies_disagree_on():
    # study 2 reverses the order of studies 0 and 1: a resample with two or three draws of
    # study 2 (probability 7/27) ranks z, y, x; any other x, y, z. So each resample's tau
    # against a fixed x, y, z ranking is 1 or -1 and the 95% interval is [-1, 1].
    a = _one_workload({"x": [1.0, 1.0, 3.0], "y": [2.0, 2.0, 2.0], "z": [3.0, 3.0, 1.0]})
    b = _one_workload({"x": [1.0], "y": [2.0], "z": [3.0]})
    res = ag.suite_agreement(a, b, n_boot=500, seed=1)
    assert res.tau == pytest.approx(1.0) and res.low <= res.tau <= res.high
    assert (res.low, res.high) == (-1.0, 1.0)
    assert res.values_a == pytest.approx({"x": 1.0, "y": 2 / 3, "z": 1 / 3})


def test_studies_are_resampled_jointly_across_algorithms():
    # y is slower than x in every study: drawing the same study ids for both keeps y behind
    # x in every resample (drawing them per cell would sometimes put y ahead)
    a = _one_workload({"x": [1.0, 2.0, 3.0], "y": [1.5, 2.5, 3.5]})
    b = _one_workload({"x": [1.0], "y": [2.0]})
    res = ag.suite_agreement(a, b, n_boot=300)
    assert (res.tau, res.low, res.high) == (1.0, 1.0, 1.0)


def test_bad_bootstrap_settings_raise():
    a = _one_workload({"x": [1.0], "y": [2.0]})
    with pytest.raises(ValueError, match="n_boot"):
        ag.suite_agreement(a, a, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        ag.suite_agreement(a, a, level=1.5)


# ------------------------------------------------------------------ a short vs a long budget
def test_budget_agreement_orders_misses_by_their_loss():
    short = {"a": {0: ag.Outcome(10.0, 0.1)}, "b": {0: ag.Outcome(INF, 0.5)}, "c": {0: ag.Outcome(INF, 0.3)}}
    long = {"a": {0: ag.Outcome(100.0)}, "b": {0: ag.Outcome(300.0)}, "c": {0: ag.Outcome(200.0)}}
    res = ag.budget_agreement(short, long, n_boot=50)
    assert res.ranking_a == res.ranking_b == ("a", "c", "b") and res.tau == pytest.approx(1.0)
    assert res.values_a == {"a": 10.0, "b": INF, "c": INF} and not res.higher_is_better
    # without a loss b and c tie at the back: tau_b = 2 / sqrt(3 * 2) (as the tie test above)
    no_loss = {k: {0: ag.Outcome(v[0].time)} for k, v in short.items()}
    assert ag.budget_agreement(no_loss, long, n_boot=50).tau == pytest.approx(2 / math.sqrt(6))


def test_budget_agreements_per_shared_workload_with_a_max_metric():
    metrics = {"w": ("validation/accuracy", "max")}
    short = [_trial("a", "w", 0, INF, metrics={"validation/accuracy": 0.8}),
             _trial("b", "w", 0, INF, metrics={"best/validation/accuracy": 0.9}),
             _trial("a", "only-short", 0, 1.0), _trial("b", "only-short", 0, 2.0)]
    long = [_trial("a", "w", 0, 7.0), _trial("b", "w", 0, 5.0)]
    out = ag.budget_agreements(ag.study_outcomes(short, metrics=metrics), ag.study_outcomes(long), n_boot=20)
    assert list(out) == ["w"]
    # accuracy 0.9 > 0.8 puts b first at the short budget; b is faster at the long one
    assert out["w"].ranking_a == ("b", "a") and out["w"].tau == pytest.approx(1.0)
    assert ag.study_outcomes(short, metrics=metrics)["a"]["w"][0].loss == pytest.approx(-0.8)


# ------------------------------------------------------------------ the report and `steplab report`
def _bench(store, suite: str, times: dict[str, dict[str, list[float]]], name: str | None = None) -> int:
    """A hand-made benchmark study of suite ``suite``: one trial per study, ``times[algorithm][workload]``
    the study times (inf = missed, final loss 1 + time so misses order too)."""
    sid = store.create_study(name or f"{suite}-bench", "benchmark",
                             {"suite": suite, "ruleset": "external", "trials": 1, "studies": 3,
                              "algorithms": sorted(times), "seed": 0, "workloads": None})
    for a, row in times.items():
        for w, ts in row.items():
            for s, t in enumerate(ts):
                spec = TrialSpec(w, "base", a, {}, {}, seed=s, budget_steps=100, study_id=sid, index=s)
                store.import_trial(TrialResult(spec, "reached" if math.isfinite(t) else "budget", 100, 1.0, 0.1, t,
                                               t * 10, final_metrics={"validation/loss": 1.0 + min(t, 9.0)}), [])
    return sid


QUICK = {"A": {"logreg": [1.0, 1.1, 1.2], "digits-mlp": [1.0, 1.0, 1.0]},
         "B": {"logreg": [2.0, 2.1, 2.2], "digits-mlp": [2.0, 2.0, 2.0]},
         "C": {"logreg": [3.0, 3.1, 3.2], "digits-mlp": [3.0, INF, 3.0]}}
#: the standard suite swaps B and C: tau = (2 - 1) / 3 against the quick ranking A, B, C
STANDARD = {"A": {"logreg": [10.0, 11.0, 12.0], "teacher-student": [5.0, 5.0, 5.0]},
            "B": {"logreg": [30.0, 31.0, 32.0], "teacher-student": [INF, INF, INF]},
            "C": {"logreg": [20.0, 21.0, 22.0], "teacher-student": [9.0, 9.0, 9.0]}}


@pytest.fixture(scope="module")
def pair_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, int]:
    from steplab import store as st

    db = str(tmp_path_factory.mktemp("agree") / "runs.db")
    with st.open_store(db) as store:
        quick = _bench(store, "quick", QUICK)
        store.create_study("custom", "benchmark", {"suite": "standard", "trials": 1, "workloads": [{"workload": "logreg"}]})
        standard = _bench(store, "standard", STANDARD)
    return db, quick, standard


def test_find_suite_pair_and_the_data(pair_db: tuple[str, int, int], tmp_path) -> None:
    from steplab import store as st
    from steplab.report import agreement as rep

    db, quick, standard = pair_db
    with st.open_store(db) as store:
        assert rep.find_suite_pair(store) == (quick, standard)
        data = rep.agreement_data(store, quick, standard, n_boot=200)
    assert data["a"]["suite"] == "quick" and data["b"]["studies"] == 3
    assert data["suite"]["ranking_a"] == ("A", "B", "C") and data["suite"]["ranking_b"] == ("A", "C", "B")
    assert data["suite"]["tau"] == pytest.approx(1 / 3)
    assert data["suite"]["low"] <= data["suite"]["tau"] <= data["suite"]["high"]
    assert list(data["workloads"]) == ["logreg"] and data["workloads"]["logreg"]["tau"] == pytest.approx(1 / 3)
    with st.open_store(tmp_path / "one.db") as store:
        _bench(store, "quick", QUICK)
        assert rep.find_suite_pair(store) is None and rep.suite_pair_agreement(store) is None


def test_print_agreement_shows_names_as_text() -> None:
    a = _one_workload({"[bold]x[/]": [1.0], "y": [2.0]})
    data = {"a": {"study_id": 1, "name": "q", "suite": "quick", "studies": 1},
            "b": {"study_id": 2, "name": "s", "suite": "standard", "studies": 1}, "level": 0.95, "n_boot": 10,
            "seed": 0, "suite": vars(ag.suite_agreement(a, a, n_boot=10)),
            "workloads": {"w": vars(ag.budget_agreement(a["y"] | {}, a["y"], n_boot=10))}}
    console = Console(record=True, width=200)
    from steplab.report.agreement import print_agreement

    print_agreement(data, console)
    out = console.export_text()
    assert "[bold]x[/]" in out and "Kendall tau-b +1.00" in out and "[+1.00, +1.00]" in out
    assert "quick (study 1, 1 studies)" in out
    # no workload with a signal on one side: a line says so instead of an empty ranking
    missed = _one_workload({"[bold]x[/]": [INF], "y": [INF]})
    data["suite"] = vars(ag.suite_agreement(missed, a, n_boot=10))
    console = Console(record=True, width=200)
    print_agreement(data, console)
    assert "no ranking for quick (study 1, 1 studies): no workload gave a signal" in console.export_text()


def test_steplab_report_prints_the_agreement(pair_db: tuple[str, int, int]) -> None:
    from steplab.cli import app

    db, quick, standard = pair_db
    runner = CliRunner()
    r = runner.invoke(app, ["report", "--db", db], env={"COLUMNS": "240"})
    assert r.exit_code == 0, r.output
    assert "rank agreement: quick" in r.output and "Kendall tau-b +0.33" in r.output
    r = runner.invoke(app, ["report", "--db", db, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["agreement"]["suite"]["tau"] == pytest.approx(1 / 3)
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(standard), str(quick), "--json"])
    data = json.loads(r.output)
    assert data["a"]["study_id"] == standard and data["suite"]["ranking_a"] == ["A", "C", "B"]
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(quick), str(standard), "--csv"])
    assert r.output.splitlines()[0].startswith("scope,study_a,study_b,tau") and len(r.output.splitlines()) == 3
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(quick), str(standard), "--level", "0.5", "--json"])
    assert json.loads(r.output)["suite"]["level"] == 0.5
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(quick), str(standard), "--level", "1.5"])
    assert r.exit_code != 0 and "between 0 and 1" in r.output
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(quick), str(quick)])
    assert r.exit_code != 0 and "two different studies" in r.output
    r = runner.invoke(app, ["report", "--db", db, "--agree", str(quick), str(standard), "--study", "1"])
    assert r.exit_code != 0 and "without --trial and --study" in r.output
