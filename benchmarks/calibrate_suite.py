"""Calibrate a suite entry's target under external tuning: what the baselines' *search
spaces* reach, not what one tuned learning rate reaches (``calibrate_targets.py``).

A suite target must be reached reliably by a tuned baseline (the best of ``N`` quasi-random
draws from its search space, AlgoPerf external tuning, Dahl et al. 2023, arXiv 2306.07179,
§4.2.1) and still let the algorithms differ. This script runs exactly the trials a
benchmark would (``steplab.studies.bench.plan``: the same QMC draws and seeds for a given
``--seed``), but each to its full budget (``stop_at_target`` off), then reads every trial's
evaluation curve and prints, for a ladder of candidate targets, per algorithm how many
studies reach it (best of ``N``) and the median step at which they do. Time to target at
any candidate follows from one set of runs, because a run stopped at a target is the same
run up to that point.

Use a ``--seed`` other than the benchmark's own (the default 100; the benchmark's studies
use QMC seeds ``seed + s``) so that the targets are not fitted to the benchmark's draws.
Every run uses one thread; ``--procs`` runs that many at once.

Usage::

    .venv/bin/python benchmarks/calibrate_suite.py mnist1d@400 --trials 2 --studies 2
    .venv/bin/python benchmarks/calibrate_suite.py shakespeare-char@150 --trials 2 --studies 1
    .venv/bin/python benchmarks/calibrate_suite.py digits-mlp logreg teacher-student --trials 2 --studies 2

An entry is ``workload[:variant][@budget_steps]``; the target metric and mode are the
workload's own; one workload key per run (calibrate two budgets of it in two runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from steplab.store import open_store
from steplab.studies import bench

ALGORITHMS = ("adamw-cosine", "nadamw-cosine", "adamw-wsd", "schedulefree-adamw", "sgd-nesterov-cosine",
              "lion-cosine")


def parse_entry(text: str) -> bench.SuiteEntry:
    """``"mnist1d:mlp@600"`` -> a suite entry with that budget (the workload's own target)."""
    key, _, budget = text.partition("@")
    name, _, variant = key.partition(":")
    return bench.SuiteEntry(name, variant or "base", budget_steps=int(budget) if budget else None)


def _run(args: tuple[Any, str]) -> tuple[str, float]:
    import torch

    from steplab.training import jobs

    torch.set_num_threads(1)
    job, db = args
    r = jobs.execute(job, db)
    return r.status, r.train_time_s


def crossing(curve: list[tuple[int, float, float]], value: float, mode: str) -> tuple[float, float]:
    """(step, training seconds) of the first evaluation at or past ``value``; inf if none."""
    for step, time_s, v in curve:
        if (v >= value) if mode == "max" else (v <= value):
            return float(step), float(time_s)
    return math.inf, math.inf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("entries", nargs="+", help="workload[:variant][@budget_steps]")
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--trials", type=int, default=2, help="tuning trials per study (N)")
    ap.add_argument("--studies", type=int, default=2)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--db", default="benchmarks/out/calibrate_suite.db", help="resumable: runs already stored are kept")
    ap.add_argument("--levels", type=int, default=9, help="candidate targets per entry")
    args = ap.parse_args()
    entries = tuple(parse_entry(e) for e in args.entries)
    if len({e.key for e in entries}) < len(entries):
        ap.error("each workload once per run: calibrate its other budgets in another run")
    if "://" not in args.db:
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    spec = bench.BenchSpec(algorithms=tuple(args.algorithms.split(",")), trials=args.trials, studies=args.studies,
                           seed=args.seed, workloads=entries, name=f"calibrate-{args.seed}-{args.trials}x{args.studies}-"
                           + "-".join(e.key + f"@{e.build().budget_steps}" for e in entries))
    with open_store(args.db) as store:
        b = bench.open_benchmark(spec, store)
    todo = [dataclasses.replace(j, stop_at_target=False) for j in b.jobs]
    with open_store(args.db) as store:
        done = {t.spec.key() for t in store.list_trials(study_id=b.study_id) if t.status != "running"}
    todo = [j for j in todo if j.key() not in done]
    t0 = time.perf_counter()
    if todo:
        with mp.get_context("spawn").Pool(args.procs) as pool:
            for i, _ in enumerate(pool.imap_unordered(_run, [(j, args.db) for j in todo]), 1):
                print(f"\r{i}/{len(todo)} runs ({time.perf_counter() - t0:.0f} s)", end="", flush=True)
        print()
    with open_store(args.db) as store:
        trials = [t for t in store.list_trials(study_id=b.study_id) if t.status in ("reached", "budget")]
        curves = {}
        for t in trials:
            wl = bench.SuiteEntry(t.spec.workload, t.spec.variant, t.spec.budget_steps).build()
            curves[t.id] = [(e.step, e.time_s, e.value) for e in store.evals(t.id) if e.metric == wl.target.metric]
    for entry in entries:
        wl = entry.build()
        metric, mode = wl.target.metric, wl.target.mode
        mine = [t for t in trials if (t.spec.workload, t.spec.variant) == (entry.workload, entry.variant)]
        sign = 1.0 if mode == "max" else -1.0
        best = {}  # (algorithm, study) -> best final value of the study (best of N)
        for t in mine:
            s = t.spec.index // args.trials
            final = max((sign * v for _, _, v in curves[t.id]), default=-math.inf) * sign
            k = (t.spec.algorithm, s)
            best[k] = final if k not in best else (max if mode == "max" else min)(best[k], final)
        ms = statistics.median(1e3 * t.train_time_s / max(1, t.steps) for t in mine)
        print(f"\n== {entry.key} @ {wl.budget_steps} steps ({len(mine)} runs, {ms:.2f} ms/step median, "
              f"eval every {wl.eval_every}); {metric} ({mode}), the workload's own target {wl.target.value:g}")
        print("best of N per study, worst study:",
              ", ".join(f"{a} {min(v for (x, _), v in best.items() if x == a) if mode == 'max' else max(v for (x, _), v in best.items() if x == a):.4f}"
                        for a in spec.algorithms))
        values = sorted(best.values(), key=lambda v: -sign * v)
        ladder = np.unique(np.quantile(values, np.linspace(0.0, 1.0, args.levels)))
        head = f"{'target':>9} " + " ".join(f"{a[:14]:>14}" for a in spec.algorithms)
        print(head + "   cells reached")
        for value in ladder[::-1] if mode == "max" else ladder:
            cells = []
            reached = 0
            for a in spec.algorithms:
                per_study = []
                for s in range(args.studies):
                    runs = [t for t in mine if t.spec.algorithm == a and t.spec.index // args.trials == s]
                    per_study.append(min((crossing(curves[t.id], float(value), mode)[0] for t in runs), default=math.inf))
                hit = [x for x in per_study if math.isfinite(x)]
                reached += len(hit)
                med = statistics.median(per_study) if len(hit) * 2 > len(per_study) else math.inf
                cells.append(f"{len(hit)}/{len(per_study)} {('@' + format(med, '.0f')) if math.isfinite(med) else 'miss':>8}")
            print(f"{value:9.4f} " + " ".join(f"{c:>14}" for c in cells) + f"   {reached}/{len(spec.algorithms) * args.studies}")
    print(f"\n{len(todo)} runs in {time.perf_counter() - t0:.0f} s on {args.procs} processes")


if __name__ == "__main__":
    main()
