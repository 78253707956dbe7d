"""The recorder: norms against hand computations, lr, training time, storage, flushing."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from steplab.errors import SpecError, StoreError
from steplab.results import STEP_COLUMNS, TrialSpec
from steplab.store import open_store
from steplab.training.recorder import Recorder

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny_problem(
    seed: int = 0, device: str = "cpu"
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    return model.to(device), x.to(device), y.to(device)


def loss_of(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(x), y)


@pytest.mark.parametrize("device", DEVICES)
def test_norms_and_lr_match_hand_computation(device: str) -> None:
    model, x, y = tiny_problem(device=device)
    frozen = torch.nn.Parameter(torch.ones(5, device=device))  # grad stays None: ignored
    opt = torch.optim.SGD(
        [{"params": list(model.parameters())}, {"params": [frozen]}], lr=0.1, momentum=0.9
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    rec = Recorder(opt, flush_every=2)
    expected = []
    for _ in range(5):
        loss = loss_of(model, x, y)
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        before = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
        lr = opt.param_groups[0]["lr"]
        opt.step()
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        rec.log(loss)
        opt.zero_grad()
        sched.step()
        expected.append(
            (
                lr,
                loss.item(),
                torch.linalg.vector_norm(grads).item(),
                torch.linalg.vector_norm(grads, 1).item(),
                torch.linalg.vector_norm(after - before).item(),
            )
        )
    trace = rec.trace()
    assert list(trace) == list(STEP_COLUMNS)
    assert trace["step"].tolist() == [0, 1, 2, 3, 4] and rec.step == 5
    lr, loss, gn, gn1, un = (np.array(c) for c in zip(*expected, strict=True))
    np.testing.assert_allclose(trace["lr"], lr)
    np.testing.assert_allclose(trace["lr"], [0.1 / (1 + s) for s in range(5)])
    np.testing.assert_allclose(trace["loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(trace["grad_norm"], gn, rtol=1e-5)
    np.testing.assert_allclose(trace["grad_norm_l1"], gn1, rtol=1e-5)
    np.testing.assert_allclose(trace["update_norm"], un, rtol=1e-4)
    assert np.all(np.diff(trace["time_s"]) >= 0)
    rec.close()


def test_options_off_record_none() -> None:
    model, x, y = tiny_problem()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with Recorder(opt, l1=False, update_norm=False, grad_norm=True) as rec:
        for _ in range(3):
            loss_of(model, x, y).backward()
            opt.step()
            opt.zero_grad()  # no log(): loss not recorded
    rows = rec.rows
    assert [r.step for r in rows] == [0, 1, 2]
    assert all(r.loss is None and r.grad_norm_l1 is None and r.update_norm is None for r in rows)
    assert all(r.grad_norm is not None and r.grad_norm > 0 for r in rows)
    # hooks are gone after close
    loss_of(model, x, y).backward()
    opt.step()
    assert len(rec.rows) == 3


def test_evaluating_time_is_excluded() -> None:
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rec = Recorder(opt)

    def step() -> None:
        loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        rec.log(loss)

    step()
    with rec.evaluating():
        time.sleep(0.2)
        rec.eval(**{"validation/loss": 0.5, "accuracy": torch.tensor(0.25)})
    step()
    times = rec.trace()["time_s"]
    assert times[1] - times[0] < 0.05
    assert rec.eval_time_s >= 0.2
    evals = rec.eval_rows
    assert [(e.step, e.split, e.metric, e.value) for e in evals] == [
        (1, "validation", "validation/loss", 0.5),
        (1, "validation", "validation/accuracy", 0.25),
    ]
    assert evals[0].time_s == pytest.approx(times[0], abs=0.05)
    rec.log(**{"train/loss": 1.0})  # evals through log
    assert rec.eval_rows[-1].split == "train" and rec.eval_rows[-1].step == 2
    rec.close()


def test_flush_boundary_and_db_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Recorder(
        opt, db=str(db), name="my-run", config={"lr": 0.05, "path": tmp_path}, flush_every=3
    ) as rec:
        for i in range(7):
            loss = loss_of(model, x, y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            rec.log(loss, **({"validation/loss": 0.1 * i} if i == 6 else {}))
            if i == 2:
                store = open_store(str(db))  # first flush happens at the next step
                assert len(store.steps(rec.trial_id)["step"]) == 0
            if i == 3:
                assert len(store.steps(rec.trial_id)["step"]) == 3
        assert len(rec.trace()["step"]) == 7
    tid = rec.trial_id
    trial = store.get_trial(tid)
    assert trial.status == "budget" and trial.steps == 7
    assert trial.spec.workload == "user" and trial.spec.algorithm == "SGD"
    assert trial.spec.hyperparameters == {"lr": 0.05, "path": str(tmp_path)}
    assert trial.final_metrics == {"validation/loss": pytest.approx(0.6)}
    assert store.trial_info(tid)["name"] == "my-run"
    trace = store.steps(tid)
    assert trace["step"].tolist() == list(range(7))
    assert np.all(np.isfinite(trace["loss"])) and np.all(trace["update_norm"] > 0)
    assert [e.metric for e in store.evals(tid)] == ["validation/loss"]
    store.close()


def test_exception_in_with_block_marks_failed(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(RuntimeError, match="boom"):
        with Recorder(opt, db=db) as rec:
            loss_of(model, x, y).backward()
            opt.step()
            raise RuntimeError("boom\nsecond line")
    with open_store(db) as store:
        trial = store.get_trial(rec.trial_id)
        assert trial.status == "failed" and trial.message == "RuntimeError: boom second line"
        assert trial.steps == 1 and len(store.steps(rec.trial_id)["step"]) == 1


def test_existing_trial_in_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "runs.db"))
    tid = store.start_trial(TrialSpec("mnist", "base", "sgd", {}, {}, 0, 10))
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = Recorder(opt, store=store, trial_id=tid)
    for _ in range(2):
        loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        rec.log(loss)
    rec.close()
    assert store.get_trial(tid).status == "running"  # the caller finishes its own trial
    assert store.steps(tid)["step"].tolist() == [0, 1]
    with pytest.raises(StoreError, match="no trial"):
        Recorder(opt, store=store, trial_id=99)
    store.close()


def test_bad_arguments_and_double_log() -> None:
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(SpecError):
        Recorder(opt, flush_every=0)
    with pytest.raises(SpecError):
        Recorder(opt, db="x.db", store=object())  # type: ignore[arg-type]
    with pytest.raises(SpecError):
        Recorder(opt, trial_id=1)
    rec = Recorder(opt)
    loss_of(model, x, y).backward()
    opt.step()
    with pytest.raises(SpecError, match="scalar"):
        rec.log(torch.ones(3))
    rec.log(1.0)
    with pytest.warns(UserWarning, match="without a new optimizer step"):
        rec.log(2.0)
    assert rec.rows[0].loss == 1.0
    rec.close()


def test_nan_loss_is_recorded_as_nan() -> None:
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = Recorder(opt)
    loss_of(model, x, y).backward()
    opt.step()
    rec.log(torch.tensor(math.nan))
    assert math.isnan(rec.trace()["loss"][0]) and rec.rows[0].loss is None
    rec.close()


def test_sparse_and_mixed_dtype_gradients_take_the_general_path() -> None:
    """A sparse embedding gradient (and a float64 layer) fall back from the fused kernels to
    ``global_norm``; the values still match the textbook norms, and a parameter that gains
    a gradient later joins the norms from that step on."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 3, sparse=True)
    lin = torch.nn.Linear(3, 1).double()
    late = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([*emb.parameters(), *lin.parameters(), late], lr=0.5)
    rec = Recorder(opt)
    idx = torch.tensor([1, 4, 4, 7])
    expected = []
    for step in range(3):
        opt.zero_grad()
        loss = lin(emb(idx).double()).pow(2).mean() + (late.sum() if step == 2 else 0.0)
        loss.backward()
        grads = [emb.weight.grad.to_dense().flatten(), *(p.grad.flatten() for p in lin.parameters())]
        grads += [late.grad] if step == 2 else []
        g = torch.cat([t.double() for t in grads])
        expected.append((g.norm().item(), g.abs().sum().item(), 0.5 * g.norm().item()))
        opt.step()
        rec.log(loss)
    trace = rec.trace()
    rec.close()
    for step, (gn, gn1, un) in enumerate(expected):
        assert trace["grad_norm"][step] == pytest.approx(gn, rel=1e-6)
        assert trace["grad_norm_l1"][step] == pytest.approx(gn1, rel=1e-6)
        assert trace["update_norm"][step] == pytest.approx(un, rel=1e-5)  # SGD: lr * gradient



