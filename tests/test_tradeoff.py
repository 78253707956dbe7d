"""Tradeoff curves from one cyclic run (Portes et al. 2022): the budget_cycles schedule
against hand-computed values, evaluation at the cycle ends, the Pareto frontier and the
agreement summary on hand-made points, and ``steplab bench --tradeoff cyclic`` end to end."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from steplab import algorithms
from steplab import schedules as S
from steplab.cli import app
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.studies import bench, tradeoff
from steplab.studies.tradeoff import Point

runner = CliRunner()
C3 = (1 + math.cos(3 * math.pi / 4)) / 2  # cosine shape at 3/4 of a cycle: 0.14645...


# ------------------------------------------------------------------ the schedule
@pytest.mark.parametrize(
    "spec,total,ks,expected",
    [
        # default ends 1/8, 1/4, 1/2, 1 of 16 steps: cycles end at 2, 4, 8, 16; cosine to 0.
        # k=1: (1 + cos(pi/2))/2 = 0.5; k=7: (1 + cos(3pi/4))/2; k=12: (1 + cos(pi/2))/2
        ("budget_cycles", 16, [0, 1, 2, 3, 4, 6, 7, 8, 12, 15, 16, 20],
         [1, 0.5, 1, 0.5, 1, 0.5, C3, 1, 0.5, (1 + math.cos(7 * math.pi / 8)) / 2, 0, 0]),
        # linear to 0.1, cycles end at 2 and 8: k=1: 0.1 + 0.9/2; k=5: 0.1 + 0.9 (1 - 3/6)
        ({"name": "budget_cycles", "ends": [0.25, 1], "shape": "linear", "end": 0.1}, 8,
         [0, 1, 2, 5, 7, 8], [1, 0.55, 1, 0.55, 0.1 + 0.9 / 6, 0.1]),
        # warm-up 2 of 8 steps (k+1)/2, then cycles end at 4 and 8 of the whole run
        ({"name": "budget_cycles", "ends": [0.5, 1], "shape": "linear", "warmup": 0.25}, 8,
         [0, 1, 2, 3, 4, 5, 6, 7, 8], [0.5, 1, 1, 0.5, 1, 0.75, 0.5, 0.25, 0]),
    ],
)
def test_budget_cycles_hand_computed(spec, total, ks, expected):
    f = S.build(spec, total)
    assert [f(k) for k in ks] == pytest.approx(expected, abs=1e-12)


def test_each_cycle_restarts_at_the_peak_and_decays_to_end_at_its_boundary():
    f = S.budget_cycles_schedule(cycle_steps=[3, 9, 21], shape="cosine", end=0.2)
    for start, stop in ((0, 3), (3, 9), (9, 21)):
        assert f(start) == 1.0
        # the last update of the cycle is one step short of `end`, like a decay over L steps
        length = stop - start
        assert f(stop - 1) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi * (length - 1) / length)) / 2)
        vals = [f(k) for k in range(start, stop)]
        assert all(b < a for a, b in zip(vals, vals[1:]))
    assert f(21) == pytest.approx(0.2) and f(1000) == pytest.approx(0.2)


def test_first_cycle_is_the_algorithms_schedule_at_the_first_budget():
    algo = algorithms.get_algorithm("adamw-cosine").resolved()  # cosine, 5% warm-up
    cyc = tradeoff.cyclic_algorithm(algo, 400)  # first cycle ends at 50: warm-up round(2.5) = 2 steps
    assert cyc.name == "adamw-cosine" + tradeoff.CYCLIC
    f, g = cyc.build_schedule(400), algo.build_schedule(50)
    assert [f(k) for k in range(50)] == pytest.approx([g(k) for k in range(50)], abs=1e-12)
    assert f(50) == 1.0 and f(100) == 1.0 and f(200) == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "budget_cycles", "ends": [0.5, 0.25, 1]},
        {"name": "budget_cycles", "ends": [0.25, 0.5]},
        {"name": "budget_cycles", "ends": [0, 1]},
        {"name": "budget_cycles", "ends": [0.5, 1.5]},
        {"name": "budget_cycles", "ends": "half"},
        {"name": "budget_cycles", "ends": [0.001, 1]},  # collapses at 100 steps
        {"name": "budget_cycles", "shape": "zigzag"},
    ],
)
def test_bad_cycle_ends_are_one_line_spec_errors(spec):
    with pytest.raises(SpecError) as info:
        S.spec_from(spec)
    msg = str(info.value)
    assert ("ends" in msg or "shape" in msg) and "\n" not in msg


# ------------------------------------------------------------------ pure computations
def test_pareto_frontier_on_hand_made_points():
    a, b, c, d = Point(1, 1.0, 0.5), Point(2, 2.0, 0.4), Point(3, 2.0, 0.7), Point(4, 3.0, 0.7)
    e, f, g = Point(5, 4.0, 0.9), Point(6, 0.5, math.nan), Point(7, 5.0, 0.85)
    pts = [g, e, d, c, b, a, f]
    # accuracy: b is beaten by a (less time, higher), d by c (same value, more time), g by e
    assert tradeoff.pareto_frontier(pts, "max") == [a, c, e]
    # loss: lower is better, so only a then b; later points are all worse than 0.4
    assert tradeoff.pareto_frontier(pts, "min") == [a, b]
    assert tradeoff.pareto_frontier([a, Point(9, 1.0, 0.5)], "max") == [a]  # duplicates: the first
    with pytest.raises(SpecError, match="mode"):
        tradeoff.pareto_frontier(pts, "best")


def test_agreement_per_budget_and_saving():
    cyc = [Point(10, 1.0, 0.60), Point(20, 2.5, 0.72), Point(40, 5.0, 0.80), Point(80, 10.0, math.nan)]
    sep = [Point(80, 10.0, 0.90), Point(10, 2.0, 0.60), Point(20, 3.0, 0.70), Point(40, 6.0, 0.85)]
    curve = tradeoff.make_curve("a", "w", "validation/accuracy", "max", cyc, sep, cyclic_time_s=10.0, cyclic_steps=80)
    ag = curve.agreement
    assert ag.budgets == (10, 20, 40, 80)
    assert ag.diffs[:3] == pytest.approx((0.0, 0.02, -0.05)) and math.isnan(ag.diffs[3])
    assert ag.max_abs_diff == pytest.approx(0.05)
    assert ag.separate_time_s == pytest.approx(21.0) and ag.saving == pytest.approx(1 - 10 / 21)
    assert (ag.cyclic_steps, ag.separate_steps) == (80, 150)
    assert [p.budget_steps for p in curve.separate] == [10, 20, 40, 80]
    assert [p.budget_steps for p in curve.frontier] == [10, 20, 40]


# ------------------------------------------------------------------ training
def test_cyclic_run_is_evaluated_exactly_at_each_cycle_end():
    algo = algorithms.get_algorithm("adamw-cosine").resolved()
    with open_store("sqlite://") as store:
        # 100 steps: eval every 100 // 30 = 3 steps; cycles end at 12, 25, 50 and 100
        curve = tradeoff.measure("logreg", algo, store=store, budget_steps=100, device="cpu")
        trials = store.list_trials()
        cyc = next(t for t in trials if t.spec.algorithm.endswith(tradeoff.CYCLIC))
        steps = {e.step for e in store.evals(cyc.id) if e.metric == "validation/loss"}
        assert steps == set(range(3, 100, 3)) | {12, 25, 50, 100}
        # a separate run keeps the plain cadence: every 25 // 30 -> 1 step
        sep25 = next(t for t in trials if t.spec.algorithm.endswith(tradeoff.SEPARATE) and t.spec.budget_steps == 25)
        assert {e.step for e in store.evals(sep25.id) if e.metric == "validation/loss"} == set(range(1, 26))
    assert [p.budget_steps for p in curve.cyclic] == [12, 25, 50, 100]
    assert [p.budget_steps for p in curve.separate] == [12, 25, 50, 100]
    times = [p.time_s for p in curve.cyclic]
    assert all(0 < a < b for a, b in zip(times, times[1:]))
    assert times[-1] <= curve.agreement.cyclic_time_s
    # the first cycle is the same schedule, data and seed as the separate run of 12 steps
    assert curve.agreement.diffs[0] == pytest.approx(0.0, abs=1e-6)
    assert all(abs(d) < 0.05 for d in curve.agreement.diffs)
    assert curve.agreement.cyclic_steps == 100 and curve.agreement.separate_steps == 187
    assert curve.metric == "validation/loss" and curve.mode == "min"


# ------------------------------------------------------------------ the benchmark
@pytest.fixture
def tiny_suite(monkeypatch):
    suite = bench.Suite("tiny-tradeoff", "logreg, 80 steps", (bench.SuiteEntry("logreg", budget_steps=80),))
    monkeypatch.setitem(bench.SUITES, "tiny-tradeoff", lambda: suite)
    return "tiny-tradeoff"


def test_bench_tradeoff_cyclic_end_to_end_and_resume(tmp_path, tiny_suite):
    db, html = tmp_path / "t.db", tmp_path / "t.html"
    args = ["bench", "--suite", tiny_suite, "--algorithms", "adamw-cosine", "--trials", "1",
            "--tradeoff", "cyclic", "--db", str(db), "--html", str(html)]
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    # 1 scored trial + 1 cyclic run + 4 separate runs (10, 20, 40, 80 steps)
    assert "= 6 trials; 0 already done, 6 to run" in r.output
    assert "one cyclic run vs separate runs" in r.output and "saves" in r.output
    assert "(80 vs 150 steps)" in r.output
    table = r.output[r.output.index("one cyclic run vs separate runs"):]
    rows = [ln.split("│") for ln in table.splitlines() if ln.count("│") == 8]
    assert [cells[2].strip() for cells in rows] == ["10", "20", "40", "80", "total"]
    text = html.read_text()
    assert "id='tradeoff'" in text and 'alt="tradeoff curves on logreg"' in text
    with open_store(str(db)) as store:
        study = report_study(store)
        scores = bench.score(store, study)
        assert set(scores.time_s) == {"adamw-cosine"}  # tradeoff trials are not ranked
        assert all(not tradeoff.is_tradeoff(t.spec.algorithm) for t in scores.trials)
        n = len(store.list_trials(study_id=study))
        ids = {t.id for t in store.list_trials(study_id=study)}
    assert n == 6
    again = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "6 already done, 0 to run" in again.output and "one cyclic run vs separate runs" in again.output
    with open_store(str(db)) as store:
        assert {t.id for t in store.list_trials(study_id=report_study(store))} == ids


def report_study(store) -> int:
    from steplab import report

    sid = report.latest_benchmark(store)
    assert sid is not None
    return sid


def test_unknown_tradeoff_mode_is_a_one_line_error(tmp_path, tiny_suite):
    with pytest.raises(SpecError, match="zigzag"):
        bench.BenchSpec(tradeoff="zigzag")
    r = runner.invoke(app, ["bench", "--suite", tiny_suite, "--algorithms", "adamw-cosine",
                            "--tradeoff", "zigzag", "--db", str(tmp_path / "x.db")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "zigzag" in lines[0] and "Traceback" not in r.output


def test_tradeoff_in_toml_spec_and_older_specs_keep_their_names(tmp_path):
    spec_file = tmp_path / "b.toml"
    spec_file.write_text('algorithms = ["adamw-cosine", "refined(adamw-linear)"]\nworkloads = ["logreg"]\n'
                         'trials = 1\ntradeoff = "cyclic"\n')
    spec = bench.load_spec(spec_file)
    assert spec.tradeoff == "cyclic" and spec.to_dict()["tradeoff"] == "cyclic"
    assert bench.mapping_to_spec(spec.to_dict()) == spec
    jobs = bench.plan(spec, study_id=3)
    marked = [j for j in jobs if tradeoff.is_tradeoff(j.algorithm["name"])]
    # refined algorithms get no curve; logreg's budget 500: cycles end at 62, 125, 250, 500
    assert [(j.algorithm["name"], j.budget_steps, j.index) for j in marked] == [
        ("adamw-cosine tradeoff:cyclic", 500, 0), ("adamw-cosine tradeoff:separate", 62, 0),
        ("adamw-cosine tradeoff:separate", 125, 1), ("adamw-cosine tradeoff:separate", 250, 2),
        ("adamw-cosine tradeoff:separate", 500, 3)]
    assert marked[0].eval_steps == (62, 125, 250, 500) and not any(j.stop_at_target for j in marked)
    assert len({j.key() for j in jobs}) == len(jobs)
    assert "tradeoff" not in bench.BenchSpec().to_dict()  # the hash of older specs is unchanged
    spec_file.write_text("tradeoff = 3\n")
    with pytest.raises(SpecError, match="tradeoff"):
        bench.load_spec(spec_file)
