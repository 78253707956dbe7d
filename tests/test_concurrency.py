"""Nothing lost, ever: claims, heartbeats, migrations, concurrent benchmark processes on one
database (SQLite file and PostgreSQL), SIGKILL at random moments, locked and read-only files."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from steplab.errors import StoreError
from steplab.results import EvalRow, StepRow, TrialResult, TrialSpec
from steplab.store import SCHEMA_VERSION, admin, claim_is_dead, new_worker_id, open_store
from steplab.studies import bench

HERE = Path(__file__).parent
DRIVER = HERE / "_bench_driver.py"
sys.path.insert(0, str(HERE))
import _bench_driver  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}


def spec(study_id: int | None, seed: int = 0) -> TrialSpec:
    return TrialSpec("logreg", "base", "adamw-cosine", {"lr": 0.1}, {"lr": 0.1}, seed, 10, study_id=study_id)


def finish(store, tid: int, s: TrialSpec) -> None:
    store.finish_trial(tid, TrialResult(s, "budget", 10, 1.0, 0.1))


# ------------------------------------------------------------------------------ claims
def test_a_claim_is_exclusive_and_a_finished_trial_final(db_url: str) -> None:
    with open_store(db_url) as store:
        sid = store.create_study("s", "benchmark", {})
        a, b = new_worker_id(), new_worker_id()
        tid = store.claim_trial(spec(sid), worker=a)
        assert tid is not None
        assert store.claim_trial(spec(sid), worker=b) is None  # a is alive: this process
        assert store.claim_trial(spec(sid, seed=1), worker=b) is not None  # another key
        assert store.claim_trial(spec(None), worker=b) is not None  # no study: its own space
        finish(store, tid, spec(sid))
        assert store.claim_trial(spec(sid), worker=b, stale_after=0.0) is None  # finished is final
        assert [t.id for t in store.list_trials(study_id=sid, key=spec(sid).key())] == [tid]


def test_a_dead_claim_is_taken_over_with_its_rows(db_url: str) -> None:
    with open_store(db_url) as store:
        sid = store.create_study("s", "benchmark", {})
        old = store.claim_trial(spec(sid), worker="elsewhere:123:abc")
        store.append_steps(old, [StepRow(i, 0.0, 0.1, 1.0) for i in range(5)])
        store.append_evals(old, [EvalRow(2, 0.0, "validation", "validation/loss", 0.5)])
        # fresh heartbeat on another host: alive until stale_after passes
        assert store.claim_trial(spec(sid), worker="here:1:x", stale_after=60.0) is None
        time.sleep(0.05)
        new = store.claim_trial(spec(sid), worker=new_worker_id(), stale_after=0.01)
        assert new is not None and new != old
        assert not store.trial_exists(old)
        assert len(store.steps(new)["step"]) == 0 and store.evals(new) == []
        with store._engine.connect() as conn:  # no orphan rows of the old attempt
            assert conn.execute(text(f"SELECT count(*) FROM steps WHERE trial_id = {old}")).scalar() == 0
            assert conn.execute(text(f"SELECT count(*) FROM evals WHERE trial_id = {old}")).scalar() == 0


def test_a_claim_of_a_dead_process_on_this_host_dies_at_once(db_url: str) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    host = new_worker_id().split(":")[0]
    assert claim_is_dead(f"{host}:{dead_pid}:x", time.time(), time.time(), 60.0)
    assert not claim_is_dead(f"{host}:{os.getpid()}:x", time.time(), time.time(), 60.0)
    assert not claim_is_dead(f"other-host:{dead_pid}:x", time.time(), time.time(), 60.0)
    assert claim_is_dead(f"other-host:{dead_pid}:x", time.time() - 61, time.time(), 60.0)
    assert claim_is_dead(None, None, time.time(), 60.0)  # never beat: a pre-claims trial
    with open_store(db_url) as store:
        sid = store.create_study("s", "benchmark", {})
        store.claim_trial(spec(sid), worker=f"{host}:{dead_pid}:x")
        alive = store.claim_trial(spec(sid, seed=1), worker=new_worker_id())
        assert store.reap_stale(sid) == 1  # the dead one only; this process's claim stays
        assert [t.id for t in store.list_trials(study_id=sid)] == [alive]


def test_heartbeat_and_release(db_url: str) -> None:
    with open_store(db_url) as store:
        sid = store.create_study("s", "benchmark", {})
        w = new_worker_id()
        tid = store.claim_trial(spec(sid), worker=w)
        first = store.claims(sid)[0]["heartbeat_at"]
        with store.heartbeat(w, every_s=0.05):
            time.sleep(0.3)
        later = store.claims(sid)[0]["heartbeat_at"]
        assert later > first + 0.1
        store.append_steps(tid, [StepRow(0, 0.0, 0.1, 1.0)])
        assert store.release(w) == 1
        assert store.list_trials(study_id=sid) == []


def _claim_many(args: tuple[str, list[str]]) -> list[str]:
    url, keys = args
    won = []
    with open_store(url) as store:
        sid = store.find_study("race")["id"]
        for seed in keys:
            w = new_worker_id()
            if store.claim_trial(spec(sid, seed=int(seed)), worker=w) is not None:
                won.append(seed)
    return won


def test_racing_processes_claim_each_trial_exactly_once(db_url: str) -> None:
    with open_store(db_url) as store:
        store.create_study("race", "benchmark", {})
    keys = [str(i) for i in range(30)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:  # every process tries every key, in its own order
        orders = [keys[i:] + keys[:i] for i in (0, 7, 15, 22)]
        won = pool.map(_claim_many, [(db_url, o) for o in orders])
    flat = [k for w in won for k in w]
    assert sorted(flat, key=int) == keys  # each key won once, none lost
    with open_store(db_url) as store:
        assert len(store.list_trials(status="running")) == 30


# --------------------------------------------------------------------------- migrations
def _make_v1(url: str) -> None:
    """A schema-1 database (no claim columns) with one finished trial."""
    with open_store(url) as store:
        sid = store.create_study("old", "benchmark", {"a": 1})
        tid = store.start_trial(spec(sid))
        store.append_steps(tid, [StepRow(i, 0.0, 0.1, 1.0 / (i + 1)) for i in range(3)])
        finish(store, tid, spec(sid))
        with store._engine.begin() as conn:  # (SQLite >= 3.35 drops columns in place)
            conn.execute(text("ALTER TABLE trials DROP COLUMN heartbeat_at"))
            conn.execute(text("ALTER TABLE trials DROP COLUMN worker"))
            conn.execute(text("ALTER TABLE trials DROP COLUMN settings"))
            conn.execute(text("DELETE FROM meta WHERE key = 'trial_id_high'"))
            conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))


def test_an_older_database_is_refused_until_upgraded(db_url: str) -> None:
    _make_v1(db_url)
    with pytest.raises(StoreError, match=r"schema version 1.*steplab db upgrade") as info:
        open_store(db_url)
    assert "\n" not in str(info.value)
    assert admin.info(db_url)["schema_version"] == 1
    before, applied = admin.upgrade(db_url)
    assert (before, applied) == (1, list(range(2, SCHEMA_VERSION + 1)))
    with open_store(db_url) as store:
        (t,) = store.list_trials()
        assert t.status == "budget" and store.steps(t.id)["loss"].tolist() == [1.0, 0.5, 1.0 / 3]
        assert store.claim_trial(spec(t.spec.study_id, seed=5), worker=new_worker_id()) is not None
    assert admin.upgrade(db_url) == (SCHEMA_VERSION, [])  # idempotent
    info = admin.info(db_url)
    assert info["schema_version"] == SCHEMA_VERSION and info["trials"] == {"budget": 1, "running": 1}


def test_db_cli_info_and_upgrade(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steplab.cli import app

    path = tmp_path / "old.db"
    _make_v1(str(path))
    runner = CliRunner()
    out = runner.invoke(app, ["db", "info", "--db", str(path)])
    assert out.exit_code == 0 and "version 1 (older: run `steplab db upgrade" in out.output
    bad = runner.invoke(app, ["runs", "list", "--db", str(path)])
    assert bad.exit_code != 0 and "steplab db upgrade" in bad.output
    up = runner.invoke(app, ["db", "upgrade", "--db", str(path)])
    assert up.exit_code == 0 and f"upgraded from schema version 1 to {SCHEMA_VERSION}" in up.output
    assert runner.invoke(app, ["runs", "list", "--db", str(path)]).exit_code == 0


# ------------------------------------------------------------------ bad files, one line
def test_a_locked_file_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    open_store(str(path)).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with open_store(str(path), busy_timeout_s=0.2) as store, pytest.raises(StoreError) as info:
            store.create_study("x", "benchmark", {})
        message = str(info.value)
        assert "\n" not in message and "write lock" in message and "retry" in message
    finally:
        holder.rollback()
        holder.close()
    with open_store(str(path)) as store:  # nothing was lost or half-written
        assert store.list_studies() == []


def _read_only_mounts() -> str | None:
    """Why a read-only bind mount cannot be made here (root ignores file permissions, so a
    read-only directory is a read-only mount in a private mount namespace), or None."""
    if shutil.which("unshare") is None:
        return "needs unshare(1) to mount a directory read-only"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return None if probe.returncode == 0 else "unshare -m is not permitted here (no CAP_SYS_ADMIN)"


@pytest.mark.skipif(_read_only_mounts() is not None, reason=str(_read_only_mounts()))
def test_a_read_only_directory_gives_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with open_store(str(folder / "old.db")) as store:
        store.create_study("kept", "benchmark", {})
    script = ("import sys\nfrom steplab.errors import StoreError\nfrom steplab.store import open_store\n"
              "try:\n    s = open_store(sys.argv[1]); s.create_study('new', 'benchmark', {})\n"
              "except StoreError as e:\n    print('STOREERROR', e)\n")
    for target in (folder / "new.db", folder / "old.db"):
        shell = (f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && '
                 f'exec "{sys.executable}" -c "$0" "{target}"')
        out = subprocess.run(["unshare", "-m", "sh", "-c", shell, script], capture_output=True, text=True,
                             env=ENV, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("STOREERROR"), out.stdout
        assert "writable" in lines[0] or "read-only" in lines[0], lines[0]
    with open_store(str(folder / "old.db")) as store:
        assert [s["name"] for s in store.list_studies()] == ["kept"]


# ------------------------------------------------------------- benchmark processes
def _trial_set(url: str) -> dict[str, tuple]:
    """key -> what a trial computed (status, steps, steps to target, final metrics but the
    timing ones: ``time/...`` differ run to run)."""
    with open_store(url) as store:
        study = store.find_study(_bench_driver.SPEC.study_name())
        trials = store.list_trials(study_id=study["id"])
    out: dict[str, tuple] = {}
    for t in trials:
        key = t.spec.key()
        assert key not in out, f"trial {key} ran twice"
        metrics = tuple(sorted((k, round(v, 9)) for k, v in t.final_metrics.items()
                               if math.isfinite(v) and not k.startswith("time/")))
        out[key] = (t.status, t.steps, t.steps_to_target, metrics)
    return out


def _assert_clean(url: str) -> None:
    """Every planned trial finished once; no running trial; no orphan or mixed trace rows."""
    with open_store(url) as store:
        study = store.find_study(_bench_driver.SPEC.study_name())
        planned = {j.key() for j in bench.plan(_bench_driver.SPEC, study["id"])}
        trials = store.list_trials(study_id=study["id"])
        assert {t.spec.key() for t in trials} == planned and len(trials) == len(planned)
        assert all(t.status in ("reached", "budget", "diverged") for t in trials)
        for t in trials:  # one attempt's rows only: steps 0..n-1 once each
            assert store.steps(t.id)["step"].tolist() == list(range(t.steps))
            evals = [(e.step, e.metric) for e in store.evals(t.id)]
            assert len(evals) == len(set(evals)) and all(s <= t.steps for s, _ in evals)
        with store._engine.connect() as conn:
            for table in ("steps", "evals"):
                orphans = conn.execute(text(
                    f"SELECT count(*) FROM {table} WHERE trial_id NOT IN (SELECT id FROM trials)")).scalar()
                assert orphans == 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, object]:
    """The benchmark run once, alone and uninterrupted."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    _bench_driver.run_to_end(url, 1)
    with open_store(url) as store:
        scores = bench.score(store, store.find_study(_bench_driver.SPEC.study_name())["id"])
    return _trial_set(url), scores


