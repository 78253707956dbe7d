"""What the sweep benchmarks (``refine.py``, ``predict.py``) share: an algorithm at a
workload's tuned settings, resumable runs labelled in one store, and their command line.

A run is a job tuple ``(db, *fields)`` whose label (the trial's ``name`` in the store) is
``label(*fields)``; jobs whose label is already finished in the store are skipped, so a
killed sweep resumes."""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steplab import algorithms, workloads
from steplab.analysis.intervals import Interval, percentile_interval
from steplab.store import open_store


def algorithm_at(name: str, workload: Any, lr: float) -> algorithms.ResolvedAlgorithm:
    """Built-in algorithm ``name`` with the workload's default hyperparameters and peak ``lr``;
    a ``beta2`` the workload sets replaces the algorithm's ``one_minus_beta2`` (both at once
    is an error of ``with_hyperparameters``)."""
    hp = {k: v for k, v in workload.default_hyperparameters.items() if k != "lr"}
    algo = algorithms.get_algorithm(name)
    defaults = {k: v for k, v in algo.defaults().items()
                if not (k.startswith("one_minus_") and k.removeprefix("one_minus_") in hp)}
    return algo.with_hyperparameters({**defaults, **hp, "lr": lr})


def workload_at(key: str, overrides: dict[str, tuple[int | None, Any]], evals: int) -> Any:
    """Workload ``key`` with its (budget, target) override from ``overrides`` and ``evals``
    evaluations per budget."""
    budget, target = overrides[key]
    wl = workloads.get(key, budget_steps=budget, target=target)
    wl.evals_per_budget = evals
    return wl


def find(store: Any, label: str, status: Sequence[str] | None = None) -> Any:
    """The newest trial labelled ``label`` (optionally with one of ``status``), or None."""
    found = store.list_trials(name=label, status=status)
    return found[-1] if found else None


def execute(db: str, jobs: Sequence[tuple], label: Callable[..., str], run: Callable[[tuple], tuple[str, float]],
            procs: int) -> None:
    """Run the jobs not yet finished in ``db`` on ``procs`` spawned processes, printing each."""
    with open_store(db) as store:
        done = {store.trial_info(t.id)["name"] for t in store.list_trials(
            status=("reached", "budget", "diverged", "failed"))}
    todo = [j for j in jobs if label(*j[1:]) not in done]
    if not todo:
        return
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(procs) as pool:
        for i, (name, dt) in enumerate(pool.imap_unordered(run, todo), 1):
            print(f"  [{i}/{len(todo)}] {name} {dt:.1f}s (elapsed {time.perf_counter() - t0:.0f}s)", flush=True)


@dataclasses.dataclass
class Cell:
    """One method at one lr over the seeds: steps to target (inf = missed) and final
    validation loss of each seed; AutoLRS's search cost when it has one."""

    steps: list[float]
    final_loss: list[float]
    search_steps: list[float] = dataclasses.field(default_factory=list)
    search_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def reached(self) -> int:
        return sum(math.isfinite(s) for s in self.steps)

    @property
    def median_steps(self) -> float:
        return statistics.median(self.steps) if self.steps else math.inf

    def rank(self) -> tuple[float, float, float]:
        """Tuned = most seeds reaching the target, then fewest median steps, then lowest loss."""
        loss = statistics.fmean(self.final_loss) if self.final_loss else math.inf
        return (-self.reached, self.median_steps, loss if math.isfinite(loss) else math.inf)


def fmt_steps(c: Cell, n: int) -> str:
    m = c.median_steps
    return f"{m:6.0f} ({c.reached}/{n})" if math.isfinite(m) else f"  miss ({c.reached}/{n})"


def fmt_loss(c: Cell) -> str:
    finite = [x for x in c.final_loss if math.isfinite(x)]
    if not finite:
        return "diverged"
    sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{statistics.fmean(finite):.4f} +- {sd:.4f}"


def ratio_ci(a: Sequence[float], b: Sequence[float], *, stat: str = "median", level: float = 0.9,
             n_resamples: int = 4000, seed: int = 0) -> Interval:
    """``stat(a) / stat(b)`` over seeds with its percentile bootstrap interval (seeds of ``a``
    and of ``b`` resampled independently, ``steplab.analysis.intervals.percentile_interval``;
    a miss is ``inf`` and sorts last, so an end can be ``inf``). An interval that holds 1 is
    a tie. With 3 seeds the interval is lumpy and too narrow rather than too wide: read a
    tie as a tie, a separation as a hint to run more seeds."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    f = (lambda v, axis=-1: np.median(v, axis=axis)) if stat == "median" else (lambda v, axis=-1: np.mean(v, axis=axis))
    rng = np.random.default_rng(seed)
    xs = f(x[rng.integers(0, x.size, (n_resamples, x.size))])
    ys = f(y[rng.integers(0, y.size, (n_resamples, y.size))])
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(np.isinf(xs) & np.isinf(ys), np.nan, xs / ys)
    fx, fy = float(f(x)), float(f(y))
    point = math.nan if math.isinf(fx) and math.isinf(fy) else (math.inf if math.isinf(fx) else fx / fy)
    boot = boot[~np.isnan(boot)]  # resamples where both missed say nothing about the ratio
    return percentile_interval(point, boot, level) if boot.size else Interval(point, math.nan, math.nan, level)


def fmt_ci(iv: Interval) -> str:
    """``[low, high]`` of a ratio interval, with ``~`` when it holds 1 (a tie)."""
    if math.isnan(iv.low):
        return "[   -  ,    -  ] "
    mark = "~" if iv.contains(1.0) else " "
    return f"[{iv.low:6.3f}, {iv.high:6.3f}]{mark}"


def ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


def parse_args(doc: str, workloads: Sequence[str], db: str,
               flags: Sequence[tuple[str, str]] = (),
               options: Sequence[tuple[str, str]] = ()) -> argparse.Namespace:
    """``[workloads...] --seeds 3 --procs 2 --db PATH``, any on/off ``flags`` and any
    ``options`` taking a value (default None), each given as ``(name, help)`` (the
    database's folder is created)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", default=list(workloads))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--db", default=db)
    for name, text in flags:
        parser.add_argument(name, action="store_true", help=text)
    for name, text in options:
        parser.add_argument(name, default=None, help=text)
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    return args
