"""What a training step costs, measured so that the machine's load does not decide it, and
the timing noise left over.

On a shared machine a trial's wall time is mostly waiting: with other processes on the
cores, most steps of a small model take about a millisecond while some are preempted for
tens of milliseconds (or seconds), and ``train_time_s / steps`` then measures the load.
:func:`cell_step_seconds` reads the traces instead (the training time recorded after every
update) of all the trials of one (algorithm, workload) cell: per residue class of the step
index modulo :data:`STEP_PERIOD` it takes the median step duration over the cell's steps in
that class, and averages the classes. The median drops the preempted steps (a robust
location estimate, Huber & Ronchetti 2009, "Robust Statistics", §3.2); the classes keep
work an optimizer does every few steps (Shampoo's inverse roots every 5, SOAP's eigenbasis
every 10: periods that divide 20) at its true share, which a plain median over steps would
drop; steplab's own trace flush every 200 steps is dropped with the preempted steps.

``measure="cost_s"`` of :mod:`steplab.analysis.scoring` multiplies steps to target by this
cost (``scoring.with_step_costs(trials, costs)``). :func:`cell_step_interval` bootstraps it
over the cell's trials (percentile interval, Efron & Tibshirani 1993, "An Introduction to
the Bootstrap", ch. 13): a relative width of a few percent says that the time ranking rests
on the steps, tens of percent that the costs are not known."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from steplab.analysis import scoring
from steplab.analysis.intervals import DEFAULT_LEVEL, Interval, check_level, percentile_interval
from steplab.results import TrialResult

#: step-index period of the residue classes (a multiple of every periodic optimizer cadence
#: in the baselines: 1, 2, 5, 10)
STEP_PERIOD = 20

#: a trial's trace as ``Store.steps(trial_id)["time_s"]``: training time after each update
Trace = np.ndarray

#: the final metric in which a finished trial keeps its own seconds per step
#: (:func:`cell_step_seconds` of its trace, computed by the loop when it ends), so that the
#: time axis of a large benchmark does not have to read every step row back
TRIAL_STEP_KEY = "time/s_per_step"
#: final metric: seconds the recorder kept off the training clock (its own work, store writes)
UNTIMED_KEY = "time/untimed_s"


def _durations(traces: Sequence[Trace], period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every update's duration (update ``k >= 1`` took ``time_s[k] - time_s[k - 1]``; update 0
    also holds the set-up and is left out), its class ``k mod period`` and its trial's index."""
    d, k, owner = [], [], []
    for i, trace in enumerate(traces):
        t = np.asarray(trace, dtype=float)
        if t.size < 2 or not np.isfinite(t).all():
            continue
        d.append(np.diff(t))
        k.append(np.arange(1, t.size) % period)
        owner.append(np.full(t.size - 1, i))
    if not d:
        return np.empty(0), np.empty(0, dtype=int), np.empty(0, dtype=int)
    return np.concatenate(d), np.concatenate(k), np.concatenate(owner)


def cell_step_seconds(traces: Sequence[Trace], period: int = STEP_PERIOD) -> float:
    """Seconds per step of a cell from its trials' traces: per class ``k mod period`` the
    median duration over every trial's updates in it, then the mean over the classes
    (``nan`` without a measured update).

    >>> d = np.tile([0.001, 0.001, 0.001, 0.001, 0.011], 40)  # every 5th update does 10 ms more
    >>> d[::7] = 0.5                                           # one update in 7 preempted
    >>> round(cell_step_seconds([np.cumsum(d)]), 6), round(float(d[1:].mean()), 4)
    (0.003, 0.0729)
    """
    d, k, _ = _durations(traces, period)
    if d.size == 0:
        return math.nan
    return float(np.mean([np.median(d[k == r]) for r in np.unique(k)]))


def cell_step_interval(traces: Sequence[Trace], *, level: float = DEFAULT_LEVEL, period: int = STEP_PERIOD,
                       n_resamples: int = 400, seed: int = 0) -> Interval:
    """:func:`cell_step_seconds` with its percentile bootstrap interval over the cell's
    trials (each resample draws the trials with replacement: a drawn trial's updates count
    as often as it was drawn, and each class median becomes a weighted median). One trial
    gives a zero-width interval: read it as unknown noise, not as none."""
    level = check_level(level)
    d, k, owner = _durations(traces, period)
    if d.size == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    point = cell_step_seconds(traces, period)
    n_trials = int(owner.max()) + 1
    counts = np.random.default_rng(seed).multinomial(n_trials, np.full(n_trials, 1.0 / n_trials), size=n_resamples)
    per_class = []
    for r in np.unique(k):
        order = np.argsort(d[k == r], kind="stable")
        values, who = d[k == r][order], owner[k == r][order]
        w = counts[:, who].astype(float)  # (B, n): each update weighted by its trial's draws
        cum = np.cumsum(w, axis=1)
        half = cum[:, -1:] / 2.0
        idx = np.minimum((cum < half).sum(axis=1), values.size - 1)
        per_class.append(np.where(cum[:, -1] > 0, values[idx], np.nan))
    boot = np.nanmean(np.stack(per_class, axis=1), axis=1)
    return percentile_interval(point, boot[np.isfinite(boot)], level)


