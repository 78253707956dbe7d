"""The robust time axis: ``cost_s`` (steps to target x the cell's median seconds per step),
its stability under wall-clock noise, the timing-noise intervals, and the interleaved plan."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from steplab.analysis import scoring
from steplab.analysis.timing import (
    cell_step_interval,
    cell_step_seconds,
    timing_table,
    trace_step_costs,
)
from steplab.results import TrialResult, TrialSpec
from steplab.studies import bench


def _trial(alg: str, study: int, index: int, steps_to_target: float, steps: int, train_s: float,
           workload: str = "w") -> TrialResult:
    spec = TrialSpec(workload, "base", alg, {}, {}, seed=1000 * study + index, budget_steps=400, study_id=study,
                     index=index)
    reached = math.isfinite(steps_to_target)
    time_to_target = train_s * steps_to_target / steps if reached else math.inf
    return TrialResult(spec, "reached" if reached else "budget", steps, train_s, 0.0, time_to_target, steps_to_target)


def test_cost_s_is_steps_to_target_times_the_cells_median_step_cost():
    trials = [
        _trial("a", 0, 0, 30, 40, 2.0),          # 0.05 s/step
        _trial("a", 0, 1, math.inf, 100, 3.0),   # 0.03 s/step (missed: its steps still cost)
        _trial("a", 1, 0, 20, 25, 1.0),          # 0.04 s/step
        _trial("b", 0, 0, 10, 10, 5.0),          # 0.5 s/step, one trial only
    ]
    assert scoring.step_costs(trials) == {("a", "w"): pytest.approx(0.04), ("b", "w"): pytest.approx(0.5)}
    table = scoring.time_table(trials, measure="cost_s")
    # a: study 0 -> 30 x 0.04 = 1.2, study 1 -> 20 x 0.04 = 0.8; median 1.0. b: 10 x 0.5
    assert table == {"a": {"w": pytest.approx(1.0)}, "b": {"w": pytest.approx(5.0)}}
    raw = scoring.time_table(trials, measure="time_s")  # raw wall time stays available: (1.5 + 0.8) / 2
    assert raw["a"]["w"] == pytest.approx(1.15)
    with pytest.raises(ValueError, match="with_step_costs"):
        scoring.trial_time(trials[0], "cost_s")  # one trial alone has no cell to take the cost from
    costed = scoring.with_step_costs(trials)
    assert scoring.trial_time(costed[2], "cost_s") == pytest.approx(0.8) and costed[2].train_time_s == 1.0
    assert math.isnan(scoring.seconds_per_step(dataclasses.replace(trials[0], steps=0)))  # no step: no cost


#: three algorithms 25% apart in steps to target, at 1 ms a step, the first with 5 ms more
#: every 5th step (periodic optimizer work, as Shampoo's); 3 studies x 2 trials, as make demo
STEPS = {"a": 100, "b": 125, "c": 160}
BASE = {"a": np.tile([1e-3, 1e-3, 1e-3, 1e-3, 6e-3], 80), "b": np.full(400, 2.5e-3), "c": np.full(400, 1.5e-3)}


def _rerun(seed: int, spike: float = 0.6) -> tuple[list[TrialResult], dict[int, np.ndarray]]:
    """The same trials (identical steps) rerun on a busy machine: in each trial, 8% of the
    updates (random ones) are preempted, adding U(0, spike) of the trial's time: wall times
    then differ by up to +-30% around their mean. Returns the trials and their traces."""
    rng = np.random.default_rng(seed)
    trials, traces = [], {}
    for s, i, a in itertools.product(range(3), range(2), STEPS):
        steps_to_target = STEPS[a] * (1.0 + 0.15 * s + 0.5 * i)
        steps = int(steps_to_target) + 1
        d = BASE[a][:steps].copy()
        hit = rng.random(steps) < 0.08
        hit[0] = False
        d[hit] += rng.uniform(0, spike) * d.sum() / max(1, hit.sum())
        t = dataclasses.replace(_trial(a, s, i, steps_to_target, steps, float(d.sum())), id=len(trials) + 1)
        t = dataclasses.replace(t, time_to_target_s=float(np.cumsum(d)[int(steps_to_target) - 1]))
        trials.append(t)
        traces[t.id] = np.cumsum(d)
    return trials, traces


def _order(table: dict[str, dict[str, float]]) -> tuple[str, ...]:
    return tuple(sorted(table, key=lambda a: table[a]["w"]))


def test_identical_trials_keep_their_cost_ranking_under_30_percent_wall_clock_noise():
    """Twenty reruns of the same trials, each trial's wall time off by up to +-30% from
    preempted steps: ranked by raw wall time (a study's time is one trial's clock) the order
    changes; ranked by cost_s from the traces it never does, nor does any cost move."""
    costs, raws, values = set(), set(), set()
    for seed in range(20):
        trials, traces = _rerun(seed)
        costed = scoring.with_step_costs(trials, trace_step_costs(trials, traces))
        table = scoring.time_table(costed, "cost_s")
        costs.add(_order(table))
        raws.add(_order(scoring.time_table(trials, "time_s")))
        values.add(tuple(round(table[a]["w"], 9) for a in STEPS))
    # median study (s = 1) x cost: a 115 steps x 2 ms (1 ms + 5 ms every 5th step), b 143.75 x 2.5 ms,
    # c 184 x 1.5 ms; b needs fewer steps than c but costs more time
    assert costs == {("a", "c", "b")}
    assert len(raws) > 1
    assert len(values) == 1 and values.pop() == pytest.approx((0.23, 0.359375, 0.276))


def test_timing_noise_intervals():
    trials, traces = _rerun(3)
    d = np.diff(traces[1])
    assert d.max() > 10 * np.median(d)  # this trace has preempted steps
    cells = [traces[t.id] for t in trials if t.spec.algorithm == "a"]
    assert cell_step_seconds(cells) == pytest.approx(0.002)  # the periodic work counts, the preemptions do not
    iv = cell_step_interval(cells, level=0.9, seed=1)
    assert iv == cell_step_interval(cells, level=0.9, seed=1)  # seeded
    assert (iv.low, iv.high) == pytest.approx((0.002, 0.002))  # the preemptions leave no timing noise in it
    # two trials that ran at 1.0 and 1.2 ms a step: the pooled median is 1.1 ms, and the
    # interval spans what a resample of the trials can give (only one of them: 1.0 or 1.2)
    two = cell_step_interval([np.cumsum(np.full(200, 1e-3)), np.cumsum(np.full(200, 1.2e-3))], level=0.9)
    assert two.point == pytest.approx(1.1e-3) and two.low == pytest.approx(1e-3) and two.high == pytest.approx(1.2e-3)
    quiet, quiet_traces = _rerun(3, spike=0.0)
    assert cell_step_interval([quiet_traces[t.id] for t in quiet if t.spec.algorithm == "b"]).high == pytest.approx(2.5e-3)
    table = timing_table(trials, traces)
    cell = table["b"]["w"]
    assert cell.trials == 6 and cell.cost_s == pytest.approx(0.359375) and cell.noise == pytest.approx(0.0)
    assert cell.raw_s == scoring.time_table(trials, "time_s")["b"]["w"] > cell.cost_s  # the waiting is in the raw time
    no_traces = timing_table(trials, {})  # without traces: train_time_s / steps, and no interval
    assert math.isnan(no_traces["b"]["w"].noise) and no_traces["b"]["w"].cost_s > cell.cost_s


def test_plan_interleaves_algorithms_and_added_cells_repeat_a_bigger_spec():
    tiny = (bench.SuiteEntry("logreg", budget_steps=60), bench.SuiteEntry("digits-mlp", budget_steps=40))
    algs = ("adamw-cosine", "sgd-nesterov-cosine", "lion-cosine")
    spec = bench.BenchSpec(algorithms=algs, trials=2, studies=2, workloads=tiny)
    jobs = bench.plan(spec, study_id=4)
    # consecutive jobs cycle through the algorithms: study, point, workload, then algorithm
    assert [j.algorithm["name"] for j in jobs] == list(algs) * (len(jobs) // 3)
    assert [(j.index, j.workload) for j in jobs[::3]] == [(i, w) for i in range(4) for w in ("logreg", "digits-mlp")]
    # all cells of study 2 added = the spec with 3 studies (same keys: stored benchmarks resume)
    bigger = {j.key() for j in bench.plan(dataclasses.replace(spec, studies=3), study_id=4)}
    added = [(2, a, e.key) for a in algs for e in tiny]
    assert {j.key() for j in bench.plan(spec, 4, added)} == bigger
    some = {j.key() for j in bench.plan(spec, 4, [(2, "lion-cosine", "logreg")])} - {j.key() for j in jobs}
    assert len(some) == 2 and some <= bigger  # that cell's 2 trials of study 2, nothing else
