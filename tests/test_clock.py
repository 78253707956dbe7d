"""The training clock (steplab.training.clock) on a fake ``perf_counter``: evaluation, pauses
and the recorder's own work are off the clock, never counted twice."""

from __future__ import annotations

import math
import time
import types

import pytest

from steplab import workloads
from steplab.algorithms import get_algorithm
from steplab.training import clock as clock_module
from steplab.training.clock import TrainingClock
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial


@pytest.fixture
def fake_time(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(clock_module, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    return now


def _clock() -> TrainingClock:
    c = TrainingClock()
    c._start_clock()
    return c


def test_an_evaluation_inside_a_pause_is_evaluation_not_pause(fake_time):
    c = _clock()
    fake_time[0] = 1.0
    c.pause()
    fake_time[0] = 2.0
    assert c.train_time_s == 1.0  # stopped at the pause
    assert c.untimed_s == 1.0  # an open pause counts up to now
    fake_time[0] = 3.0
    with c.evaluating():
        fake_time[0] = 3.5
        assert c.train_time_s == 1.0
        fake_time[0] = 4.0
    fake_time[0] = 6.0
    c.resume()
    fake_time[0] = 7.0
    # running 0-1 and 6-7; paused 1-3 and 4-6; evaluating 3-4
    assert (c.train_time_s, c.eval_time_s, c.untimed_s) == (2.0, 1.0, 4.0)


def test_pause_is_idempotent_and_resume_without_pause_is_a_no_op(fake_time):
    c = _clock()
    fake_time[0] = 1.0
    c.resume()
    c.pause()
    fake_time[0] = 2.0
    c.pause()  # does not restart the pause
    fake_time[0] = 4.0
    c.resume()
    c.resume()
    fake_time[0] = 5.0
    assert (c.train_time_s, c.untimed_s) == (2.0, 3.0)


def test_the_recorders_own_work_inside_a_pause_or_evaluation_is_not_counted_twice(fake_time):
    c = _clock()
    fake_time[0] = 1.0
    c.pause()
    fake_time[0] = 1.25
    c._untimed(1.0)  # a recorder hook that ran 1.0-1.25 inside the pause
    fake_time[0] = 2.0
    c.resume()
    with c.evaluating():
        fake_time[0] = 2.5
        c._untimed(2.0)  # ... inside an evaluation
        fake_time[0] = 3.0
    fake_time[0] = 3.25
    c._untimed(3.0)  # the clock runs: counted
    fake_time[0] = 4.0
    # wall 4 = running (1 + 1 - 0.25) + paused 1 + evaluating 1 + untimed 0.25
    assert (c.train_time_s, c.eval_time_s, c.untimed_s) == (1.75, 1.0, 1.25)


def test_a_pause_begun_inside_an_evaluation_starts_when_it_ends(fake_time):
    c = _clock()
    fake_time[0] = 1.0
    with c.evaluating():
        fake_time[0] = 2.0
        c.pause()
        fake_time[0] = 3.0
    fake_time[0] = 5.0
    c.resume()
    fake_time[0] = 6.0
    assert (c.train_time_s, c.eval_time_s, c.untimed_s) == (2.0, 2.0, 2.0)


def test_the_loop_keeps_its_progress_callbacks_off_the_training_clock():
    """A slow progress callback (a tuner's report, a progress bar) is the harness's time."""
    wl = workloads.get("logreg", budget_steps=60)
    n_evals = math.ceil(60 / wl.eval_every)

    def slow_progress(steps, budget, metrics, train_time_s):
        time.sleep(0.05)

    t0 = time.perf_counter()
    r = run_trial(wl, get_algorithm("adamw-cosine").resolved(), 0,
                  config=TrainConfig(stop_at_target=False, threads=1, device="cpu"), progress=slow_progress)
    wall = time.perf_counter() - t0
    assert r.steps == 60
    assert r.final_metrics["time/untimed_s"] >= 0.05 * n_evals
    assert r.train_time_s + r.eval_time_s + r.final_metrics["time/untimed_s"] <= wall
    assert r.train_time_s < wall - 0.05 * n_evals
