"""Schedule refinement (Defazio et al. 2023): the closed form, the filter, traces, CLI, bench."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab import schedules, workloads
from steplab.algorithms import get_algorithm
from steplab.analysis import refine
from steplab.cli import app
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.studies import bench
from steplab.training.config import TrainConfig
from steplab.training.jobs import FIRST_PASS, execute
from steplab.training.loop import run_trial
from steplab.training.recorder import Recorder

runner = CliRunner()


# ---------------------------------------------------------------------------------- algorithm
@pytest.mark.parametrize("steps", [500, 1234, 37])
def test_constant_norms_give_linear_decay_to_zero(steps):
    # the paper's worst-case optimal schedule (Thm. 3): s_k = 1 - k/T' for any target length
    r = refine.refinement(np.full(800, 3.7), budget_steps=steps)
    linear = np.array(schedules.values(schedules.build("linear", steps), steps))
    assert np.max(np.abs(r.values() - linear)) < 1e-3
    assert r.schedule()(steps) == 0.0


def test_max_is_one_and_last_is_zero():
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(size=3000)) + np.linspace(5, 1, 3000)
    for norm in ("l1", "l2"):
        r = refine.refinement(g, norm=norm)
        assert r.multipliers.max() == pytest.approx(1.0, abs=0)
        assert r.multipliers[-1] == 0.0
        assert (r.multipliers >= 0).all()


def test_norms_falling_early_give_a_warmup():
    # 15 -> 1 over the first 10% (the reference's synthetic_sched_grid profile, made piecewise)
    x = np.linspace(0, 1, 2000)
    g = np.interp(x, [0, 0.003, 0.02, 0.03, 0.1, 1], [15, 12, 6, 3, 1, 1])
    s = refine.refinement(g).multipliers
    peak = np.argmax(s) / len(s)
    assert 0.08 < peak < 0.3  # the peak comes after the norms settle, i.e. a warm-up
    assert s[0] < 0.05  # starts near zero: w = g^-2 is 225x smaller at the start
    assert (np.diff(s[: int(0.05 * len(s))]) >= -1e-12).all()  # rises through the first 5%


def test_reference_numbers_from_the_sheet():
    # shared/references/schedules-and-prediction.md §13: G_t = 1 + 9 exp(-t/10), T = 200
    # (no smoothing) peaks at step 56 (1-based), i.e. update 55
    t = np.arange(1, 201)
    v = refine.refinement(1 + 9 * np.exp(-t / 10), tau=0.0).values()
    assert int(np.argmax(v)) == 55


def test_hand_computed_closed_form():
    # w = [1, 2, 1, 4]: eta = [1*(2+1+4), 2*(1+4), 1*4, 0] = [7, 10, 4, 0] -> / 10
    assert refine.closed_form(np.array([1.0, 2.0, 1.0, 4.0])) == pytest.approx([0.7, 1.0, 0.4, 0.0])
    # weights: l2 -> g^-2, l1 -> g^-1
    assert refine.weights(np.array([2.0, 4.0]), "l2") == pytest.approx([0.25, 1 / 16])
    assert refine.weights(np.array([2.0, 4.0]), "l1") == pytest.approx([0.5, 0.25])


def test_norm_type_changes_the_result_as_documented():
    x = np.linspace(0, 1, refine.GRID_POINTS)  # no resampling, so g**2 below is exact
    g = 1 + 4 * np.exp(-x / 0.05)  # falls early
    l2 = refine.refinement(g, norm="l2", tau=0.0).multipliers
    l1 = refine.refinement(g, norm="l1", tau=0.0).multipliers
    # l1 weights g^-1 are the l2 weights of sqrt(g): a flatter profile, so a shorter warm-up
    assert np.argmax(l1) < np.argmax(l2)
    assert l1[0] > l2[0]
    assert refine.refinement(g**2, norm="l1", tau=0.0).multipliers == pytest.approx(l2)


def test_filter_width_and_median_filter_against_a_direct_window():
    assert refine.filter_width(0.1, 10_000) == 1001
    assert refine.filter_width(0.05, 10_000) == 501
    assert refine.filter_width(0.3, 11) == 3
    assert refine.filter_width(0.0, 10_000) == 1
    g = np.array([5.0, 1.0, 4.0, 9.0, 2.0, 6.0, 3.0, 8.0, 7.0, 0.5, 10.0])
    # width 5: left end nearest-extended, right end reflected (numpy 'reflect': no edge repeat)
    width, h = 5, 2
    left = [g[0]] * h
    right = [g[-2], g[-3]]
    ext = left + list(g) + right
    direct = [statistics.median(ext[i : i + width]) for i in range(len(g))]
    assert refine.smooth_norms(g, tau=0.5, grid_points=11) == pytest.approx(direct)
    assert refine.filter_width(0.5, 11) == width


def test_long_traces_take_the_filter_width_on_the_10k_grid_as_the_reference():
    # facebookresearch/adaptive_scheduling visual.py: a trace of >= nvals = 10,000 norms is
    # median-filtered at its own resolution with width 2*floor(floor(0.1*nvals)/2)+1 = 1001
    # (from nvals, not from the trace's length), resampled to the 10,000-point grid, and the
    # closed form is taken there. Before the fix the width followed the trace (5001 here).
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(4)
    n = 50_000
    x = np.linspace(0.0, 1.0, n)
    g = (1.0 + 4.0 * np.exp(-x / 0.03) + 0.5 * np.sin(9 * x)) * np.exp(rng.normal(scale=0.3, size=n))
    width, pad = 1001, 2002
    filtered = median_filter(np.pad(g, (0, pad), mode="reflect"), size=width, mode="nearest")[:-pad]
    grid = np.linspace(0.0, 1.0, 10_000)
    smoothed = np.interp(grid, x, filtered)
    w = smoothed**-2.0
    tail = np.cumsum(w[::-1])[::-1]
    eta = np.append(w[:-1] * tail[1:], 0.0)
    reference = eta / eta.max()

    r = refine.refinement(g, tau=0.1)
    assert len(r.multipliers) == 10_000 and len(r.smoothed) == 10_000
    assert r.smoothed == pytest.approx(smoothed, rel=1e-12)
    assert np.max(np.abs(r.multipliers - reference)) < 1e-12
    # the width taken on the trace's own length (the old behaviour) is visibly elsewhere
    wide = median_filter(np.pad(g, (0, 10_002), mode="reflect"), size=5001, mode="nearest")[:-10_002]
    old = refine.closed_form(refine.weights(np.interp(grid, x, wide), "l2"))
    assert np.max(np.abs(old - reference)) > 1e-3


def test_tau_changes_the_result_and_zero_means_no_smoothing():
    rng = np.random.default_rng(1)
    g = np.exp(rng.normal(scale=0.5, size=10_000))
    raw = refine.closed_form(refine.weights(g, "l2"))
    assert refine.refinement(g, tau=0.0).multipliers == pytest.approx(raw)
    smooth = refine.refinement(g, tau=0.1).multipliers
    wide = refine.refinement(g, tau=0.3).multipliers
    # noise in the norms makes the unsmoothed schedule jagged; the filter irons it out
    assert np.abs(np.diff(raw)).mean() > 10 * np.abs(np.diff(smooth)).mean()
    assert np.abs(np.diff(smooth)).mean() > np.abs(np.diff(wide)).mean()
    # stationary norms: the filtered norms sit at the noise's median (1 for exp(N(0, .5)))
    # away from the left end, where the reference's nearest padding repeats the first norm
    # half a window long, so the median there is that single value
    sm = refine.smooth_norms(g, 0.3)
    assert sm[2000:] == pytest.approx(1.0, abs=0.03)
    assert sm[0] == g[0]


def test_short_traces_are_resampled_and_bad_values_dropped():
    g = [2.0, float("nan"), 2.0, float("inf"), 2.0, 0.0, 2.0, 2.0]
    r = refine.refinement(g, tau=0.0)
    assert len(r.multipliers) == refine.GRID_POINTS
    assert r.budget_steps == len(g)
    with pytest.raises(SpecError, match="at least 2"):
        refine.refinement([float("nan")] * 5)
    with pytest.raises(SpecError, match="tau"):
        refine.refinement([1.0, 2.0], tau=0.9)
    with pytest.raises(SpecError, match="norm"):
        refine.refinement([1.0, 2.0], norm="linf")


def test_warmup_multiplies_a_linear_ramp():
    r = refine.refinement(np.ones(400), budget_steps=400, warmup_steps=40)
    v = r.values()
    k = np.arange(400)
    assert v == pytest.approx(np.minimum(1, (k + 1) / 40) * (1 - k / 400), abs=1e-5)
    with pytest.raises(SpecError, match="warmup"):
        refine.refinement(np.ones(10), budget_steps=10, warmup_steps=10)


def test_spec_is_json_and_replays_at_any_length(tmp_path):
    r = refine.refinement(np.linspace(3, 1, 5000), budget_steps=5000)
    d = r.spec.to_dict()
    assert d["name"] == "piecewise" and len(d["points"]) == refine.MAX_SPEC_POINTS + 1
    path = tmp_path / "s.json"
    path.write_text(json.dumps(d))
    again = schedules.spec_from(str(path))
    assert schedules.build(again, 1000)(500) == pytest.approx(r.schedule(1000)(500))
    with pytest.raises(SpecError, match="cannot be read"):
        schedules.spec_from(str(tmp_path / "missing.json"))


def test_exact_bound_is_not_worse_than_the_closed_form():
    from steplab.analysis import bound

    k = np.arange(40)  # the sheet's numbers index G by the 0-based update
    g = 1 + 4 * np.exp(-k / 4)
    closed = refine.refinement(g, tau=0.0, budget_steps=40)
    exact = refine.refinement(g, tau=0.0, budget_steps=40, exact_bound=True)
    assert exact.method == "exact"
    # the bound of each 40-step schedule at its best scale: the numerical optimum wins, and
    # the sheet's numbers (§13: 0.359 optimum vs 0.379 closed form) come out
    _, omega_cf = bound.optimal_base_lr(closed.values(), g)
    _, omega_ex = bound.optimal_base_lr(exact.values(), g)
    assert omega_ex < omega_cf
    assert omega_ex == pytest.approx(0.359, abs=2e-3)
    assert omega_cf == pytest.approx(0.379, abs=1e-2)


# ---------------------------------------------------------------------------------- traces
def test_norm_for_optimizer():
    assert refine.norm_for_optimizer("adamw") == "l1"
    assert refine.norm_for_optimizer("sgd") == "l2"
    assert refine.norm_for_optimizer("torch.optim.adamw.AdamW") == "l1"
    assert refine.norm_for_optimizer("torch.optim.sgd.SGD") == "l2"


def test_refine_a_steplab_run(tmp_path):
    wl = workloads.get("logreg", budget_steps=120)
    with open_store(tmp_path / "r.db") as store:
        adam = run_trial(wl, get_algorithm("adamw-linear").resolved(), 0, store=store,
                         config=TrainConfig(stop_at_target=False))
        sgd = run_trial(wl, get_algorithm("sgd-nesterov-cosine").resolved(), 0, store=store,
                        config=TrainConfig(stop_at_target=False))
        ra = refine.refine_trial(store, adam.id)
        rs = refine.refine_trial(store, sgd.id)
        assert ra.norm == "l1" and rs.norm == "l2"
        assert ra.budget_steps == 120
        assert refine.refine_trial(store, adam.id, norm="l2").multipliers != pytest.approx(ra.multipliers)
        # the l1 norms the refinement read are the trace's, not the l2 ones
        trace = store.steps(adam.id)
        assert np.interp(0.5, np.linspace(0, 1, 120), trace["grad_norm_l1"]) == pytest.approx(
            np.interp(0.5, ra.grid, ra.norms), rel=0.05)


def test_refine_a_plain_pytorch_loop(tmp_path):
    # the README example: a user's own loop, recorded, then refined
    torch.manual_seed(0)
    model = torch.nn.Linear(10, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(256, 10), torch.randn(256, 1)
    db = tmp_path / "mine.db"
    with Recorder(opt, db=db, name="my-run", config={"lr": 0.05}) as rec:
        for _ in range(200):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss)
        tid = rec.trial_id
    with open_store(db) as store:
        r = refine.refine_trial(store, tid)
    assert r.norm == "l2" and r.budget_steps == 200
    assert r.values()[0] > 0 and r.schedule()(200) == 0.0


def test_trace_without_norms_is_a_clear_error(tmp_path):
    wl = workloads.get("logreg", budget_steps=20)
    with open_store(tmp_path / "n.db") as store:
        t = run_trial(wl, get_algorithm("adamw-cosine").resolved(), 0, store=store,
                      config=TrainConfig(stop_at_target=False, record_norms=False))
        with pytest.raises(SpecError, match="no gradient norms recorded"):
            refine.refine_trial(store, t.id)
        with pytest.raises(SpecError, match="no l1 gradient norms recorded.*import a log"):  # no other to suggest
            refine.refine_trial(store, t.id, norm="l1")


# ---------------------------------------------------------------------------------- CLI
def test_cli_refine_writes_a_spec_that_run_accepts(tmp_path):
    db = str(tmp_path / "c.db")
    r = runner.invoke(app, ["run", "logreg", "-a", "adamw-linear", "--steps", "150", "--no-stop-at-target", "--db", db])
    assert r.exit_code == 0, r.output
    out, png = tmp_path / "refined.json", tmp_path / "refined.png"
    r = runner.invoke(app, ["refine", "1", "--db", db, "--out", str(out), "--plot", str(png), "--steps", "300"])
    assert r.exit_code == 0, r.output
    assert "l1 gradient norms" in r.output and "closest warm-up + polynomial decay" in r.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    spec = json.loads(out.read_text())
    assert spec["name"] == "piecewise" and len(spec["points"]) == 301
    r = runner.invoke(app, ["run", "logreg", "-a", "adamw-linear", "--schedule", str(out), "--steps", "300",
                            "--db", db])
    assert r.exit_code == 0, r.output
    with open_store(db) as store:
        assert store.get_trial(2).spec.algorithm_spec["schedule"]["name"] == "piecewise"


def test_cli_refine_errors_are_one_line(tmp_path):
    db = str(tmp_path / "c.db")
    runner.invoke(app, ["run", "logreg", "--steps", "30", "--no-stop-at-target", "--db", db])
    for args, text in ((["refine", "9", "--db", db], "no trial with id 9"),
                       (["refine", "1", "--db", db, "--tau", "2"], "tau"),
                       (["refine", "1", "--db", db, "--norm", "max"], "norm")):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and text in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------------------------- bench
def test_parse_refined_names():
    assert bench.parse_refined("adamw-linear") is None
    assert bench.parse_refined("refined(adamw-linear)") == ("adamw-linear", {"tau": 0.1, "norm": "auto"})
    assert bench.parse_refined("refined(sgd-nesterov-cosine, tau=0.05, norm=l2)") == (
        "sgd-nesterov-cosine", {"tau": 0.05, "norm": "l2"})
    assert bench.algorithm_list("adamw-cosine, refined(adamw-linear, tau=0.2)") == (
        "adamw-cosine", "refined(adamw-linear, tau=0.2)")
    with pytest.raises(SpecError, match="tau"):
        bench.parse_refined("refined(adamw-linear, tau=x)")
    with pytest.raises(SpecError, match="options"):
        bench.parse_refined("refined(adamw-linear, sigma=1)")


def test_refined_algorithm_runs_two_passes_and_resumes(tmp_path):
    entries = (bench.SuiteEntry("logreg", budget_steps=150),)
    spec = bench.BenchSpec(algorithms=("adamw-linear", "refined(adamw-linear)"), trials=1, workloads=entries)
    url = f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        jobs = {j.algorithm["name"]: j for j in b.todo}
        assert set(jobs) == {"adamw-linear", "refined(adamw-linear)"}
        assert jobs["refined(adamw-linear)"].refine == {"tau": 0.1, "norm": "auto"}
    result = execute(jobs["refined(adamw-linear)"], url)
    with open_store(url) as store:
        trials = store.list_trials()
        first = [t for t in trials if t.spec.algorithm.endswith(FIRST_PASS)]
        assert len(first) == 1 and first[0].steps == 150 and not first[0].spec.stop_at_target
        assert result.spec.algorithm_spec["schedule"]["name"] == "piecewise"
        assert result.final_metrics["first_pass/steps"] == 150
        # the same hyperparameters as the first pass: only the schedule changed
        assert result.spec.algorithm_spec["lr"] == first[0].spec.algorithm_spec["lr"]
        # scoring sees the refined algorithm with and without the first pass, never the pass itself
        views = {t.spec.algorithm: t for t in bench.scored_trials(store, b.study_id)}
        assert set(views) == {"refined(adamw-linear)", "refined(adamw-linear)" + bench.SECOND_PASS}
        total, second = views["refined(adamw-linear)"], views["refined(adamw-linear)" + bench.SECOND_PASS]
        if math.isfinite(second.steps_to_target):
            assert total.steps_to_target == second.steps_to_target + 150
            assert total.time_to_target_s == pytest.approx(second.time_to_target_s + first[0].train_time_s)
        # resume: the second pass is found under the job's key, so nothing re-runs
        again = bench.open_benchmark(spec, store)
        assert [j.algorithm["name"] for j in again.todo] == ["adamw-linear"]
        # a second pass lost to a kill re-runs alone: the stored first pass is reused
        store.delete_trial(result.id)
    execute(jobs["refined(adamw-linear)"], url)
    with open_store(url) as store:
        assert sum(t.spec.algorithm.endswith(FIRST_PASS) for t in store.list_trials()) == 1


def test_refined_after_a_diverged_first_pass_is_a_recorded_miss(tmp_path):
    entries = (bench.SuiteEntry("logreg", budget_steps=40),)
    spec = bench.BenchSpec(algorithms=("refined(sgd-nesterov-cosine)",), trials=1, workloads=entries,
                           overrides=("lr=1e6", "search_space={}"))
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with open_store(url) as store:
        job = bench.open_benchmark(spec, store).todo[0]
    result = execute(job, url)
    assert result.status == "diverged" and math.isinf(result.steps_to_target)
    assert "first pass" in result.message
