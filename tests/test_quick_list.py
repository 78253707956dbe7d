"""``steplab runs list`` reads a SQLite file with the standard library
(:mod:`steplab.store.quick_list`): the same trials as :meth:`Store.list_trials`, and the full
store whenever the quick reader must not or cannot read the file."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

from steplab.results import TrialResult, TrialSpec
from steplab.store import open_store, quick_list


def _spec(workload: str, seed: int, study_id: int | None = None) -> TrialSpec:
    return TrialSpec(workload=workload, variant="base", algorithm="adamw-cosine",
                     algorithm_spec={"name": "adamw-cosine", "lr": 0.002 * (seed + 1)},
                     hyperparameters={"lr": 0.002 * (seed + 1)}, seed=seed, budget_steps=100, study_id=study_id,
                     index=seed, stop_at_target=True)


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    with open_store(path) as store:
        sid = store.create_study("s", "bench", {})
        for i, (wl, study) in enumerate([("logreg", None), ("charlm", sid), ("logreg", sid), ("logreg", None)]):
            spec = _spec(wl, i, study)
            tid = store.start_trial(spec, name="mine" if i == 1 else None)
            if i < 3:  # the last one stays running
                store.finish_trial(tid, TrialResult(spec=spec, status="reached", steps=50, train_time_s=1.5,
                                                    eval_time_s=0.2, time_to_target_s=1.25 * i if i else math.inf,
                                                    steps_to_target=40.0 if i else math.inf,
                                                    final_metrics={"validation/loss": 0.5 - i / 10}))
    return path


def test_same_trials_and_names_as_the_store(tmp_path: Path) -> None:
    path = _db(tmp_path)
    for kw in ({}, {"study_id": 1}, {"workload": "logreg"}, {"last": 2}, {"workload": "logreg", "last": 1},
               {"study_id": 1, "workload": "charlm"}, {"last": 0}):
        got = quick_list.list_trials(f"sqlite:///{path}", **kw)  # type: ignore[arg-type]
        assert got is not None
        trials, names = got
        with open_store(path, must_exist=True) as store:
            want = store.list_trials(**kw)  # type: ignore[arg-type]
            infos = store.trial_infos([t.id for t in want if t.id is not None])
        assert trials == want, kw
        assert names == [infos[t.id]["name"] for t in want]  # type: ignore[index]
    trials, names = quick_list.list_trials(path)  # type: ignore[misc]
    assert [t.id for t in trials] == [1, 2, 3, 4] and names == [None, "mine", None, None]
    assert trials[0].time_to_target_s == math.inf and trials[2].time_to_target_s == 2.5


def test_the_full_store_opens_what_the_quick_reader_must_not(tmp_path: Path) -> None:
    path = _db(tmp_path)
    assert quick_list.list_trials(tmp_path / "missing.db") is None  # the store says "no such database"
    assert quick_list.list_trials("postgresql+psycopg://u@localhost/x") is None
    assert quick_list.list_trials("sqlite://") is None
    with open_store(path) as store:  # a second connection closed in this process would drop its locks
        assert quick_list.list_trials(path) is None
        assert len(store.list_trials()) == 4
    with sqlite3.connect(path) as conn:  # another schema version: the store refuses it in one line
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    assert quick_list.list_trials(path) is None
    bad = tmp_path / "notes.db"
    bad.write_text("not a database")
    assert quick_list.list_trials(bad) is None


def test_runs_list_imports_neither_sqlalchemy_nor_torch(tmp_path: Path) -> None:
    path = _db(tmp_path)
    code = ("import sys\n"
            "from steplab.cli import app\n"
            f"sys.argv = ['steplab', 'runs', 'list', '--db', {str(path)!r}]\n"
            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "heavy = sorted(m for m in ('torch', 'sqlalchemy') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mine" in out.stdout and "adamw-cosine lr=0.006" in out.stdout
