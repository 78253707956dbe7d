"""The schema version this steplab reads and writes (history in ``steplab.store.migrations``),
apart from the tables so that readers without SQLAlchemy (:mod:`steplab.store.quick_list`)
share it. An older database is refused until ``steplab db upgrade``, a newer one always."""

SCHEMA_VERSION = 3
