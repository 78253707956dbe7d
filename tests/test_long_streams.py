"""Long continual streams (loss of plasticity): the tasks are what they claim, the online
accuracy is the prediction before each update averaged per task (Dohare et al. 2024), the
curve is one query of a stored trial, and the streams run in ``steplab continual`` and as
the ``stream`` workload of ``steplab bench``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from typer.testing import CliRunner

from steplab import workloads
from steplab.algorithms.algorithm import ResolvedAlgorithm
from steplab.analysis.plasticity import probe_curve, task_curve
from steplab.errors import SpecError, WorkloadError
from steplab.store import open_store
from steplab.studies.plasticity import run_long
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.long_streams import BETA, LongStream
from steplab.workloads.stream_spec import parse_stream

SGD = ResolvedAlgorithm(name="sgd", optimizer="sgd", optimizer_kwargs={}, lr=0.05, weight_decay=0.0,
                        schedule={"name": "constant"})
CFG = TrainConfig(stop_at_target=False, record_norms=False, threads=1)


def test_specs_defaults_and_bad_options():
    spec = parse_stream("input-permuted")
    assert spec.long and (spec.tasks, spec.steps_per_task, spec.get("batch")) == (200, 100, 16)
    assert parse_stream("label-permuted+tasks=30+data=mnist1d").key == "label-permuted+data=mnist1d+tasks=30"
    assert not parse_stream("permuted-digits").long
    with pytest.raises(SpecError, match="act must be one of"):
        parse_stream("input-permuted+act=swish")
    with pytest.raises(SpecError, match="data must be digits or mnist1d"):
        parse_stream("input-permuted+data=bits")
    with pytest.raises(SpecError, match="has no option 'replay'"):
        parse_stream("input-permuted+replay=0.1")
    with pytest.raises(SpecError, match="reset must be one of"):
        parse_stream("input-permuted+reset=fresh")


def test_input_and_label_permutations_per_task_and_seed():
    s = LongStream("input-permuted+tasks=4+steps=3+batch=5")
    x, y = s.data()
    plan = s.plan(0)
    perms = plan["perm"]
    assert perms.shape == (5, 64)  # tasks + 1 (the last probed at the end)
    assert all(sorted(p.tolist()) == list(range(64)) for p in perms)
    assert len({tuple(p.tolist()) for p in perms}) == 5
    assert not torch.equal(LongStream("input-permuted+tasks=4").plan(1)["perm"], perms)
    gen = torch.Generator().manual_seed(0)
    ids = torch.tensor([3, 1, 4])
    bx, by = s.task_batch(plan, 2, ids, gen, 3)
    assert torch.equal(bx, x[ids][:, perms[2]]) and torch.equal(by, y[ids])
    lab = LongStream("label-permuted+tasks=4")
    lp = lab.plan(0)["perm"]
    bx, by = lab.task_batch(lab.plan(0), 1, ids, gen, 3)
    assert torch.equal(bx, x[ids]) and torch.equal(by, lp[1][y[ids]])
    # every batch of task k carries task k's permutation: its rows are permuted data rows
    batches = s.batches(0)
    for k in range(4):
        for _ in range(3):
            bx, _ = next(batches)
            rows = bx[:, torch.argsort(perms[k])]
            assert all(((x - r).abs().sum(1) < 1e-6).any() for r in rows)


def test_slowly_changing_regression_target_and_periods():
    s = LongStream("slowly-changing-regression+tasks=6+steps=4")
    plan = s.plan(0)
    slow = plan["slow"]
    assert slow.shape == (7, 15)
    assert ((slow[1:] != slow[:-1]).sum(1) == 1).all()  # flip=one: one slow bit per period
    # hand-built target: unit 0 all +1 (S=0, threshold 0.7*21 = 14.7), unit 1 all -1 (S=21,
    # threshold 14.7 - 21 = -6.3); readout (+1, -1)
    assert BETA * 21 == pytest.approx(14.7)
    hand = {"w": torch.stack([torch.ones(21), -torch.ones(21)]), "v": torch.tensor([1.0, -1.0])}
    ones, zeros = torch.ones(1, 20), torch.zeros(1, 20)
    assert s.target(hand, ones).item() == 1.0  # 21 > 14.7 fires; -21 > -6.3 does not
    assert s.target(hand, zeros).item() == -1.0  # 1 > 14.7 no; -1 > -6.3 fires
    x, y = next(s.batches(0))
    assert x.shape == (1, 20) and torch.equal(x[0, :15], slow[0]) and torch.equal(y, s.target(plan, x))
    allflip = LongStream("slowly-changing-regression+tasks=6+flip=all").plan(0)["slow"]
    assert allflip.shape == (7, 15)
    # batch 1: one example's squared error jumps by orders of magnitude; only non-finite diverges
    res = run_long("slowly-changing-regression+tasks=2+steps=60+probe=20", SGD, 0, config=CFG)
    assert res.trial.status == "budget" and len(res.curve) == 2
    assert res.trial.final_metrics["online/loss"] == pytest.approx(res.curve[-1])


def test_online_accuracy_is_the_prediction_before_each_update():
    text = "input-permuted+tasks=3+steps=6+batch=8+probe=50"
    res = run_long(text, SGD, 3, config=CFG)
    assert res.trial.status == "budget" and len(res.curve) == 3
    # the same run by hand: accuracy of each batch before its SGD step, averaged per task
    s = LongStream(text)
    torch.manual_seed(3)
    model = s.init_model(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    batches, hand = s.batches(3), []
    for _ in range(3):
        correct = 0
        for _ in range(6):
            x, y = next(batches)
            out = model(x)
            correct += int((out.argmax(-1) == y).sum())
            opt.zero_grad()
            F.cross_entropy(out, y).backward()
            opt.step()
        hand.append(correct / 48)
    assert res.curve == pytest.approx(hand, abs=1e-12)
    m = res.trial.final_metrics
    assert m["online/first"] == pytest.approx(hand[0]) and m["online/last"] == pytest.approx(hand[2])
    assert m["online/mean"] == pytest.approx(np.mean(hand))
    assert {"plasticity/dead_fraction", "plasticity/erank/layer2", "plasticity/weight_magnitude"} <= set(m)


def test_probes_never_change_the_trajectory():
    dense = run_long("input-permuted+tasks=4+steps=5+batch=8+probe=64", SGD, 1, config=CFG)
    sparse = run_long("input-permuted+tasks=4+steps=5+batch=8+probe=64+probe_every=100", SGD, 1, config=CFG)
    assert dense.curve == sparse.curve
    assert dense.trial.final_metrics["plasticity/erank"] == sparse.trial.final_metrics["plasticity/erank"]


def test_eval_mode_losses_do_not_count_and_curve_is_one_query():
    s = LongStream("label-permuted+tasks=2+steps=2+batch=4")
    model = s.init_model(0)
    model.eval()
    s.loss(model, next(s.batches(0)))
    assert s.steps == 0 and s._sums[2] == 0
    with open_store("sqlite://") as store:
        res = run_long("label-permuted+tasks=4+steps=5+batch=8+probe=40+probe_every=2", SGD, 0, store=store,
                       config=CFG)
        tasks, values = task_curve(store, res.trial.id)
        assert tasks.tolist() == [0, 1, 2, 3] and values == pytest.approx(res.curve)
        k, erank = probe_curve(store, res.trial.id, "plasticity/erank")
        assert k.tolist() == [0, 2, 4]  # every 2nd task start and the end
        assert (erank > 0).all()


def test_shrink_perturb_reset_at_task_starts():
    same = run_long("input-permuted+tasks=3+steps=4+reset=shrink-perturb+shrink=1+noise=0", SGD, 0, config=CFG)
    plain = run_long("input-permuted+tasks=3+steps=4", SGD, 0, config=CFG)
    assert same.curve == plain.curve  # (1, 0) is the identity
    assert same.trial.final_metrics["online/resets"] == 2.0
    s = LongStream("input-permuted+tasks=3+steps=4+reset=shrink-perturb+shrink=0+noise=1")
    model = s.init_model(0)
    s.reset(1)  # (0, 1) is a fresh net: a new draw of the same init
    fresh = [p.detach().clone() for p in model.parameters()]
    s.init_model(0)
    assert not torch.equal(fresh[0], s._model.net[0].weight)
    bound = (6 / 64) ** 0.5  # kaiming-uniform bound of the first layer (gain sqrt 2, fan_in 64)
    assert fresh[0].abs().max() <= bound and (fresh[1] == 0).all()


def test_bench_workload_and_target():
    w = workloads.get("stream", "input-permuted+tasks=3+steps=5+batch=4+probe=30+target=last:0.0")
    assert type(w).__name__ == "LongStreamWorkload"
    assert (w.budget_steps, w.eval_every, w.divergence_resets) == (15, 5, (5, 10))
    assert w.target.metric == "online/last" and w.target.mode == "max"
    r = run_trial(w, SGD, 0, config=TrainConfig(stop_at_target=False, record_norms=False))
    assert r.status == "reached" and "online/mean" in r.final_metrics
    assert workloads.get("stream", "slowly-changing-regression+tasks=2+steps=3").target.mode == "min"
    with pytest.raises(WorkloadError, match="target=METRIC:VALUE"):
        workloads.get("stream", "input-permuted+target=acc:0.5")
    with pytest.raises(WorkloadError, match="act must be"):
        workloads.get("stream", "input-permuted+act=swish")


def test_cli_runs_and_reports_a_long_stream(tmp_path):
    from steplab.cli import app

    db = str(tmp_path / "p.db")
    runner = CliRunner()
    out = runner.invoke(app, ["continual", "input-permuted", "--tasks", "4", "--steps-per-task", "5",
                              "--batch-size", "8", "--db", db])
    assert out.exit_code == 0, out.output
    assert "loss of plasticity" in out.output and "first 10% of tasks" in out.output
    png = tmp_path / "c.png"
    out = runner.invoke(app, ["continual", "report", "1", "--db", db, "--plot", str(png)])
    assert out.exit_code == 0, out.output
    assert png.stat().st_size > 0
    bad = runner.invoke(app, ["continual", "input-permuted", "--stage-schedule", "rewarm", "--db", db])
    assert bad.exit_code != 0 and "constant (the default) or none" in bad.output


@pytest.mark.parametrize("optimizer,kwargs", [
    ("upgd", {"sigma": 0.01}), ("cbp", {"replacement_rate": 0.05, "maturity": 2}), ("shrink-perturb", {}),
    ("l2init", {}), ("spectral", {}), ("adam", {}),
])
def test_plasticity_optimizers_train_a_long_stream(optimizer, kwargs):
    algo = ResolvedAlgorithm(name=optimizer, optimizer=optimizer, optimizer_kwargs=kwargs, lr=0.01,
                             weight_decay=1e-3 if optimizer == "shrink-perturb" else 0.0, schedule={"name": "constant"})
    res = run_long("input-permuted+tasks=2+steps=8+batch=8+probe=40", algo, 0, config=CFG)
    assert res.trial.status == "budget", res.trial.message
    assert len(res.curve) == 2 and all(0.0 <= v <= 1.0 for v in res.curve)