def cells(trials: Iterable[TrialResult]) -> dict[tuple[str, str], list[TrialResult]]:
    """``trials`` grouped by cell, ``{(algorithm, workload_key): [trial, ...]}``."""
    out: dict[tuple[str, str], list[TrialResult]] = {}
    for t in trials:
        out.setdefault((t.spec.algorithm, scoring.workload_key(t.spec)), []).append(t)
    return out


def trial_step_seconds(trial: TrialResult) -> float:
    """The trial's own seconds per step kept at its end (``final_metrics[TRIAL_STEP_KEY]``),
    ``nan`` for a trial stored without it."""
    value = trial.final_metrics.get(TRIAL_STEP_KEY, math.nan)
    return float(value) if isinstance(value, (int, float)) else math.nan


def summarized(trials: Sequence[TrialResult]) -> bool:
    """Whether every trial keeps its seconds per step (:func:`trial_step_seconds`)."""
    return bool(trials) and all(math.isfinite(trial_step_seconds(t)) for t in trials)


def trace_step_costs(trials: Iterable[TrialResult], traces: Mapping[int, Trace],
                     period: int = STEP_PERIOD) -> dict[tuple[str, str], float]:
    """``{(algorithm, workload_key): seconds per step}`` of each cell, for
    ``scoring.with_step_costs(trials, costs)``: the median over the cell's trials of each
    trial's own seconds per step where every trial of the cell kept one (a trial run whole
    under load is outvoted, and no step row is read), else :func:`cell_step_seconds` of their
    traces (``traces[trial.id]``); a cell with neither is left out (``with_step_costs`` then
    uses ``scoring.step_costs``)."""
    out: dict[tuple[str, str], float] = {}
    for cell, ts in cells(trials).items():
        if summarized(ts):
            out[cell] = float(np.median([trial_step_seconds(t) for t in ts]))
            continue
        mine = [traces[t.id] for t in ts if t.id is not None and t.id in traces]
        if mine:
            out[cell] = cell_step_seconds(mine, period)
    return out


@dataclasses.dataclass(frozen=True)
class CellTiming:
    """One cell's times: ``cost_s`` (steps to target x the per-step cost), ``raw_s`` (the
    wall time as measured, AlgoPerf's rule on ``time_to_target_s``), both ``inf`` when
    missed; ``step_cost`` the seconds per step with its interval; ``trials`` counted."""

    cost_s: float
    raw_s: float
    step_cost: Interval
    trials: int

    @property
    def noise(self) -> float:
        """Relative half-width of the per-step cost interval, ``(high - low) / 2 / point``."""
        iv = self.step_cost
        if not (math.isfinite(iv.low) and math.isfinite(iv.high)) or iv.point <= 0:
            return math.nan
        return (iv.high - iv.low) / 2.0 / iv.point


def timing_table(trials: Iterable[TrialResult], traces: Mapping[int, Trace], *, level: float = DEFAULT_LEVEL,
                 seed: int = 0) -> dict[str, dict[str, CellTiming]]:
    """``{algorithm: {workload_key: CellTiming}}`` for a benchmark's scored trials
    (``Scores.trials``: ``spec.study_id`` is the study) and their traces by trial id: the
    cost-based time to target, the raw wall time and the per-step cost with its interval."""
    trials = list(trials)
    costs = trace_step_costs(trials, traces)
    cost = scoring.time_table(scoring.with_step_costs(trials, costs), measure="cost_s")
    raw = scoring.time_table(trials, measure="time_s")
    out: dict[str, dict[str, CellTiming]] = {}
    for (a, w), ts in sorted(cells(trials).items()):
        mine = [traces[t.id] for t in ts if t.id is not None and t.id in traces]
        iv = cell_step_interval(mine, level=level, seed=seed)
        out.setdefault(a, {})[w] = CellTiming(cost[a][w], raw[a][w], iv, len(ts))
    return out


__all__ = ["STEP_PERIOD", "TRIAL_STEP_KEY", "UNTIMED_KEY", "CellTiming", "cell_step_interval", "cell_step_seconds", "cells",
           "summarized", "timing_table", "trace_step_costs", "trial_step_seconds"]
