"""Executors: every backend stores the same results for the same jobs (CPU, one thread,
deterministic), results stream back one per job, and failures and Ctrl-C stop a run
cleanly."""

from __future__ import annotations

import contextlib
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steplab.algorithms import get_algorithm
from steplab.errors import SpecError, SteplabError
from steplab.store import open_store
from steplab.training.executors import (
    Executor,
    ProcessPoolExecutor,
    RayExecutor,
    SerialExecutor,
    make_executor,
)
from steplab.training.jobs import Job


def make_jobs(budget_steps: int = 150, workload: str = "digits-mlp") -> list[Job]:
    """2 learning rates x 2 seeds, trained to the end of the budget."""
    algo = get_algorithm("adamw-cosine")
    return [
        Job(
            workload=workload,
            variant="base",
            budget_steps=budget_steps,
            target=None,
            algorithm=algo.with_hyperparameters({"lr": lr}).to_dict(),
            seed=seed,
            study_id=None,
            index=i,
            stop_at_target=False,
            device="cpu",
            threads=1,
        )
        for i, (lr, seed) in enumerate((lr, seed) for lr in (3e-3, 3e-2) for seed in (0, 1))
    ]


JOBS = make_jobs()
#: a generous guard against a hang (never a measure of speed)
HANG_S = 300


