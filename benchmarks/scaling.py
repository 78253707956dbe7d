"""How the store, the report and the benchmark planner scale with the number of trials.

Measures, on synthetic benchmarks written straight through the ``Store`` API (no training):

* ``write``: store write throughput, trace rows per second (``Store.append_steps`` of
  1,000-row batches, the Recorder's flush path), on SQLite and on a throwaway PostgreSQL
  server (as the store tests start one; skipped where PostgreSQL is absent);
* ``report``: ``steplab report --html`` on a benchmark study of 100, 1,000 and 10,000
  finished trials of 1,000 steps each (4 algorithms x 5 workloads x 5 studies x N points),
  wall seconds and peak RSS of the child process (``getrusage(RUSAGE_CHILDREN)`` of a fresh
  wrapper per run), and the HTML's size;
* ``runs list``: ``steplab runs list`` on the same databases (a child process);
* ``plan``: ``open_benchmark`` of the same spec on the stored study (planning the jobs and
  checking which keys are done: every job is done, so ``todo`` is empty), once per size, in a
  fresh process (its imports included).

For every cost it prints the fitted exponent b of cost ~ n^b (least squares on log-log
over the sizes): b <= 1 is at most linear. Goals (issue 22): the report in at most 10 s and
1 GiB at 10,000 trials.

The databases are cached under ``benchmarks/out/scaling/`` (git ignores ``benchmarks/out``),
so a rerun only measures; the 10,000-trial one (10 M step rows, ~1 GB) takes minutes to
write once: run it under ``nice``.

Usage::

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/scaling.py
    .venv/bin/python benchmarks/scaling.py --sizes 100 1000 --repeats 3 --no-postgres
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "scaling"
ROOT = Path(__file__).resolve().parents[1]
STEPLAB = [str(Path(sys.executable).parent / "steplab")]
ALGORITHMS = ("adamw-cosine", "nadamw-cosine", "sgd-nesterov-cosine", "adamw-linear")
WORKLOADS = (("logreg", "validation/loss", 0.37, "min"), ("teacher-student", "validation/loss", 0.03, "min"),
             ("digits-mlp", "validation/accuracy", 0.96, "max"), ("mnist1d", "validation/accuracy", 0.6, "max"),
             ("modarith", "validation/accuracy", 0.9, "max"))
STUDIES = 5
STEPS = 1000
EVAL_EVERY = 100


def bench_spec(points: int):  # -> BenchSpec
    """4 algorithms x 5 workloads x 5 studies x ``points`` hyperparameter points, 1,000 steps."""
    from steplab.studies.bench import BenchSpec, SuiteEntry

    entries = tuple(SuiteEntry(w, budget_steps=STEPS, target={"metric": m, "value": v, "mode": mode})
                    for w, m, v, mode in WORKLOADS)
    return BenchSpec(suite="quick", algorithms=ALGORITHMS, trials=points, studies=STUDIES, workloads=entries,
                     name=f"scaling-{points}")


def synthetic_trial(job, rng: np.random.Generator):  # -> (TrialResult, steps, evals)
    """A finished trial for ``job`` with a plausible trace: a loss decaying with noise, a
    cosine lr, norms, an evaluation every 100 steps, and the final metrics ``run_trial``
    writes (``time/s_per_step``, ``best/METRIC``, the target metric)."""
    from steplab.results import EvalRow, StepRow, TrialResult

    spec = job.trial_spec()
    target = job.target
    s_per_step = float(rng.lognormal(np.log(2e-3), 0.3))
    t = np.cumsum(s_per_step * rng.lognormal(0.0, 0.1, STEPS))
    k = np.arange(1, STEPS + 1)
    loss = 2.0 * np.exp(-k / rng.uniform(100, 600)) + 0.3 + 0.02 * rng.standard_normal(STEPS)
    lr = 0.5 * (1 + np.cos(np.pi * k / STEPS)) * job.algorithm["lr"]
    gn = np.abs(1.0 + 0.1 * rng.standard_normal(STEPS))
    steps = [StepRow(int(i), float(a), float(b), float(c), float(d), float(3 * d), float(b * d))
             for i, a, b, c, d in zip(k, t, lr, loss, gn)]
    reach = int(rng.integers(50, 2 * STEPS))  # about half reach the target
    reached = reach <= STEPS
    sign = 1.0 if target["mode"] == "max" else -1.0
    evals, best = [], None
    for e in range(EVAL_EVERY, STEPS + 1, EVAL_EVERY):
        value = target["value"] + sign * 0.01 * (e - reach) / STEPS
        best = value if best is None else (max(best, value) if sign > 0 else min(best, value))
        evals.append(EvalRow(e, float(t[e - 1]), "validation", target["metric"], float(value)))
    stop = min(reach, STEPS) if reached else STEPS
    metric = target["metric"]
    result = TrialResult(
        spec=spec, status="reached" if reached else "budget", steps=stop, train_time_s=float(t[stop - 1]),
        eval_time_s=0.01 * len(evals), time_to_target_s=float(t[reach - 1]) if reached else math.inf,
        steps_to_target=float(reach) if reached else math.inf,
        final_metrics={metric: float(evals[-1].value), f"best/{metric}": float(best), "train/loss": float(loss[-1]),
                       "time/s_per_step": s_per_step},
    )
    return result, steps[:stop] if reached else steps, evals


def generate(points: int) -> Path:
    """The database of the ``points`` benchmark, written once (cached under ``OUT``)."""
    from steplab.store import open_store
    from steplab.studies.bench import open_benchmark

    path = OUT / f"bench-{points}.db"
    done = path.with_suffix(".json")
    if done.exists() and path.exists():
        return path
    for p in OUT.glob(f"bench-{points}.db*"):
        p.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(points)
    t0 = time.perf_counter()
    with open_store(path) as store:
        bench = open_benchmark(bench_spec(points), store)
        for job in bench.jobs:
            result, steps, evals = synthetic_trial(job, rng)
            store.import_trial(result, steps, evals)
    elapsed = time.perf_counter() - t0
    done.write_text(json.dumps({"trials": len(bench.jobs), "generate_s": elapsed}))
    print(f"# generated {len(bench.jobs)} trials in {elapsed:.0f} s: {path}", flush=True)
    return path


def child(cmd: list[str]) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MiB, stdout bytes and CPU seconds (user + system) of
    ``cmd`` run in a fresh wrapper process (so ``RUSAGE_CHILDREN`` holds this command only)."""
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "t = time.perf_counter(); r = subprocess.run(sys.argv[1:], capture_output=True)\n"
               "w = time.perf_counter() - t\n"
               "if r.returncode: sys.stderr.write(r.stderr.decode()); sys.exit(r.returncode)\n"
               "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "print(json.dumps([w, u.ru_maxrss / 1024, len(r.stdout), u.ru_utime + u.ru_stime]))")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall, rss, size, cpu = json.loads(out.stdout)
    return float(wall), float(rss), int(size), float(cpu)


