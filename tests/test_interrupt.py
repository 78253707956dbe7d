"""Ctrl-C (SIGINT) and SIGTERM on the commands that train one run: the trial is kept as
``interrupted`` with its trace, the command says so in one line and exits 130 / 143; no
trial is left ``running`` (issue 27, item 2)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steplab.errors import Interrupted
from steplab.store import open_store

HANG_S = 120.0


def _steps_stored(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _interrupt(args: list[str], db: Path, signum: int) -> subprocess.CompletedProcess[str]:
    """Start ``steplab ARGS --db DB``, wait (polling the db) until its first trace rows are
    stored, send ``signum`` and wait for it to end."""
    proc = subprocess.Popen([str(Path(sys.executable).parent / "steplab"), *args, "--db", str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + HANG_S
        while _steps_stored(db) == 0:
            if proc.poll() is not None:
                pytest.fail(f"ended before any step was stored: {proc.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no step stored after {HANG_S} s")
            time.sleep(0.05)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=HANG_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_run_interrupted_keeps_the_trial(tmp_path: Path, signum: int, code: int) -> None:
    db = tmp_path / "i.db"
    done = _interrupt(["run", "logreg", "--steps", "10000000", "--no-stop-at-target"], db, signum)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    with open_store(db) as store:
        (trial,) = store.list_trials()
        rows = store.step_rows(trial.id)
    assert trial.status == "interrupted", done.stderr
    assert trial.steps == len(rows) > 0  # every step taken is kept, and counted
    assert trial.time_to_target_s == float("inf")
    line = " ".join(done.stderr.split())
    assert f"interrupted: trial {trial.id} kept as 'interrupted' with {trial.steps} steps" in line
    assert "run the same command again to start a new run" in line


@pytest.mark.slow
def test_continual_interrupted_keeps_the_trial(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    done = _interrupt(["continual", "split-digits", "--steps-per-task", "1000000", "--eval-every", "100000"], db, signal.SIGTERM)
    assert done.returncode == 143, done.stderr
    with open_store(db) as store:
        (trial,) = store.list_trials()
        assert trial.status == "interrupted" and trial.steps == len(store.step_rows(trial.id)) > 0
    assert f"trial {trial.id} kept as 'interrupted'" in " ".join(done.stderr.split())


def test_interrupted_exit_codes() -> None:
    assert Interrupted().exit_code == 130 and isinstance(Interrupted(), KeyboardInterrupt)
    assert Interrupted(signum=signal.SIGTERM).exit_code == 143
    e = Interrupted.of(Interrupted("x", signum=15, trial_id=3), "y")
    assert (e.message, e.signum, e.trial_id) == ("y", 15, 3)
    assert Interrupted.of(KeyboardInterrupt()).signum == 2



def test_autolr_interrupted_keeps_the_run(tmp_path: Path) -> None:
    """Ctrl-C during the kept run's training (raised from its progress callback, in process)."""
    from steplab import workloads
    from steplab.algorithms import get_algorithm
    from steplab.studies import autolr
    from steplab.training.config import TrainConfig

    def progress(ev: autolr.StageEvent) -> None:
        if ev.phase == "train" and ev.done >= 20:
            raise KeyboardInterrupt

    wl = workloads.get("logreg", budget_steps=400)
    with open_store(tmp_path / "a.db") as store:
        with pytest.raises(Interrupted, match=r"trial \d+ kept as 'interrupted' with \d+ steps") as caught:
            autolr.run_autolrs(wl, get_algorithm("adamw-cosine").resolved(), 0, store=store,
                               config=autolr.AutoLRSConfig(tau=20, candidates=2), train=TrainConfig(device="cpu"),
                               progress=progress)
        (trial,) = store.list_trials()
        assert trial.id == caught.value.trial_id and caught.value.exit_code == 130
        assert trial.status == "interrupted" and trial.steps == len(store.step_rows(trial.id)) > 0


def test_a_resumed_sensitivity_sweep_runs_an_interrupted_point_again(tmp_path: Path) -> None:
    import dataclasses

    from steplab import workloads
    from steplab.algorithms import get_algorithm
    from steplab.studies.sensitivity import sweep
    from steplab.training.config import TrainConfig

    wl = workloads.get("logreg", budget_steps=20)
    algo = get_algorithm("adamw-cosine").resolved()
    cfg = TrainConfig(device="cpu", record_norms=False)
    with open_store(tmp_path / "s.db") as store:
        first = sweep(wl, algo, [1e-3, 1e-2], [0], store=store, config=cfg)
        victim = store.get_trial(first.points[1].trial_id)
        store.finish_trial(victim.id, dataclasses.replace(victim, status="interrupted"))  # as Ctrl-C leaves it
        assert len(sweep(wl, algo, [1e-3, 1e-2], [0], store=store, config=cfg).points) == 2  # not counted
        statuses = sorted(t.status for t in store.list_trials())
    assert statuses == ["budget", "budget", "interrupted"]  # run again, the interrupted one kept
