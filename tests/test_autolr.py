"""Tests for steplab.studies.autolr (AutoLRS, Jin et al. 2021): the exponential fit, the stage plan,
checkpoint/restore between candidates, the emergent schedule's JSON round trip and replay,
and a small end-to-end run on logreg."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from steplab import algorithms, schedules, workloads
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.studies import autolr
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target, Workload

CFG = TrainConfig(threads=1, stop_at_target=False)


# ----------------------------------------------------------------------------------
# the exponential model
# ----------------------------------------------------------------------------------
def test_fit_recovers_known_parameters() -> None:
    t = np.arange(0, 41, 2.5)
    y = 2.0 * np.exp(-0.05 * t) + 0.5
    m = autolr.fit_exponential(t, y)
    assert (m.a, m.b, m.c) == pytest.approx((2.0, -0.05, 0.5), rel=1e-5)
    assert float(m.predict(400.0)) == pytest.approx(0.5 + 2.0 * math.exp(-20.0), rel=1e-5)
    # a window that starts later (t0 > 0) gives the same curve in absolute steps
    m = autolr.fit_exponential(t + 100, 2.0 * np.exp(-0.05 * (t + 100)) + 0.5)
    assert (m.a, m.b, m.c) == pytest.approx((2.0, -0.05, 0.5), rel=1e-4)


def test_fit_with_noise_and_an_increasing_curve() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0, 33, 2.0)
    y = 1.2 * np.exp(-0.1 * t) + 0.3 + rng.normal(0, 2e-3, t.shape)
    m = autolr.fit_exponential(t, y)
    assert m.b == pytest.approx(-0.1, rel=0.05) and m.c == pytest.approx(0.3, abs=0.01)
    m = autolr.fit_exponential(t, 1.0 - 0.4 * np.exp(-0.2 * t))  # rising to an asymptote: a < 0
    assert (m.a, m.b, m.c) == pytest.approx((-0.4, -0.2, 1.0), rel=1e-4)


def test_near_linear_window_extrapolates_a_bounded_drop() -> None:
    """A straight 4-step window (drop 0.2) hits the lower rate bound 0.5 per window: the
    prediction 10 windows ahead extends the drop about 2.5-fold (to ~0.5), not 10-fold to a
    negative loss as a linear trend would."""
    t = np.arange(0, 5.0)
    m = autolr.fit_exponential(t, 1.0 - 0.05 * t)
    assert m.b * 4 == pytest.approx(-0.5)
    assert 0.45 < float(m.predict(40.0)) < 0.55


def test_fit_needs_three_points() -> None:
    with pytest.raises(SpecError, match="at least 3"):
        autolr.fit_exponential([0, 1, 2], [1.0, math.nan, 0.5])
    with pytest.raises(SpecError, match="more than one step"):
        autolr.fit_exponential([3, 3, 3], [1.0, 0.9, 0.8])


def test_plan_stages_doubles_and_merges_the_tail() -> None:
    assert autolr.plan_stages(400, 25, 200) == [25, 50, 100, 200, 25]
    assert autolr.plan_stages(100, 40, 320) == [40, 60]  # 20 < 40/2 joins the stage before
    assert autolr.plan_stages(1000, 50, 100) == [50] + [100] * 9 + [50]
    assert autolr.plan_stages(30, 40, 40) == [30]
    assert autolr.plan_stages(500, 71, 568) == [71, 142, 287]  # a 3-step tail joins the last stage
    for budget in range(1, 700, 7):  # the stages always cover the budget exactly
        for tau in (1, 5, 40, 71):
            assert sum(autolr.plan_stages(budget, tau, 8 * tau)) == budget
    with pytest.raises(SpecError):
        autolr.plan_stages(100, 50, 20)


# ----------------------------------------------------------------------------------
# checkpoint/restore between candidates leaves no trace
# ----------------------------------------------------------------------------------
class _Noisy(Workload):
    """Tiny regression whose model has dropout: every training step draws from torch's RNG,
    so a candidate that left the RNG (or the optimizer state, or the data stream) moved
    would change the kept trajectory."""

    name = "noisy-regression"
    default_hyperparameters = {"lr": 1e-2}

    @property
    def default_budget_steps(self) -> int:
        return 60

    @property
    def default_target(self) -> Target:
        return Target("validation/loss", 0.0, "min")

    @property
    def batch_size(self) -> int:
        return 16

    def _data(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 6, generator=g)
        return x, x @ torch.linspace(-1, 1, 6) + 0.1 * torch.randn(256, generator=g)

    def init_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.Tanh(), nn.Linear(16, 1))

    def batches(self, seed: int, device: torch.device):
        x, y = self._data()
        g = torch.Generator().manual_seed(seed)
        while True:
            idx = torch.randint(0, 192, (16,), generator=g)
            yield x[idx], y[idx]

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        return ((model(x).squeeze(-1) - y) ** 2).mean()

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        x, y = self._data()
        with torch.no_grad():
            return {"validation/loss": ((model(x[192:]).squeeze(-1) - y[192:]) ** 2).mean().item()}


def test_candidates_leave_no_trace_the_kept_run_equals_a_plain_run(tmp_path) -> None:
    """Each stage's kept steps must equal a plain ``run_trial`` that trains the chosen LR from
    the same checkpoint with the same seed: the whole kept trace (loss and lr per step, every
    evaluation) equals the replay of the emergent schedule, with AdamW state, dropout RNG and
    the data stream all in play."""
    wl = _Noisy()
    algo = algorithms.Algorithm("adamw-const", "adamw", {"betas": [0.9, 0.99]}, 1e-2, 0.01,
                                {"name": "constant"}).resolved()
    cfg = autolr.AutoLRSConfig(tau=20, candidates=4, startup_candidates=2, lr_min=1e-3, lr_max=1e-1)
    with open_store(tmp_path / "r.db") as store:
        res = autolr.run_autolrs(wl, algo, 3, config=cfg, train=CFG, store=store, name="auto")
        assert [s.steps for s in res.stages] == [20, 40]
        assert all(len({c.lr for c in s.candidates}) == 4 for s in res.stages)
        replay = run_trial(wl, autolr.replay_algorithm(res, algo), 3, config=CFG, store=store, name="replay")
        a, b = store.steps(res.trial_id), store.steps(replay.id)
        assert np.array_equal(a["loss"], b["loss"]) and np.array_equal(a["lr"], b["lr"])
        ea = [(e.step, e.metric, e.value) for e in store.evals(res.trial_id)]
        eb = [(e.step, e.metric, e.value) for e in store.evals(replay.id)]
        assert ea == eb
        # the lr of every kept step is the stage's chosen one, exactly
        for s in res.stages:
            assert set(a["lr"][s.start:s.start + s.steps].tolist()) == {s.lr}
        # and every candidate of the first stage (restored from the initial checkpoint, the
        # Adam state included) trained exactly what a plain run at its lr trains
        first = res.stages[0]
        points = tuple(t for t, _ in first.candidates[0].observed[1:])
        for c in first.candidates:
            short = _Noisy(budget_steps=first.explore_steps)
            plain = dataclasses.replace(algo, lr=c.lr)
            run = run_trial(short, plain, 3, config=dataclasses.replace(CFG, eval_steps=points), store=store)
            seen = {e.step: e.value for e in store.evals(run.id) if e.metric == "validation/loss"}
            assert [(t, seen[t]) for t in points] == c.observed[1:]
        # without restoring the RNG the dropout masks differ: the check above has teeth
        torch.manual_seed(123)
        other = run_trial(wl, dataclasses.replace(algo, schedule=res.schedule_spec()), 4, config=CFG)
        assert other.final_metrics["validation/loss"] != replay.final_metrics["validation/loss"]


# ----------------------------------------------------------------------------------
# the emergent schedule: JSON round trip and replay
# ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def logreg_run(tmp_path_factory):
    wl = workloads.get("logreg", budget_steps=150)
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 0.03, "weight_decay": 0.0})
    cfg = autolr.AutoLRSConfig(tau=40, candidates=5, startup_candidates=3)
    db = tmp_path_factory.mktemp("autolr") / "run.db"
    with open_store(db) as store:
        res = autolr.run_autolrs(wl, algo, 0, config=cfg, train=CFG, store=store, name="e2e")
    return wl, algo, res, db


def test_emergent_schedule_round_trips_through_json_and_replays(logreg_run, tmp_path) -> None:
    wl, algo, res, db = logreg_run
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(res.schedule_spec()))
    spec = schedules.spec_from(str(path))  # the form every command's --schedule takes
    assert spec.to_dict() == res.schedule_spec()
    sched = schedules.build(spec, wl.budget_steps)
    assert [algo.lr * sched(k) for k in range(wl.budget_steps)] == res.lrs  # exactly the kept lrs
    record = res.save(tmp_path / "record.json")
    back = autolr.AutoLRSResult.load(record)
    assert back.to_dict() == res.to_dict() and back.schedule_spec() == res.schedule_spec()
    with open_store(db) as store:
        replay = run_trial(wl, dataclasses.replace(algo, schedule=spec.to_dict()), 0, config=CFG, store=store)
        assert np.array_equal(store.steps(replay.id)["loss"], store.steps(res.trial_id)["loss"])
        assert autolr.load_result(store, res.trial_id).to_dict() == {**res.to_dict()}
    assert replay.final_metrics["validation/loss"] == res.final_metrics["validation/loss"]
    assert replay.steps_to_target == res.steps_to_target


def test_end_to_end_logreg_records_search_cost_apart(logreg_run) -> None:
    wl, algo, res, db = logreg_run
    assert res.status in ("reached", "budget") and res.steps == 150
    assert [s.steps for s in res.stages] == [40, 80, 30]  # doubling, the 30-step tail kept (>= 40/2)
    assert [s.start for s in res.stages] == [0, 40, 120]
    assert [s.explore_steps for s in res.stages] == [4, 8, 16]  # tau/10 of the nominal 40, 80, 160
    # every candidate trained its exploration steps (none diverged at these lrs)
    assert res.search_steps == sum(len(s.candidates) * s.explore_steps for s in res.stages) == 140
    assert all(len(s.candidates) == 5 for s in res.stages)
    for s in res.stages:
        assert s.candidates[s.chosen].objective == min(c.objective for c in s.candidates)
        lo, hi = res.lr_range
        assert all(lo <= c.lr <= hi * (1 + 1e-12) for c in s.candidates)
        assert all(c.observed[0] == (0, s.start_value) for c in s.candidates)
    # a resolved algorithm carries no search space: lr / 100 .. lr * 10 around lr = 0.03
    assert res.lr_range == pytest.approx((3e-4, 0.3))
    assert autolr.default_lr_range(algorithms.get_algorithm("adamw-cosine")) == (1e-3, 0.3)
    assert res.search_time_s > 0 and res.train_time_s > 0
    assert res.final_metrics["validation/loss"] < 0.40  # from log 2 = 0.69
    with open_store(db) as store:
        t = store.get_trial(res.trial_id)
        assert t.spec.algorithm == "adamw-cosine+autolrs" and t.spec.algorithm_spec["schedule"]["name"] == "piecewise"
        assert t.final_metrics["autolrs/search_steps"] == 140.0
        assert t.final_metrics["autolrs/search_time_s"] == pytest.approx(res.search_time_s)
        # the trace's training clock excludes the search
        assert store.steps(res.trial_id)["time_s"][-1] <= res.train_time_s + 1e-9


def test_diverging_lrs_are_recorded_not_raised() -> None:
    wl = workloads.get("logreg", budget_steps=60)
    algo = algorithms.Algorithm("sgd-const", "sgd", {}, 1.0, 0.0, {"name": "constant"}).resolved()
    cfg = autolr.AutoLRSConfig(tau=30, candidates=3, lr_min=1e5, lr_max=1e6)
    res = autolr.run_autolrs(wl, algo, 0, config=cfg, train=CFG)
    assert res.stages[0].candidates[0].status == "diverged"
    assert all(math.isfinite(c.objective) for c in res.stages[0].candidates)
    assert res.status == "diverged" and math.isinf(res.steps_to_target)


class _TaskSwitch:
    """logreg whose training loss is 100 times larger from update 30 on, a task switch the
    workload declares in ``divergence_resets`` (as a class-incremental stream does)."""

    divergence_resets = (30,)

    def __init__(self) -> None:
        self._inner = workloads.get("logreg", budget_steps=60)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def batches(self, seed: int, device: torch.device):
        return enumerate(self._inner.batches(seed, device))

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        i, b = batch
        return self._inner.loss(model, b) * (100.0 if i >= 30 else 1.0)


def test_the_kept_run_resets_its_divergence_reference_at_the_workload_resets() -> None:
    """One divergence rule: AutoLRS used to take its reference only at step 0, so a task
    switch read as a divergence; ``run_trial`` always reset it there (issue 19)."""
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 0.03, "weight_decay": 0.0})
    cfg = autolr.AutoLRSConfig(tau=20, candidates=2, startup_candidates=2, lr_min=1e-3, lr_max=1e-1)
    res = autolr.run_autolrs(_TaskSwitch(), algo, 0, config=cfg, train=CFG)
    assert res.status == "budget" and res.steps == 60, res.message
    assert run_trial(_TaskSwitch(), algo, 0, config=CFG).status == "budget"


def test_bad_settings_are_one_line_spec_errors() -> None:
    with pytest.raises(SpecError, match="tau must be a positive integer"):
        autolr.AutoLRSConfig(tau=0)
    with pytest.raises(SpecError, match="lr_min"):
        autolr.AutoLRSConfig(lr_min=0.1, lr_max=0.01)
    with pytest.raises(SpecError, match="candidates"):
        autolr.AutoLRSConfig(candidates=0)
    wl = workloads.get("logreg", budget_steps=20)
    with pytest.raises(SpecError, match="cannot checkpoint optimizer 'dog'"):
        autolr.run_autolrs(wl, algorithms.get_algorithm("dog").resolved(), 0)
    with pytest.raises(SpecError, match="not an AutoLRS record"):
        autolr.AutoLRSResult.from_dict({"stages": []})


def test_cli_autolr_writes_schedule_record_and_plot(tmp_path) -> None:
    from typer.testing import CliRunner

    from steplab.cli import app

    runner = CliRunner()
    out, rec, png = tmp_path / "s.json", tmp_path / "r.json", tmp_path / "p.png"
    res = runner.invoke(app, ["autolr", "logreg", "-a", "adamw-cosine", "--steps", "60", "--tau", "30", "-k", "3",
                              "--no-stop-at-target", "--db", str(tmp_path / "c.db"), "--out", str(out),
                              "--record", str(rec), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    # stages [30, 30]; exploration max(4, tau/10) = 4 and 6 steps (nominal 30, 60), 3 candidates each
    assert "search cost (not counted above): 30 steps" in res.output
    spec = schedules.spec_from(str(out))
    record = autolr.AutoLRSResult.load(rec)
    assert spec.to_dict() == record.schedule_spec() and png.stat().st_size > 10_000
    assert record.search_steps == sum(len(s.candidates) * s.explore_steps for s in record.stages)
    bad = runner.invoke(app, ["autolr", "logreg", "--lr-min", "1", "--lr-max", "0.1", "--db", str(tmp_path / "c.db")])
    assert bad.exit_code == 2 and "lr_min (1) must be below lr_max (0.1)" in bad.output


def test_anneal_tail_decays_the_last_fraction_linearly_to_zero() -> None:
    spec = {"name": "piecewise", "points": [[0.0, 1.0], [0.5, 1.0], [0.6, 0.5], [1.0, 0.5]]}
    out = autolr.anneal_tail(spec, 0.2)
    assert out["points"] == [[0.0, 1.0], [0.5, 1.0], [0.6, 0.5], [0.8, 0.5], [1.0, 0.0]]
    # the tail starting inside the 1.0 -> 0.5 ramp: value there interpolated by hand
    ramp = autolr.anneal_tail(spec, 0.45)["points"]
    assert ramp[-2][0] == pytest.approx(0.55) and ramp[-2][1] == pytest.approx(0.75)
    f = schedules.build(out, 100)
    assert [f(k) for k in (50, 60, 80, 90)] == pytest.approx([1.0, 0.5, 0.5, 0.25])
    with pytest.raises(SpecError, match="piecewise"):
        autolr.anneal_tail({"name": "cosine"}, 0.2)
    with pytest.raises(SpecError, match="fraction"):
        autolr.anneal_tail(spec, 1.0)
