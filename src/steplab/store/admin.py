"""What ``steplab db info`` and ``steplab db upgrade`` do: look into a results database
without writing it, and bring an older one to this steplab's schema
(:mod:`steplab.store.migrations`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, inspect, select
from sqlalchemy import exc as sa_exc

from steplab.errors import StoreError
from steplab.store.claims import claim_is_dead, stale_after_s
from steplab.store.engine import check_sqlite_file, error_detail, locate, make_engine, no_database
from steplab.store.schema import SCHEMA_VERSION, stored_version, studies_table, trials_table
from steplab.store.store import open_store


def upgrade(url: str | Path | None) -> tuple[int, list[int]]:
    """Migrate the database at ``url`` to this steplab's schema: ``(version before,
    versions applied)``. Refuses (``StoreError``) a file that is not a steplab database or
    one from a newer steplab, untouched."""
    before = info(url)["schema_version"]
    with open_store(url, upgrade=True) as st:
        return before, list(st.applied_migrations)


def _running(conn: Connection) -> list[dict[str, Any]]:
    """The running trials' claims (schema 1 has no claim columns: no worker, no heartbeat)."""
    t = trials_table
    has_claims = "worker" in {c["name"] for c in inspect(conn).get_columns("trials")}
    cols = [t.c.id, t.c.study_id, t.c.key] + ([t.c.worker, t.c.heartbeat_at] if has_claims else [])
    now, stale = time.time(), stale_after_s()
    out = []
    for r in conn.execute(select(*cols).where(t.c.status == "running").order_by(t.c.id)):
        m = dict(r._mapping)
        worker, beat = m.get("worker"), m.get("heartbeat_at")
        out.append({**m, "worker": worker, "heartbeat_age_s": None if beat is None else now - beat,
                    "dead": claim_is_dead(worker, beat, now, stale)})
    return out


def info(url: str | Path | None) -> dict[str, Any]:
    """What is in a store without opening it for writing: ``{"url", "backend",
    "schema_version", "steplab_schema", "studies", "trials" (status -> count), "running"
    (claims: id, study_id, key, worker, heartbeat age, dead), "size_bytes" (SQLite)}``.
    Works on an older schema too (it is what tells you to upgrade)."""
    where = locate(url)
    path, shown = where.sqlite_path, where.shown
    if path is not None:
        if not path.exists():
            raise no_database(shown)
        check_sqlite_file(path, shown)
    engine = make_engine(where)
    try:
        with engine.connect() as conn:
            version = stored_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{shown} has steplab schema version {version} but this steplab reads "
                    f"version {SCHEMA_VERSION}: upgrade steplab"
                )
            names = set(inspect(conn).get_table_names())
            out: dict[str, Any] = {
                "url": shown,
                "backend": engine.dialect.name,
                "schema_version": version,
                "steplab_schema": SCHEMA_VERSION,
                "studies": 0,
                "trials": {},
                "running": [],
                "size_bytes": path.stat().st_size if path is not None else None,
            }
            if "studies" in names:
                out["studies"] = int(conn.execute(select(func.count()).select_from(studies_table)).scalar_one())
            if "trials" in names:
                t = trials_table
                out["trials"] = {
                    r[0]: int(r[1]) for r in conn.execute(select(t.c.status, func.count()).group_by(t.c.status))
                }
                out["running"] = _running(conn)
    except sa_exc.SQLAlchemyError as e:
        raise StoreError(f"cannot read {shown} ({error_detail(e)}): check the path or URL") from None
    finally:
        engine.dispose()
    return out
