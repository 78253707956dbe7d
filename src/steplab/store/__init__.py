"""Studies, trials and traces in a SQL database (DESIGN.md, "store.py").

SQLAlchemy Core, SQLite by default (``steplab.db`` in the working directory), any
SQLAlchemy URL otherwise::

    store = open_store("runs.db")            # or "sqlite:///runs.db", "postgresql://..."
    tid = store.start_trial(spec)
    store.append_steps(tid, rows)
    store.finish_trial(tid, result)
    store.steps(tid)["grad_norm"]            # numpy array, one value per recorded step

The schema is versioned (``meta.schema_version``). Opening a file that is not a steplab
database, or one written by a newer steplab, raises :class:`StoreError` and leaves the file
untouched. The contract of :class:`Store` (after Optuna's ``storages/_base.py``) is stated
in its docstring.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from steplab.errors import StoreError
from steplab.results import (
    FINISHED,
    STEP_COLUMNS,
    EvalRow,
    StepRow,
    TrialResult,
    TrialSpec,
)

__all__ = ["SCHEMA_VERSION", "DEFAULT_URL", "Store", "open_store", "resolve_url", "new_worker_id"]

#: the schema this steplab reads and writes (history in ``steplab.store.migrations``); an older
#: database is refused until ``steplab db upgrade``, a newer one always
SCHEMA_VERSION = 2
#: where results go when no ``--db`` is given
DEFAULT_URL = "sqlite:///steplab.db"
#: how long a SQLite writer waits for another process's write lock before giving up
BUSY_TIMEOUT_S = 30.0
#: a running trial's worker touches ``heartbeat_at`` this often (env STEPLAB_HEARTBEAT_S)
HEARTBEAT_S = 10.0
#: a claim whose heartbeat is older than this is dead and may be taken over (env
#: STEPLAB_STALE_AFTER_S); on the claim's own host a dead process is noticed at once
STALE_AFTER_S = 60.0


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise StoreError(f"{name}={text!r} is not a positive number of seconds: fix or unset it")
    return value


def heartbeat_s() -> float:
    """How often a worker beats (``STEPLAB_HEARTBEAT_S``, default :data:`HEARTBEAT_S`)."""
    return _env_seconds("STEPLAB_HEARTBEAT_S", HEARTBEAT_S)


def stale_after_s() -> float:
    """When a silent claim is dead (``STEPLAB_STALE_AFTER_S``, default :data:`STALE_AFTER_S`)."""
    return _env_seconds("STEPLAB_STALE_AFTER_S", STALE_AFTER_S)


def new_worker_id() -> str:
    """``host:pid:nonce``: who holds a claim. The pid lets a process on the same host see at
    once that the claimant died; the nonce tells apart two claims of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid we can check: assume alive
    return True