def plan_seconds(path: Path, points: int) -> tuple[float, int]:
    """Seconds to open the stored benchmark and find what is left to run (in a child)."""
    out = subprocess.run([sys.executable, __file__, "--plan-child", str(path), str(points)], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds, jobs, todo = json.loads(out.stdout)
    assert todo == 0, f"{todo} of {jobs} jobs not found done"
    return float(seconds), int(jobs)


def plan_child(path: str, points: int) -> None:
    """The child of :func:`plan_seconds`: prints ``[seconds, jobs, jobs to do]``."""
    from steplab.store import open_store
    from steplab.studies.bench import open_benchmark

    t0 = time.perf_counter()
    with open_store(path) as store:
        bench = open_benchmark(bench_spec(points), store)
        todo = len(bench.todo)
    print(json.dumps([time.perf_counter() - t0, len(bench.jobs), todo]))


def write_rate(url: str, trials: int = 20) -> float:
    """Trace rows per second of ``append_steps`` (1,000-row batches, one trial each)."""
    from steplab.results import StepRow, TrialSpec
    from steplab.store import open_store

    rows = [StepRow(i, 1e-3 * i, 1e-3, 1.0 / i, 0.5, 1.5, 1e-4) for i in range(1, STEPS + 1)]
    with open_store(url) as store:
        ids = []
        for i in range(trials):
            spec = TrialSpec("logreg", "base", "mine", {"name": "mine", "lr": 1e-3}, {}, i, STEPS)
            ids.append(store.start_trial(spec))
        t0 = time.perf_counter()
        for tid in ids:
            store.append_steps(tid, rows)
        return trials * STEPS / (time.perf_counter() - t0)


def exponent(ns: list[int], costs: list[float]) -> float:
    """b of cost ~ a n^b, least squares on log-log."""
    if len(ns) < 2:
        return math.nan
    return float(np.polyfit(np.log(ns), np.log(costs), 1)[0])


def main() -> None:
    if sys.argv[1:2] == ["--plan-child"]:
        plan_child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="trials per benchmark")
    ap.add_argument("--repeats", type=int, default=3, help="runs per timed command (min/median/max)")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--only-generate", action="store_true")
    args = ap.parse_args()
    per_cell = len(ALGORITHMS) * len(WORKLOADS) * STUDIES
    paths = {n: generate(max(1, n // per_cell)) for n in args.sizes}
    for n, p in paths.items():
        meta = json.loads(p.with_suffix(".json").read_text())
        print(f"# {n} trials: {p.stat().st_size / 2**20:.0f} MiB, generated once in {meta['generate_s']:.0f} s")
    if args.only_generate:
        return
    print(f"# load before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        rates = {"sqlite": [write_rate(str(Path(tmp) / "w.db")) for _ in range(args.repeats)]}
        if not args.no_postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from conftest import PostgresServer, _missing

            if _missing() is None:
                server = PostgresServer()
                try:
                    rates["postgresql"] = [write_rate(server.new_database()) for _ in range(args.repeats)]
                finally:
                    server.stop()
            else:
                print(f"# postgresql skipped: {_missing()}")
        for backend, r in rates.items():
            print(f"write {backend:<10} trace rows/s  min {min(r):>9,.0f}  median {np.median(r):>9,.0f}  "
                  f"max {max(r):>9,.0f}")
        table: dict[str, dict[int, list[tuple[float, float, int, float]]]] = {"report": {}, "runs list": {}, "plan": {}}
        for n, path in paths.items():
            html = Path(tmp) / f"r{n}.html"
            for _ in range(args.repeats):
                wall, rss, _size, cpu = child([*STEPLAB, "report", "--db", str(path), "--html", str(html)])
                table["report"].setdefault(n, []).append((wall, rss, html.stat().st_size, cpu))
                wall, rss, size, cpu = child([*STEPLAB, "runs", "list", "--db", str(path)])
                table["runs list"].setdefault(n, []).append((wall, rss, size, cpu))
            seconds, _jobs = plan_seconds(path, max(1, n // per_cell))  # once: minutes in all at 10,000
            table["plan"].setdefault(n, []).append((seconds, math.nan, 0, math.nan))
    print(f"# load after: {os.getloadavg()}")
    print(f"{'cost':<10} {'trials':>7} {'s min':>7} {'s median':>9} {'s max':>7} {'cpu s med':>10} "
          f"{'peak MiB':>9} {'out KiB':>8}")
    for what, rows in table.items():
        ns = sorted(rows)
        for n in ns:
            w = [r[0] for r in rows[n]]
            mib, cpu = max(r[1] for r in rows[n]), float(np.median([r[3] for r in rows[n]]))
            print(f"{what:<10} {n:>7} {min(w):>7.2f} {np.median(w):>9.2f} {max(w):>7.2f} "
                  f"{'-' if math.isnan(cpu) else f'{cpu:.2f}':>10} {'-' if math.isnan(mib) else f'{mib:.0f}':>9} "
                  f"{rows[n][-1][2] / 1024:>8.0f}")
        wall = [float(np.median([r[0] for r in rows[n]])) for n in ns]
        line = f"{what:<10} exponent: wall n^{exponent(ns, wall):.2f}"
        if what != "plan":
            cpu_s = [float(np.median([r[3] for r in rows[n]])) for n in ns]
            line += (f", cpu n^{exponent(ns, cpu_s):.2f}, peak memory n^"
                     f"{exponent(ns, [max(r[1] for r in rows[n]) for n in ns]):.2f}")
        if len(ns) >= 2:  # what one more trial costs, past the fixed start-up and figures
            line += f"; marginal {1e3 * (wall[-1] - wall[-2]) / (ns[-1] - ns[-2]):.2f} ms/trial (wall)"
        print(line)


if __name__ == "__main__":
    main()