def _norm_trace(force_per_tensor: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, np.ndarray], bool, np.ndarray]:
    """Six SGD steps of a tiny MLP, with a parameter group added after step 2: the trace,
    whether the flat path was used, and the textbook gradient l2 and l1 norms per step."""
    from steplab.training import trace_values

    if force_per_tensor:
        monkeypatch.setattr(trace_values.StepNorms, "flat_on_cpu", False)
    model, x, y = tiny_problem()
    late = torch.nn.Parameter(torch.linspace(-2, 2, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(opt, flush_every=4)
    expected = []
    for step in range(6):
        if step == 2:
            opt.add_param_group({"params": [late]})
        opt.zero_grad()
        loss = loss_of(model, x, y) + (late.pow(2).sum() if step >= 2 else 0.0)
        loss.backward()
        g = torch.cat([p.grad.flatten() for group in opt.param_groups for p in group["params"]])
        expected.append((g.norm().item(), g.abs().sum().item()))
        opt.step()
        rec.log(loss)
    flat = rec._norms._flat  # type: ignore[union-attr]
    trace = rec.trace()
    rec.close()
    monkeypatch.undo()
    return trace, flat, np.array(expected)


def test_flat_cpu_norms_equal_the_per_tensor_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU the norms come from one flat copy of the gradients and parameters; the
    per-tensor ``_foreach`` kernels an accelerator uses give the same values on the same
    steps, both are the textbook norms, a parameter group added mid-run joins both from that
    step on, and SGD's update is lr times the gradient."""
    flat, used_flat, expected = _norm_trace(False, monkeypatch)
    per_tensor, used_per_tensor, _ = _norm_trace(True, monkeypatch)
    assert used_flat and not used_per_tensor
    for column in ("grad_norm", "grad_norm_l1", "update_norm"):
        np.testing.assert_allclose(flat[column], per_tensor[column], rtol=1e-6)
    np.testing.assert_allclose(flat["grad_norm"], expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(flat["grad_norm_l1"], expected[:, 1], rtol=1e-6)
    np.testing.assert_allclose(flat["update_norm"], 0.1 * flat["grad_norm"], rtol=1e-5)
    assert flat["grad_norm_l1"][2] - flat["grad_norm_l1"][1] > 10.0  # the new group's |2 * late| sums to 12


def _textbook_steps(opt: torch.optim.Optimizer, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    rec: Recorder, steps: int) -> np.ndarray:
    """``steps`` SGD steps logged into ``rec``: per step the textbook gradient l2 and l1 norms
    and the update norm, computed by hand from copies."""
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        g = torch.cat([p.grad.flatten() for p in model.parameters()]).double()
        old = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
        opt.step()
        new = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
        out.append((g.norm().item(), g.abs().sum().item(), (old - new).norm().item()))
        rec.log(loss)
    return np.array(out)


@pytest.mark.parametrize("ring_bytes,rows", [(None, 3), (1, 1)])
def test_cpu_ring_is_reduced_when_full_and_allocated_once(monkeypatch: pytest.MonkeyPatch, ring_bytes: int | None,
                                                          rows: int) -> None:
    """The CPU ring holds at most ``RING_ROWS`` steps (and at most ``RING_BYTES``, but one row
    at least): filling it reduces it, its memory is allocated once, and every step's norms are
    the textbook ones, across ring reductions and flushes at other steps (momentum makes the
    update differ from lr times the gradient)."""
    from steplab.training import trace_values

    monkeypatch.setattr(trace_values, "RING_ROWS", 3)
    if ring_bytes is not None:
        monkeypatch.setattr(trace_values, "RING_BYTES", ring_bytes)
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rec = Recorder(opt, flush_every=5)
    expected = _textbook_steps(opt, model, x, y, rec, 2)
    norms = rec._norms
    assert norms is not None and norms._flat and norms._ring.shape[0] == rows
    ring = norms._ring.data_ptr()
    expected = np.concatenate([expected, _textbook_steps(opt, model, x, y, rec, 9)])
    assert norms._ring.data_ptr() == ring  # no new memory per step
    trace = rec.trace()
    rec.close()
    np.testing.assert_allclose(trace["grad_norm"], expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(trace["grad_norm_l1"], expected[:, 1], rtol=1e-6)
    np.testing.assert_allclose(trace["update_norm"], expected[:, 2], rtol=1e-5)
    assert not np.allclose(trace["update_norm"], 0.1 * trace["grad_norm"], rtol=1e-3)


def test_cpu_ring_values_arrive_at_settle_and_an_unfinished_step_has_no_update() -> None:
    """The ring path hands out :class:`Deferred` values, filled by ``settle``; a step whose
    ``after`` never ran (it raised) keeps its gradient norms and has no update norm, and the
    next step pairs with its own snapshot, not the unfinished one's."""
    from steplab.training.trace_values import Deferred, StepNorms

    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    norms = StepNorms(True, True, True)
    loss_of(model, x, y).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    first = norms.before(opt.param_groups)  # the step raises: no after()
    unfinished = norms._marks[-1][2]
    second = norms.before(opt.param_groups)
    opt.step()
    update = norms.after()
    assert all(isinstance(v, Deferred) and v.value is None for v in (*first, *second, update))
    norms.settle()
    for gn, gn1 in (first, second):
        assert gn.value == pytest.approx(g.norm().item(), rel=1e-6)
        assert gn1.value == pytest.approx(g.abs().sum().item(), rel=1e-6)
    assert update.value == pytest.approx(0.5 * g.norm().item(), rel=1e-5)
    assert unfinished is not None and unfinished.value is None
    norms.settle()  # nothing kept: a no-op
    assert norms._used == 0


def test_amend_reads_a_deferred_norm() -> None:
    """``amend`` returns the value it replaces even while the ring still holds it."""
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(opt)
    expected = _textbook_steps(opt, model, x, y, rec, 1)
    old = rec.amend(grad_norm=2.5)
    assert old["grad_norm"] == pytest.approx(expected[0, 0], rel=1e-6)
    trace = rec.trace()
    rec.close()
    assert trace["grad_norm"][0] == 2.5
    assert trace["update_norm"][0] == pytest.approx(expected[0, 2], rel=1e-5)


def test_a_parameter_that_changes_shape_in_place_gets_new_buffers() -> None:
    """A parameter replaced in place by one of another shape (network surgery) is measured
    in its new shape from that step on: the norms of the step after the change are the
    textbook ones (a copy into the old views would have broadcast silently)."""
    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(opt)
    _textbook_steps(opt, model, x, y, rec, 2)
    with torch.no_grad():  # (3,) -> (1,): a copy into the old (3,) views would broadcast silently
        model[0].bias.data = torch.full((1,), 0.5)
    expected = _textbook_steps(opt, model, x, y, rec, 2)
    trace = rec.trace()
    rec.close()
    np.testing.assert_allclose(trace["grad_norm"][2:], expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(trace["update_norm"][2:], expected[:, 2], rtol=1e-5)


def test_cpu_ring_settles_when_an_interrupt_left_its_counts_out_of_step() -> None:
    """Ctrl-C lands between two statements: a row counted without its marks (or the other way
    round) must not stop the recorder from closing; the complete rows keep their values."""
    from steplab.training.trace_values import StepNorms

    model, x, y = tiny_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    norms = StepNorms(True, True, True)
    loss_of(model, x, y).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    gn, _ = norms.before(opt.param_groups)
    opt.step()
    norms.after()
    norms._marks.append(norms._marks[-1])  # marks of a row the ring never counted
    norms._finished.append(False)
    norms.settle()
    assert gn.value == pytest.approx(g.norm().item(), rel=1e-6)
    norms.before(opt.param_groups)
    norms._used += 1  # a row counted whose marks were never appended
    norms.clear()
