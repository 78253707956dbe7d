"""Tests for continual training (``steplab.studies.continual``, ``steplab.schedules.stages``,
the ``stream`` workload and ``steplab continual``): stage schedules at their boundaries,
exact replay composition, evaluation that never changes the trajectory, the non-annealed
restore of the infinite schedule, and the streams' data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab import algorithms, schedules, workloads
from steplab.errors import SpecError, WorkloadError
from steplab.store import open_store
from steplab.studies import continual
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.stream_data import CONTEXT, VOCAB
from steplab.workloads.stream_spec import parse_stream
from steplab.workloads.task_stream import Stream

pytestmark = pytest.mark.usefixtures("one_thread")


ADAMW = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 3e-3, "weight_decay": 0.01})


def _values(spec: dict, total: int, ks: list[int]) -> list[float]:
    f = schedules.build(spec, total)
    return [round(f(k), 6) for k in ks]


# ---------------------------------------------------------------------------------- stage schedules
# two stages of 10 updates (B_1 = 10, T = 20), warm-up 0.2 -> 2 updates per warm-up
KS = [0, 1, 2, 3, 9, 10, 11, 12, 19, 20]


def test_rewarm_warms_up_again_and_redecays_each_stage():
    spec = {"name": "stages_rewarm", "stages": 2, "stage_warmup": 0.2, "shape": "linear", "end": 0.1}
    # warm-up (k+1)/2; linear decay over 8 updates to 0.1: 1 - 0.9 j/8; stage 2 repeats; 0.1 past T
    assert _values(spec, 20, KS) == [0.5, 1.0, 1.0, 0.8875, 0.2125, 0.5, 1.0, 1.0, 0.2125, 0.1]
    cos = _values({**spec, "shape": "cosine"}, 20, [3, 6])
    assert cos == [round(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 8)), 6), round(0.1 + 0.9 * 0.5, 6)]


def test_constant_keeps_the_last_lr_after_stage_one():
    spec = {"name": "stages_constant", "stages": 2, "stage_warmup": 0.2, "shape": "linear", "end": 0.1}
    assert _values(spec, 20, KS) == [0.5, 1.0, 1.0, 0.8875, 0.2125, 0.1, 0.1, 0.1, 0.1, 0.1]


def test_infinite_cools_down_once_and_anneals_every_stage_from_the_constant():
    spec = {"name": "stages_infinite", "stages": 2, "stage_warmup": 0.2, "cooldown_end": 0.5,
            "anneal_start": 0.8, "const": 0.25, "final": 0.01, "cooldown_shape": "linear"}
    # W=2, C=5 (cumulative), A=8: cooldown p = (u-2)/3 -> 1 - 0.75 p; 0.25 to u=8;
    # u=9: 0.25 (0.01/0.25)^(1/2) = 0.05; stage 2 starts at 0.25 (no re-warm), anneals at u=9
    ks = [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 18, 19, 20]
    assert _values(spec, 20, ks) == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.25, 0.05, 0.25, 0.25, 0.25, 0.05, 0.01]
    cos = _values({**spec, "cooldown_shape": "cosine"}, 20, [3])
    assert cos == [round(0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi / 3)), 6)]
    # the non-annealed state of stage 1 is taken after 9 updates and carried into stage 2 at 10
    assert schedules.anneal_starts(spec, 20) == {9: 10}
    assert schedules.anneal_starts({"name": "stages_rewarm", "stages": 2}, 20) == {}


def test_wsd_per_stage():
    spec = {"name": "stages_wsd", "stages": 2, "stage_warmup": 0.2, "decay": 0.3, "shape": "linear", "end": 0.0}
    # W=2, cooldown over the last 3 updates of the stage: 1, 2/3, 1/3; re-warm; 0 past T
    ks = [0, 1, 2, 6, 7, 8, 9, 10, 11, 19, 20]
    assert _values(spec, 20, ks) == [0.5, 1.0, 1.0, 1.0, 1.0, 0.666667, 0.333333, 0.5, 1.0, 0.333333, 0.0]


def test_stage_structure_and_errors():
    assert schedules.stage_boundaries(10, ends=[0.3, 1]) == [3, 10]
    assert schedules.stage_boundaries(10, stages=3) == [3, 7, 10]
    assert _values({"name": "stages_constant", "ends": [0.3, 1.0], "stage_warmup": 0.0, "shape": "linear",
                    "end": 0.1}, 10, [0, 2, 3, 9]) == [1.0, 0.4, 0.1, 0.1]
    assert schedules.policy_spec("rewarm", stages=5) == {"name": "stages_rewarm", "stages": 5}
    assert schedules.policy_spec("infinite:const=0.3", stages=2) == {
        "name": "stages_infinite", "const": 0.3, "stages": 2}
    # the common warm-up (a fraction of the run, drawn by tuning search spaces) ramps the first
    # 2 of 20 updates up to the stage schedule's value at update 2; the boundaries stay put
    base = {"name": "stages_rewarm", "stages": 2, "stage_warmup": 0.0, "shape": "linear", "end": 0.1}
    plain = _values(base, 20, list(range(21)))
    warm = _values({**base, "warmup": 0.1}, 20, list(range(21)))
    assert warm[:2] == [round(plain[2] / 2, 6), plain[2]] and warm[2:] == plain[2:]
    assert warm[10] == 1.0  # stage 2 still restarts at update 10
    with pytest.raises(SpecError, match="not both"):
        schedules.spec_from({"name": "stages_rewarm", "stages": 2, "ends": [0.5, 1]})
    with pytest.raises(SpecError, match="unknown stage schedule"):
        schedules.policy_spec("cosine-ish")
    with pytest.raises(SpecError, match="not a stage schedule"):
        schedules.policy_spec({"name": "cosine"})
    with pytest.raises(SpecError, match="empty"):
        schedules.build({"name": "stages_wsd", "stages": 8}, 5)


# ---------------------------------------------------------------------------------- streams and replay
def test_stream_spec_parsing_is_canonical_and_strict():
    s = parse_stream("split-digits + scenario=task+replay=0.05+steps=100")
    assert s.key == "split-digits+replay=0.05+scenario=task"  # sorted, default steps dropped
    assert parse_stream("rotated-digits+twin").get("twin") is True
    assert s.stage_ends() == [100, 200, 300, 400, 500] and s.budget_steps == 500
    with pytest.raises(WorkloadError, match="unknown stream 'split-mnist'"):
        parse_stream("split-mnist")
    with pytest.raises(SpecError, match="has no option 'tasks'"):
        parse_stream("split-digits+tasks=3")
    with pytest.raises(SpecError, match="replay"):
        parse_stream("split-digits+replay=1")
    with pytest.raises(SpecError, match="must divide"):
        parse_stream("split-digits+eval_every=30")
    with pytest.raises(SpecError, match="must be an integer"):
        parse_stream("split-digits+steps=ten")


@pytest.mark.parametrize("fraction,batch,per_batch", [(0.05, 32, (1, 2)), (0.25, 32, (8, 8)), (0.01, 32, (0, 1))])
def test_replay_fraction_is_exact_in_batch_composition(fraction, batch, per_batch):
    steps = 50
    stream = Stream(f"split-digits+replay={fraction}+batch={batch}+steps={steps}+buffer=all")
    comp = stream.composition(seed=3)
    for stage in range(stream.tasks):
        counts = []
        for _ in range(steps):
            ids, task = next(comp)
            assert len(ids) == batch
            current = int((task == stage).sum())
            replayed = task[current:]
            assert (task[:current] == stage).all()  # current task first
            assert (replayed < stage).all()  # replay comes from earlier tasks only
            counts.append(len(replayed))
        if stage == 0:
            assert sum(counts) == 0  # nothing to replay yet: a full batch of task 1
        else:
            # floor(n f B) after n batches, exactly: 50 x 1.6 = 80, 50 x 8 = 400, 50 x 0.32 = 16
            assert sum(counts) == math.floor(steps * fraction * batch + 1e-9)
            assert set(counts) <= set(per_batch)


def test_experience_replay_buffer_keeps_at_most_its_size_and_every_earlier_task():
    stream = Stream("split-digits+replay=0.5+buffer=40+steps=30")
    comp = stream.composition(seed=0)
    seen: dict[int, set[int]] = {}
    for step in range(5 * 30):
        ids, task = next(comp)
        stage = step // 30
        rep_ids, rep_task = ids[task != stage], task[task != stage]
        seen.setdefault(stage, set()).update(rep_ids.tolist())
        if stage >= 2:
            assert set(rep_task.tolist()) <= set(range(stage))
    assert all(len(v) <= 40 for v in seen.values())
    assert len(seen[1]) > 30  # 30 batches x 16 draws from 40 slots cover most of them
    # a reservoir filled with tasks 1..4 holds examples of each (about 10 each of 40)
    last = Stream("split-digits+replay=0.5+buffer=40+steps=30")
    comp = last.composition(seed=0)
    tasks_in_stage5 = set()
    for step in range(5 * 30):
        ids, task = next(comp)
        if step >= 120:
            tasks_in_stage5 |= set(task.tolist())
    assert tasks_in_stage5 == {0, 1, 2, 3, 4}


def test_stream_data_split_permuted_rotated_and_twins():
    split = Stream("split-digits")
    d = split.data()
    for t in range(5):
        assert set(d.y[d.pools[t]].tolist()) == {2 * t, 2 * t + 1}
        assert set(d.eval_sets[t][1].tolist()) == {2 * t, 2 * t + 1}
    ti = Stream("split-digits+scenario=task").data()
    assert set(ti.y.tolist()) == {0, 1}
    twin = Stream("split-digits+twin").data()
    assert set(twin.y[twin.pools[0]].tolist()) != {0, 1}  # another class pairing
    perm = Stream("permuted-digits+tasks=3").data()
    n = len(perm.pools[0])
    assert not torch.equal(perm.x[:n], perm.x[n:2 * n])  # task 2 permutes the pixels of task 1
    assert torch.equal(perm.x[:n].sort(dim=1).values, perm.x[n:2 * n].sort(dim=1).values)
    rot = Stream("rotated-digits+tasks=2+angle=90").data()
    a = rot.x[:n].reshape(-1, 8, 8).numpy()
    b = rot.x[n:2 * n].reshape(-1, 8, 8).numpy()
    assert any(np.allclose(b, np.rot90(a, k, axes=(1, 2)), atol=1e-4) for k in (1, 3))
    small = Stream("permuted-digits+eval_subset=20")
    assert small.eval_sizes() == [20] * 5
    again = Stream("permuted-digits+eval_subset=20")
    assert torch.equal(small.data().eval_sets[2][0], again.data().eval_sets[2][0])  # fixed, seeded subset


def test_task_incremental_heads_pick_each_examples_task_head():
    stream = Stream("split-digits+scenario=task")
    model = stream.init_model(0)
    x = torch.randn(4, 64)
    task = torch.tensor([0, 3, 3, 1])
    out = model(x, task)
    assert out.shape == (4, 2)
    h = model.trunk(x)
    for n, t in enumerate(task.tolist()):
        torch.testing.assert_close(out[n], model.heads[t](h[n]))


# ---------------------------------------------------------------------------------- runs
def _run(stream: str, *, seed: int = 0, schedule: str | None = "rewarm", restore: bool = True, store=None):
    return continual.run_continual(stream, ADAMW, seed, stage_schedule=schedule, restore=restore, store=store,
                                   config=TrainConfig(stop_at_target=False, record_norms=False))


@pytest.mark.parametrize("schedule", ["rewarm", "infinite"])
def test_evaluation_never_changes_the_trajectory(schedule):
    with open_store("sqlite://") as store:
        dense = _run("split-digits+replay=0.25+steps=50+eval_every=1", schedule=schedule, store=store)
        sparse = _run("split-digits+replay=0.25+steps=50+eval_every=50", schedule=schedule, store=store)
        loss_dense = store.steps(dense.trial.id)["loss"]
        loss_sparse = store.steps(sparse.trial.id)["loss"]
        assert len(loss_dense) == 250 and np.array_equal(loss_dense, loss_sparse)
        rows = {(e.step, e.metric): e.value for e in store.evals(sparse.trial.id)}
        dense_rows = {(e.step, e.metric): e.value for e in store.evals(dense.trial.id)}
    assert sorted({s for s, _ in rows}) == [0, 50, 100, 150, 200, 250]
    assert all(dense_rows[k] == v for k, v in rows.items())
    np.testing.assert_array_equal(dense.matrix, sparse.matrix)
    assert dense.trial.final_metrics["continual/evals"] == 251
    assert sparse.trial.final_metrics["continual/evals"] == 6
    # sparse evaluation cannot see a dip dense evaluation sees: min-ACC biased upwards
    assert sparse.metrics["continual/min_acc"] >= dense.metrics["continual/min_acc"]


def test_a_continual_run_is_one_trial_with_per_task_eval_rows_and_metrics():
    with open_store("sqlite://") as store:
        res = _run("split-digits+steps=20+eval_every=5+replay=0.25", store=store)
        t = store.get_trial(res.trial.id)
        evals = store.evals(t.id)
    assert (t.spec.workload, t.spec.variant, t.spec.algorithm) == (
        "stream", "split-digits+eval_every=5+replay=0.25+steps=20", "adamw-cosine+rewarm")
    assert t.spec.algorithm_spec["schedule"] == {"name": "stages_rewarm", "stages": 5}
    assert t.status == "budget" and t.steps == 100 and t.eval_time_s > 0
    at0 = {e.metric for e in evals if e.step == 0}
    assert {f"task{i}/accuracy" for i in range(5)} <= at0  # b_i: every task before training
    at5 = {e.metric for e in evals if e.step == 5}
    assert at5 == {"task0/accuracy", "task0/loss"}  # only the seen task between task ends
    assert {e.split for e in evals} == {f"task{i}" for i in range(5)}
    fm = t.final_metrics
    assert fm["continual/acc"] == pytest.approx(np.mean([fm[f"task{i}/accuracy"] for i in range(5)]))
    assert fm["continual/eval_every"] == 5 and fm["continual/eval_subset"] == 79


def test_history_of_a_stored_run_rebuilds_the_same_metrics():
    with open_store("sqlite://") as store:
        res = _run("permuted-digits+tasks=2+steps=20+eval_every=2", store=store)
        history, stream = continual.history_of(store, res.trial.id)
    assert stream.key == "permuted-digits+eval_every=2+steps=20+tasks=2"
    from steplab.workloads.stream_metrics import summarize

    assert summarize(history) == pytest.approx(res.metrics, nan_ok=True)


def test_infinite_restores_the_non_annealed_model_at_each_stage_start():
    stream = "split-digits+replay=0.25+steps=20+eval_every=20"
    with open_store("sqlite://") as store:
        kept = _run(stream, schedule="infinite", restore=True, store=store)
        annealed = _run(stream, schedule="infinite", restore=False, store=store)
        a = store.steps(kept.trial.id)["loss"]
        b = store.steps(annealed.trial.id)["loss"]
    # anneal_start 0.8 of 20 updates: updates 17..19 of each stage anneal; the state after 17
    # updates continues at 20, 40, 60, 80
    assert kept.restores == [20, 40, 60, 80] and annealed.restores == []
    assert kept.trial.final_metrics["continual/discarded_steps"] == 4 * 3
    assert np.array_equal(a[:20], b[:20]) and a[20] != b[20]  # update 20 starts from another model
    np.testing.assert_array_equal(kept.matrix[1], annealed.matrix[1])  # R[1] is the annealed (released) model


def test_the_stream_workload_under_run_trial_records_the_same_curves():
    v = "split-digits+replay=0.25+steps=20+eval_every=2"
    with open_store("sqlite://") as store:
        ours = _run(v, seed=1, store=store)
        wl = workloads.get("stream", v)
        algo = continual.stage_algorithm(ADAMW, wl.stream, "rewarm")
        theirs = run_trial(wl, algo, 1, store=store, config=TrainConfig(stop_at_target=False, record_norms=False))
        rows1 = [(e.step, e.metric, e.value) for e in store.evals(ours.trial.id) if e.step > 0]
        rows2 = [(e.step, e.metric, e.value) for e in store.evals(theirs.id) if e.metric.startswith("task")]
    assert rows1 == rows2
    for key, value in ours.metrics.items():
        assert theirs.final_metrics[key] == pytest.approx(value, nan_ok=True)
    assert wl.target.metric == "continual/acc" and theirs.status in ("reached", "budget")
    assert workloads.get("stream").stream.key == "split-digits"
    assert workloads.get("stream", "permuted-digits", budget_steps=50).budget_steps == 50
    with pytest.raises(WorkloadError, match="multiple"):
        workloads.get("stream", "split-digits", budget_steps=7)


def test_a_task_switch_is_not_divergence():
    # constant keeps 0.1x lr 1e-2: the model is sure of classes 0/1 when task 2 starts, whose
    # first loss is ~30-80x the run's first loss; a divergence check from step 0 stops there
    v = "split-digits+steps=100+eval_every=100"
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 1e-2, "weight_decay": 0.01})
    with open_store("sqlite://") as store:
        res = continual.run_continual(v, algo, 0, stage_schedule="constant", store=store,
                                      config=TrainConfig(stop_at_target=False, record_norms=False))
        loss = store.steps(res.trial.id)["loss"]
    assert loss[100] > 20 * loss[0]  # the jump a run-wide reference would call divergence
    assert res.trial.status == "budget" and res.trial.steps == 500
    wl = workloads.get("stream", v)
    assert wl.divergence_resets == (100, 200, 300, 400)
    out = run_trial(wl, continual.stage_algorithm(algo, wl.stream, "constant"), 0,
                    config=TrainConfig(stop_at_target=False, record_norms=False))
    assert out.status in ("budget", "reached") and out.steps == 500


def test_bench_takes_a_stream_workload():
    from steplab.studies import bench

    (entry,) = bench.parse_workload_list("stream:split-digits+replay=0.25")
    assert (entry.workload, entry.variant) == ("stream", "split-digits+replay=0.25")
    assert entry.build().stream.replay == 0.25
    wl = workloads.get("stream", "split-digits+replay=0.25+target=min_acc:0.2")
    assert wl.stream.key == "split-digits+replay=0.25" and wl.target == workloads.Target("continual/min_acc", 0.2)
    assert workloads.get("stream", "split-digits+target=forgetting:0.3").target.mode == "min"
    with pytest.raises(WorkloadError, match="METRIC:VALUE"):
        workloads.get("stream", "split-digits+target=min_acc")


def test_language_model_stream_scores_minus_the_loss():
    res = _run("charlm-shift+steps=10+eval_every=5+eval_subset=4+batch=8", schedule="constant")
    fm = res.trial.final_metrics
    assert res.trial.status == "budget"
    assert set(res.history.curves) == {0, 1}
    assert fm["continual/acc"] == pytest.approx(-(fm["task0/loss"] + fm["task1/loss"]) / 2)
    assert res.matrix[2, 1] == pytest.approx(-fm["task1/loss"])  # R holds -loss
    assert 3.5 < -res.matrix[0, 0] < 5.5  # about ln(97) nats/char before training
    s = Stream("charlm-shift+batch=8")
    windows, task = next(s.batches(0))
    assert windows.shape == (8, CONTEXT + 1) and int(windows.max()) < len(VOCAB)
    assert s.eval_sizes() == [64, 64]


# ---------------------------------------------------------------------------------- command line
def test_cli_runs_lists_and_reports(tmp_path):
    from steplab.cli import app

    runner = CliRunner()
    db = str(tmp_path / "c.db")
    out = runner.invoke(app, ["continual", "list"])
    assert out.exit_code == 0 and "rotated-digits" in out.output
    png = tmp_path / "c.png"
    out = runner.invoke(app, ["continual", "split-digits", "--steps-per-task", "10", "--replay", "0.25",
                              "--stage-schedule", "wsd", "--db", db, "--plot", str(png)])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "min-ACC" in text and "(51 evaluations, every 1 updates" in text and png.stat().st_size > 0
    out = runner.invoke(app, ["continual", "report", "1", "--db", db])
    assert out.exit_code == 0 and "adamw+wsd" in out.output
    bad = runner.invoke(app, ["continual", "split-mnist", "--db", db])
    assert bad.exit_code == 2 and "unknown stream" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["continual", "split-digits", "--stage-schedule", "sometimes", "--db", db])
    assert bad.exit_code == 2 and "unknown stage schedule" in bad.output
    bad = runner.invoke(app, ["continual", "split-digits", "--tasks", "3", "--db", db])
    assert bad.exit_code == 2 and "has no option 'tasks'" in bad.output
