"""Study notes: small JSON records a study keeps besides its trials, written once each (the
looks of a benchmark that adds studies until it is confident, ``steplab.studies.bench.adaptive``).
Kept in ``meta`` under ``note:STUDY:NAME``, like the step leases, so no schema change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from steplab.errors import StoreError
from steplab.store.core import StoreCore
from steplab.store.engine import serialize
from steplab.store.rows import dumps
from steplab.store.schema import meta_table, read_meta, write_meta

_KEY_LENGTH = 64  # meta.key is String(64)


def _note_key(study_id: int, name: str) -> str:
    key = f"note:{int(study_id)}:{name}"
    if len(key) > _KEY_LENGTH or not name.isprintable() or not name:
        raise StoreError(f"note name {name!r} must be printable and short (the key {key!r} over {_KEY_LENGTH} chars)")
    return key


class Notes(StoreCore):
    """The study-note methods of :class:`steplab.store.store.Store`."""

    def add_study_note(self, study_id: int, name: str, value: Any) -> Any:
        """Record ``value`` (JSON) as note ``name`` of study ``study_id`` unless that note
        exists; return the note as stored. The first writer wins (one transaction, writers
        serialized), so processes that decide the same note at once all read back one."""
        key = _note_key(study_id, name)
        text = dumps(value, f"note {name!r} of study {study_id}")
        with self._tx(f"writing note {name!r} of study {study_id}", write=True) as conn:
            self._check_study(conn, study_id)
            serialize(conn, "note", study_id)
            found = read_meta(conn, key)
            if found is None:
                write_meta(conn, key, text)
                found = text
        return json.loads(found)

    def study_notes(self, study_id: int) -> dict[str, Any]:
        """Every note of study ``study_id``: ``{name: value}`` in name order."""
        prefix = f"note:{int(study_id)}:"
        with self._tx(f"reading the notes of study {study_id}", write=False) as conn:
            rows = conn.execute(select(meta_table.c.key, meta_table.c.value)
                                .where(meta_table.c.key.startswith(prefix, autoescape=True))).all()
        return {k[len(prefix):]: json.loads(v) for k, v in sorted(rows)}
