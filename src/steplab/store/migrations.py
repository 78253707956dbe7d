"""Schema migrations of the store, written once with Alembic's operations so they run the
same on SQLite and PostgreSQL, and what ``steplab db info|upgrade`` show.

The version lives in ``meta.schema_version`` (not Alembic's own table): a steplab refuses a
database of another version with one line (``store.open_store``), and ``steplab db
upgrade`` applies the steps below in one transaction, so a failed upgrade leaves the
database as it was. History:

1. ``studies``, ``trials``, ``steps``, ``evals``, ``meta``.
2. ``trials.worker`` and ``trials.heartbeat_at``: claims of trials by concurrent workers
   (``Store.claim_trial``, ``Store.heartbeat``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Double, String, func, inspect, select, update

from steplab import store as store_mod
from steplab.errors import StoreError


def _v2_claims(op: Operations) -> None:
    op.add_column("trials", Column("worker", String(255), nullable=True))
    op.add_column("trials", Column("heartbeat_at", Double, nullable=True))


#: version -> the step that brings version - 1 to it
MIGRATIONS: dict[int, Callable[[Operations], None]] = {2: _v2_claims}


def stored_version(conn: Connection) -> int:
    """The schema version written in the database (0 for an empty one)."""
    if "meta" not in inspect(conn).get_table_names():
        return 0
    value = conn.execute(
        select(store_mod.meta_table.c.value).where(store_mod.meta_table.c.key == "schema_version")
    ).scalar_one_or_none()
    return int(value) if value is not None and str(value).isdigit() else 0


def apply(conn: Connection) -> list[int]:
    """Bring the database on ``conn`` (inside the caller's transaction, under its schema
    lock) from its stored version to ``SCHEMA_VERSION``; return the versions applied."""
    version = stored_version(conn)
    op = Operations(MigrationContext.configure(conn))
    applied = []
    for v in range(version + 1, store_mod.SCHEMA_VERSION + 1):
        MIGRATIONS[v](op)
        applied.append(v)
    conn.execute(
        update(store_mod.meta_table)
        .where(store_mod.meta_table.c.key == "schema_version")
        .values(value=str(store_mod.SCHEMA_VERSION))
    )
    return applied


def upgrade(url: str | Path | None) -> tuple[int, list[int]]:
    """Migrate the database at ``url`` to this steplab's schema: ``(version before,
    versions applied)``. Refuses (``StoreError``) a file that is not a steplab database or
    one from a newer steplab, untouched."""
    before = info(url)["schema_version"]
    with store_mod.open_store(url, upgrade=True) as st:
        return before, list(st.applied_migrations)


def info(url: str | Path | None) -> dict[str, Any]:
    """What is in a store without opening it for writing: ``{"url", "backend",
    "schema_version", "steplab_schema", "studies", "trials" (status -> count), "running"
    (claims: id, study_id, key, worker, heartbeat age, dead), "size_bytes" (SQLite)}``.
    Works on an older schema too (it is what tells you to upgrade)."""
    sa_url, path, shown = store_mod._resolve(url)
    if path is not None:
        if not path.exists():
            raise StoreError(f"{shown} does not exist: check --db")
        store_mod._check_sqlite_file(path, shown)
    engine = store_mod._make_engine(sa_url, path)
    try:
        with engine.connect() as conn:
            version = stored_version(conn)
            if version > store_mod.SCHEMA_VERSION:
                raise StoreError(
                    f"{shown} has steplab schema version {version} but this steplab reads "
                    f"version {store_mod.SCHEMA_VERSION}: upgrade steplab"
                )
            names = set(inspect(conn).get_table_names())
            out: dict[str, Any] = {
                "url": shown,
                "backend": engine.dialect.name,
                "schema_version": version,
                "steplab_schema": store_mod.SCHEMA_VERSION,
                "studies": 0,
                "trials": {},
                "running": [],
                "size_bytes": path.stat().st_size if path is not None else None,
            }
            if "studies" in names:
                out["studies"] = int(conn.execute(select(func.count()).select_from(store_mod.studies_table)).scalar_one())
            if "trials" in names:
                t = store_mod.trials_table
                out["trials"] = {
                    r[0]: int(r[1]) for r in conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
                }
                has_claims = "worker" in {c["name"] for c in inspect(conn).get_columns("trials")}
                cols = [t.c.id, t.c.study_id, t.c.key] + ([t.c.worker, t.c.heartbeat_at] if has_claims else [])
                now, stale = time.time(), store_mod.stale_after_s()
                for r in conn.execute(select(*cols).where(t.c.status == "running").order_by(t.c.id)):
                    m = dict(r._mapping)
                    worker, beat = m.get("worker"), m.get("heartbeat_at")
                    out["running"].append({
                        **m, "worker": worker,
                        "heartbeat_age_s": None if beat is None else now - beat,
                        "dead": store_mod.claim_is_dead(worker, beat, now, stale),
                    })
    except store_mod.sa_exc.SQLAlchemyError as e:
        raise StoreError(f"cannot read {shown} ({store_mod._one_line(getattr(e, 'orig', None) or e)}): "
                         "check the path or URL") from None
    finally:
        engine.dispose()
    return out