def _driver(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(DRIVER), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


@pytest.mark.slow
def test_two_benchmark_processes_split_the_trials(db_url: str, reference) -> None:
    start = f"{time.time() + 8:.3f}"  # both start training together, once imported
    procs = [_driver("run", db_url, "2", start), _driver("run", db_url, "1", start)]  # a pool and a serial one
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    expected, _ = reference
    assert [r["finished"] for r in reports] == [len(expected)] * 2  # neither stopped before all were done
    assert all(0 < r["results"] <= len(expected) for r in reports)
    _assert_clean(db_url)
    assert _trial_set(db_url) == expected
    with open_store(db_url) as store:
        with store._engine.connect() as conn:
            pids = {w.split(":")[1] for (w,) in conn.execute(text("SELECT worker FROM trials"))}
    assert len(pids) >= 2  # the work was split, not done twice by one


@pytest.mark.slow
def test_chaos_sigkill_at_random_moments_then_resume(tmp_path: Path, reference) -> None:
    url = f"sqlite:///{tmp_path / 'chaos.db'}"
    out = subprocess.run([sys.executable, str(DRIVER), "chaos", url, "20", "13"], capture_output=True,
                         text=True, env=ENV, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["kills"] >= 20 and report["kills_inside_a_trial"] >= 5, report
    _assert_clean(url)
    expected, ref_scores = reference
    assert _trial_set(url) == expected
    with open_store(url) as store:
        scores = bench.score(store, store.find_study(_bench_driver.SPEC.study_name())["id"])
    assert scores.steps == ref_scores.steps and scores.score_steps == ref_scores.score_steps


# ------------------------------------------------------------ every command, both backends
def test_every_store_command_works_on_both_backends(db_url: str, tmp_path: Path) -> None:
    """``--db`` takes a PostgreSQL URL wherever it takes a SQLite file."""
    from typer.testing import CliRunner

    from steplab.cli import app

    runner = CliRunner()
    env = {"COLUMNS": "200"}

    def ok(*args: str) -> str:
        r = runner.invoke(app, [*args, "--db", db_url], env=env)
        assert r.exit_code == 0, f"{args}: {r.output}"
        return r.output

    assert "trial 1" in ok("run", "logreg", "-a", "adamw-linear", "--steps", "120", "--no-stop-at-target")
    ok("run", "logreg", "-a", "adamw-cosine", "--steps", "120", "--no-stop-at-target")
    assert "logreg" in ok("runs", "list")
    ok("runs", "show", "1", "--plot", str(tmp_path / "t.png"))
    ok("refine", "1", "--out", str(tmp_path / "refined.json"))
    ok("predict", "fit", "1", "2", "--out", str(tmp_path / "law.json"))
    csv = tmp_path / "run.csv"
    csv.write_text("step,loss\n0,1.0\n1,0.9\n2,0.85\n")
    ok("import", "csv", str(csv), "--step", "step", "--loss", "loss")
    ok("export", "tensorboard", "--logdir", str(tmp_path / "tb"))
    ok("autolr", "logreg", "-a", "adamw-cosine", "--steps", "60", "--tau", "30", "-k", "2", "--no-stop-at-target")
    args = ("bench", "--workloads", "logreg", "--algorithms", "adamw-cosine", "--trials", "1")
    assert "ranking" in ok(*args)
    assert "1 already done, 0 to run" in ok(*args)
    ok("report", "--html", str(tmp_path / "r.html"))
    assert f"version {SCHEMA_VERSION} (current)" in ok("db", "info")
