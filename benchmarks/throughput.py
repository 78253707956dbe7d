"""Trials per second of the process pool and Ray against running trials one by one.

Runs one fixed batch of 8 short CPU trials (digits-mlp, teacher-student, logreg; one torch
thread each, trained to the end of the budget) three ways, each into its own temporary
SQLite store, and prints the wall times and the throughput ratio against the serial run:

* ``serial``: :class:`~steplab.training.executors.SerialExecutor` in this process;
* ``pool``: :class:`~steplab.training.executors.ProcessPoolExecutor` with ``--workers`` processes;
* ``ray``: :class:`~steplab.training.executors.RayExecutor` on a local Ray instance with
  ``--workers`` CPUs (skipped when Ray is not installed).

Pool and Ray run the batch twice on the same executor: ``cold_s`` counts starting the
workers (spawning, importing torch and steplab, ``ray.init``, the first trial's lazy
imports) as a one-command CLI run would; ``warm_s`` is the steady state of a long
benchmark. Serial ``cold_s`` adds the lazy imports of a first trial in this process (torch
and steplab are already imported, as in the CLI). ``cold_x``/``warm_x``: serial time over
this executor's time. The goal is a ratio of at least 1.8 with 2 workers on 2 free cores.
``others``: the cores that processes outside this benchmark (and its workers) kept busy
during each timed run (cold/warm), from /proc: on a shared machine they take cores and the
ratios drop (Ray runs its workers at niceness 15, so they lose most). Trust a row whose
``others`` is near 0.

Usage::

    .venv/bin/python benchmarks/throughput.py
    .venv/bin/python benchmarks/throughput.py --workers 4 --scale 0.5
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

from steplab.algorithms import get_algorithm
from steplab.training.executors import Executor, ProcessPoolExecutor, RayExecutor, SerialExecutor
from steplab.training.jobs import Job, execute

#: (workload, budget_steps, lr): about 4-5 s each on one free core, ~40 s in all
BATCH = [
    ("digits-mlp", 4000, 3e-3),
    ("digits-mlp", 4000, 1e-2),
    ("digits-mlp", 4000, 3e-2),
    ("teacher-student", 5500, 3e-3),
    ("teacher-student", 5500, 1e-2),
    ("teacher-student", 5500, 3e-2),
    ("logreg", 11000, 3e-2),
    ("logreg", 11000, 1e-1),
]


def make_jobs(scale: float, seed: int = 0) -> list[Job]:
    algo = get_algorithm("adamw-cosine")
    return [
        Job(
            workload=workload,
            variant="base",
            budget_steps=max(1, round(budget * scale)),
            target=None,
            algorithm=algo.with_hyperparameters({"lr": lr}).to_dict(),
            seed=seed,
            study_id=None,
            index=i,
            stop_at_target=False,
            device="cpu",
            threads=1,
        )
        for i, (workload, budget, lr) in enumerate(BATCH)
    ]


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the machine spent busy, CPU seconds of this process and its descendants,
    reaped ones included) from Linux's /proc; ``None`` elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait (steal counts)
        parent: dict[int, int] = {}
        ticks: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry)
            parent[pid] = int(rest[1])
            ticks[pid] = float(rest[11]) + float(rest[12])  # utime + stime
            if pid == os.getpid():
                ticks[pid] += float(rest[13]) + float(rest[14])  # + reaped children
        ours = 0.0
        for pid, own in ticks.items():
            p = pid
            while p > 1 and p != os.getpid():
                p = parent.get(p, 0)
            if p == os.getpid():
                ours += own
        return busy / _TICK, ours / _TICK
    except (OSError, ValueError, IndexError):
        return None


def timed_run(executor: Executor, jobs: list[Job], db: Path) -> tuple[float, float]:
    """(wall seconds, cores other processes took meanwhile: NaN where unknown)."""
    before = cpu_seconds()
    t0 = time.perf_counter()
    results = list(executor.run(jobs, str(db)))
    wall = time.perf_counter() - t0
    after = cpu_seconds()
    if len(results) != len(jobs):
        raise SystemExit(f"{type(executor).__name__}: {len(results)} results for {len(jobs)} jobs")
    others = math.nan
    if before is not None and after is not None:
        others = max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / wall
    return wall, others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    jobs = make_jobs(args.scale)

    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    print(
        f"batch: {len(jobs)} trials, " + ", ".join(f"{j.workload}/{j.budget_steps}" for j in jobs)
    )
    header = (
        f"{'executor':<10}{'workers':>8}{'cold_s':>9}{'warm_s':>9}{'cold_x':>8}{'warm_x':>8}"
        f"{'others':>12}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        dbs = iter(Path(tmp) / f"run{i}.db" for i in range(100))

        # serial cold = the lazy imports of a first trial (a 0.5%-budget trial per workload
        # family) + the batch; serial warm = the batch alone
        t0 = time.perf_counter()
        for job in make_jobs(0.005)[::3]:
            execute(job, None)
        warmup = time.perf_counter() - t0
        serial, others = timed_run(SerialExecutor(), jobs, next(dbs))
        print(header)
        print(
            f"{'serial':<10}{1:>8}{warmup + serial:>9.1f}{serial:>9.1f}{1.0:>8.2f}{1.0:>8.2f}"
            f"{others:>12.2f}"
        )

        candidates: list[tuple[str, type[Executor]]] = [("pool", ProcessPoolExecutor)]
        if not args.no_ray:
            candidates.append(("ray", RayExecutor))
        for name, cls in candidates:
            try:
                executor = cls(workers=args.workers)  # type: ignore[call-arg]
            except Exception as e:  # Ray missing: say so and go on
                print(f"{name:<10} skipped: {e}")
                continue
            with executor:
                cold, others_cold = timed_run(executor, jobs, next(dbs))
                warm, others_warm = timed_run(executor, jobs, next(dbs))
            print(
                f"{name:<10}{args.workers:>8}{cold:>9.1f}{warm:>9.1f}"
                f"{(warmup + serial) / cold:>8.2f}{serial / warm:>8.2f}"
                f"{f'{others_cold:.2f}/{others_warm:.2f}':>12}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
