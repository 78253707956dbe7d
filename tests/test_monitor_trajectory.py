"""Monitors never change the run (DESIGN.md, "Conventions"; issue 23 part 4): the same seed
gives a bit-identical loss trace with every monitor that applies on and with none, on charlm
(attention) and modarith (grokking); and with none there is no monitor work at all."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from steplab import algorithms, workloads
from steplab.store import open_store
from steplab.training import monitoring
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial

pytestmark = pytest.mark.usefixtures("one_thread")

#: cheap settings of every monitor (a power iteration of 2 products, 2 gns batches)
ALL = ("sharpness:method=power:iters=2", "gns:batches=2", "laziness", "logits")


def _workload(name: str):
    wl = workloads.get(name, budget_steps=8)
    wl.evals_per_budget = 2  # evaluate every 4 steps, not at every one of a tiny budget
    return wl


CASES = {"charlm": (_workload("charlm"), ALL), "modarith": (_workload("modarith"), (*ALL, "grokking"))}


def _run(wl, monitors: tuple[str, ...], every: int | None = None):
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters(dict(wl.default_hyperparameters))
    cfg = TrainConfig(stop_at_target=False, threads=1, monitors=monitors, monitor_every=every)
    store = open_store("sqlite://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a monitor that does not apply says so once
        r = run_trial(wl, algo, 1, store=store, config=cfg)
    return r, store.steps(r.id), store.evals(r.id)


@pytest.mark.parametrize("case", sorted(CASES))
def test_monitors_leave_the_loss_trace_bit_identical(case: str) -> None:
    wl, monitors = CASES[case]
    off, trace_off, evals_off = _run(wl, ())
    on, trace_on, evals_on = _run(wl, monitors, every=4)
    assert off.status == on.status == "budget"
    for column in ("loss", "lr", "grad_norm", "update_norm"):
        assert np.array_equal(trace_off[column], trace_on[column]), column
    plain = [(e.step, e.metric, e.value) for e in evals_on if not e.metric.startswith("dynamics/")]
    assert plain == [(e.step, e.metric, e.value) for e in evals_off]
    dyn = [e for e in evals_on if e.metric.startswith("dynamics/")]
    assert sorted({e.step for e in dyn}) == [0, 4, 8]
    names = {e.metric.split("/")[1] for e in dyn}
    assert {"sharpness", "gns", "laziness", "logits"} <= names
    assert {e.value for e in dyn if e.metric == "dynamics/laziness" and e.step == 0} == {0.0}
    assert on.spec.settings["monitors"] == list(monitors) and on.spec.settings["monitor_every"] == 4
    assert off.spec.settings["monitors"] == [] and off.spec.key() != on.spec.key()
    assert on.eval_time_s > off.eval_time_s  # measured on the evaluation clock


def test_monitors_off_cost_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {"initial": 0, "probe": 0, "measure": 0, "batches": 0}

    def spy(name: str, fn):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(monitoring, "initial_parameters", spy("initial", monitoring.initial_parameters))
    monkeypatch.setattr(monitoring, "draw_probe_batches", spy("probe", monitoring.draw_probe_batches))
    monkeypatch.setattr(monitoring, "measure", spy("measure", monitoring.measure))
    wl = workloads.get("logreg", budget_steps=6)
    monkeypatch.setattr(wl, "batches", spy("batches", wl.batches))
    algo = algorithms.get_algorithm("adamw-cosine").resolved()
    run_trial(wl, algo, 0, config=TrainConfig(stop_at_target=False, threads=1))
    assert calls == {"initial": 0, "probe": 0, "measure": 0, "batches": 1}  # the run's own stream only
    run_trial(wl, algo, 0, config=TrainConfig(stop_at_target=False, threads=1, monitors=("laziness",),
                                                monitor_every=3))
    assert calls == {"initial": 1, "probe": 1, "measure": 3, "batches": 3}  # steps 0, 3, 6; probe stream