def claim_is_dead(worker: str | None, heartbeat_at: float | None, now: float, stale_after: float) -> bool:
    """Whether a ``running`` trial's claim may be taken over: it has no heartbeat (started
    by a steplab before claims, or by a loop that never beats), its last heartbeat is older
    than ``stale_after`` seconds, or its worker ran on this host in a process that is gone.
    Heartbeats are wall-clock times of the workers' hosts: keep clocks within a few seconds
    (NTP) of each other, well inside ``stale_after``."""
    if heartbeat_at is None or now - heartbeat_at > stale_after:
        return True
    host, _, rest = (worker or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return not _pid_alive(int(pid_text))
    return False

_SQLITE_MAGIC = b"SQLite format 3\x00"

metadata = MetaData()

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

studies_table = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("kind", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

trials_table = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("studies.id", ondelete="CASCADE"), nullable=True),
    Column("key", String(64), nullable=False),
    Column("workload", String(255), nullable=False),
    Column("variant", String(255), nullable=False),
    Column("algorithm", String(255), nullable=False),
    Column("algorithm_spec", Text, nullable=False),
    Column("hyperparameters", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("budget_steps", Integer, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("stop_at_target", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("steps", Integer, nullable=False),
    Column("train_time_s", Double, nullable=False),
    Column("eval_time_s", Double, nullable=False),
    # NULL means "not reached" (inf): portable across backends
    Column("time_to_target_s", Double, nullable=True),
    Column("steps_to_target", Double, nullable=True),
    Column("final_metrics", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("device", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("versions", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=True),
    Column("name", String(255), nullable=True),
    # schema 2: who runs a ``running`` trial (``new_worker_id``) and when it last said so
    Column("worker", String(255), nullable=True),
    Column("heartbeat_at", Double, nullable=True),
    Index("ix_trials_key", "key"),
    Index("ix_trials_study_status", "study_id", "status"),
)

steps_table = Table(
    "steps",
    metadata,
    Column(
        "trial_id",
        Integer,
        ForeignKey("trials.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step", Integer, primary_key=True, autoincrement=False),
    Column("time_s", Double, nullable=True),
    Column("lr", Double, nullable=True),
    Column("loss", Double, nullable=True),
    Column("grad_norm", Double, nullable=True),
    Column("grad_norm_l1", Double, nullable=True),
    Column("update_norm", Double, nullable=True),
)

evals_table = Table(
    "evals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("time_s", Double, nullable=False),
    Column("split", String(64), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("value", Double, nullable=True),
    Index("ix_evals_trial", "trial_id", "step"),
)

_VALUE_COLUMNS = STEP_COLUMNS[1:]  # everything but "step"


# -- helpers ---------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _one_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(text).__name__


def _dumps(value: Any, what: str) -> str:
    """JSON text that round-trips ``value`` (``inf``/``nan`` kept as ``Infinity``/``NaN``)."""
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise StoreError(
            f"{what} is not JSON-serializable ({_one_line(e)}): use plain "
            "numbers, strings, lists and dicts"
        ) from None


def _float_or_none(value: float | None) -> float | None:
    """SQL value of a trace number: ``None`` and NaN become NULL, infinities are kept."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _inf_to_null(value: float) -> float | None:
    value = float(value)
    if math.isnan(value):
        raise StoreError("time/steps to target is NaN: use math.inf for 'not reached'")
    return None if math.isinf(value) and value > 0 else value


def _lock_id(*parts: object) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, stable across processes."""
    digest = hashlib.sha1("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _null_to_inf(value: float | None) -> float:
    return math.inf if value is None else float(value)


def _resolve(url: str | Path | None) -> tuple[str | URL, Path | None, str]:
    """(SQLAlchemy URL, SQLite file path or None, the name shown in messages)."""
    if url is None:
        url = DEFAULT_URL
    if isinstance(url, Path) or "://" not in url:
        path = Path(url)
        return URL.create("sqlite", database=str(path)), path, str(url)
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as e:
        raise StoreError(
            f"cannot parse database URL {url!r} ({_one_line(e)}): pass a file "
            "path or a SQLAlchemy URL such as sqlite:///steplab.db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            return parsed, Path(database), database
        return parsed, None, url
    return parsed, None, parsed.render_as_string(hide_password=True)


def resolve_url(url: str | Path | None) -> str:
    """The URL for ``url`` that works from any process on this machine: ``None`` and file
    paths become ``sqlite:///`` URLs with an absolute path (worker processes and Ray tasks
    may run in another directory); other URLs are returned unchanged."""
    parsed, path, _ = _resolve(url)
    if path is not None:
        return f"sqlite:///{path.resolve()}"
    return url if isinstance(url, str) else str(parsed)


def _not_steplab(shown: str, reason: str) -> StoreError:
    return StoreError(
        f"{shown} is not a steplab database ({reason}): point --db at another file or move it away"
    )


def _check_sqlite_file(path: Path, shown: str) -> None:
    """Refuse, without opening it through SQLite, a file that cannot be a SQLite database."""
    if "\x00" in str(path):
        raise ValueError("embedded null byte")
    folder = path.parent if str(path.parent) else Path(".")
    if not path.exists():
        if not folder.exists():
            raise StoreError(
                f"cannot create {shown}: directory {folder} does not exist: "
                "create it or point --db elsewhere"
            )
        if not os.access(folder, os.W_OK):
            raise StoreError(
                f"cannot create {shown}: directory {folder} is not writable (or read-only): "
                "make it writable or point --db elsewhere"
            )
        return
    if path.is_dir():
        raise StoreError(
            f"{shown} is a directory: point --db at a file such as {path / 'steplab.db'}"
        )
    if not os.access(folder, os.W_OK) or not os.access(path, os.W_OK):
        raise StoreError(
            f"cannot open {shown}: it or its directory {folder} is not writable (or read-only), and "
            "SQLite writes its -wal and -shm files beside it: make both writable, or copy the file "
            "somewhere writable"
        )
    size = path.stat().st_size
    if size == 0:
        return  # SQLite treats an empty file as an empty database
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot read {shown} ({_one_line(e)}): check its permissions") from None
    if not head.startswith(_SQLITE_MAGIC):
        raise _not_steplab(shown, "file is not a database")
    if len(head) < 100:
        raise _not_steplab(shown, "file is truncated")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(head[28:32], "big")
    header_valid = head[24:28] == head[92:96]  # SQLite file format, "in-header database size"
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if header_valid and not wal_pending and n_pages * page_size > size:
        raise _not_steplab(shown, f"file is truncated: {size} of {n_pages * page_size} bytes")


def _make_engine(url: str | URL, path: Path | None, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        # lock_timeout: a writer waits for another's row lock as long as SQLite's would
        opts = {"options": f"-c lock_timeout={int(busy_timeout_s * 1000)}"} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(parsed, pool_pre_ping=True, connect_args=opts)
    if path is None:  # in-memory: one shared connection for every thread
        engine = create_engine(
            parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False, "timeout": busy_timeout_s}
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy's recipe for real SQLite transactions: pysqlite's own BEGIN handling off,
        # BEGIN emitted in the "begin" event below. None of these pragmas write the file.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # writers take the write lock up front (BEGIN IMMEDIATE): in WAL mode a deferred
        # transaction that reads and then writes can fail at once, without waiting.
        conn.exec_driver_sql(conn.get_execution_options().get("steplab_begin", "BEGIN"))

    return engine


# -- the store -------------------------------------------------------------------------


def _spec_values(spec: TrialSpec) -> dict[str, Any]:
    """The trials-table columns of what a trial trains (all of its spec but the study and key)."""
    return {
        "workload": spec.workload,
        "variant": spec.variant,
        "algorithm": spec.algorithm,
        "algorithm_spec": _dumps(spec.algorithm_spec, "algorithm_spec"),
        "hyperparameters": _dumps(spec.hyperparameters, "hyperparameters"),
        "seed": int(spec.seed),
        "budget_steps": int(spec.budget_steps),
        "idx": int(spec.index),
        "stop_at_target": bool(spec.stop_at_target),
    }


def _outcome_values(result: TrialResult) -> dict[str, Any]:
    """The trials-table columns of a trial's outcome (what finishing or importing it writes)."""
    return {
        "status": result.status,
        "steps": int(result.steps),
        "train_time_s": float(result.train_time_s),
        "eval_time_s": float(result.eval_time_s),
        "time_to_target_s": _inf_to_null(result.time_to_target_s),
        "steps_to_target": _inf_to_null(result.steps_to_target),
        "final_metrics": _dumps(result.final_metrics, "final_metrics"),
        "message": result.message,
        "device": result.device,
        "host": result.host,
        "versions": _dumps(result.versions, "versions"),
    }


class Store:
    """Studies, trials and their traces in one SQL database.

    Contract:

    - **Concurrency.** A ``Store`` may be shared by the threads of one process. Several
      processes may open the same SQLite file at once: it runs in WAL mode (readers never
      block the writer) and a writer waits up to ``BUSY_TIMEOUT_S`` (30 s) for another
      writer's lock. PostgreSQL works the same way (``lock_timeout`` likewise). Open one ``Store`` per process; do not carry one across ``fork``.
    - **Atomicity.** Every write method is one transaction: a crash (even SIGKILL) leaves
      either all of its rows or none. A killed run leaves its trial ``running``; a later
      :meth:`claim_trial` of the same key or :meth:`reap_stale` removes it once its claim
      is dead (:func:`claim_is_dead`), :meth:`discard_unfinished` at once.
    - **Claims.** Workers on several processes or machines share a study through
      :meth:`claim_trial` (one winner per trial key), :meth:`heartbeat` and
      :meth:`reap_stale`; on SQLite they must share the file (one machine), on PostgreSQL
      the server.
    - **Copies.** Every returned object (dicts, ``TrialResult``, arrays, rows) is a fresh
      copy; changing it never changes the store.
    - **Numbers.** ``time_to_target_s``/``steps_to_target`` of a trial that did not reach
      its target are stored as SQL NULL and read back as ``math.inf``. Trace values that
      are ``None`` or NaN are stored as NULL and read back as NaN by :meth:`steps` and
      :meth:`evals`, ``None`` by :meth:`step_rows`. Infinite trace values are kept. JSON
      columns (specs, hyperparameters, metrics) keep ``inf``/``nan`` as ``Infinity``/``NaN``.
    - **Errors.** Unknown ids, unreadable files and failed writes raise :class:`StoreError`
      with a one-line message.

    Build one with :func:`open_store`.
    """

    def __init__(self, engine: Engine, *, shown: str, sqlite_path: Path | None,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self._engine = engine
        self._busy_timeout_s = busy_timeout_s
        self._shown = shown
        self._sqlite_path = sqlite_path
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._is_postgres = engine.dialect.name == "postgresql"
        # the in-memory database is one connection: serialize its users
        self._lock: Any = (
            threading.RLock()
            if self._is_sqlite and sqlite_path is None
            else contextlib.nullcontext()
        )
        self._closed = False
        #: schema versions that opening this store migrated to (``open_store(upgrade=True)``)
        self.applied_migrations: list[int] = []

    @property
    def url(self) -> str:
        """The database, as shown in messages (password hidden)."""
        return self._shown

    def __repr__(self) -> str:
        return f"Store({self._shown!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, what: str, *, write: bool) -> Iterator[Connection]:
        if self._closed:
            raise StoreError(f"the store {self._shown} is closed: open it again with open_store")
        try:
            with self._lock, self._engine.connect() as conn:
                if write and self._is_sqlite:
                    conn.execution_options(steplab_begin="BEGIN IMMEDIATE")
                with conn.begin():
                    yield conn
        except UnicodeDecodeError:
            raise StoreError(f"{what} failed on {self._shown}: it holds corrupt text; restore it from a "
                             "backup or point --db elsewhere") from None
        except sa_exc.SQLAlchemyError as e:
            detail = _one_line(getattr(e, "orig", None) or e)
            hint = "check the database and retry"
            if "locked" in detail or "busy" in detail or "lock timeout" in detail:
                hint = (f"another process held the write lock for over {self._busy_timeout_s:g} s: "
                        "retry when it is done")
            elif "readonly" in detail or "read-only" in detail or "unable to open" in detail:
                hint = "make the file and its directory writable"
            raise StoreError(f"{what} failed on {self._shown} ({detail}): {hint}") from None

    # -- schema ------------------------------------------------------------------------
    def _state(self, conn: Connection, *, upgrade: bool = False) -> str:
        """``"empty"``, ``"incomplete"``, ``"old"`` (only with ``upgrade``) or ``"ok"``;
        raise for a foreign, newer or (without ``upgrade``) older database."""
        names = set(inspect(conn).get_table_names())
        if "meta" not in names:
            foreign = sorted(n for n in names if not n.startswith("sqlite_"))
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise _not_steplab(self._shown, f"it has tables {shown} but no steplab meta")
            return "empty"
        try:
            version = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema_version")
            ).scalar_one_or_none()
        except sa_exc.SQLAlchemyError:
            raise _not_steplab(self._shown, "its meta table is not steplab's") from None
        if version is None:
            raise _not_steplab(self._shown, "its meta table has no schema_version")
        text = str(version)
        if not text.isdigit() or int(text) > SCHEMA_VERSION:
            raise StoreError(
                f"{self._shown} has steplab schema version {version} but this steplab reads "
                f"version {SCHEMA_VERSION}: upgrade steplab or point --db at another file"
            )
        if int(text) < SCHEMA_VERSION:
            if upgrade:
                return "old"
            raise StoreError(
                f"{self._shown} has steplab schema version {version}, this steplab uses version "
                f"{SCHEMA_VERSION}: run `steplab db upgrade --db {self._shown}` (back it up first)"
            )
        missing = set(metadata.tables) - names
        return "incomplete" if missing else "ok"

    def _serialize(self, conn: Connection, *what: object) -> None:
        """Serialize the writers of ``what`` (the schema, a study's lease, a trial key) across
        processes until the transaction ends: SQLite's write lock is already held (``BEGIN
        IMMEDIATE``); PostgreSQL takes a transaction-scoped advisory lock."""
        if self._is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(*what)})

    @staticmethod
    def _meta(conn: Connection, key: str) -> str | None:
        return conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar_one_or_none()

    @staticmethod
    def _set_meta(conn: Connection, key: str, value: object) -> None:
        conn.execute(delete(meta_table).where(meta_table.c.key == key))
        conn.execute(meta_table.insert(), {"key": key, "value": str(value)})

    def _init_schema(self, *, upgrade: bool = False) -> list[int]:
        applied: list[int] = []
        try:
            with self._lock, self._engine.connect() as conn, conn.begin():
                state = self._state(conn, upgrade=upgrade)
            if state != "ok":
                with self._tx("creating the schema", write=True) as conn:
                    self._serialize(conn, "steplab schema")
                    state = self._state(conn, upgrade=upgrade)  # again, under the lock
                    if state == "old":
                        from steplab.store import migrations

                        applied = migrations.apply(conn)
                    elif state != "ok":
                        metadata.create_all(conn, checkfirst=True)
                    if state == "empty":
                        conn.execute(
                            meta_table.insert(),
                            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        )
        except UnicodeDecodeError:
            raise _not_steplab(self._shown, "its schema text is corrupt") from None
        except sa_exc.SQLAlchemyError as e:
            detail = _one_line(getattr(e, "orig", None) or e)
            if self._sqlite_path is not None and (
                "not a database" in detail or "malformed" in detail
            ):
                raise _not_steplab(self._shown, detail) from None
            raise StoreError(
                f"cannot open {self._shown} ({detail}): check the path or URL "
                "and that the database is reachable"
            ) from None
        if self._sqlite_path is not None:
            self._enable_wal()
        return applied

    def _enable_wal(self) -> None:
        # journal_mode=WAL is stored in the file, so once is enough; it must run outside a
        # transaction, hence on the raw connection. A file system without WAL support keeps
        # the rollback journal (still safe, with less read/write concurrency).
        with contextlib.suppress(Exception), self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA journal_mode=WAL").fetchall()  # type: ignore[union-attr]

    def close(self) -> None:
        """Release the database connections (idempotent)."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    # -- studies -----------------------------------------------------------------------
    def create_study(self, name: str, kind: str, spec: dict[str, Any]) -> int:
        """Insert a study and return its id. Names are unique: resume an existing study
        with :meth:`find_study`."""
        text = _dumps(spec, f"spec of study {name!r}")
        with self._tx(f"creating study {name!r}", write=True) as conn:
            exists = conn.execute(
                select(studies_table.c.id).where(studies_table.c.name == name)
            ).first()
            if exists is not None:
                raise StoreError(
                    f"a study named {name!r} already exists in {self._shown} "
                    f"(id {exists[0]}): pick another name or resume it"
                )
            result = conn.execute(
                studies_table.insert().values(name=name, kind=kind, spec=text, created_at=_now())
            )
            return int(result.inserted_primary_key[0])

    @staticmethod
    def _study_dict(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "spec": json.loads(row.spec),
            "created_at": row.created_at,
        }

    def get_study(self, study_id: int) -> dict[str, Any]:
        """The study ``{"id", "name", "kind", "spec", "created_at"}``."""
        with self._tx(f"reading study {study_id}", write=False) as conn:
            row = conn.execute(select(studies_table).where(studies_table.c.id == study_id)).first()
        if row is None:
            raise StoreError(
                f"no study with id {study_id} in {self._shown}: list them with `steplab runs`"
            )
        return self._study_dict(row)

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study, oldest first (same dicts as :meth:`get_study`)."""
        with self._tx("listing studies", write=False) as conn:
            rows = conn.execute(select(studies_table).order_by(studies_table.c.id)).all()
        return [self._study_dict(r) for r in rows]

    def find_study(self, name: str) -> dict[str, Any] | None:
        """The study called ``name``, or ``None``."""
        with self._tx(f"finding study {name!r}", write=False) as conn:
            row = conn.execute(select(studies_table).where(studies_table.c.name == name)).first()
        return None if row is None else self._study_dict(row)

    # -- trials ------------------------------------------------------------------------
    def _require_trial(self, conn: Connection, trial_id: int) -> None:
        found = conn.execute(select(trials_table.c.id).where(trials_table.c.id == trial_id)).first()
        if found is None:
            raise StoreError(
                f"no trial with id {trial_id} in {self._shown}: list them with `steplab runs`"
            )

    def _start_values(
        self,
        spec: TrialSpec,
        *,
        name: str | None,
        host: str,
        versions: dict[str, str] | None,
        device: str,
        key: str | None,
        worker: str | None,
    ) -> dict[str, Any]:
        return {
            "study_id": spec.study_id,
            "key": key or spec.key(),
            **_spec_values(spec),
            "status": "running",
            "steps": 0,
            "train_time_s": 0.0,
            "eval_time_s": 0.0,
            "time_to_target_s": None,
            "steps_to_target": None,
            "final_metrics": "{}",
            "message": "",
            "device": device,
            "host": host,
            "versions": _dumps(versions or {}, "versions"),
            "created_at": _now(),
            "finished_at": None,
            "name": name,
            "worker": worker,
            "heartbeat_at": time.time() if worker is not None else None,
        }

    def _insert_trial(self, conn: Connection, values: dict[str, Any]) -> int:
        """Insert a trial row and return its id. A trial id is never handed out twice: a
        worker whose claim was taken over may still hold its old id, and must not write into
        a newer trial. PostgreSQL's sequences never go back; SQLite reuses the largest rowid
        once that row is deleted, so there ids continue past a high-water mark kept in
        ``meta.trial_id_high`` (what ``AUTOINCREMENT`` does, without recreating the table
        of older databases)."""
        if self._is_sqlite:
            top = conn.execute(select(func.max(trials_table.c.id))).scalar() or 0
            new = max(int(self._meta(conn, "trial_id_high") or 0), int(top)) + 1
            self._set_meta(conn, "trial_id_high", new)
            values = {**values, "id": new}
        return int(conn.execute(trials_table.insert().values(**values)).inserted_primary_key[0])

    def _check_study(self, conn: Connection, study_id: int | None) -> None:
        if study_id is None:
            return
        found = conn.execute(select(studies_table.c.id).where(studies_table.c.id == study_id)).first()
        if found is None:
            raise StoreError(
                f"no study with id {study_id} in {self._shown}: create it with create_study first"
            )

    def start_trial(
        self,
        spec: TrialSpec,
        *,
        name: str | None = None,
        host: str = "",
        versions: dict[str, str] | None = None,
        device: str = "cpu",
        key: str | None = None,
        worker: str | None = None,
    ) -> int:
        """Insert a ``running`` trial for ``spec`` and return its id; ``name`` is an optional
        user label (the recorder's run name); ``key`` replaces ``spec.key()`` where the job
        that asked for the trial is known by another key (a refined second pass, whose
        schedule is only known once its first pass ran); ``worker`` (:func:`new_worker_id`)
        marks who runs it, for :meth:`heartbeat` and :meth:`reap_stale`."""
        values = self._start_values(spec, name=name, host=host, versions=versions, device=device,
                                    key=key, worker=worker)
        with self._tx("starting a trial", write=True) as conn:
            self._check_study(conn, spec.study_id)
            return self._insert_trial(conn, values)

    def set_trial_spec(self, trial_id: int, spec: TrialSpec) -> None:
        """Store ``spec`` (workload, algorithm, hyperparameters, ...; not the key) as the
        spec of a running trial: a claimed trial learns what exactly it trains once it
        starts (a refined second pass's schedule comes from its first pass)."""
        values = _spec_values(spec)
        with self._tx(f"updating the spec of trial {trial_id}", write=True) as conn:
            done = conn.execute(
                update(trials_table)
                .where(trials_table.c.id == trial_id, trials_table.c.status == "running")
                .values(**values)
            )
            if done.rowcount == 0:
                raise StoreError(
                    f"no running trial with id {trial_id} in {self._shown}: it finished, or "
                    "its claim was taken over by another worker"
                )

    def set_message(self, trial_id: int, message: str) -> None:
        """Replace a trial's message (why it stopped)."""
        with self._tx(f"updating the message of trial {trial_id}", write=True) as conn:
            done = conn.execute(update(trials_table).where(trials_table.c.id == trial_id).values(message=str(message)))
            if done.rowcount == 0:
                raise StoreError(f"no trial with id {trial_id} in {self._shown}: list them with `steplab runs`")

    def set_lease(self, study_id: int, steps: int) -> None:
        """Set the steps a study has leased so far (``lease_steps``) to ``steps``."""
        key = f"leased_steps:{int(study_id)}"
        with self._tx(f"resetting the step lease of study {study_id}", write=True) as conn:
            self._set_meta(conn, key, int(steps))

    def leased_steps(self, study_id: int) -> int | None:
        """The steps a study has leased (``lease_steps``), or ``None`` if it never leased."""
        key = f"leased_steps:{int(study_id)}"
        with self._tx(f"reading the step lease of study {study_id}", write=False) as conn:
            value = self._meta(conn, key)
        return None if value is None else int(value)

    def lease_steps(self, study_id: int, steps: int, budget: int) -> bool:
        """Atomically take ``steps`` training steps from a study's compute ``budget``: True
        (and counted) when they fit, False when the budget would be passed. Workers that
        share a budget (Ray trials of one tune) lease each chunk before training it, so the
        steps trained never sum past the budget, however the workers are scheduled."""
        key = f"leased_steps:{int(study_id)}"
        with self._tx(f"leasing {steps} steps of study {study_id}", write=True) as conn:
            self._serialize(conn, "lease", study_id)
            used = int(self._meta(conn, key) or 0)
            if used + steps > budget:
                return False
            self._set_meta(conn, key, used + steps)
            return True

    def truncate_trial(self, trial_id: int, step: int) -> None:
        """Delete a running trial's step rows from ``step`` on and its evaluations after
        ``step`` (one transaction): the trial goes on from a state saved at ``step``, e.g. a
        PBT member restarted from a checkpoint taken before its last steps."""
        with self._tx(f"truncating trial {trial_id} at step {step}", write=True) as conn:
            self._require_trial(conn, trial_id)
            conn.execute(delete(steps_table).where(steps_table.c.trial_id == trial_id, steps_table.c.step >= step))
            conn.execute(delete(evals_table).where(evals_table.c.trial_id == trial_id, evals_table.c.step > step))

    def trial_exists(self, trial_id: int) -> bool:
        """Whether a trial with this id is in the store (a taken-over claim is not)."""
        with self._tx(f"looking up trial {trial_id}", write=False) as conn:
            return conn.execute(select(trials_table.c.id).where(trials_table.c.id == trial_id)).first() is not None

    # -- claims: several processes or machines on one study -----------------------------
    def _study_is(self, study_id: int | None) -> Any:
        c = trials_table.c.study_id
        return c.is_(None) if study_id is None else c == study_id

    def claim_trial(
        self,
        spec: TrialSpec,
        *,
        worker: str,
        key: str | None = None,
        name: str | None = None,
        host: str = "",
        versions: dict[str, str] | None = None,
        device: str = "cpu",
        stale_after: float | None = None,
    ) -> int | None:
        """Atomically claim the trial ``key`` (default ``spec.key()``) of ``spec.study_id``
        for ``worker``: in ONE transaction, look for trials with that key; if one finished
        or one is ``running`` under a live claim, return ``None`` (nothing to do here);
        otherwise delete the dead claims' rows (:func:`claim_is_dead`: a killed worker's
        attempt, with its steps and evals) and insert a ``running`` trial owned by
        ``worker``, returning its id. Claims of one key are serialized by SQLite's write
        lock (``BEGIN IMMEDIATE``) or, on PostgreSQL, a transaction-scoped advisory lock on
        (study, key), so two workers never both get the same trial."""
        key = key or spec.key()
        stale = stale_after_s() if stale_after is None else stale_after
        values = self._start_values(spec, name=name, host=host, versions=versions, device=device,
                                    key=key, worker=worker)
        with self._tx(f"claiming a trial of study {spec.study_id}", write=True) as conn:
            self._serialize(conn, spec.study_id, key)
            self._check_study(conn, spec.study_id)
            rows = conn.execute(
                select(trials_table.c.id, trials_table.c.status, trials_table.c.worker,
                       trials_table.c.heartbeat_at)
                .where(self._study_is(spec.study_id), trials_table.c.key == key)
            ).all()
            now = time.time()
            if any(r.status in FINISHED for r in rows):
                return None
            if any(not claim_is_dead(r.worker, r.heartbeat_at, now, stale) for r in rows):
                return None
            self._delete_trials(conn, [int(r.id) for r in rows])
            return self._insert_trial(conn, values)

    def beat(self, worker: str) -> int:
        """Touch ``heartbeat_at`` of ``worker``'s running trials; return how many."""
        with self._tx("recording a heartbeat", write=True) as conn:
            done = conn.execute(
                update(trials_table)
                .where(trials_table.c.worker == worker, trials_table.c.status == "running")
                .values(heartbeat_at=time.time())
            )
            return int(done.rowcount)

    @contextlib.contextmanager
    def heartbeat(self, worker: str, every_s: float | None = None) -> Iterator[None]:
        """Beat for ``worker`` every ``every_s`` seconds (default :func:`heartbeat_s`) from a
        background thread while the block runs. A failed beat is retried at the next one (a
        claim only dies after :func:`stale_after_s` of silence)."""
        every = heartbeat_s() if every_s is None else every_s
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every):
                with contextlib.suppress(StoreError):
                    self.beat(worker)

        thread = threading.Thread(target=run, name=f"steplab-heartbeat-{worker}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=every + self._busy_timeout_s)

    def release(self, worker: str) -> int:
        """Delete ``worker``'s ``running`` trials with their rows (one transaction) and return
        how many: a worker that stops without finishing (an error outside the training loop,
        Ctrl-C) gives its claims back at once rather than after ``stale_after_s``."""
        with self._tx(f"releasing the trials of worker {worker}", write=True) as conn:
            ids = list(conn.execute(
                select(trials_table.c.id).where(trials_table.c.worker == worker,
                                                trials_table.c.status == "running")
            ).scalars())
            self._delete_trials(conn, ids)
        return len(ids)

    def reap_stale(self, study_id: int | None, stale_after: float | None = None) -> int:
        """Delete the ``running`` trials of a study whose claim is dead (see
        :func:`claim_is_dead`) with their rows, in one transaction; return how many. Live
        trials of other processes are left alone, so this is safe while they run."""
        stale = stale_after_s() if stale_after is None else stale_after
        with self._tx(f"reaping dead trials of study {study_id}", write=True) as conn:
            rows = conn.execute(
                select(trials_table.c.id, trials_table.c.worker, trials_table.c.heartbeat_at)
                .where(self._study_is(study_id), trials_table.c.status == "running")
            ).all()
            now = time.time()
            dead = [int(r.id) for r in rows if claim_is_dead(r.worker, r.heartbeat_at, now, stale)]
            self._delete_trials(conn, dead)
        return len(dead)

    def claims(self, study_id: int | None = None) -> list[dict[str, Any]]:
        """The ``running`` trials (of one study, or all with ``study_id=None``) as
        ``{"id", "study_id", "key", "worker", "heartbeat_at", "dead"}``."""
        query = select(trials_table.c.id, trials_table.c.study_id, trials_table.c.key,
                       trials_table.c.worker, trials_table.c.heartbeat_at).where(
            trials_table.c.status == "running").order_by(trials_table.c.id)
        if study_id is not None:
            query = query.where(trials_table.c.study_id == study_id)
        with self._tx("listing running trials", write=False) as conn:
            rows = conn.execute(query).all()
        now, stale = time.time(), stale_after_s()
        return [{**dict(r._mapping), "dead": claim_is_dead(r.worker, r.heartbeat_at, now, stale)} for r in rows]

    @staticmethod
    def _touch(conn: Connection, trial_id: int) -> None:
        """Writing a running trial's trace is a heartbeat too (a loop recorded with the
        ``Recorder`` beats at every flush, without a thread)."""
        conn.execute(
            update(trials_table)
            .where(trials_table.c.id == trial_id, trials_table.c.status == "running")
            .values(heartbeat_at=time.time())
        )

    def append_steps(self, trial_id: int, rows: Sequence[StepRow]) -> None:
        """Insert step rows (one transaction). A step already stored raises StoreError."""
        if not rows:
            return
        payload = [
            {
                "trial_id": trial_id,
                "step": int(r.step),
                **{c: _float_or_none(getattr(r, c)) for c in _VALUE_COLUMNS},
            }
            for r in rows
        ]
        with self._tx(f"appending {len(rows)} steps to trial {trial_id}", write=True) as conn:
            self._require_trial(conn, trial_id)
            conn.execute(steps_table.insert(), payload)
            self._touch(conn, trial_id)

    def append_evals(self, trial_id: int, rows: Sequence[EvalRow]) -> None:
        """Insert evaluation rows (one transaction)."""
        if not rows:
            return
        payload = [
            {
                "trial_id": trial_id,
                "step": int(r.step),
                "time_s": float(r.time_s),
                "split": r.split,
                "metric": r.metric,
                "value": _float_or_none(r.value),
            }
            for r in rows
        ]
        with self._tx(f"appending {len(rows)} evals to trial {trial_id}", write=True) as conn:
            self._require_trial(conn, trial_id)
            conn.execute(evals_table.insert(), payload)
            self._touch(conn, trial_id)

    def finish_trial(self, trial_id: int, result: TrialResult) -> None:
        """Record the outcome of a trial (status, times, metrics, ...) in one transaction.
        ``result.spec`` is not stored again: the trial keeps the spec it started with."""
        if result.status not in FINISHED:
            raise StoreError(
                f"cannot finish trial {trial_id} with status {result.status!r}: "
                f"use one of {', '.join(FINISHED)}"
            )
        values = {**_outcome_values(result), "finished_at": _now()}
        with self._tx(f"finishing trial {trial_id}", write=True) as conn:
            done = conn.execute(
                update(trials_table).where(trials_table.c.id == trial_id).values(**values)
            )
            if done.rowcount == 0:
                raise StoreError(
                    f"no trial with id {trial_id} in {self._shown}: start it with start_trial first"
                )

    def import_trial(
        self,
        result: TrialResult,
        steps: Sequence[StepRow],
        evals: Sequence[EvalRow] = (),
        *,
        name: str | None = None,
    ) -> int:
        """Insert a finished trial with all its step and eval rows in ONE transaction and
        return its id: a run recorded elsewhere (TensorBoard, MLflow, CSV) either lands whole
        or, on any error, leaves the store unchanged. ``result.spec`` is the trial's spec;
        ``result.status`` must be a finished status."""
        if result.status not in FINISHED:
            raise StoreError(
                f"cannot import a trial with status {result.status!r}: use one of {', '.join(FINISHED)}"
            )
        spec = result.spec
        values = {
            "study_id": spec.study_id,
            "key": spec.key(),
            **_spec_values(spec),
            **_outcome_values(result),
            "created_at": _now(),
            "finished_at": _now(),
            "name": name,
        }
        with self._tx(f"importing a trial with {len(steps)} steps", write=True) as conn:
            tid = self._insert_trial(conn, values)
            if steps:
                conn.execute(
                    steps_table.insert(),
                    [
                        {
                            "trial_id": tid,
                            "step": int(r.step),
                            **{c: _float_or_none(getattr(r, c)) for c in _VALUE_COLUMNS},
                        }
                        for r in steps
                    ],
                )
            if evals:
                conn.execute(
                    evals_table.insert(),
                    [
                        {
                            "trial_id": tid,
                            "step": int(r.step),
                            "time_s": float(r.time_s),
                            "split": r.split,
                            "metric": r.metric,
                            "value": _float_or_none(r.value),
                        }
                        for r in evals
                    ],
                )
        return tid

    @staticmethod
    def _trial(row: Any) -> TrialResult:
        spec = TrialSpec(
            workload=row.workload,
            variant=row.variant,
            algorithm=row.algorithm,
            algorithm_spec=json.loads(row.algorithm_spec),
            hyperparameters=json.loads(row.hyperparameters),
            seed=row.seed,
            budget_steps=row.budget_steps,
            study_id=row.study_id,
            index=row.idx,
            stop_at_target=bool(row.stop_at_target),
        )
        return TrialResult(
            spec=spec,
            status=row.status,
            steps=row.steps,
            train_time_s=row.train_time_s,
            eval_time_s=row.eval_time_s,
            time_to_target_s=_null_to_inf(row.time_to_target_s),
            steps_to_target=_null_to_inf(row.steps_to_target),
            final_metrics=json.loads(row.final_metrics),
            message=row.message,
            device=row.device,
            host=row.host,
            versions=json.loads(row.versions),
            id=row.id,
        )

    def get_trial(self, trial_id: int) -> TrialResult:
        """The trial as a :class:`TrialResult` with ``id`` set (``running`` ones included)."""
        with self._tx(f"reading trial {trial_id}", write=False) as conn:
            row = conn.execute(select(trials_table).where(trials_table.c.id == trial_id)).first()
        if row is None:
            raise StoreError(
                f"no trial with id {trial_id} in {self._shown}: list them with `steplab runs`"
            )
        return self._trial(row)

    def trial_info(self, trial_id: int) -> dict[str, Any]:
        """What a :class:`TrialResult` does not carry: ``{"id", "name", "key", "created_at",
        "finished_at"}``."""
        cols = [trials_table.c[c] for c in ("id", "name", "key", "created_at", "finished_at")]
        with self._tx(f"reading trial {trial_id}", write=False) as conn:
            row = conn.execute(select(*cols).where(trials_table.c.id == trial_id)).first()
        if row is None:
            raise StoreError(
                f"no trial with id {trial_id} in {self._shown}: list them with `steplab runs`"
            )
        return dict(row._mapping)

    def list_trials(
        self,
        study_id: int | None = None,
        status: str | Sequence[str] | None = None,
        workload: str | None = None,
        *,
        name: str | None = None,
        key: str | None = None,
    ) -> list[TrialResult]:
        """Trials in id order, filtered by study, status (one or several), workload, user
        label and key; ``None`` means no filter."""
        query = select(trials_table).order_by(trials_table.c.id)
        if study_id is not None:
            query = query.where(trials_table.c.study_id == study_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(trials_table.c.status.in_(statuses))
        if workload is not None:
            query = query.where(trials_table.c.workload == workload)
        if name is not None:
            query = query.where(trials_table.c.name == name)
        if key is not None:
            query = query.where(trials_table.c.key == key)
        with self._tx("listing trials", write=False) as conn:
            rows = conn.execute(query).all()
        return [self._trial(r) for r in rows]

    def finished_by_key(self, study_id: int | None) -> dict[str, TrialResult]:
        """``TrialSpec.key() -> finished trial`` of a study (``None``: trials without a
        study); the newest wins when a key was run twice. A benchmark skips these keys when it
        resumes."""
        query = (
            select(trials_table)
            .where(trials_table.c.status.in_(FINISHED))
            .order_by(trials_table.c.id)
        )
        if study_id is None:
            query = query.where(trials_table.c.study_id.is_(None))
        else:
            query = query.where(trials_table.c.study_id == study_id)
        with self._tx(f"reading finished trials of study {study_id}", write=False) as conn:
            rows = conn.execute(query).all()
        return {r.key: self._trial(r) for r in rows}

    def _delete_trials(self, conn: Connection, ids: list[int]) -> None:
        # explicit deletes: not every backend enforces ON DELETE CASCADE
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            conn.execute(delete(steps_table).where(steps_table.c.trial_id.in_(chunk)))
            conn.execute(delete(evals_table).where(evals_table.c.trial_id.in_(chunk)))
            conn.execute(delete(trials_table).where(trials_table.c.id.in_(chunk)))

    def delete_trial(self, trial_id: int) -> None:
        """Delete a trial with its step and eval rows (one transaction)."""
        with self._tx(f"deleting trial {trial_id}", write=True) as conn:
            self._require_trial(conn, trial_id)
            self._delete_trials(conn, [trial_id])

    def discard_unfinished(self, study_id: int) -> int:
        """Delete the ``running`` trials of a study with their rows (a killed run's leftovers,
        so a resumed benchmark re-runs them cleanly); return how many. Only call it when no
        other process is still running trials of this study."""
        with self._tx(f"discarding unfinished trials of study {study_id}", write=True) as conn:
            ids = list(
                conn.execute(
                    select(trials_table.c.id).where(
                        trials_table.c.study_id == study_id, trials_table.c.status == "running"
                    )
                ).scalars()
            )
            self._delete_trials(conn, ids)
        return len(ids)

    # -- traces ------------------------------------------------------------------------
    def _step_rows(self, trial_id: int) -> list[Any]:
        cols = [steps_table.c[c] for c in STEP_COLUMNS]
        with self._tx(f"reading steps of trial {trial_id}", write=False) as conn:
            self._require_trial(conn, trial_id)
            return conn.execute(
                select(*cols).where(steps_table.c.trial_id == trial_id).order_by(steps_table.c.step)
            ).all()

    def steps(self, trial_id: int) -> dict[str, np.ndarray]:
        """The step trace as ``{column: array}`` for every name in ``STEP_COLUMNS``, in step
        order: ``step`` is int64, the rest float64 with NaN where nothing was recorded."""
        rows = self._step_rows(trial_id)
        out: dict[str, np.ndarray] = {}
        for j, column in enumerate(STEP_COLUMNS):
            if column == "step":
                out[column] = np.array([r[j] for r in rows], dtype=np.int64)
            else:
                out[column] = np.array([r[j] for r in rows], dtype=np.float64)
        return out

    def step_rows(self, trial_id: int) -> list[StepRow]:
        """The step trace as :class:`StepRow` objects (NULL -> ``None``)."""
        return [StepRow(*r) for r in self._step_rows(trial_id)]

    def evals(self, trial_id: int) -> list[EvalRow]:
        """The evaluation rows of a trial, in (step, insertion) order; NULL values -> NaN."""
        with self._tx(f"reading evals of trial {trial_id}", write=False) as conn:
            self._require_trial(conn, trial_id)
            rows = conn.execute(
                select(evals_table)
                .where(evals_table.c.trial_id == trial_id)
                .order_by(evals_table.c.step, evals_table.c.id)
            ).all()
        return [
            EvalRow(
                step=r.step,
                time_s=r.time_s,
                split=r.split,
                metric=r.metric,
                value=math.nan if r.value is None else r.value,
            )
            for r in rows
        ]


def open_store(url: str | Path | None = None, *, upgrade: bool = False,
               busy_timeout_s: float = BUSY_TIMEOUT_S) -> Store:
    """Open (creating if needed) the results database.

    Args:
        url: a SQLAlchemy URL (``sqlite:///runs.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://user@host/db``), a plain file path (``runs.db``), or
            ``None`` for ``steplab.db`` in the working directory.
        upgrade: migrate a database of an older schema version (``steplab db upgrade``);
            without it such a database is refused, untouched.
        busy_timeout_s: how long a writer waits for another process's lock.

    Returns:
        A :class:`Store`. A new or empty SQLite file gets the schema (WAL mode, 30 s busy
        timeout, foreign keys on).

    Raises:
        StoreError: the file is not a SQLite database, holds another application's tables,
            or was written by a steplab with another schema version (older: unless
            ``upgrade``). The file is left unchanged.
    """
    sa_url, path, shown = _resolve(url)
    if path is not None:
        try:
            _check_sqlite_file(path, shown)
        except (ValueError, OSError) as e:  # a NUL in the path, a name too long, ...
            raise StoreError(f"cannot use {shown[:200]!r} as a database file ({_one_line(e)}): fix --db") from None
    try:
        engine = _make_engine(sa_url, path, busy_timeout_s)
    except (sa_exc.SQLAlchemyError, ImportError) as e:
        raise StoreError(
            f"cannot open {shown} ({_one_line(e)}): install the database driver or fix the URL"
        ) from None
    store = Store(engine, shown=shown, sqlite_path=path, busy_timeout_s=busy_timeout_s)
    try:
        store.applied_migrations = store._init_schema(upgrade=upgrade)
    except BaseException:
        store.close()
        raise
    return store
