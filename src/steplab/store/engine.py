"""Where the store lives: database URLs, SQLAlchemy engines and the SQLite/PostgreSQL specifics.

A ``--db`` value is a SQLAlchemy URL (``sqlite:///runs.db``, ``postgresql+psycopg://...``) or
a plain file path. Every URL that reaches a message goes through :func:`redact_url`, so a
password never shows in an error, a log or a ``repr``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from steplab.errors import StoreError

#: where results go when no ``--db`` is given
DEFAULT_URL = "sqlite:///steplab.db"
#: how long a SQLite writer waits for another process's write lock before giving up
BUSY_TIMEOUT_S = 30.0

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the password of ``scheme://user:password@host`` in any text, for strings SQLAlchemy cannot parse
_PASSWORD = re.compile(r"(?P<head>(?:[A-Za-z][\w+.-]*)?://[^:/@\s]*:)[^\s]*@")


def _hide_passwords(text: str) -> str:
    return _PASSWORD.sub(r"\g<head>***@", text)


def redact_url(url: str | URL) -> str:
    """``url`` with its password shown as ``***``: SQLAlchemy's own rendering
    (``URL.render_as_string(hide_password=True)``) where it parses, then a regex over the
    text, for strings SQLAlchemy cannot parse and for an unencoded ``@`` in a password
    (SQLAlchemy ends the password at the first ``@``)."""
    try:
        text = make_url(url).render_as_string(hide_password=True)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        text = str(url)
    return _hide_passwords(text)


def one_line(detail: object) -> str:
    """The first non-empty line of an error's text, any URL password in it redacted."""
    lines = [line.strip() for line in str(detail).strip().splitlines() if line.strip()]
    return _hide_passwords(lines[0]) if lines else type(detail).__name__


def error_detail(error: BaseException) -> str:
    """One line of what the database driver said (SQLAlchemy wraps it in ``error.orig``)."""
    return one_line(getattr(error, "orig", None) or error)


class Location(NamedTuple):
    """A resolved ``--db``: the SQLAlchemy URL, the SQLite file (``None`` for memory or a
    server) and the name shown in messages (password hidden)."""

    url: URL
    sqlite_path: Path | None
    shown: str


def locate(url: str | Path | None) -> Location:
    """Resolve a ``--db`` value: ``None`` is :data:`DEFAULT_URL`, a string without ``://`` or a
    ``Path`` is a SQLite file."""
    if url is None:
        url = DEFAULT_URL
    if isinstance(url, Path) or "://" not in url:
        path = Path(url)
        return Location(URL.create("sqlite", database=str(path)), path, str(url))
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as e:
        raise StoreError(
            f"cannot parse database URL {redact_url(url)!r} ({one_line(e)}): pass a file "
            "path or a SQLAlchemy URL such as sqlite:///steplab.db"
        ) from None
    if "@" in (parsed.host or ""):  # SQLAlchemy ends the password at its first "@"
        raise StoreError(f"the password in database URL {redact_url(url)!r} holds an '@': write it as %40")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            return Location(parsed, Path(database), database)
    return Location(parsed, None, redact_url(parsed))


def resolve_url(url: str | Path | None) -> str:
    """The URL for ``url`` that works from any process on this machine: ``None`` and file
    paths become ``sqlite:///`` URLs with an absolute path (worker processes and Ray tasks
    may run in another directory); other URLs are returned unchanged."""
    where = locate(url)
    if where.sqlite_path is not None:
        return f"sqlite:///{where.sqlite_path.resolve()}"
    return str(url)


def not_steplab(shown: str, reason: str) -> StoreError:
    """The error for a database that steplab did not write."""
    return StoreError(
        f"{shown} is not a steplab database ({reason}): point --db at another file or move it away"
    )


def no_database(shown: str) -> StoreError:
    """The error of a command that only reads, given a SQLite file that does not exist."""
    return StoreError(f"no database at {shown}; check the path or run a command that writes one (steplab run/bench)")


#: SQLite files this process has open through a live store: real path -> how many stores
_LIVE_SQLITE: dict[str, int] = {}
_LIVE_LOCK = threading.Lock()


