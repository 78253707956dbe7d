"""Studies: named groups of trials (a benchmark, a tune, a sweep) with the spec that made them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from steplab.errors import StoreError
from steplab.store.core import StoreCore
from steplab.store.rows import dumps, now_iso, study_from_row
from steplab.store.schema import studies_table


class Studies(StoreCore):
    """The study methods of :class:`steplab.store.store.Store`."""

    def create_study(self, name: str, kind: str, spec: dict[str, Any]) -> int:
        """Insert a study and return its id. Names are unique: resume an existing study
        with :meth:`find_study`."""
        text = dumps(spec, f"spec of study {name!r}")
        with self._tx(f"creating study {name!r}", write=True) as conn:
            exists = conn.execute(
                select(studies_table.c.id).where(studies_table.c.name == name)
            ).first()
            if exists is not None:
                raise StoreError(
                    f"a study named {name!r} already exists in {self._shown} "
                    f"(id {exists[0]}): pick another name or resume it"
                )
            result = conn.execute(
                studies_table.insert().values(name=name, kind=kind, spec=text, created_at=now_iso())
            )
            return int(result.inserted_primary_key[0])

    def get_study(self, study_id: int) -> dict[str, Any]:
        """The study ``{"id", "name", "kind", "spec", "created_at"}``."""
        with self._tx(f"reading study {study_id}", write=False) as conn:
            row = conn.execute(select(studies_table).where(studies_table.c.id == study_id)).first()
        if row is None:
            raise self._no_such("study", study_id)
        return study_from_row(row)

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study, oldest first (same dicts as :meth:`get_study`)."""
        with self._tx("listing studies", write=False) as conn:
            rows = conn.execute(select(studies_table).order_by(studies_table.c.id)).all()
        return [study_from_row(r) for r in rows]

    def find_study(self, name: str) -> dict[str, Any] | None:
        """The study called ``name``, or ``None``."""
        with self._tx(f"finding study {name!r}", write=False) as conn:
            row = conn.execute(select(studies_table).where(studies_table.c.name == name)).first()
        return None if row is None else study_from_row(row)
