"""Step leases: workers that share one compute budget (the Ray trials of one tune) take each
chunk of steps from it in one transaction, so the steps trained never sum past it."""

from __future__ import annotations

from steplab.store.core import StoreCore
from steplab.store.engine import serialize
from steplab.store.schema import read_meta, write_meta


def _lease_key(study_id: int) -> str:
    return f"leased_steps:{int(study_id)}"


class Leases(StoreCore):
    """The step-lease methods of :class:`steplab.store.store.Store` (kept in ``meta``)."""

    def set_lease(self, study_id: int, steps: int) -> None:
        """Set the steps a study has leased so far (``lease_steps``) to ``steps``."""
        with self._tx(f"resetting the step lease of study {study_id}", write=True) as conn:
            write_meta(conn, _lease_key(study_id), int(steps))

    def leased_steps(self, study_id: int) -> int | None:
        """The steps a study has leased (``lease_steps``), or ``None`` if it never leased."""
        with self._tx(f"reading the step lease of study {study_id}", write=False) as conn:
            value = read_meta(conn, _lease_key(study_id))
        return None if value is None else int(value)

    def lease_steps(self, study_id: int, steps: int, budget_steps: int) -> bool:
        """Atomically take ``steps`` training steps from a study's compute budget of
        ``budget_steps``: True (and counted) when they fit, False when the budget would be
        passed. Workers that share a budget lease each chunk before training it, so the
        steps trained never sum past the budget, however the workers are scheduled."""
        key = _lease_key(study_id)
        with self._tx(f"leasing {steps} steps of study {study_id}", write=True) as conn:
            serialize(conn, "lease", study_id)
            used = int(read_meta(conn, key) or 0)
            if used + steps > budget_steps:
                return False
            write_meta(conn, key, used + steps)
            return True