def _live_key(path: Path) -> str:
    return os.path.realpath(path)


def hold_sqlite_file(path: Path) -> None:
    """Note that a store of this process has ``path`` open (see :func:`check_sqlite_file`)."""
    with _LIVE_LOCK:
        key = _live_key(path)
        _LIVE_SQLITE[key] = _LIVE_SQLITE.get(key, 0) + 1


def release_sqlite_file(path: Path) -> None:
    """Undo one :func:`hold_sqlite_file` (when that store closes)."""
    with _LIVE_LOCK:
        key = _live_key(path)
        left = _LIVE_SQLITE.get(key, 0) - 1
        if left > 0:
            _LIVE_SQLITE[key] = left
        else:
            _LIVE_SQLITE.pop(key, None)


def sqlite_file_is_held(path: Path) -> bool:
    """Whether a live store of this process has ``path`` open."""
    with _LIVE_LOCK:
        return _live_key(path) in _LIVE_SQLITE


def check_sqlite_file(path: Path, shown: str) -> None:
    """Refuse, without opening it through SQLite, a file that cannot be a SQLite database
    (header layout: https://www.sqlite.org/fileformat.html).

    The header is not read again while a store of this process has the file open: closing
    any file handle on it would release all of this process's POSIX locks on the database
    (https://www.sqlite.org/howtocorrupt.html, section 2.2), and another process could then
    delete the write-ahead log under the open connection. That file was checked when it
    was first opened."""
    try:
        if sqlite_file_is_held(path):
            return
        _check_sqlite_file(path, shown)
    except (ValueError, OSError) as e:  # a NUL in the path, a name too long, ...
        raise StoreError(f"cannot use {shown[:200]!r} as a database file ({one_line(e)}): fix --db") from None


def _check_sqlite_file(path: Path, shown: str) -> None:
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
        raise StoreError(f"cannot read {shown} ({one_line(e)}): check its permissions") from None
    if not head.startswith(_SQLITE_MAGIC):
        raise not_steplab(shown, "file is not a database")
    if len(head) < 100:
        raise not_steplab(shown, "file is truncated")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(head[28:32], "big")
    header_valid = head[24:28] == head[92:96]  # SQLite file format, "in-header database size"
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if header_valid and not wal_pending and n_pages * page_size > size:
        raise not_steplab(shown, f"file is truncated: {size} of {n_pages * page_size} bytes")


def make_engine(where: Location, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """A SQLAlchemy engine for ``where``. PostgreSQL gets a ``lock_timeout`` of
    ``busy_timeout_s``; SQLite gets real transactions (SQLAlchemy's pysqlite recipe), writers
    that take the write lock up front (``BEGIN IMMEDIATE`` via the ``steplab_begin``
    execution option), a busy timeout and foreign keys; memory is one shared connection."""
    try:
        return _make_engine(where.url, where.sqlite_path, busy_timeout_s)
    except (sa_exc.SQLAlchemyError, ImportError) as e:
        raise StoreError(
            f"cannot open {where.shown} ({one_line(e)}): install the database driver or fix the URL"
        ) from None


def _make_engine(url: URL, sqlite_path: Path | None, busy_timeout_s: float) -> Engine:
    if url.get_backend_name() != "sqlite":
        # lock_timeout: a writer waits for another's row lock as long as SQLite's would
        opts = ({"options": f"-c lock_timeout={int(busy_timeout_s * 1000)}"}
                if url.get_backend_name() == "postgresql" else {})
        return create_engine(url, pool_pre_ping=True, connect_args=opts)
    if sqlite_path is None:  # in-memory: one shared connection for every thread
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s})

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


def _lock_id(*parts: object) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, stable across processes."""
    digest = hashlib.sha1("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def serialize(conn: Connection, *what: object) -> None:
    """Serialize the writers of ``what`` (the schema, a study's lease, a trial key) across
    processes until the transaction ends: SQLite's write lock is already held (``BEGIN
    IMMEDIATE``); PostgreSQL takes a transaction-scoped advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(*what)})
