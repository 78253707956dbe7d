"""The recorder's ``norm_every`` cadence (issue 22): norms on steps 0, k, 2k... (NaN on the
others), equal to the every-step norms there; the default cadence leaves ``steplab refine``
(Defazio et al. 2023, Algorithm 1, on the stored gradient norms) and the loss-law fits of
``steplab.analysis.predict`` (loss and lr per step) within 1e-3 of the every-step version
on logreg and charlm; a sparser cadence leaves the training trajectory untouched and refine
reads only the recorded steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from steplab import algorithms, workloads
from steplab.analysis import predict, refine
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.training.recorder import Recorder

CASES = {"logreg": (500, 0.03), "charlm": (30, 3e-3)}


def _trial(store, name: str, norm_every: int | None) -> int:
    steps, lr = CASES[name]
    wl = workloads.get(name, budget_steps=steps)
    wl.evals_per_budget = 2  # evaluations are not what this test is about
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": lr})
    cfg = TrainConfig(device="cpu", stop_at_target=False, threads=1)
    if norm_every is not None:
        cfg = TrainConfig(device="cpu", stop_at_target=False, threads=1, norm_every=norm_every)
    return run_trial(wl, algo, 0, store=store, config=cfg).id


def _law(store, tid: int) -> dict[str, float]:
    fitted = predict.fit_trials(store, [tid], "annealing")
    return {k: float(v) for k, v in fitted.law.to_dict().items() if isinstance(v, int | float)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_default_cadence_keeps_refine_and_laws_and_sparse_keeps_the_trajectory(name: str, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    with open_store(f"sqlite:///{tmp_path}/t.db") as store:
        try:
            default, every = _trial(store, name, None), _trial(store, name, 1)
            sparse = _trial(store, name, 4) if name == "logreg" else None  # charlm's steps cost more
        finally:
            torch.set_num_threads(threads)
        b = store.steps(every)
        steps = b["step"]
        # the default records every step: refine (l1 for AdamW, and l2) and the law as every-step
        for norm in ("l1", "l2"):
            ra, rb = (refine.refine_trial(store, t, norm=norm) for t in (default, every))
            assert np.max(np.abs(ra.values() - rb.values())) <= 1e-3
        la, lb = _law(store, default), _law(store, every)
        assert la.keys() == lb.keys() and la
        for key in la:
            assert la[key] == pytest.approx(lb[key], rel=1e-3, abs=1e-9), key
        if sparse is None:
            return
        c = store.steps(sparse)
        # every 4th step: the same trajectory (loss, lr bit for bit), norms only on steps 0, 4, 8...
        assert np.array_equal(c["loss"], b["loss"]) and np.array_equal(c["lr"], b["lr"])
        due = steps % 4 == 0
        for col in ("grad_norm", "grad_norm_l1", "update_norm"):
            assert np.isnan(c[col][~due]).all() and np.isfinite(c[col][due]).all(), col
            np.testing.assert_array_equal(c[col][due], b[col][due])
        assert _law(store, sparse) == _law(store, every)  # laws read loss and lr only
        # refine reads the recorded steps only: as the subsample handed over directly
        r = refine.refine_trial(store, sparse, norm="l1")
        direct = refine.refinement(b["grad_norm_l1"][due], norm="l1", trace_steps=steps[due],
                                   budget_steps=len(steps))
        np.testing.assert_allclose(r.values(), direct.values(), atol=1e-12)


def test_norm_every_in_a_user_loop_and_bad_values() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    rec = Recorder(opt, norm_every=3, flush_every=2)
    expected = {}
    for step in range(7):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        g = torch.cat([p.grad.flatten() for p in model.parameters()])
        expected[step] = (torch.linalg.vector_norm(g).item(), g.abs().sum().item())
        opt.step()
        rec.log(loss)
    trace = rec.trace()
    rec.close()
    assert trace["step"].tolist() == list(range(7)) and np.isfinite(trace["loss"]).all()
    for step in range(7):
        gn, gn1 = trace["grad_norm"][step], trace["grad_norm_l1"][step]
        if step % 3:
            assert np.isnan(gn) and np.isnan(gn1) and np.isnan(trace["update_norm"][step])
        else:
            assert gn == pytest.approx(expected[step][0], rel=1e-6)
            assert gn1 == pytest.approx(expected[step][1], rel=1e-6)
            # SGD without momentum: the update is lr * gradient
            assert trace["update_norm"][step] == pytest.approx(0.1 * expected[step][0], rel=1e-5)
    with pytest.raises(SpecError, match="norm_every"):
        Recorder(opt, norm_every=0)
