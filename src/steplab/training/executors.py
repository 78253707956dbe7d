"""Where trials run: in this process, in a pool of local processes, or on Ray (DESIGN.md,
"executors.py").

An :class:`Executor` takes a batch of :class:`~steplab.training.jobs.Job` and yields each
:class:`~steplab.results.TrialResult` as soon as its trial finishes. Every executor runs
:func:`steplab.training.jobs.execute` where the trial runs, so the trace and the result are already
in the store when the result is yielded: a run stopped half-way (Ctrl-C, a dead worker)
keeps every finished trial, and re-running the same command resumes from the store. The
interface is one abstract method, after Optuna's ``pruners/_base.py`` (STYLE.md §4, §6)::

    with make_executor(workers=2) as executor:
        for result in executor.run(jobs, "runs.db"):
            print(result.spec.key(), result.status)

Results come back in the order trials *finish*, not the order of ``jobs``; match them to
jobs with ``result.spec.key() == job.key()``. The contract and the serial executor live in
:mod:`steplab.training.executor_base`, Ray's actor pool in :mod:`steplab.training.ray_executor`;
this module is the one to import from.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection
from multiprocessing.process import BaseProcess

from steplab.errors import SpecError, SteplabError
from steplab.results import TrialResult
from steplab.training.executor_base import (
    RESUME,
    Executor,
    SerialExecutor,
    check_workers,
    shared_url,
    warm_up,
)
from steplab.training.jobs import Job, execute
from steplab.training.ray_executor import RayExecutor

__all__ = [
    "Executor",
    "SerialExecutor",
    "ProcessPoolExecutor",
    "RayExecutor",
    "make_executor",
]

#: how long a stopped worker may take to exit after SIGTERM before it is killed (SIGKILL)
_TERMINATE_GRACE_S = 5.0


# -- local processes --------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes are started, so they inherit "ignore": a Ctrl-C
    then reaches only this process, which stops the workers itself (no traceback per
    worker). Only the main thread may change signal handlers; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()  # every worker pays the imports once, before its first job


def _has_exited(process: BaseProcess, timeout: float | None = 0.0) -> bool:
    """Whether ``process`` has exited, waiting up to ``timeout`` seconds (None: until it
    has). Its sentinel becomes ready when it exits, whichever thread reaps it."""
    return bool(connection.wait([process.sentinel], timeout=timeout))


class ProcessPoolExecutor(Executor):
    """Trials in ``workers`` local processes (``concurrent.futures`` with the "spawn" start
    method, safe with torch). Each trial sets its own torch thread count (``Job.threads``,
    1 by default), so ``workers`` processes use about ``workers`` cores.

    The processes start on the first :meth:`run` (each imports torch and steplab once, a few
    seconds: :func:`~steplab.training.executor_base.warm_up`) and are reused until
    :meth:`close`. ``db_url`` must be a store the processes can open: a SQLite
    file (not ``:memory:``) or a database server.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = check_workers(workers)
        self._pool: futures.ProcessPoolExecutor | None = None

    def _get_pool(self) -> futures.ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            self._pool = futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def _kill(self) -> None:
        """Stop the workers now, running trials included, and forget the pool: SIGTERM,
        then SIGKILL for a worker still alive ``_TERMINATE_GRACE_S`` later (a trial whose
        code handles SIGTERM, as training frameworks do to stop gracefully, would otherwise
        train on and keep this process from exiting: the pool's manager thread, which
        interpreter exit joins, waits for its result). Returns when every worker is dead."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A worker's sentinel, not is_alive(), says whether it has exited: the pool's
        # manager thread joins the same processes, and when it reaps one first the
        # is_alive() here can read True for a process that is already dead (Popen.poll
        # answers None to waitpid's ECHILD).
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if not _has_exited(process):
                process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if not _has_exited(process, timeout=_TERMINATE_GRACE_S):
                process.kill()
                _has_exited(process, timeout=None)

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        if not jobs:
            return
        db_url = shared_url(db_url)
        pool = self._get_pool()
        with _sigint_ignored():  # workers are spawned by submit
            pending = {pool.submit(execute, job, db_url) for job in jobs}
        try:
            for future in futures.as_completed(pending):
                pending.discard(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    self._kill()
                    raise SteplabError(
                        f"a worker process died (out of memory?): {RESUME}"
                    ) from None
                yield result
        except BaseException:
            # Ctrl-C, an error raised by a job, or the caller stopped iterating: cancel the
            # rest now; their claims die with the workers and are taken over on resume
            for future in pending:
                future.cancel()
            self._kill()
            raise

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# -- choosing one ------------------------------------------------------------------------


def make_executor(workers: int = 1, ray: str | bool | None = None) -> Executor:
    """The executor for the CLI's ``--workers N`` and ``--ray [ADDRESS]``.

    Args:
      workers: trials at once. Without ``ray``: 1 runs them in this process
        (:class:`SerialExecutor`), more in a local process pool
        (:class:`ProcessPoolExecutor`). With a local Ray instance: its CPU count.
      ray: ``None``/``False`` for no Ray; ``True`` or ``""`` for a local Ray instance; an
        address string (``"auto"``, ``"ray://head:10001"``) to join a cluster, which then
        runs as many trials at once as it has CPUs.

    >>> make_executor(1)
    SerialExecutor(workers=1)
    >>> make_executor(3)
    ProcessPoolExecutor(workers=3)
    """
    workers = check_workers(workers)
    if ray is None or ray is False:
        return SerialExecutor() if workers == 1 else ProcessPoolExecutor(workers)
    if ray is True or ray == "":
        return RayExecutor(address=None, workers=workers)
    if isinstance(ray, str):
        return RayExecutor(address=ray)
    raise SpecError(f"ray must be a bool or an address string, got {ray!r}")
