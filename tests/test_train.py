"""The train loop: determinism, divergence, timing, stopping, storage."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from steplab import algorithms, workloads
from steplab.store import open_store
from steplab.studies.bench import get_suite
from steplab.training.config import TrainConfig
from steplab.training.device import pick_device
from steplab.training.loop import Divergence, run_trial
from steplab.workloads.base import Target

ADAMW = algorithms.get_algorithm("adamw-cosine")


def test_same_seed_same_trace():
    wl = workloads.get("digits-mlp", budget_steps=60)
    cfg = TrainConfig(stop_at_target=False, threads=1)
    traces = []
    for _ in range(2):
        store = open_store("sqlite://")
        r = run_trial(wl, ADAMW.resolved(), 3, store=store, config=cfg)
        traces.append((store.steps(r.id), r.final_metrics))
    (a, ma), (b, mb) = traces
    for col in ("loss", "lr", "grad_norm", "grad_norm_l1", "update_norm"):
        assert np.array_equal(a[col], b[col]), col
    untimed = lambda m: {k: v for k, v in m.items() if not k.startswith("time/")}  # noqa: E731
    assert untimed(ma) == untimed(mb) and ma.keys() == mb.keys()
    store = open_store("sqlite://")
    other = run_trial(wl, ADAMW.resolved(), 4, store=store, config=cfg)
    assert not np.array_equal(store.steps(other.id)["loss"], a["loss"])


def test_absurd_learning_rate_is_a_recorded_divergence():
    store = open_store("sqlite://")
    r = run_trial(workloads.get("logreg"), ADAMW.with_hyperparameters({"lr": 1e4}), 0, store=store)
    assert r.status == "diverged"
    assert math.isinf(r.time_to_target_s) and math.isinf(r.steps_to_target)
    assert "loss" in r.message and "\n" not in r.message
    assert store.get_trial(r.id).status == "diverged"
    assert r.steps < workloads.get("logreg").budget_steps


class SlowEval:
    """Wraps a workload so that each evaluation sleeps: none of it may count as training."""

    def __init__(self, inner, delay):
        self._inner, self._delay = inner, delay

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def evaluate(self, model, device):
        time.sleep(self._delay)
        return self._inner.evaluate(model, device)


def test_time_to_target_excludes_evaluation():
    inner = workloads.get("digits-mlp", budget_steps=200)
    wl = SlowEval(inner, 0.15)
    t0 = time.perf_counter()
    r = run_trial(wl, ADAMW.resolved(), 0, config=TrainConfig(stop_at_target=False, threads=1))
    wall = time.perf_counter() - t0
    n_evals = math.ceil(200 / inner.eval_every)
    assert r.eval_time_s >= 0.15 * n_evals
    assert r.train_time_s < wall - 0.15 * n_evals + 0.05
    assert r.train_time_s + r.eval_time_s <= wall


def test_stops_at_target_and_records_steps_to_target():
    wl = workloads.get("digits-mlp")
    r = run_trial(wl, ADAMW.resolved(), 0, config=TrainConfig(threads=1))
    assert r.status == "reached"
    assert r.steps == r.steps_to_target and r.steps % wl.eval_every == 0
    assert r.final_metrics[wl.target.metric] >= wl.target.value
    # without stopping, the same run continues to the budget and keeps the first hit
    r2 = run_trial(wl, ADAMW.resolved(), 0, config=TrainConfig(threads=1, stop_at_target=False))
    assert r2.steps == wl.budget_steps and r2.steps_to_target == r.steps_to_target
    assert r2.status == "reached"


def test_a_broken_workload_is_a_failed_trial_not_a_crash():
    class Broken(SlowEval):
        def loss(self, model, batch):
            raise RuntimeError("shape mismatch\\nsecond line")

    r = run_trial(Broken(workloads.get("logreg"), 0), ADAMW.resolved(), 0)
    assert r.status == "failed" and "shape mismatch" in r.message and "\n" not in r.message


def test_a_trial_that_reaches_its_target_then_crashes_is_failed_not_reached():
    class CrashLate(SlowEval):
        """Breaks at the 41st update, after the target was reached (around update 6)."""

        updates = 0

        def loss(self, model, batch):
            self.updates += 1
            if self.updates > 40:
                raise RuntimeError("CUDA out of memory")
            return self._inner.loss(model, batch)

    wl = workloads.get("logreg", budget_steps=60, target=Target("validation/loss", 0.6, "min"))
    store = open_store("sqlite://")
    algo = ADAMW.with_hyperparameters({"lr": 0.03, "weight_decay": 0.0})
    r = run_trial(CrashLate(wl, 0), algo, 0, store=store, config=TrainConfig(stop_at_target=False, threads=1))
    assert r.status == "failed" and "out of memory" in r.message and r.steps == 40
    assert not r.reached and math.isinf(r.time_to_target_s) and math.isinf(r.steps_to_target)
    assert store.get_trial(r.id).status == "failed"


def test_one_divergence_rule_resets_its_reference_and_watches_only_loss_metrics():
    rule = Divergence(20.0, frozenset({0, 5}))
    assert rule.check_loss(0, 1.0) is None and rule.check_loss(3, 19.0) is None
    assert "loss 25 at step 4" in rule.check_loss(4, 25.0)
    assert rule.check_loss(5, 25.0) is None  # a reset (a task switch): the new reference
    assert rule.check_loss(6, 400.0) is None and rule.check_loss(7, math.inf) is not None
    assert Divergence.check_metric("validation/accuracy", math.nan, 10) is None
    assert "validation/loss is nan at step 10" in Divergence.check_metric("validation/loss", math.nan, 10)


def test_schedule_reaches_the_optimizer():
    store = open_store("sqlite://")
    wl = workloads.get("logreg", budget_steps=40)
    algo = ADAMW.with_hyperparameters({"lr": 0.01, "schedule.end": 0.0})
    r = run_trial(wl, algo, 0, store=store, config=TrainConfig(stop_at_target=False))
    lr = store.steps(r.id)["lr"]
    expected = [0.01 * algo.build_schedule(40)(k) for k in range(40)]
    assert np.allclose(lr, expected, rtol=1e-9)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        from steplab.errors import SpecError

        with pytest.raises(SpecError, match="CUDA is not available"):
            pick_device("cuda")


@pytest.mark.parametrize("entry", get_suite("quick").entries, ids=lambda e: e.key)
def test_every_workload_reaches_its_target_with_the_default_algorithm(entry):
    """The short configuration (the quick suite's budget and target): each workload with
    its calibrated baseline must reach its target within the budget (seed 0)."""
    wl = entry.build()
    algo = algorithms.get_algorithm(wl.default_algorithm).with_hyperparameters(wl.default_hyperparameters)
    r = run_trial(wl, algo, 0, config=TrainConfig(threads=1))
    assert r.status == "reached", (r.status, r.final_metrics, r.message)


def test_train_loss_is_the_mean_over_a_fixed_training_sample():
    wl = workloads.get("logreg", budget_steps=10)
    device = torch.device("cpu")
    model = wl.init_model(0).eval()
    stream = wl.batches(wl.train_eval_seed, device)
    with torch.no_grad():
        by_hand = sum(float(wl.loss(model, next(stream))) for _ in range(3)) / 3
    assert wl.train_loss(model, device, 3) == pytest.approx(by_hand, rel=1e-6)
    assert wl.train_loss(model, device, 3) == wl.train_loss(model, device, 3)  # same sample each call
    assert wl.train_loss(model, device, 1) != pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="batches >= 1"):
        wl.train_loss(model, device, 0)


def test_train_eval_batches_records_train_loss_at_every_evaluation():
    wl = workloads.get("logreg", budget_steps=40)
    store = open_store("sqlite://")
    cfg = TrainConfig(stop_at_target=False, threads=1, train_eval_batches=4)
    r = run_trial(wl, ADAMW.resolved(), 0, store=store, config=cfg)
    rows = [e for e in store.evals(r.id) if e.metric == "train/loss"]
    val = [e for e in store.evals(r.id) if e.metric == "validation/loss"]
    assert [e.step for e in rows] == [e.step for e in val] and len(rows) == 40 // wl.eval_every
    assert {e.split for e in rows} == {"train"}
    assert r.final_metrics["train/loss"] == rows[-1].value
    assert rows[-1].value < rows[0].value  # training lowers the training loss
    plain = run_trial(wl, ADAMW.resolved(), 0, store=store, config=TrainConfig(stop_at_target=False, threads=1))
    assert "train/loss" not in plain.final_metrics


# ------------------------------------------------------------------ Ctrl-C / SIGTERM (issue 27)
def _stop_after(evals: int):
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) at evaluation ``evals``."""
    seen = []

    def progress(step: int, budget: int, metrics: dict[str, float], train_s: float) -> None:
        seen.append(step)
        if len(seen) == evals:
            raise KeyboardInterrupt

    return progress


def test_an_interrupted_run_is_kept_as_interrupted(tmp_path) -> None:
    from steplab.analysis.scoring import COUNTED_STATUSES
    from steplab.errors import Interrupted
    from steplab.results import ENDED, FINISHED

    wl = workloads.get("logreg", budget_steps=300)
    algo = algorithms.get_algorithm("adamw-cosine").resolved()
    with open_store(tmp_path / "i.db") as store:
        with pytest.raises(Interrupted, match=r"trial 1 kept as 'interrupted' with 20 steps") as caught:
            run_trial(wl, algo, 0, store=store, config=TrainConfig(stop_at_target=False), progress=_stop_after(2))
        assert caught.value.trial_id == 1 and caught.value.exit_code == 130
        t = store.get_trial(1)
        assert (t.status, t.steps, len(store.step_rows(1))) == ("interrupted", 20, 20)
        assert math.isinf(t.time_to_target_s) and t.train_time_s > 0 and "validation/loss" in t.final_metrics
        assert store.claims() == []  # nothing left running
        assert "interrupted" in ENDED and "interrupted" not in FINISHED  # never reused as a finished result
        assert "interrupted" not in COUNTED_STATUSES  # never scored


def test_a_claimed_trial_is_left_to_its_claimant(tmp_path, monkeypatch) -> None:
    """A benchmark's trial (a worker holds the claim) is given back by the claimant, not kept."""
    import steplab.training.loop as loop
    from steplab.training.jobs import Job, claim_and_run

    job = Job("logreg", "base", 300, None, algorithms.get_algorithm("adamw-cosine").resolved().to_dict(), 0, None, 0,
              stop_at_target=False)
    real = loop.train

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    def train(trainee, task, batches, rec, *rest, **kwargs):
        rec.log = ctrl_c  # Ctrl-C at the first step
        return real(trainee, task, batches, rec, *rest, **kwargs)

    monkeypatch.setattr(loop, "train", train)
    with open_store(tmp_path / "c.db") as store:
        with pytest.raises(KeyboardInterrupt):
            claim_and_run(job, store)
        assert store.list_trials() == []  # released: the resumed benchmark runs it again
        store.finish_trial(store.start_trial(job.trial_spec(), key=job.key(), worker="h:1:x"), _interrupted(job))
        tid = store.claim_trial(job.trial_spec(), worker="me:2:y", key=job.key())
        assert tid is not None  # an interrupted attempt is kept, and neither finished nor a live claim


def _interrupted(job):
    from steplab.results import TrialResult

    return TrialResult(job.trial_spec(), "interrupted", 5, 0.1, 0.0)


def test_a_recorder_block_left_by_ctrl_c_is_interrupted(tmp_path) -> None:
    from steplab.training.recorder import Recorder

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyboardInterrupt), Recorder(opt, db=tmp_path / "r.db") as rec:
        for _ in range(3):
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            rec.log(1.0)
        raise KeyboardInterrupt
    with open_store(tmp_path / "r.db") as store:
        (t,) = store.list_trials()
    assert (t.status, t.steps) == ("interrupted", 3)
