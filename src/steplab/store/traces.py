"""Trace writes and reads (DESIGN.md, "Data model": one row per recorded step plus
evaluation rows), the part of the store every analysis reads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, delete, select, update

from steplab.results import STEP_COLUMNS, EvalRow, StepRow
from steplab.store.core import StoreCore
from steplab.store.rows import eval_from_row, eval_values, step_values
from steplab.store.schema import evals_table, steps_table, trials_table

if TYPE_CHECKING:  # numpy is imported by the reads that return arrays, not at start-up
    import numpy as np


class Traces(StoreCore):
    """The trace methods of :class:`steplab.store.store.Store`."""

    @staticmethod
    def _touch(conn: Connection, trial_id: int) -> None:
        """Writing a running trial's trace is a heartbeat too (a loop recorded with the
        ``Recorder`` beats at every flush, without a thread)."""
        conn.execute(
            update(trials_table)
            .where(trials_table.c.id == trial_id, trials_table.c.status == "running")
            .values(heartbeat_at=time.time())
        )

    def append_steps(self, trial_id: int, rows: Sequence[StepRow]) -> None:
        """Insert step rows (one transaction). A step already stored raises StoreError."""
        self._append(trial_id, steps_table, step_values(trial_id, rows), "steps")

    def append_evals(self, trial_id: int, rows: Sequence[EvalRow]) -> None:
        """Insert evaluation rows (one transaction)."""
        self._append(trial_id, evals_table, eval_values(trial_id, rows), "evals")

    def _append(self, trial_id: int, table: Table, payload: list[dict[str, Any]], what: str) -> None:
        if not payload:
            return
        with self._tx(f"appending {len(payload)} {what} to trial {trial_id}", write=True) as conn:
            self._require_trial(conn, trial_id)
            conn.execute(table.insert(), payload)
            self._touch(conn, trial_id)

    def truncate_trial(self, trial_id: int, step: int) -> None:
        """Delete a running trial's step rows from ``step`` on and its evaluations after
        ``step`` (one transaction): the trial goes on from a state saved at ``step``, e.g. a
        PBT member restarted from a checkpoint taken before its last steps."""
        with self._tx(f"truncating trial {trial_id} at step {step}", write=True) as conn:
            self._require_trial(conn, trial_id)
            conn.execute(delete(steps_table).where(steps_table.c.trial_id == trial_id, steps_table.c.step >= step))
            conn.execute(delete(evals_table).where(evals_table.c.trial_id == trial_id, evals_table.c.step > step))

    def _step_rows(self, trial_id: int) -> list[Any]:
        cols = [steps_table.c[c] for c in STEP_COLUMNS]
        with self._tx(f"reading steps of trial {trial_id}", write=False) as conn:
            self._require_trial(conn, trial_id)
            return list(conn.execute(
                select(*cols).where(steps_table.c.trial_id == trial_id).order_by(steps_table.c.step)
            ).all())

    def steps(self, trial_id: int) -> dict[str, np.ndarray]:
        """The step trace as ``{column: array}`` for every name in ``STEP_COLUMNS``, in step
        order: ``step`` is int64, the rest float64 with NaN where nothing was recorded."""
        import numpy as np

        rows = self._step_rows(trial_id)
        out: dict[str, np.ndarray] = {}
        for j, column in enumerate(STEP_COLUMNS):
            if column == "step":
                out[column] = np.array([r[j] for r in rows], dtype=np.int64)
            else:
                out[column] = np.array([r[j] for r in rows], dtype=np.float64)
        return out

    def step_rows(self, trial_id: int) -> list[StepRow]:
        """The step trace as :class:`StepRow` objects (NULL -> ``None``)."""
        return [StepRow(*r) for r in self._step_rows(trial_id)]

    def evals(self, trial_id: int) -> list[EvalRow]:
        """The evaluation rows of a trial, in (step, insertion) order; NULL values -> NaN."""
        with self._tx(f"reading evals of trial {trial_id}", write=False) as conn:
            self._require_trial(conn, trial_id)
            rows = conn.execute(
                select(evals_table)
                .where(evals_table.c.trial_id == trial_id)
                .order_by(evals_table.c.step, evals_table.c.id)
            ).all()
        return [eval_from_row(r) for r in rows]
