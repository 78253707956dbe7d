"""Studies, trials and traces in a SQL database (DESIGN.md, "store/").

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

Modules, each with one job: ``schema`` (tables, version), ``engine`` (URLs, engines,
SQLite/PostgreSQL specifics, password redaction), ``rows`` (rows to and from objects),
``core`` (transactions, schema check), ``studies``, ``claims`` (claims, heartbeats, worker
ids), ``leases`` (step leases), ``traces``, ``store`` (``Store``, ``open_store``),
``migrations`` and ``admin`` (``steplab db info|upgrade``), ``quick_list`` (listing trials of a
SQLite file with the standard library). This package only re-exports, on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from steplab.store.schema_version import SCHEMA_VERSION

if TYPE_CHECKING:
    from steplab.store.claims import claim_is_dead, new_worker_id
    from steplab.store.engine import DEFAULT_URL, redact_url, resolve_url
    from steplab.store.store import Store, open_store

# imported on first use (PEP 562): a command that only lists trials of a SQLite file reads
# them with the standard library (steplab.store.quick_list) and never imports SQLAlchemy
_LAZY = {"claim_is_dead": "claims", "new_worker_id": "claims", "DEFAULT_URL": "engine", "redact_url": "engine",
         "resolve_url": "engine", "Store": "store", "open_store": "store"}

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "Store",
    "claim_is_dead",
    "new_worker_id",
    "open_store",
    "redact_url",
    "resolve_url",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"steplab.store.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'steplab.store' has no attribute {name!r}")
