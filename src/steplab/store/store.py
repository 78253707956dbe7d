"""The :class:`Store`: studies, trials and traces in one SQL database, and :func:`open_store`.

``Store`` joins the parts, each in its own module over :class:`steplab.store.core.StoreCore`:
studies (``studies.py``), claims and heartbeats (``claims.py``), step leases (``leases.py``)
and traces (``traces.py``); the trial rows themselves are written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from steplab.errors import StoreError
from steplab.results import ENDED, FINISHED, EvalRow, StepRow, TrialResult, TrialSpec
from steplab.store.claims import Claims
from steplab.store.engine import (
    BUSY_TIMEOUT_S,
    check_sqlite_file,
    hold_sqlite_file,
    locate,
    make_engine,
    no_database,
)
from steplab.store.leases import Leases
from steplab.store.notes import Notes
from steplab.store.rows import (
    eval_values,
    now_iso,
    outcome_values,
    spec_values,
    start_values,
    step_values,
    trial_from_row,
)
from steplab.store.schema import evals_table, steps_table, trials_table
from steplab.store.studies import Studies
from steplab.store.traces import Traces


class Store(Studies, Claims, Leases, Notes, Traces):
    """Studies, trials and their traces in one SQL database.

    Contract (after Optuna's ``storages/_base.py``):

    - **Concurrency.** A ``Store`` may be shared by the threads of one process. Several
      processes may open the same SQLite file at once: it runs in WAL mode (readers never
      block the writer) and a writer waits up to ``BUSY_TIMEOUT_S`` (30 s) for another
      writer's lock. PostgreSQL works the same way (``lock_timeout`` likewise). Open one
      ``Store`` per process; do not carry one across ``fork``.
    - **Atomicity.** Every write method is one transaction: a crash (even SIGKILL) leaves
      either all of its rows or none. A killed run leaves its trial ``running``; a later
      :meth:`claim_trial` of the same key or :meth:`reap_stale` removes it once its claim
      is dead (:func:`~steplab.store.claims.claim_is_dead`), :meth:`discard_unfinished` at once.
      A run stopped by Ctrl-C/SIGTERM is finished as ``interrupted`` (kept with its trace,
      never reused as a result) or, when a benchmark claimed it, given back (:meth:`release`).
    - **Claims.** Workers on several processes or machines share a study through
      :meth:`claim_trial` (one winner per trial key), :meth:`heartbeat` and
      :meth:`reap_stale`; on SQLite they must share the file (one machine), on PostgreSQL
      the server. :meth:`lease_steps` never hands out more steps than the budget.
    - **Copies.** Every returned object (dicts, ``TrialResult``, arrays, rows) is a fresh
      copy; changing it never changes the store.
    - **Numbers.** ``time_to_target_s``/``steps_to_target`` of a trial that did not reach
      its target are stored as SQL NULL and read back as ``math.inf``. Trace values that
      are ``None`` or NaN are stored as NULL and read back as NaN by :meth:`steps` and
      :meth:`evals`, ``None`` by :meth:`step_rows`. Infinite trace values are kept. JSON
      columns (specs, hyperparameters, metrics) keep ``inf``/``nan`` as ``Infinity``/``NaN``.
    - **Errors.** Unknown ids, unreadable files and failed writes raise :class:`StoreError`
      with a one-line message; a database URL in a message never shows its password.

    Build one with :func:`open_store`.
    """

    def start_trial(
        self,
        spec: TrialSpec,
        *,
        name: str | None = None,
        host: str = "",
        versions: dict[str, str] | None = None,
        device: str = "cpu",
        key: str | None = None,
        worker: str | None = None,
    ) -> int:
        """Insert a ``running`` trial for ``spec`` and return its id; ``name`` is an optional
        user label (the recorder's run name); ``key`` replaces ``spec.key()`` where the job
        that asked for the trial is known by another key (a refined second pass, whose
        schedule is only known once its first pass ran); ``worker`` (:func:`new_worker_id`)
        marks who runs it, for :meth:`heartbeat` and :meth:`reap_stale`."""
        values = start_values(spec, name=name, host=host, versions=versions, device=device,
                              key=key, worker=worker)
        with self._tx("starting a trial", write=True) as conn:
            self._check_study(conn, spec.study_id)
            return self._insert_trial(conn, values)

    def set_trial_spec(self, trial_id: int, spec: TrialSpec) -> None:
        """Store ``spec`` (workload, algorithm, hyperparameters, ...; not the key) as the
        spec of a running trial: a claimed trial learns what exactly it trains once it
        starts (a refined second pass's schedule comes from its first pass)."""
        values = spec_values(spec)
        with self._tx(f"updating the spec of trial {trial_id}", write=True) as conn:
            done = conn.execute(
                update(trials_table)
                .where(trials_table.c.id == trial_id, trials_table.c.status == "running")
                .values(**values)
            )
            if done.rowcount == 0:
                raise StoreError(
                    f"no running trial with id {trial_id} in {self._shown}: it finished, or "
                    "its claim was taken over by another worker"
                )

    def set_message(self, trial_id: int, message: str) -> None:
        """Replace a trial's message (why it stopped)."""
        with self._tx(f"updating the message of trial {trial_id}", write=True) as conn:
            done = conn.execute(update(trials_table).where(trials_table.c.id == trial_id).values(message=str(message)))
            if done.rowcount == 0:
                raise self._no_such("trial", trial_id)

    def trial_exists(self, trial_id: int) -> bool:
        """Whether a trial with this id is in the store (a taken-over claim is not)."""
        with self._tx(f"looking up trial {trial_id}", write=False) as conn:
            return conn.execute(select(trials_table.c.id).where(trials_table.c.id == trial_id)).first() is not None

    def finish_trial(self, trial_id: int, result: TrialResult) -> None:
        """Record the outcome of a trial (status, times, metrics, ...) in one transaction.
        ``result.spec`` is not stored again: the trial keeps the spec it started with. The
        status is a finished one or ``interrupted`` (a run stopped by Ctrl-C/SIGTERM, kept
        with its trace: :data:`steplab.results.ENDED`)."""
        if result.status not in ENDED:
            raise StoreError(
                f"cannot finish trial {trial_id} with status {result.status!r}: "
                f"use one of {', '.join(ENDED)}"
            )
        values = {**outcome_values(result), "finished_at": now_iso()}
        with self._tx(f"finishing trial {trial_id}", write=True) as conn:
            done = conn.execute(
                update(trials_table).where(trials_table.c.id == trial_id).values(**values)
            )
            if done.rowcount == 0:
                raise StoreError(
                    f"no trial with id {trial_id} in {self._shown}: start it with start_trial first"
                )

    def import_trial(
        self,
        result: TrialResult,
        steps: Sequence[StepRow],
        evals: Sequence[EvalRow] = (),
        *,
        name: str | None = None,
    ) -> int:
        """Insert a finished trial with all its step and eval rows in ONE transaction and
        return its id: a run recorded elsewhere (TensorBoard, MLflow, CSV) either lands whole
        or, on any error, leaves the store unchanged. ``result.spec`` is the trial's spec;
        ``result.status`` must be a finished status."""
        if result.status not in FINISHED:
            raise StoreError(
                f"cannot import a trial with status {result.status!r}: use one of {', '.join(FINISHED)}"
            )
        spec = result.spec
        values = {
            "study_id": spec.study_id,
            "key": spec.key(),
            **spec_values(spec),
            **outcome_values(result),
            "created_at": now_iso(),
            "finished_at": now_iso(),
            "name": name,
        }
        with self._tx(f"importing a trial with {len(steps)} steps", write=True) as conn:
            tid = self._insert_trial(conn, values)
            if steps:
                conn.execute(steps_table.insert(), step_values(tid, steps))
            if evals:
                conn.execute(evals_table.insert(), eval_values(tid, evals))
        return tid

    def get_trial(self, trial_id: int) -> TrialResult:
        """The trial as a :class:`TrialResult` with ``id`` set (``running`` ones included)."""
        with self._tx(f"reading trial {trial_id}", write=False) as conn:
            row = conn.execute(select(trials_table).where(trials_table.c.id == trial_id)).first()
        if row is None:
            raise self._no_such("trial", trial_id)
        return trial_from_row(row)

    def trial_info(self, trial_id: int) -> dict[str, Any]:
        """What a :class:`TrialResult` does not carry: ``{"id", "name", "key", "created_at",
        "finished_at"}``."""
        cols = [trials_table.c[c] for c in ("id", "name", "key", "created_at", "finished_at")]
        with self._tx(f"reading trial {trial_id}", write=False) as conn:
            row = conn.execute(select(*cols).where(trials_table.c.id == trial_id)).first()
        if row is None:
            raise self._no_such("trial", trial_id)
        return dict(row._mapping)

    def trial_infos(self, trial_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """:meth:`trial_info` of many trials in one query per 500 ids (``runs list`` of
        thousands of trials), ``{id: info}``; ids not stored are left out."""
        cols = [trials_table.c[c] for c in ("id", "name", "key", "created_at", "finished_at")]
        ids = sorted({int(i) for i in trial_ids})
        out: dict[int, dict[str, Any]] = {}
        with self._tx(f"reading {len(ids)} trials", write=False) as conn:
            for k in range(0, len(ids), 500):  # SQLite allows 999 bound parameters per statement
                rows = conn.execute(select(*cols).where(trials_table.c.id.in_(ids[k:k + 500]))).all()
                out.update({int(r.id): dict(r._mapping) for r in rows})
        return out

    def list_trials(
        self,
        study_id: int | None = None,
        status: str | Sequence[str] | None = None,
        workload: str | None = None,
        *,
        name: str | None = None,
        key: str | None = None,
        last: int | None = None,
    ) -> list[TrialResult]:
        """Trials in id order, filtered by study, status (one or several), workload, user
        label and key; ``None`` means no filter. ``last=N``: only the N newest (highest
        ids) of those, read without parsing the others."""
        query = select(trials_table).order_by(trials_table.c.id.desc() if last is not None else trials_table.c.id)
        if last is not None:
            query = query.limit(max(0, int(last)))
        if study_id is not None:
            query = query.where(trials_table.c.study_id == study_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(trials_table.c.status.in_(statuses))
        if workload is not None:
            query = query.where(trials_table.c.workload == workload)
        if name is not None:
            query = query.where(trials_table.c.name == name)
        if key is not None:
            query = query.where(trials_table.c.key == key)
        with self._tx("listing trials", write=False) as conn:
            rows = conn.execute(query).all()
        return [trial_from_row(r) for r in (rows[::-1] if last is not None else rows)]

    def finished_by_key(self, study_id: int | None) -> dict[str, TrialResult]:
        """``TrialSpec.key() -> finished trial`` of a study (``None``: trials without a
        study); the newest wins when a key was run twice. A benchmark skips these keys when it
        resumes."""
        query = (
            select(trials_table)
            .where(trials_table.c.status.in_(FINISHED))
            .order_by(trials_table.c.id)
        )
        if study_id is None:
            query = query.where(trials_table.c.study_id.is_(None))
        else:
            query = query.where(trials_table.c.study_id == study_id)
        with self._tx(f"reading finished trials of study {study_id}", write=False) as conn:
            rows = conn.execute(query).all()
        return {r.key: trial_from_row(r) for r in rows}

    def delete_trial(self, trial_id: int) -> None:
        """Delete a trial with its step and eval rows (one transaction)."""
        with self._tx(f"deleting trial {trial_id}", write=True) as conn:
            self._require_trial(conn, trial_id)
            self._delete_trials(conn, [trial_id])

    def discard_unfinished(self, study_id: int) -> int:
        """Delete the ``running`` trials of a study with their rows (a killed run's leftovers,
        so a resumed benchmark re-runs them cleanly); return how many. Only call it when no
        other process is still running trials of this study."""
        with self._tx(f"discarding unfinished trials of study {study_id}", write=True) as conn:
            ids = list(
                conn.execute(
                    select(trials_table.c.id).where(
                        trials_table.c.study_id == study_id, trials_table.c.status == "running"
                    )
                ).scalars()
            )
            self._delete_trials(conn, ids)
        return len(ids)


def open_store(url: str | Path | None = None, *, upgrade: bool = False,
               busy_timeout_s: float = BUSY_TIMEOUT_S, must_exist: bool = False) -> Store:
    """Open (creating if needed) the results database.

    Args:
        url: a SQLAlchemy URL (``sqlite:///runs.db``, ``sqlite://`` for memory,
            ``postgresql+psycopg://user@host/db``), a plain file path (``runs.db``), or
            ``None`` for ``steplab.db`` in the working directory.
        upgrade: migrate a database of an older schema version (``steplab db upgrade``);
            without it such a database is refused, untouched.
        busy_timeout_s: how long a writer waits for another process's lock.
        must_exist: refuse a SQLite file that does not exist instead of creating it (the
            commands that only read: a typo in ``--db`` must not make an empty database).

    Returns:
        A :class:`Store`. A new or empty SQLite file gets the schema (WAL mode, 30 s busy
        timeout, foreign keys on).

    Raises:
        StoreError: the URL cannot be parsed, the file is not a SQLite database, holds
            another application's tables, or was written by a steplab with another schema
            version (older: unless ``upgrade``), or, with ``must_exist``, is missing. The
            file is left unchanged.
    """
    where = locate(url)
    if where.sqlite_path is not None:
        if must_exist and not where.sqlite_path.exists():
            raise no_database(where.shown)
        check_sqlite_file(where.sqlite_path, where.shown)
    engine = make_engine(where, busy_timeout_s)
    store = Store(engine, shown=where.shown, sqlite_path=where.sqlite_path, busy_timeout_s=busy_timeout_s)
    if where.sqlite_path is not None:
        hold_sqlite_file(where.sqlite_path)  # released by Store.close
    try:
        store.applied_migrations = store._init_schema(upgrade=upgrade)
    except BaseException:
        store.close()
        raise
    return store