def untimed(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` without the timing ones (``time/...``, ``..._time_s``), which differ run to run."""
    return {k: v for k, v in metrics.items() if not (k.startswith("time/") or k.endswith("_time_s"))}


def stored(db: Path) -> dict[str, dict[str, Any]]:
    """key -> what must not depend on the executor (times excluded)."""
    out = {}
    with open_store(str(db)) as store:
        for trial in store.list_trials():
            trace = store.steps(trial.id)
            out[store.trial_info(trial.id)["key"]] = {
                "status": trial.status,
                "steps": trial.steps,
                "final_metrics": untimed(trial.final_metrics),
                "message": trial.message,
                "step": trace["step"],
                "loss": trace["loss"],
                "lr": trace["lr"],
                "grad_norm": trace["grad_norm"],
                "evals": [(e.step, e.metric, e.value) for e in store.evals(trial.id)],
            }
    return out


def run_all(executor: Executor, db: Path) -> dict[str, dict[str, Any]]:
    with executor:
        results = list(executor.run(JOBS, str(db)))
    # one result per job, streamed back with the job's key
    assert len(results) == len(JOBS)
    assert sorted(r.spec.key() for r in results) == sorted(j.key() for j in JOBS)
    assert all(r.id is not None for r in results)
    return stored(db)


def assert_same(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]) -> None:
    assert sorted(got) == sorted(want) == sorted(j.key() for j in JOBS)
    for key, expected in want.items():
        actual = got[key]
        for name in ("status", "steps", "final_metrics", "message", "evals"):
            assert actual[name] == expected[name], (key, name)
        for name in ("step", "loss", "lr", "grad_norm"):
            assert np.array_equal(actual[name], expected[name], equal_nan=True), (key, name)


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    db = tmp_path_factory.mktemp("serial") / "serial.db"
    got = run_all(SerialExecutor(), db)
    assert {v["status"] for v in got.values()} <= {"budget", "reached"}
    assert {v["steps"] for v in got.values()} == {JOBS[0].budget_steps}
    return got


def test_serial_runs_in_order(tmp_path: Path) -> None:
    jobs = make_jobs(budget_steps=20, workload="logreg")
    results = list(SerialExecutor().run(jobs, str(tmp_path / "s.db")))
    assert [r.spec.key() for r in results] == [j.key() for j in jobs]


def test_process_pool_matches_serial(
    serial_results: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert_same(run_all(ProcessPoolExecutor(workers=2), tmp_path / "pool.db"), serial_results)


@pytest.mark.ray
def test_ray_matches_serial(serial_results: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the ray extra: pip install 'steplab[ray]'")
    warm, db = tmp_path / "warm.db", tmp_path / "ray.db"
    with RayExecutor(workers=2) as executor:
        assert len(list(executor.run(JOBS[:2], str(warm)))) == 2
        actors = executor.placements()
        results = list(executor.run(JOBS, str(db)))
        assert executor.placements() == actors  # the same two warm actors ran both batches
    assert sorted(r.spec.key() for r in results) == sorted(j.key() for j in JOBS)
    assert_same(stored(db), serial_results)
    # each batch was shared by both actors, each a process of its own
    pids = {a["pid"] for a in actors}
    assert len(pids) == 2 and _worker_pids(warm) == _worker_pids(db) == pids
    import ray

    assert not ray.is_initialized()  # close() shut down the instance it started


def _worker_pids(db: Path) -> set[int]:
    """The pids in the ``worker`` column (``host:pid:nonce``) of the trials stored in ``db``."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {int(w.split(":")[1]) for (w,) in conn.execute("SELECT worker FROM trials")}


def test_process_pool_dead_worker_is_a_steplab_error(tmp_path: Path) -> None:
    jobs = make_jobs(budget_steps=20, workload="logreg")[:1]
    jobs += make_jobs(budget_steps=100_000, workload="logreg")[1:]
    with ProcessPoolExecutor(workers=1) as executor:
        results = executor.run(jobs, str(tmp_path / "dead.db"))
        assert next(results).spec.key() == jobs[0].key()  # the worker is now on a long job
        (process,) = executor._pool._processes.values()  # type: ignore[union-attr]
        os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(SteplabError, match="worker process died"):
            list(results)
        assert executor._pool is None  # the broken pool was dropped; a new run starts anew


def test_ctrl_c_stops_the_pool(tmp_path: Path) -> None:
    """Ctrl-C on a pool run with two trials training: the process exits with one traceback
    (the workers ignore SIGINT) and the trials stay ``running`` for a resume to take over.
    The timeouts only guard against a hang; nothing here depends on the machine's speed."""
    # a child inherits an ignored or blocked SIGINT and would never see the Ctrl-C below
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN, "an earlier test left SIGINT ignored"
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []), "an earlier test left SIGINT blocked"
    db = tmp_path / "ctrlc.db"
    script = textwrap.dedent(
        f"""
        import faulthandler, signal, sys
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks, should it hang
        from steplab.training.executors import ProcessPoolExecutor
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_executors import make_jobs

        if __name__ == "__main__":
            jobs = make_jobs(budget_steps=100000, workload="logreg")
            with ProcessPoolExecutor(workers=2) as ex:
                print("started", flush=True)
                for r in ex.run(jobs, {str(db)!r}):
                    print("result", flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C delivered to the whole group, like a terminal
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        _wait_for(lambda: _running(db) == 2, "both trials to start")
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=HANG_S)
        except subprocess.TimeoutExpired:  # say who is left and where it waits
            group = subprocess.run(["ps", "-o", "pid,stat,cmd", "-s", str(proc.pid)], capture_output=True, text=True)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"no exit {HANG_S} s after Ctrl-C; left: {group.stdout}\n{proc.communicate()[1][-6000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    assert err.count("Traceback") == 1, err  # the workers ignore SIGINT: one traceback only
    with open_store(str(db)) as store:
        assert {t.status for t in store.list_trials()} == {"running"}


def _running(db: Path) -> int:
    if not db.exists():
        return 0
    with open_store(str(db)) as store:
        return len(store.list_trials(status="running"))


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``HANG_S`` (a hang, not slowness)."""
    deadline = time.monotonic() + HANG_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {HANG_S} s for {what}")
        time.sleep(0.2)


def _ignore_sigterm_and_sleep(ready: str) -> None:
    """A trial whose code handles SIGTERM and trains on (as a framework's graceful stop does)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(ready).touch()
    time.sleep(3600)


def test_stopping_the_pool_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    executor = ProcessPoolExecutor(workers=1)
    pool = executor._get_pool()
    pool.submit(_ignore_sigterm_and_sleep, str(ready))
    (process,) = pool._processes.values()  # type: ignore[attr-defined]
    try:
        _wait_for(ready.exists, "the worker to ignore SIGTERM")
        executor._kill()  # what Ctrl-C runs
        # killed, so this process can exit: the sentinel is ready once the worker has
        # exited (is_alive() can read True for a moment while the pool's manager thread,
        # which joins the same process, is reaping it)
        assert multiprocessing.connection.wait([process.sentinel], timeout=0)
    finally:
        if process.is_alive():
            process.kill()


def test_make_executor() -> None:
    assert isinstance(make_executor(), SerialExecutor)
    pool = make_executor(workers=3)
    assert isinstance(pool, ProcessPoolExecutor) and pool.workers == 3
    assert list(pool.run([], "unused.db")) == []
    pool.close()
    with pytest.raises(SpecError, match="workers"):
        make_executor(workers=0)
    with pytest.raises(SpecError, match="ray"):
        make_executor(ray=3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="in-memory"), ProcessPoolExecutor(workers=2) as pool:
        list(pool.run(JOBS, "sqlite://"))


def test_relative_db_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    jobs = make_jobs(budget_steps=5, workload="logreg")[:2]
    with ProcessPoolExecutor(workers=1) as executor:
        assert len(list(executor.run(jobs, "rel.db"))) == 2
    with open_store(str(tmp_path / "rel.db")) as store:
        assert len(store.list_trials(status=("budget", "reached"))) == 2


def test_ray_missing_is_a_steplab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SteplabError, match=r"pip install 'steplab\[ray\]'"):
        make_executor(workers=2, ray=True)


def test_job_error_is_raised(tmp_path: Path) -> None:
    bad = [Job("no-such-workload", "base", 10, None, JOBS[0].algorithm, 0, None, 0)]
    with pytest.raises(SteplabError, match="unknown workload"):
        list(SerialExecutor().run(bad, str(tmp_path / "bad.db")))
    with (
        ProcessPoolExecutor(workers=1) as executor,
        pytest.raises(SteplabError, match="unknown workload"),
    ):
        list(executor.run(bad, str(tmp_path / "bad.db")))
