"""A small benchmark run the way users run it, for tests/test_concurrency.py.

    python tests/_bench_driver.py run URL WORKERS [T0]   # run the benchmark to its end (from time T0)
    python tests/_bench_driver.py chaos URL KILLS SEED   # kill it KILLS times, then finish it

``chaos`` forks a child that runs (or resumes) the benchmark, SIGKILLs it after a random
delay (seeded), reaps it, and starts again, until it has killed it KILLS times; then it
runs the benchmark to its end and prints a JSON line: the kills, how many of them left a
trial ``running`` (a kill inside a trial), and how many resumes finished before the kill.
This process never runs torch itself before forking (OpenMP is not fork-safe once used).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

from steplab.store import open_store
from steplab.studies import bench
from steplab.training.executors import make_executor

SPEC = bench.BenchSpec(
    algorithms=("adamw-cosine", "sgd-nesterov-cosine"),
    trials=4,
    studies=2,
    workloads=(bench.SuiteEntry("logreg", budget_steps=300), bench.SuiteEntry("digits-mlp", budget_steps=200)),
    name="concurrency",
)


def run_to_end(url: str, workers: int) -> int:
    """Open (or resume) the benchmark and run it; return how many results it yielded."""
    with open_store(url) as store:
        b = bench.open_benchmark(SPEC, store)
    n = 0
    with make_executor(workers=workers) as executor:
        for _ in bench.run(b, executor, url, poll_s=0.2):
            n += 1
    return n


def _running(url: str) -> int:
    with open_store(url) as store:
        return len(store.list_trials(status="running"))


def chaos(url: str, kills: int, seed: int, max_delay_s: float = 1.0) -> dict[str, int]:
    rng = random.Random(seed)
    bench.plan(SPEC, 0)  # import the optimizer packages once, here, so each child starts at once
    killed = inside = finished_first = 0
    attempts = 0
    while killed < kills:
        attempts += 1
        if attempts > 4 * kills:
            raise SystemExit(f"only {killed} kills in {attempts} attempts: the benchmark is too short")
        delay = rng.uniform(0.05, max_delay_s)
        pid = os.fork()
        if pid == 0:  # the child: a benchmark process
            code = 1
            try:
                run_to_end(url, 1)
                code = 0
            finally:
                os._exit(code)
        time.sleep(delay)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)  # reaped: its pid is gone, so its claim is dead
        if os.WIFSIGNALED(status):
            killed += 1
            inside += _running(url) > 0
        elif os.WEXITSTATUS(status) == 0:
            finished_first += 1
            break  # nothing left to kill
        else:
            raise SystemExit(f"a benchmark process failed with exit code {os.WEXITSTATUS(status)}")
    run_to_end(url, 1)
    return {"kills": killed, "kills_inside_a_trial": inside, "finished_before_kill": finished_first}


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "run":
        bench.plan(SPEC, 0)  # imports done before the start, so processes started together run together
        if len(sys.argv) > 4:
            time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
        n = run_to_end(url, int(sys.argv[3]))
        with open_store(url) as store:
            finished = len(store.list_trials(study_id=store.find_study(SPEC.study_name())["id"],
                                             status=("reached", "budget", "diverged", "failed")))
        print(json.dumps({"results": n, "finished": finished}), flush=True)
    elif mode == "chaos":
        print(json.dumps(chaos(url, int(sys.argv[3]), int(sys.argv[4]))), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
