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
``migrations`` and ``admin`` (``steplab db info|upgrade``). This package only re-exports.
"""

from steplab.store.claims import claim_is_dead, new_worker_id
from steplab.store.engine import DEFAULT_URL, redact_url, resolve_url
from steplab.store.schema import SCHEMA_VERSION
from steplab.store.store import Store, open_store

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
