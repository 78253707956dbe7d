"""steplab.analysis.verdicts and the verdict of ``bench.score``: Holm on the reference sheet's
example, the probability of improvement against rliable's fixtures and scipy's Mann-Whitney U,
a planted 2x difference that must be separated, no difference that must tie, workloads with no
signal, and ``steplab report --pairs``."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from steplab import report
from steplab import store as st
from steplab.analysis import intervals, profiles, verdicts
from steplab.report import benchmark_stats_html as stats_html
from steplab.results import TrialResult, TrialSpec
from steplab.studies import bench
from steplab.workloads.target import Target

INF = math.inf
N_TRIALS = 2  # tuning trials per study in the synthetic benchmarks


def test_doctests():
    assert doctest.testmod(verdicts).failed == 0


def test_holm_on_the_reference_example():
    # dynamics-plasticity-statistics.md §7: p = (0.01, 0.04, 0.03, 0.005), alpha = 0.05 rejects 0.005
    # and 0.01 only; sorted adjusted p = (0.02, 0.03, 0.06, 0.06)
    reject, adjusted = verdicts.holm([0.01, 0.04, 0.03, 0.005], 0.05)
    assert reject == [True, False, False, True]
    assert sorted(adjusted) == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert verdicts.holm([0.2], 0.05) == ([False], [0.2])  # one test: no correction
    assert verdicts.holm([0.6, 0.7], 0.1) == ([False, False], [1.0, 1.0])  # capped at 1
    assert verdicts.holm([], 0.1) == ([], [])
    with pytest.raises(ValueError, match="p-values"):
        verdicts.holm([1.5], 0.1)


def test_probability_of_improvement_matches_rliable_and_scipy():
    from scipy import stats

    # rliable 1.2.0 tests/rliable/metrics_test.py: runs x tasks
    x = np.array([[1, 2], [2, 2], [1, 1], [2, 1]])
    y = np.array([[1, 1], [2, 2], [3, 3]])
    assert verdicts.probability_of_improvement(x, y) == pytest.approx(1 / 3)
    assert verdicts.probability_of_improvement(y, x) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 4, size=(5, 3)).astype(float), rng.integers(0, 4, size=(4, 3)).astype(float)
        a[0, 0] = b[0, 0] = INF  # misses tie with each other and beat nothing
        p = verdicts.probability_of_improvement(a, b)
        assert p + verdicts.probability_of_improvement(b, a) == pytest.approx(1.0)
        finite = [stats.mannwhitneyu(a[1:, k], b[1:, k], alternative="greater").statistic / (4 * 3) for k in range(3)]
        assert verdicts.probability_of_improvement(a[1:], b[1:]) == pytest.approx(np.mean(finite))


def test_chained_tie_groups_and_wins_on_resampled_scores():
    # A ~ B and B ~ C but A separated from C: one chained group, and A's win over C is kept
    rng = np.random.default_rng(1)
    samples = np.array([1.0, 0.9, 0.8]) + 0.05 * rng.standard_normal((4000, 3))
    order, groups, p, separated = verdicts.separate(["C", "A", "B"], samples[:, [2, 0, 1]],
                                                    {"A": 1.0, "B": 0.9, "C": 0.8}, 0.9)
    assert order == ("A", "B", "C") and groups == (("A", "B", "C"),)
    assert separated == {("A", "C")} and p[("A", "C")] <= 0.1 < min(p[("A", "B")], p[("B", "C")])
    # a wider gap between B and C splits the groups where the neighbours separate
    samples[:, 2] -= 0.3
    _, groups, _, separated = verdicts.separate(["A", "B", "C"], samples, {"A": 1.0, "B": 0.9, "C": 0.5}, 0.9)
    assert groups == (("A", "B"), ("C",)) and separated == {("A", "C"), ("B", "C")}
    # resamples that disagree with the measured order never make a reversed win
    _, _, p, separated = verdicts.separate(["A", "B"], samples[:, :2], {"A": 0.0, "B": 1.0}, 0.9)
    assert separated == frozenset() and p[("B", "A")] == 1.0


# ------------------------------------------------------------------ synthetic benchmarks in a store
def _fill(path: Path, times: dict[str, dict[str, list[list[float]]]], best: float = 0.5) -> int:
    """A benchmark study of hand-made trials: ``times[algorithm][workload]`` = per study the
    ``N_TRIALS`` trial times (``inf`` = did not reach; its ``best/`` metric is ``best``)."""
    target = ["validation/accuracy", 0.9, "max"]
    with st.open_store(path) as store:
        sid = store.create_study("synthetic", "benchmark", {"trials": N_TRIALS, "ruleset": "external"})
        for a, row in times.items():
            for w, studies in row.items():
                for s, trial_times in enumerate(studies):
                    for i, t in enumerate(trial_times):
                        spec = TrialSpec(w, "base", a, {}, {"i": i}, seed=1000 * s + i, budget_steps=100,
                                         study_id=sid, index=s * N_TRIALS + i,
                                         settings={"target": target})
                        tid = store.start_trial(spec)
                        reached = math.isfinite(t)
                        metric = 0.95 if reached else best + 0.01 * i
                        store.finish_trial(tid, TrialResult(
                            spec, "reached" if reached else "budget", 100, 1.0, 0.0, time_to_target_s=t,
                            steps_to_target=round(t * 100) if reached else INF,
                            final_metrics={"validation/accuracy": metric, "best/validation/accuracy": metric}))
    return sid


def _draws(rng: np.random.Generator, scale: float, studies: int) -> list[list[float]]:
    return [list(scale * np.exp(0.15 * rng.standard_normal(N_TRIALS))) for _ in range(studies)]


def _planted(rng: np.random.Generator, factor_b: float, studies: int = 5) -> dict:
    """Algorithms a and b on three workloads; b's times are ``factor_b`` x a's, lognormal noise."""
    return {alg: {w: _draws(rng, scale * f, studies) for w, scale in (("w1", 1.0), ("w2", 3.0), ("w3", 0.5))}
            for alg, f in (("a", 1.0), ("b", factor_b))}


def test_a_planted_2x_difference_is_separated(tmp_path: Path):
    sid = _fill(tmp_path / "p.db", _planted(np.random.default_rng(11), 2.0))
    with st.open_store(tmp_path / "p.db") as store:
        scores = bench.score(store, sid)
    v = scores.verdict
    assert v.order == ("a", "b") and v.groups == (("a",), ("b",)) and v.beats("a", "b") and v.top_separated
    assert scores.score_time["a"] == 1.0 and scores.score_ci["a"].low > scores.score_ci["b"].high
    poi = v.p_improvement["a"]["b"]
    assert poi.point == 1.0 and poi.low > 0.5  # every study of a beats every study of b
    # every interval holds its point
    assert all(i.contains(i.point) for i in scores.score_ci.values())
    for table in (scores.time_ci, scores.ratio_ci, scores.steps_ci):
        assert all(i.contains(i.point) for row in table.values() for i in row.values())
    out = Console(record=True, width=200)
    report.print_summary(scores, out)
    text = out.export_text()
    assert "tie groups, best first: {a} > {b}" in text and "Holm" in text


def test_no_difference_is_a_tie(tmp_path: Path):
    sid = _fill(tmp_path / "t.db", _planted(np.random.default_rng(12), 1.0))
    with st.open_store(tmp_path / "t.db") as store:
        scores = bench.score(store, sid)
        again = bench.score(store, sid)
    v = scores.verdict
    assert not v.is_separated("a", "b") and len(v.groups) == 1 and not v.top_separated
    assert v.p_improvement["a"]["b"].contains(0.5)
    # determinism: the same trials give bit-identical intervals and the same verdict
    assert again.score_ci == scores.score_ci and again.time_ci == scores.time_ci and again.verdict == v


def test_identical_algorithms_are_rarely_separated():
    # the family-wise error of the test: 40 benchmarks of three algorithms drawn from one process
    rng = np.random.default_rng(13)
    wrong = 0
    for _ in range(40):
        cells = {alg: {w: _draws(rng, s, 4) for w, s in (("w1", 1.0), ("w2", 2.0))} for alg in ("a", "b", "c")}
        boot = intervals.bootstrap_benchmark(cells, n_resamples=600, seed=0)
        points = profiles.benchmark_score({a: {w: float(boot.point_times[i, j]) for j, w in enumerate(boot.workloads)}
                                           for i, a in enumerate(boot.algorithms)})
        wrong += bool(verdicts.separate(boot.algorithms, boot.scores, points, 0.9)[3])
    assert wrong <= 8  # alpha = 0.1 family-wise: at most ~4 expected; Holm over 3 pairs keeps it lower


def test_a_workload_with_no_signal_is_left_out_and_flagged(tmp_path: Path):
    rng = np.random.default_rng(14)
    times = _planted(rng, 2.0, studies=3)
    for alg in ("a", "b"):
        times[alg]["hard"] = [[INF] * N_TRIALS] * 3
        times[alg]["half"] = [[1.0, INF]] + [[INF] * N_TRIALS] * 2  # median inf for all, yet a study reached it
    sid = _fill(tmp_path / "n.db", times)
    with st.open_store(tmp_path / "n.db") as store:
        scores = bench.score(store, sid)
    assert set(scores.no_signal) == {"hard"} and "half" in scores.bootstrap.scored
    # the HTML report's parts: score intervals, tie groups, the pairwise matrix, the no-signal table
    colors = {"a": "#111111", "b": "#222222"}
    html = stats_html.ranking_html(scores, colors) + stats_html.pairs_html(scores, colors)
    iv = scores.score_ci["b"]
    groups = " &gt; ".join("{" + ", ".join(g) + "}" for g in scores.verdict.groups)
    assert f"{iv.point:.3f} [{iv.low:.3f}, {iv.high:.3f}]" in html and f"<b>Tie groups</b>, best first: {groups}." in html
    poi = scores.verdict.p_improvement["a"]["b"]
    assert "id='pairs'" in html and f"{poi.point:.2f}<br>" in html and f"[{poi.low:.2f}, {poi.high:.2f}]" in html
    html = stats_html.no_signal_html(scores, {"hard": Target("validation/accuracy", 0.9, "max")})
    assert "id='no-signal'" in html and "validation/accuracy &ge; 0.9" in html and "0.5100" in html
    assert scores.no_signal["hard"] == {"a": pytest.approx(0.51), "b": pytest.approx(0.51)}  # best of 0.50, 0.51
    assert "hard" not in scores.bootstrap.scored
    without = {a: {w: t for w, t in row.items() if w != "hard"} for a, row in scores.time_s.items()}
    assert scores.score_time == profiles.benchmark_score(without)  # not 0 for everyone on "hard"
    out = Console(record=True, width=200)
    report.print_summary(scores, out)
    text = out.export_text()
    assert "no signal on hard" in text and "Best validation/accuracy reached: a 0.5100, b 0.5100" in text


def test_no_signal_anywhere_scores_nothing_and_ties_everyone(tmp_path: Path):
    sid = _fill(tmp_path / "z.db", {a: {"hard": [[INF] * N_TRIALS] * 2} for a in ("a", "b", "c")}, best=0.3)
    with st.open_store(tmp_path / "z.db") as store:
        scores = bench.score(store, sid)
    assert all(math.isnan(s) for s in scores.score_time.values())
    assert scores.verdict.groups == (("a", "b", "c"),) and not scores.verdict.separated
    assert scores.no_signal == {"hard": {"a": pytest.approx(0.31)} | {"b": pytest.approx(0.31), "c": pytest.approx(0.31)}}


def test_report_pairs_prints_the_matrix_and_the_data(tmp_path: Path):
    from steplab.cli import app

    db = tmp_path / "r.db"
    rng = np.random.default_rng(15)
    _fill(db, {alg: {"w1": _draws(rng, f, 3)} for alg, f in (("fast", 1.0), ("slow", 1.2), ("slower", 9.0))})
    runner = CliRunner()
    table = runner.invoke(app, ["report", "--db", str(db), "--pairs", "--level", "0.8"], env={"COLUMNS": "220"})
    assert table.exit_code == 0, table.output
    assert "P(row reaches the target faster than column)" in table.output
    r = runner.invoke(app, ["report", "--db", str(db), "--pairs", "--json", "--level", "0.8"])
    data = json.loads(r.stdout)
    assert data["level"] == 0.8 and len(data["pairs"]) == 6
    p = {(row["algorithm"], row["versus"]): row for row in data["pairs"]}
    assert p[("fast", "slower")]["p_faster"] == 1.0 and p[("slower", "fast")]["p_faster"] == 0.0
    close = p[("fast", "slow")]  # overlapping times: the table shows the same point and interval
    assert close["low"] < close["p_faster"] and f"{close['p_faster']:.2f} [{close['low']:.2f}, {close['high']:.2f}]" in table.output
    assert all(p[(a, b)]["p_faster"] + p[(b, a)]["p_faster"] == pytest.approx(1.0) for a, b in p)
    assert all(row["low"] <= row["p_faster"] <= row["high"] for row in data["pairs"])
    r = runner.invoke(app, ["report", "--db", str(db), "--json"])
    summary = json.loads(r.stdout)
    assert summary["verdict"]["groups"][0][0] == "fast" and len(summary["pairs"]) == 6
    first = summary["ranking"][0]
    assert first["score_time_low"] <= first["score_time"] <= first["score_time_high"] and first["group"] == 1
    r = runner.invoke(app, ["report", "--db", str(db), "--level", "95"])
    assert r.exit_code != 0 and "between 0 and 1" in r.output and "Traceback" not in r.output
