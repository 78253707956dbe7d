"""The store's tables (DESIGN.md, "Data model": the run record and the trace) and the schema
version they make; the history of versions is in :mod:`steplab.store.migrations`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    inspect,
    select,
)

from steplab.results import STEP_COLUMNS
from steplab.store.schema_version import SCHEMA_VERSION  # noqa: F401  (re-exported)

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
    Column("settings", Text, nullable=False, server_default="{}"),
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

#: the value columns of ``steps`` (all of ``STEP_COLUMNS`` but ``step``)
STEP_VALUE_COLUMNS = STEP_COLUMNS[1:]


def read_meta(conn: Connection, key: str) -> str | None:
    """The ``meta`` value under ``key``, or ``None``."""
    return conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar_one_or_none()


def write_meta(conn: Connection, key: str, value: object) -> None:
    """Set the ``meta`` value under ``key`` to ``str(value)``."""
    conn.execute(delete(meta_table).where(meta_table.c.key == key))
    conn.execute(meta_table.insert(), {"key": key, "value": str(value)})


def stored_version(conn: Connection) -> int:
    """The schema version written in the database (0 for an empty one or an unreadable value)."""
    if "meta" not in inspect(conn).get_table_names():
        return 0
    value = read_meta(conn, "schema_version")
    return int(value) if value is not None and str(value).isdigit() else 0


def in_study(study_id: int | None) -> Any:
    """The condition "a trial of study ``study_id``" (``None``: trials without a study)."""
    column = trials_table.c.study_id
    return column.is_(None) if study_id is None else column == study_id
