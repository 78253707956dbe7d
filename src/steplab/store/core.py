"""What every part of the store stands on: its transactions, the schema check at opening, and
the trial-row writes that studies, claims and traces share.

:class:`StoreCore` is the base of :class:`steplab.store.store.Store`; the parts (studies,
claims, leases, traces) are its subclasses, each in its own module, and ``Store`` joins them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, inspect, select
from sqlalchemy import exc as sa_exc

from steplab.errors import StoreError
from steplab.store.engine import (
    BUSY_TIMEOUT_S,
    error_detail,
    not_steplab,
    release_sqlite_file,
    serialize,
)
from steplab.store.migrations import migrate
from steplab.store.schema import (
    SCHEMA_VERSION,
    evals_table,
    meta_table,
    metadata,
    read_meta,
    steps_table,
    studies_table,
    trials_table,
    write_meta,
)

_Self = TypeVar("_Self", bound="StoreCore")


def schema_state(conn: Connection, shown: str, *, upgrade: bool = False) -> str:
    """``"empty"``, ``"incomplete"``, ``"old"`` (only with ``upgrade``) or ``"ok"``; raise
    :class:`StoreError` for a foreign, newer or (without ``upgrade``) older database."""
    names = set(inspect(conn).get_table_names())
    if "meta" not in names:
        foreign = sorted(n for n in names if not n.startswith("sqlite_"))
        if foreign:
            listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise not_steplab(shown, f"it has tables {listed} but no steplab meta")
        return "empty"
    try:
        version = read_meta(conn, "schema_version")
    except sa_exc.SQLAlchemyError:
        raise not_steplab(shown, "its meta table is not steplab's") from None
    if version is None:
        raise not_steplab(shown, "its meta table has no schema_version")
    text = str(version)
    if not text.isdigit() or int(text) > SCHEMA_VERSION:
        raise StoreError(
            f"{shown} has steplab schema version {version} but this steplab reads "
            f"version {SCHEMA_VERSION}: upgrade steplab or point --db at another file"
        )
    if int(text) < SCHEMA_VERSION:
        if upgrade:
            return "old"
        raise StoreError(
            f"{shown} has steplab schema version {version}, this steplab uses version "
            f"{SCHEMA_VERSION}: run `steplab db upgrade --db {shown}` (back it up first)"
        )
    missing = set(metadata.tables) - names
    return "incomplete" if missing else "ok"


class StoreCore:
    """An open database: transactions and the shared trial-row writes (see ``Store``)."""

    def __init__(self, engine: Engine, *, shown: str, sqlite_path: Path | None,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self._engine = engine
        self._busy_timeout_s = busy_timeout_s
        self._shown = shown
        self._sqlite_path = sqlite_path
        self._is_sqlite = engine.dialect.name == "sqlite"
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

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database connections (idempotent)."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()
            if self._sqlite_path is not None:
                release_sqlite_file(self._sqlite_path)

    # -- transactions ------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, what: str, *, write: bool) -> Iterator[Connection]:
        """One transaction, named ``what`` in its error; SQLite writers hold the write lock
        from the start (``BEGIN IMMEDIATE``)."""
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
            detail = error_detail(e)
            hint = "check the database and retry"
            if "locked" in detail or "busy" in detail or "lock timeout" in detail:
                hint = (f"another process held the write lock for over {self._busy_timeout_s:g} s: "
                        "retry when it is done")
            elif "readonly" in detail or "read-only" in detail or "unable to open" in detail:
                hint = "make the file and its directory writable"
            raise StoreError(f"{what} failed on {self._shown} ({detail}): {hint}") from None

    # -- schema ------------------------------------------------------------------------
    def _init_schema(self, *, upgrade: bool = False) -> list[int]:
        """Check the schema, creating it in an empty database and migrating an older one with
        ``upgrade``; return the versions migrated to. Raise :class:`StoreError` for a
        database this steplab must not write, leaving it untouched."""
        applied: list[int] = []
        try:
            with self._lock, self._engine.connect() as conn, conn.begin():
                state = schema_state(conn, self._shown, upgrade=upgrade)
            if state != "ok":
                with self._tx("creating the schema", write=True) as conn:
                    serialize(conn, "steplab schema")
                    state = schema_state(conn, self._shown, upgrade=upgrade)  # again, under the lock
                    if state == "old":
                        applied = migrate(conn)
                    elif state != "ok":
                        metadata.create_all(conn, checkfirst=True)
                    if state == "empty":
                        conn.execute(meta_table.insert(), {"key": "schema_version", "value": str(SCHEMA_VERSION)})
        except UnicodeDecodeError:
            raise not_steplab(self._shown, "its schema text is corrupt") from None
        except sa_exc.SQLAlchemyError as e:
            detail = error_detail(e)
            if self._sqlite_path is not None and ("not a database" in detail or "malformed" in detail):
                raise not_steplab(self._shown, detail) from None
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

    # -- trial rows shared by the parts --------------------------------------------------
    def _no_such(self, what: str, id_: int) -> StoreError:
        return StoreError(f"no {what} with id {id_} in {self._shown}: list them with `steplab runs`")

    def _require_trial(self, conn: Connection, trial_id: int) -> None:
        found = conn.execute(select(trials_table.c.id).where(trials_table.c.id == trial_id)).first()
        if found is None:
            raise self._no_such("trial", trial_id)

    def _check_study(self, conn: Connection, study_id: int | None) -> None:
        if study_id is None:
            return
        found = conn.execute(select(studies_table.c.id).where(studies_table.c.id == study_id)).first()
        if found is None:
            raise StoreError(
                f"no study with id {study_id} in {self._shown}: create it with create_study first"
            )

    def _insert_trial(self, conn: Connection, values: dict[str, Any]) -> int:
        """Insert a trial row and return its id. A trial id is never handed out twice: a
        worker whose claim was taken over may still hold its old id, and must not write into
        a newer trial. PostgreSQL's sequences never go back; SQLite reuses the largest rowid
        once that row is deleted, so there ids continue past a high-water mark kept in
        ``meta.trial_id_high`` (what ``AUTOINCREMENT`` does, without recreating the table
        of older databases)."""
        if self._is_sqlite:
            top = conn.execute(select(func.max(trials_table.c.id))).scalar() or 0
            new = max(int(read_meta(conn, "trial_id_high") or 0), int(top)) + 1
            write_meta(conn, "trial_id_high", new)
            values = {**values, "id": new}
        return int(conn.execute(trials_table.insert().values(**values)).inserted_primary_key[0])

    @staticmethod
    def _delete_trials(conn: Connection, ids: list[int]) -> None:
        # explicit deletes: not every backend enforces ON DELETE CASCADE
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            conn.execute(delete(steps_table).where(steps_table.c.trial_id.in_(chunk)))
            conn.execute(delete(evals_table).where(evals_table.c.trial_id.in_(chunk)))
            conn.execute(delete(trials_table).where(trials_table.c.id.in_(chunk)))
