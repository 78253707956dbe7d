"""Listing the trials of a SQLite file with the standard library's ``sqlite3`` alone, so
``steplab runs list`` starts without importing SQLAlchemy (issue 22's start-up goal: 0.5 s).

Only a plain, existing SQLite file of this steplab's schema version is read here; for
anything else (a server URL, a missing file, another version, any SQLite error) the caller
opens the full :class:`~steplab.store.Store`, which creates nothing for a reader
(``must_exist``), upgrades nothing, and says in one line what is wrong. The rows are the
same ``trials`` rows :meth:`Store.list_trials` reads, turned into results by the same
:func:`~steplab.store.trial_rows.trial_from_row` (a test compares the two).
"""

from __future__ import annotations

import sqlite3
import sys
import types
from pathlib import Path
from typing import Any

from steplab.results import TrialResult
from steplab.store.schema_version import SCHEMA_VERSION
from steplab.store.trial_rows import trial_from_row

_DEFAULT_FILE = "steplab.db"  # steplab.store.engine.DEFAULT_URL's file


def sqlite_file(db: str | Path | None) -> Path | None:
    """The file a ``--db`` value names when it is a plain SQLite file (a path, or a
    ``sqlite:///`` URL without query options), else ``None``."""
    if db is None:
        return Path(_DEFAULT_FILE)
    if isinstance(db, Path):
        return db
    if "://" not in db:
        return Path(db)
    if db.startswith("sqlite:///") and "?" not in db:
        rest = db[len("sqlite:///"):]
        return Path(rest) if rest and rest != ":memory:" and not rest.startswith("file:") else None
    return None


def list_trials(db: str | Path | None, *, study_id: int | None = None, workload: str | None = None,
                last: int | None = None) -> tuple[list[TrialResult], list[str | None]] | None:
    """The trials of ``db`` (newest ``last`` when given, in id order, filtered as
    :meth:`Store.list_trials`) and their names; ``None`` when the full store must open it."""
    path = sqlite_file(db)
    if path is None or not path.is_file():
        return None
    engine = sys.modules.get("steplab.store.engine")  # not imported: no store of this process holds it
    if engine is not None and engine.sqlite_file_is_held(path):
        return None  # closing a second connection would drop that store's POSIX locks
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = sqlite3.Row
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None or str(version[0]) != str(SCHEMA_VERSION):
            return None
        where, args = [], []
        if study_id is not None:
            where.append("study_id = ?")
            args.append(int(study_id))
        if workload is not None:
            where.append("workload = ?")
            args.append(workload)
        query = "SELECT * FROM trials" + (" WHERE " + " AND ".join(where) if where else "")
        if last is not None:
            query += " ORDER BY id DESC LIMIT ?"
            args.append(max(0, int(last)))
        else:
            query += " ORDER BY id"
        rows: list[Any] = conn.execute(query, args).fetchall()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if last is not None:
        rows.reverse()
    records = [types.SimpleNamespace(**dict(r)) for r in rows]
    return [trial_from_row(r) for r in records], [r.name for r in records]
