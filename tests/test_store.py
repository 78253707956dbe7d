"""The results store: round trips, filters, resuming, refusing foreign files, crash safety."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from steplab.errors import StoreError
from steplab.results import STEP_COLUMNS, EvalRow, StepRow, TrialResult, TrialSpec
from steplab.store import SCHEMA_VERSION, Store, open_store


@pytest.fixture(params=["file", "memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The store suite runs on every backend (as Optuna tests its storages)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = str(tmp_path / "steplab.db") if request.param == "file" else "sqlite://"
    s = open_store(url)
    yield s
    s.close()


def make_spec(study_id: int | None = None, index: int = 0, workload: str = "mnist") -> TrialSpec:
    return TrialSpec(
        workload=workload,
        variant="base",
        algorithm="adamw-wsd",
        algorithm_spec={
            "optimizer": {"name": "adamw", "betas": [0.9, 0.95]},
            "schedule": {"name": "wsd", "warmup": 0.05, "pieces": [{"a": 1}, {"b": None}]},
        },
        hyperparameters={"lr": 3e-4, "weight_decay": 0.1, "clip": math.inf},
        seed=7,
        budget_steps=1000,
        study_id=study_id,
        index=index,
        stop_at_target=False,
    )


def finish(store: Store, tid: int, spec: TrialSpec, status: str = "budget", **kw) -> TrialResult:
    result = TrialResult(
        spec=spec, status=status, steps=10, train_time_s=1.5, eval_time_s=0.25, **kw
    )
    store.finish_trial(tid, result)
    return result


def test_study_round_trip(store: Store) -> None:
    spec = {"workloads": ["mnist", "cifar"], "nested": {"x": [1, 2.5, {"y": math.inf}]}}
    sid = store.create_study("suite-a", "bench", spec)
    got = store.get_study(sid)
    assert got["id"] == sid and got["name"] == "suite-a" and got["kind"] == "bench"
    assert got["spec"] == spec
    assert store.find_study("suite-a") == got
    assert store.find_study("nope") is None
    store.create_study("suite-b", "tune", {})
    assert [s["name"] for s in store.list_studies()] == ["suite-a", "suite-b"]
    got["spec"]["workloads"].append("changed")  # returned objects are copies
    assert store.get_study(sid)["spec"] == spec
    with pytest.raises(StoreError, match="already exists"):
        store.create_study("suite-a", "bench", {})


def test_trial_round_trip_with_inf(store: Store) -> None:
    sid = store.create_study("s", "bench", {})
    spec = make_spec(sid, index=3)
    tid = store.start_trial(
        spec, name="label", host="box", versions={"torch": "2"}, device="cuda:0"
    )
    running = store.get_trial(tid)
    assert running.status == "running" and running.id == tid and running.spec == spec
    assert running.time_to_target_s == math.inf and running.steps_to_target == math.inf

    finish(
        store,
        tid,
        spec,
        status="budget",
        final_metrics={"validation/loss": 0.5, "x": math.inf},
        host="box",
        versions={"torch": "2"},
        device="cuda:0",
        message="ran out of budget",
    )
    got = store.get_trial(tid)
    assert got.spec == spec
    assert got.status == "budget" and got.steps == 10
    assert got.train_time_s == 1.5 and got.eval_time_s == 0.25
    assert got.time_to_target_s == math.inf and math.isinf(got.steps_to_target)
    assert got.final_metrics == {"validation/loss": 0.5, "x": math.inf}
    assert got.message == "ran out of budget" and got.device == "cuda:0"
    assert got.versions == {"torch": "2"} and not got.reached
    info = store.trial_info(tid)
    assert info["name"] == "label" and info["key"] == spec.key() and info["finished_at"]

    tid2 = store.start_trial(make_spec(sid, index=4))
    finish(
        store,
        tid2,
        make_spec(sid, index=4),
        status="reached",
        time_to_target_s=0.75,
        steps_to_target=6,
    )
    got2 = store.get_trial(tid2)
    assert got2.time_to_target_s == 0.75 and got2.steps_to_target == 6 and got2.reached


def test_steps_and_evals_round_trip(store: Store) -> None:
    tid = store.start_trial(make_spec())
    rows = [
        StepRow(0, 0.1, 1e-3, 2.5, 1.0, 3.0, 0.01),
        StepRow(1, 0.2, 1e-3, math.nan, None, None, None),
        StepRow(2, 0.3, None, None, math.inf, 4.0, 0.02),
    ]
    store.append_steps(tid, rows[:2])
    store.append_steps(tid, rows[2:])
    trace = store.steps(tid)
    assert list(trace) == list(STEP_COLUMNS)
    assert trace["step"].dtype == np.int64 and trace["step"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(trace["loss"], [2.5, np.nan, np.nan])
    np.testing.assert_array_equal(trace["grad_norm"], [1.0, np.nan, np.inf])
    np.testing.assert_array_equal(trace["lr"], [1e-3, 1e-3, np.nan])
    assert store.step_rows(tid)[1] == StepRow(1, 0.2, 1e-3, None, None, None, None)
    with pytest.raises(StoreError, match="UNIQUE|unique|failed"):
        store.append_steps(tid, [StepRow(2, 0.4, None, None)])
    assert store.steps(tid)["step"].tolist() == [0, 1, 2]  # the failed batch left nothing

    evals = [
        EvalRow(0, 0.0, "validation", "validation/loss", 3.0),
        EvalRow(2, 0.3, "validation", "validation/accuracy", 0.5),
        EvalRow(2, 0.3, "train", "train/loss", math.nan),
    ]
    store.append_evals(tid, evals)
    got = store.evals(tid)
    assert got[:2] == evals[:2]
    assert got[2].metric == "train/loss" and math.isnan(got[2].value)

    empty = store.steps(store.start_trial(make_spec(index=1)))
    assert all(len(v) == 0 for v in empty.values())


def test_list_filters_and_finished_by_key(store: Store) -> None:
    sid = store.create_study("s", "bench", {})
    other = store.create_study("t", "bench", {})
    specs = [make_spec(sid, i, workload="mnist" if i % 2 else "cifar") for i in range(4)]
    ids = [store.start_trial(s) for s in specs]
    finish(store, ids[0], specs[0], "reached", time_to_target_s=1.0, steps_to_target=5)
    finish(store, ids[1], specs[1], "diverged")
    store.start_trial(make_spec(other, 0))
    store.start_trial(make_spec(None, 0), name="user-run")

    assert [t.id for t in store.list_trials(study_id=sid)] == ids
    assert [t.id for t in store.list_trials(study_id=sid, status="running")] == ids[2:]
    assert [t.id for t in store.list_trials(status=("reached", "diverged"))] == ids[:2]
    assert {t.spec.index for t in store.list_trials(study_id=sid, workload="mnist")} == {1, 3}
    assert len(store.list_trials(name="user-run")) == 1
    assert len(store.list_trials()) == 6

    done = store.finished_by_key(sid)
    assert set(done) == {specs[0].key(), specs[1].key()}
    assert done[specs[0].key()].status == "reached"
    assert store.finished_by_key(other) == {}


def test_discard_unfinished_and_delete(store: Store) -> None:
    sid = store.create_study("s", "bench", {})
    keep = store.start_trial(make_spec(sid, 0))
    finish(store, keep, make_spec(sid, 0))
    stale = [store.start_trial(make_spec(sid, i)) for i in (1, 2)]
    for tid in [keep, *stale]:
        store.append_steps(tid, [StepRow(0, 0.1, 0.1, 1.0)])
        store.append_evals(tid, [EvalRow(0, 0.1, "validation", "validation/loss", 1.0)])
    elsewhere = store.start_trial(make_spec(None, 9))

    assert store.discard_unfinished(sid) == 2
    assert [t.id for t in store.list_trials(study_id=sid)] == [keep]
    assert len(store.steps(keep)["step"]) == 1 and len(store.evals(keep)) == 1
    with pytest.raises(StoreError, match=f"no trial with id {stale[0]}"):
        store.steps(stale[0])
    assert store.get_trial(elsewhere).status == "running"

    store.delete_trial(keep)
    assert store.list_trials(study_id=sid) == []
    with pytest.raises(StoreError):
        store.delete_trial(keep)


def test_unknown_ids_and_bad_input(store: Store) -> None:
    for call in (
        lambda: store.get_trial(99),
        lambda: store.get_study(99),
        lambda: store.append_steps(99, [StepRow(0, 0.0, None, None)]),
        lambda: store.append_evals(99, [EvalRow(0, 0.0, "validation", "validation/x", 1.0)]),
        lambda: store.finish_trial(99, TrialResult(make_spec(), "budget", 0, 0.0, 0.0)),
        lambda: store.start_trial(make_spec(study_id=99)),
    ):
        with pytest.raises(StoreError) as info:
            call()
        assert "99" in str(info.value) and "\n" not in str(info.value)
    tid = store.start_trial(make_spec())
    with pytest.raises(StoreError, match="status"):
        store.finish_trial(tid, TrialResult(make_spec(), "running", 0, 0.0, 0.0))
    with pytest.raises(StoreError, match="JSON"):
        store.create_study("bad", "bench", {"x": object()})


def test_new_file_gets_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()
    assert version == (str(SCHEMA_VERSION),) and mode == ("wal",)
    s = open_store(f"sqlite:///{path}")  # reopening an existing store works
    assert s.list_studies() == []
    s.close()


def test_default_url_is_steplab_db_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    open_store().close()
    assert (tmp_path / "steplab.db").exists()


def assert_refused(path: Path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match) as info:
        open_store(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert path.read_bytes() == before


def test_unknown_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE meta SET value='{SCHEMA_VERSION + 1}' WHERE key='schema_version'")
    conn.close()
    assert_refused(path, f"schema version {SCHEMA_VERSION + 1}.*upgrade steplab")


def test_garbage_and_truncated_files_are_refused_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    assert_refused(garbage, "not a steplab database .file is not a database.: point --db")

    real = tmp_path / "real.db"
    s = open_store(str(real))
    tid = s.start_trial(make_spec())
    s.append_steps(tid, [StepRow(i, 0.1 * i, 0.1, 1.0) for i in range(2000)])
    s.close()
    data = real.read_bytes()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(truncated, "truncated")
    tiny = tmp_path / "tiny.db"
    tiny.write_bytes(data[:50])
    assert_refused(tiny, "truncated")


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ann')")
    conn.close()
    assert_refused(path, "no steplab meta")
    with sqlite3.connect(path) as conn:  # still a rollback-journal database, as we found it
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_directory_and_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        open_store(str(tmp_path))
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "missing" / "x.db"))


def test_closed_store_raises(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "x.db"))
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.list_studies()


WRITER = textwrap.dedent(
    """
    import sys
    from steplab.results import StepRow, TrialResult, TrialSpec
    from steplab.store import open_store

    store = open_store(sys.argv[1])
    spec = TrialSpec("mnist", "base", "sgd", {"lr": 0.1}, {}, 0, 10)
    done = store.start_trial(spec)
    store.append_steps(done, [StepRow(i, 0.1 * i, 0.1, 1.0 / (i + 1)) for i in range(10)])
    store.finish_trial(done, TrialResult(spec, "budget", 10, 1.0, 0.0))
    live = store.start_trial(TrialSpec("mnist", "base", "sgd", {"lr": 0.2}, {}, 1, 10))
    step = 0
    while True:
        store.append_steps(live, [StepRow(step + i, 0.0, 0.1, 1.0) for i in range(500)])
        step += 500
        if step == 500:
            print("writing", flush=True)
    """
)


def test_sigkill_mid_write_keeps_finished_trial(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.3)  # many more batches in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    store = open_store(str(path))
    try:
        finished, live = store.list_trials()
        assert finished.status == "budget" and finished.steps == 10
        assert store.steps(finished.id)["step"].tolist() == list(range(10))
        assert live.status == "running"
        steps = store.steps(live.id)["step"]
        assert len(steps) >= 500 and len(steps) % 500 == 0  # whole batches only
        store.delete_trial(live.id)
        assert [t.id for t in store.list_trials()] == [finished.id]
    finally:
        store.close()


# ------------------------------------------------------------------ passwords never shown
SECRET = "s3cr3t-pw"


@pytest.mark.parametrize("url", [
    f"postgresql://user:{SECRET}@host:99x/db",  # SQLAlchemy cannot parse the port (ValueError)
    f"://user:{SECRET}@host/db",  # no scheme (ArgumentError)
    f"postgres ql://user:{SECRET}@host/db",  # a space in the scheme (ArgumentError)
    f"postgresql+nodriver://user:{SECRET}@host/db",  # no such driver
    f"postgresql+psycopg://user:{SECRET}@127.0.0.1:1/db",  # nothing listens there
    f"postgresql+psycopg://user:p@ss{SECRET}@127.0.0.1:1/db",  # an unencoded '@' in the password
])
def test_an_error_never_shows_the_password(url: str) -> None:
    from steplab.store import admin

    for call in (lambda: open_store(url), lambda: admin.info(url), lambda: admin.upgrade(url)):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert SECRET not in message and "***" in message and "\n" not in message, message


def test_redact_url() -> None:
    from steplab.store import redact_url

    assert redact_url(f"postgresql+psycopg://u:{SECRET}@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert redact_url(f"postgresql://u:{SECRET}@h:99x/db") == "postgresql://u:***@h:99x/db"  # unparsable
    assert redact_url(f"postgresql://u:p@ss{SECRET}@h/db") == "postgresql://u:***@h/db"  # '@' in the password
    assert redact_url("sqlite:///runs.db") == "sqlite:///runs.db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_live_store_never_shows_the_password(pg_url: str) -> None:
    url = pg_url.replace("://postgres@", f"://postgres:{SECRET}@")  # the test server trusts any password
    with open_store(url) as store:
        with pytest.raises(StoreError) as info:
            store.get_trial(99)
        shown = [store.url, repr(store), str(info.value)]
        assert all(SECRET not in s and "***" in s for s in shown), shown


READING_COMMANDS = [
    ["runs", "list"], ["runs", "show", "1"], ["report"], ["report", "--trial", "1"], ["db", "info"],
    ["refine", "1"], ["predict", "fit", "1"], ["predict", "bound", "-s", "cosine", "--steps", "10", "--norms-from", "1"],
    ["export", "mlflow", "--tracking-uri", "MLRUNS"], ["export", "tensorboard", "--logdir", "TB"],
    ["continual", "report", "1"],
]


@pytest.mark.parametrize("args", READING_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_reading_commands_refuse_a_missing_database_and_create_nothing(tmp_path: Path, args: list[str]) -> None:
    from typer.testing import CliRunner

    from steplab.cli import app

    db = tmp_path / "typo.db"
    args = [str(tmp_path / a) if a.isupper() else a for a in args]
    result = CliRunner().invoke(app, [*args, "--db", str(db)], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert f"no database at {db}; check the path or run a command that writes one (steplab run/bench)" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no -wal, no export folder


def test_open_store_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database at"):
        open_store(tmp_path / "x.db", must_exist=True)
    assert not (tmp_path / "x.db").exists()
    open_store(tmp_path / "x.db").close()  # a writer creates it
    open_store(tmp_path / "x.db", must_exist=True).close()
    open_store("sqlite://", must_exist=True).close()  # memory: nothing to find


def test_a_second_store_on_an_open_file_keeps_this_processs_sqlite_locks(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the same SQLite file twice in one process must not close a file handle on it:
    that releases the process's POSIX locks (sqlite.org/howtocorrupt.html, 2.2) and another
    process closing its connection then deletes the write-ahead log under the open one. The
    second process below would delete ``-wal`` on the old code."""
    import steplab.store.engine as engine

    db = tmp_path / "locks.db"
    child = [sys.executable, "-c", f"from steplab.store import open_store; open_store({str(db)!r}).close()"]
    first = open_store(str(db))
    try:
        with first._engine.connect() as conn:  # one pooled connection stays open (and locked)
            conn.exec_driver_sql("select count(*) from sqlite_master").all()
        subprocess.run(child, check=True)
        assert Path(str(db) + "-wal").exists()
        header_reads: list[str] = []
        real_check = engine._check_sqlite_file
        monkeypatch.setattr(engine, "_check_sqlite_file",
                            lambda p, shown: (header_reads.append(str(p)), real_check(p, shown))[1])
        second = open_store(str(db))
        second.close()
        assert header_reads == []  # the live file's header is not read again
        subprocess.run(child, check=True)
        assert Path(str(db) + "-wal").exists(), "the other process deleted the WAL of an open database"
    finally:
        first.close()
    assert not engine.sqlite_file_is_held(db)
    open_store(str(db)).close()  # closed everywhere: the header is checked again
    assert header_reads == [str(db)]
