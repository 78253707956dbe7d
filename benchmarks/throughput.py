"""Trials per second of the process pool and Ray against running trials one by one.

Runs one batch of 8 short CPU trials (digits-mlp, teacher-student, logreg; one torch
thread each, trained to the end of the budget) three ways, each batch into its own
temporary SQLite store, and prints wall times and throughput ratios against the serial run.
Each trial's budget is calibrated to take about ``--seconds`` on one core of this machine (a
probe run per workload), so the batch is balanced: 8 equal trials on 2 workers end together,
and the ratios measure the executor, not how the batch happens to split (the fixed budgets of
``--seconds 0 --scale S`` took 0.7-1.4 s each at ``--scale 0.5`` on this machine in December
2026, a spread that alone caps a 2-worker ratio near 1.91). The executors:

* ``serial``: :class:`~steplab.training.executors.SerialExecutor` in this process;
* ``pool``: :class:`~steplab.training.executors.ProcessPoolExecutor` with ``--workers`` processes;
* ``ray``: :class:`~steplab.training.executors.RayExecutor` (an actor pool) on a local Ray
  instance with ``--workers`` CPUs (skipped when Ray is not installed).

Each executor is measured in its own block, one after the other (so Ray's background
processes never share the cores with the pool): its first batch is the **cold** run, which
counts starting the workers (spawning, importing torch and steplab, ``ray.init``) as a
one-command CLI run would, and ``first_s`` is the wait for its first result; then
``--rounds`` rounds of a serial batch followed by a **warm** batch on the same, warm,
executor. ``warm_x`` is each round's serial time over the executor's (the two ran
back to back, under the same load), printed as median [min, max] over the rounds; the
times are min / median / max. ``cold_x`` is (serial time + the lazy imports of a first
trial in a fresh process) over the cold run. The goal: ``warm_x`` at least 1.9 (pool) and
1.8 (Ray) with 2 workers on 2 free cores.

``cpu_x``: the serial batch's CPU seconds over the warm batch's, counting every process of
the executor (workers, and Ray's own processes): 1.0 means no overhead, and ``workers x
cpu_x`` about the most it can reach on free cores (a measure that a busy machine disturbs less).
``others``: the cores that processes outside this benchmark (and its workers) kept busy
during the timed runs (median over them), from /proc. On a shared machine they take cores
and every ratio drops: trust a row whose ``others`` is near 0. The load average is printed
before and after, and the processes a local Ray instance runs.

Usage::

    .venv/bin/python benchmarks/throughput.py
    .venv/bin/python benchmarks/throughput.py --workers 4 --seconds 4 --rounds 5
    .venv/bin/python benchmarks/throughput.py --seconds 0 --scale 0.5   # the fixed budgets
    .venv/bin/python benchmarks/throughput.py --no-pool     # Ray only
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from steplab.algorithms import get_algorithm
from steplab.training.executors import Executor, ProcessPoolExecutor, RayExecutor, SerialExecutor
from steplab.training.jobs import Job, execute

#: (workload, budget_steps, lr): the fixed batch of ``--seconds 0`` (about 4-5 s each on one
#: free core at ``--scale 1`` when written; 1.5-2.8 s by December 2026)
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


def make_jobs(scale: float, seed: int = 0, budgets: dict[str, int] | None = None) -> list[Job]:
    """The batch with every budget times ``scale``, or each workload's budget from ``budgets``."""
    algo = get_algorithm("adamw-cosine")
    return [
        Job(
            workload=workload,
            variant="base",
            budget_steps=budgets[workload] if budgets else max(1, round(budget * scale)),
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


def calibrated_budgets(seconds: float, probe_scale: float = 0.1) -> dict[str, int]:
    """Each workload's budget for a trial of about ``seconds`` here: a probe trial (no store)
    at ``probe_scale`` of the fixed budget, its time per step (a trial's fixed cost included,
    which the calibrated trial pays too, once) scaled up."""
    budgets: dict[str, int] = {}
    for job in make_jobs(probe_scale):
        if job.workload in budgets:
            continue
        t0 = time.perf_counter()
        execute(job, None)
        per_step = (time.perf_counter() - t0) / job.budget_steps
        budgets[job.workload] = max(20, round(seconds / per_step))
    return budgets


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


def timed_run(executor: Executor, jobs: list[Job], db: Path) -> tuple[float, float, float, float]:
    """(wall seconds, seconds to the first result, cores other processes took meanwhile, CPU
    seconds of this process and its descendants (Ray's processes included): NaN where
    unknown)."""
    before = cpu_seconds()
    t0 = time.perf_counter()
    first = math.nan
    results = []
    for result in executor.run(jobs, str(db)):
        if not results:
            first = time.perf_counter() - t0
        results.append(result)
    wall = time.perf_counter() - t0
    after = cpu_seconds()
    if len(results) != len(jobs):
        raise SystemExit(f"{type(executor).__name__}: {len(results)} results for {len(jobs)} jobs")
    others = cpu = math.nan
    if before is not None and after is not None:
        cpu = after[1] - before[1]
        others = max(0.0, (after[0] - before[0]) - cpu) / wall
    return wall, first, others, cpu


def spread(values: list[float], digits: int = 1) -> str:
    """``min/median/max``."""
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{lo:.{digits}f}/{mid:.{digits}f}/{hi:.{digits}f}"


def ray_processes() -> str:
    """The names of this process's descendants: what a local Ray instance runs."""
    names = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            pid, ppid = int(entry), 0
            while pid > 1 and pid != os.getpid():
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                pid = ppid
            if pid != os.getpid():
                continue
            with open(f"/proc/{entry}/cmdline") as f:
                argv = f.read().split("\0")
        except (OSError, ValueError):
            continue
        name = argv[0].rsplit("/", 1)[-1]
        if name.startswith("python") and len(argv) > 1:
            script = next((a for a in argv[1:] if a.endswith(".py")), argv[1])
            name = script.rsplit("/", 1)[-1]
        names.append(name)
    return ", ".join(sorted(names)) or "none seen"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="each trial's length on one core, budgets calibrated here (0: the fixed budgets x --scale)")
    parser.add_argument("--scale", type=float, default=0.5, help="with --seconds 0: multiply every fixed budget")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds per executor")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-pool", action="store_true", help="measure Ray only (a shorter run)")
    args = parser.parse_args()
    if args.seconds < 0:
        raise SystemExit(f"--seconds must be >= 0, got {args.seconds}")

    print(f"cores: {os.cpu_count()}, load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def dbs() -> Iterator[Path]:
            while True:
                yield Path(tmp) / f"run{next(counter)}.db"

        db = dbs()
        # the lazy imports of a first trial (a 0.5%-budget trial per workload family)
        t0 = time.perf_counter()
        for job in make_jobs(0.005)[::3]:
            execute(job, None)
        lazy = time.perf_counter() - t0
        jobs = make_jobs(args.scale, budgets=calibrated_budgets(args.seconds) if args.seconds else None)
        print(
            f"batch: {len(jobs)} trials, " + ", ".join(f"{j.workload}/{j.budget_steps}" for j in jobs)
            + (f" (about {args.seconds:g} s each)" if args.seconds else f" (fixed budgets x {args.scale:g})")
            + f"; {args.rounds} warm rounds per executor", flush=True,
        )

        candidates: list[tuple[str, type[Executor]]] = []
        if not args.no_pool:
            candidates.append(("pool", ProcessPoolExecutor))
        if not args.no_ray:
            candidates.append(("ray", RayExecutor))
        print(
            f"{'executor':<9}{'workers':>8}{'serial_s':>16}{'warm_s':>16}{'warm_x':>20}"
            f"{'cold_s':>8}{'first_s':>8}{'cold_x':>8}{'cpu_x':>7}{'others':>8}",
            flush=True,
        )
        processes = "not started"
        for name, cls in candidates:
            try:
                executor = cls(workers=args.workers)  # type: ignore[call-arg]
            except Exception as e:  # Ray missing: say so and go on
                print(f"{name:<8} skipped: {e}")
                continue
            serial_s: list[float] = []
            warm_s: list[float] = []
            others: list[float] = []
            serial_cpu: list[float] = []
            warm_cpu: list[float] = []
            with executor:
                cold, first, other, _ = timed_run(executor, jobs, next(db))
                others.append(other)
                if name == "ray":
                    processes = ray_processes()
                for _ in range(args.rounds):
                    wall, _, other, cpu = timed_run(SerialExecutor(), jobs, next(db))
                    serial_s.append(wall)
                    others.append(other)
                    serial_cpu.append(cpu)
                    wall, _, other, cpu = timed_run(executor, jobs, next(db))
                    warm_s.append(wall)
                    others.append(other)
                    warm_cpu.append(cpu)
            ratios = [s / w for s, w in zip(serial_s, warm_s)]
            cpu_x = statistics.median(s / w for s, w in zip(serial_cpu, warm_cpu))
            cold_x = (lazy + statistics.median(serial_s)) / cold
            warm_x = f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"
            print(  # each row as soon as it is measured
                f"{name:<9}{args.workers:>8}{spread(serial_s):>16}{spread(warm_s):>16}{warm_x:>20}"
                f"{cold:>8.1f}{first:>8.1f}{cold_x:>8.2f}{cpu_x:>7.2f}{statistics.median(others):>8.2f}",
                flush=True,
            )

    if not args.no_ray:
        print(f"the local Ray instance ran: {processes}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
