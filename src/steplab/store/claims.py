"""Claims of trials by workers on several processes or machines: worker ids, heartbeats,
taking over dead claims (the scheme of Optuna's ``heartbeat_interval``/``grace_period``
storages, with a same-host pid check so a killed process's claim dies at once)."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select, update

from steplab.errors import StoreError
from steplab.results import FINISHED, TrialSpec
from steplab.store.core import StoreCore
from steplab.store.engine import serialize
from steplab.store.rows import start_values
from steplab.store.schema import in_study, trials_table

#: a running trial's worker touches ``heartbeat_at`` this often (env STEPLAB_HEARTBEAT_S)
HEARTBEAT_S = 10.0
#: a claim whose heartbeat is older than this is dead and may be taken over (env
#: STEPLAB_STALE_AFTER_S); on the claim's own host a dead process is noticed at once
STALE_AFTER_S = 60.0


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise StoreError(f"{name}={text!r} is not a positive number of seconds: fix or unset it")
    return value


def heartbeat_s() -> float:
    """How often a worker beats (``STEPLAB_HEARTBEAT_S``, default :data:`HEARTBEAT_S`)."""
    return _env_seconds("STEPLAB_HEARTBEAT_S", HEARTBEAT_S)


def stale_after_s() -> float:
    """When a silent claim is dead (``STEPLAB_STALE_AFTER_S``, default :data:`STALE_AFTER_S`)."""
    return _env_seconds("STEPLAB_STALE_AFTER_S", STALE_AFTER_S)


def new_worker_id() -> str:
    """``host:pid:nonce``: who holds a claim. The pid lets a process on the same host see at
    once that the claimant died; the nonce tells apart two claims of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid we can check: assume alive
    return True


def claim_is_dead(worker: str | None, heartbeat_at: float | None, now: float, stale_after: float) -> bool:
    """Whether a ``running`` trial's claim may be taken over: it has no heartbeat (started
    by a steplab before claims, or by a loop that never beats), its last heartbeat is older
    than ``stale_after`` seconds, or its worker ran on this host in a process that is gone.
    Heartbeats are wall-clock times of the workers' hosts: keep clocks within a few seconds
    (NTP) of each other, well inside ``stale_after``."""
    if heartbeat_at is None or now - heartbeat_at > stale_after:
        return True
    host, _, rest = (worker or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return not _pid_alive(int(pid_text))
    return False


class Claims(StoreCore):
    """The claim methods of :class:`steplab.store.store.Store`."""

    def claim_trial(
        self,
        spec: TrialSpec,
        *,
        worker: str,
        key: str | None = None,
        name: str | None = None,
        host: str = "",
        versions: dict[str, str] | None = None,
        device: str = "cpu",
        stale_after: float | None = None,
    ) -> int | None:
        """Atomically claim the trial ``key`` (default ``spec.key()``) of ``spec.study_id``
        for ``worker``: in ONE transaction, look for trials with that key; if one finished
        or one is ``running`` under a live claim, return ``None`` (nothing to do here);
        otherwise delete the dead claims' rows (:func:`claim_is_dead`: a killed worker's
        attempt, with its steps and evals) and insert a ``running`` trial owned by
        ``worker``, returning its id. Claims of one key are serialized by SQLite's write
        lock (``BEGIN IMMEDIATE``) or, on PostgreSQL, a transaction-scoped advisory lock on
        (study, key), so two workers never both get the same trial."""
        key = key or spec.key()
        stale = stale_after_s() if stale_after is None else stale_after
        values = start_values(spec, name=name, host=host, versions=versions, device=device,
                              key=key, worker=worker)
        with self._tx(f"claiming a trial of study {spec.study_id}", write=True) as conn:
            serialize(conn, spec.study_id, key)
            self._check_study(conn, spec.study_id)
            rows = conn.execute(
                select(trials_table.c.id, trials_table.c.status, trials_table.c.worker,
                       trials_table.c.heartbeat_at)
                .where(in_study(spec.study_id), trials_table.c.key == key)
            ).all()
            now = time.time()
            if any(r.status in FINISHED for r in rows):
                return None
            running = [r for r in rows if r.status == "running"]  # an interrupted one stays, kept
            if any(not claim_is_dead(r.worker, r.heartbeat_at, now, stale) for r in running):
                return None
            self._delete_trials(conn, [int(r.id) for r in running])
            return self._insert_trial(conn, values)

    def beat(self, worker: str) -> int:
        """Touch ``heartbeat_at`` of ``worker``'s running trials; return how many."""
        with self._tx("recording a heartbeat", write=True) as conn:
            done = conn.execute(
                update(trials_table)
                .where(trials_table.c.worker == worker, trials_table.c.status == "running")
                .values(heartbeat_at=time.time())
            )
            return int(done.rowcount)

    @contextlib.contextmanager
    def heartbeat(self, worker: str, every_s: float | None = None) -> Iterator[None]:
        """Beat for ``worker`` every ``every_s`` seconds (default :func:`heartbeat_s`) from a
        background thread while the block runs. A failed beat is retried at the next one (a
        claim only dies after :func:`stale_after_s` of silence)."""
        every = heartbeat_s() if every_s is None else every_s
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every):
                with contextlib.suppress(StoreError):
                    self.beat(worker)

        thread = threading.Thread(target=run, name=f"steplab-heartbeat-{worker}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=every + self._busy_timeout_s)

    def release(self, worker: str) -> int:
        """Delete ``worker``'s ``running`` trials with their rows (one transaction) and return
        how many: a worker that stops without finishing (an error outside the training loop,
        Ctrl-C) gives its claims back at once rather than after ``stale_after_s``."""
        with self._tx(f"releasing the trials of worker {worker}", write=True) as conn:
            ids = list(conn.execute(
                select(trials_table.c.id).where(trials_table.c.worker == worker,
                                                trials_table.c.status == "running")
            ).scalars())
            self._delete_trials(conn, ids)
        return len(ids)

    def reap_stale(self, study_id: int | None, stale_after: float | None = None) -> int:
        """Delete the ``running`` trials of a study whose claim is dead (see
        :func:`claim_is_dead`) with their rows, in one transaction; return how many. Live
        trials of other processes are left alone, so this is safe while they run."""
        stale = stale_after_s() if stale_after is None else stale_after
        with self._tx(f"reaping dead trials of study {study_id}", write=True) as conn:
            rows = conn.execute(
                select(trials_table.c.id, trials_table.c.worker, trials_table.c.heartbeat_at)
                .where(in_study(study_id), trials_table.c.status == "running")
            ).all()
            now = time.time()
            dead = [int(r.id) for r in rows if claim_is_dead(r.worker, r.heartbeat_at, now, stale)]
            self._delete_trials(conn, dead)
        return len(dead)

    def claims(self, study_id: int | None = None) -> list[dict[str, Any]]:
        """The ``running`` trials (of one study, or all with ``study_id=None``) as
        ``{"id", "study_id", "key", "worker", "heartbeat_at", "dead"}``."""
        query = select(trials_table.c.id, trials_table.c.study_id, trials_table.c.key,
                       trials_table.c.worker, trials_table.c.heartbeat_at).where(
            trials_table.c.status == "running").order_by(trials_table.c.id)
        if study_id is not None:
            query = query.where(trials_table.c.study_id == study_id)
        with self._tx("listing running trials", write=False) as conn:
            rows = conn.execute(query).all()
        now, stale = time.time(), stale_after_s()
        return [{**dict(r._mapping), "dead": claim_is_dead(r.worker, r.heartbeat_at, now, stale)} for r in rows]
