"""Schema migrations of the store, written once with Alembic's operations so they run the
same on SQLite and PostgreSQL.

The version lives in ``meta.schema_version`` (not Alembic's own table): a steplab refuses a
database of another version with one line (``open_store``), and ``steplab db upgrade``
(:mod:`steplab.store.admin`) applies the steps below in one transaction, so a failed upgrade
leaves the database as it was. History:

1. ``studies``, ``trials``, ``steps``, ``evals``, ``meta``.
2. ``trials.worker`` and ``trials.heartbeat_at``: claims of trials by concurrent workers
   (``Store.claim_trial``, ``Store.heartbeat``).
3. ``trials.settings``: the run settings that change a result (``TrialSpec.settings``; ``{}``
   for trials stored before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, Double, String, Text, update

from steplab.store.schema import SCHEMA_VERSION, meta_table, stored_version

if TYPE_CHECKING:  # alembic costs ~0.1 s at import: only an upgrade loads it (``migrate``)
    from alembic.operations import Operations


def _v2_claims(op: Operations) -> None:
    op.add_column("trials", Column("worker", String(255), nullable=True))
    op.add_column("trials", Column("heartbeat_at", Double, nullable=True))


def _v3_settings(op: Operations) -> None:
    op.add_column("trials", Column("settings", Text, nullable=False, server_default="{}"))


#: version -> the step that brings version - 1 to it
MIGRATIONS: dict[int, Callable[[Operations], None]] = {2: _v2_claims, 3: _v3_settings}


def migrate(conn: Connection) -> list[int]:
    """Bring the database on ``conn`` (inside the caller's transaction, under its schema
    lock) from its stored version to ``SCHEMA_VERSION``; return the versions applied."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    version = stored_version(conn)
    op = Operations(MigrationContext.configure(conn))
    applied = []
    for v in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[v](op)
        applied.append(v)
    conn.execute(
        update(meta_table).where(meta_table.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )
    return applied
