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
jobs with ``result.spec.key() == job.key()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from steplab.errors import SpecError, SteplabError
from steplab.results import TrialResult
from steplab.training.jobs import Job, execute

__all__ = [
    "Executor",
    "SerialExecutor",
    "ProcessPoolExecutor",
    "RayExecutor",
    "make_executor",
]

_RESUME = "re-run the same command to resume (finished trials are kept in the store)"
#: how long a stopped worker may take to exit after SIGTERM before it is killed (SIGKILL)
_TERMINATE_GRACE_S = 5.0


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _shared_url(db_url: str) -> str:
    """``db_url`` as every worker can open it: file paths made absolute (workers may run in
    another directory); an in-memory SQLite database, private to each process, refused."""
    from sqlalchemy.engine import make_url

    from steplab.store import resolve_url

    url = resolve_url(db_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise SpecError(
            f"the in-memory database {db_url!r} cannot be shared with worker processes: "
            "pass a file path (--db runs.db) or run with one worker"
        )
    return url


def _check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SpecError(f"workers must be a whole number >= 1, got {workers!r}")
    return workers


class Executor(ABC):
    """Runs jobs and yields their results as trials finish.

    Contract:

    - :meth:`run` yields exactly one :class:`TrialResult` per job, in the order the trials
      finish. Each result is in the store at ``db_url`` before it is yielded (the worker
      writes it through :func:`~steplab.training.jobs.execute`).
    - ``db_url`` must name a store every worker can reach: a file path is enough for
      processes on this machine; workers on other machines need a shared server such as
      ``postgresql://...``.
    - An error raised outside a trial (a bad workload name, an unreachable store, a dead
      worker) stops the run and is raised from :meth:`run`; a trial that diverges or fails
      inside its training loop is a result, not an error.
    - Ctrl-C (``KeyboardInterrupt``) cancels the trials not yet finished and is re-raised at
      once; their claims are given back (``jobs.claim_and_run``) or, where the process was
      killed, die with it and are taken over when the benchmark resumes. An error, or the
      caller leaving the loop early, cancels them the same way.
    - Each job is claimed in the store before it runs, so several executors (in several
      processes or on several machines sharing a database) may be handed the same jobs: a
      job another live worker holds yields a ``running`` placeholder, one already finished
      its stored result.
    - Use an executor as a context manager, or call :meth:`close`, to free its workers.

    Attributes:
      workers: how many trials run at once.
    """

    workers: int = 1

    @abstractmethod
    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        """Run ``jobs``, writing traces and results to ``db_url``; yield each result as its
        trial finishes."""

    def close(self) -> None:  # noqa: B027 (a default no-op, not abstract on purpose)
        """Free the workers (no-op by default). The executor may not be used afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class SerialExecutor(Executor):
    """One trial after another, in this process, in the order given."""

    workers = 1

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        for job in jobs:
            yield execute(job, db_url)


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
    import torch  # imported here so every worker pays the import once, before its first job

    torch.set_num_threads(1)  # each job sets its own count (Job.threads) in execute


class ProcessPoolExecutor(Executor):
    """Trials in ``workers`` local processes (``concurrent.futures`` with the "spawn" start
    method, safe with torch). Each trial sets its own torch thread count (``Job.threads``,
    1 by default), so ``workers`` processes use about ``workers`` cores.

    The processes start on the first :meth:`run` (each imports torch, a few seconds) and are
    reused until :meth:`close`. ``db_url`` must be a store the processes can open: a SQLite
    file (not ``:memory:``) or a database server.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = _check_workers(workers)
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
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=_TERMINATE_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        if not jobs:
            return
        db_url = _shared_url(db_url)
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
                        f"a worker process died (out of memory?): {_RESUME}"
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


# -- Ray ---------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SteplabError("Ray is not installed: pip install 'steplab[ray]'") from None
    return ray


_REMOTE_EXECUTE: Any = None


def _remote_execute(ray: Any) -> Any:
    """``execute`` as a Ray task needing one CPU (built once, after ``import ray``)."""
    global _REMOTE_EXECUTE
    if _REMOTE_EXECUTE is None:
        _REMOTE_EXECUTE = ray.remote(num_cpus=1, max_retries=0)(execute)
    return _REMOTE_EXECUTE


class RayExecutor(Executor):
    """Trials as Ray tasks, one CPU each, on a local Ray instance or a cluster.

    Args:
      address: ``None`` starts a local Ray instance with ``workers`` CPUs (unless Ray is
        already initialized in this process, which is then used as is); otherwise the
        address passed to ``ray.init`` (``"auto"``, ``"ray://head:10001"``).
      workers: CPUs of the local instance (default: every core of this machine). On a
        cluster Ray runs as many trials at once as it has CPUs, and ``workers`` is read from
        the cluster once connected.

    ``db_url`` must be reachable from every Ray worker: a SQLite file path works on a
    single machine (local instance); a cluster of several machines needs a database server
    (``postgresql://...``). The workers import steplab, so it must be installed in their
    Python environment (on a local instance it is this interpreter's). :meth:`close` shuts
    Ray down only if this executor started it.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self._ray = _import_ray()
        self.address = address
        self.workers = _check_workers(workers if workers is not None else os.cpu_count() or 1)
        self._workers_given = workers is not None
        self._started = False

    def _connect(self) -> Any:
        ray = self._ray
        if ray.is_initialized():
            return ray
        if self.address is None:
            ray.init(
                num_cpus=self.workers,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SteplabError(
                    f"cannot connect to Ray at {self.address!r} ({_one_line(e)}): start the "
                    "cluster (ray start --head) or check --ray ADDRESS"
                ) from None
            if not self._workers_given:
                self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._started = True
        return ray

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        if not jobs:
            return
        db_url = _shared_url(db_url)
        ray = self._connect()
        remote = _remote_execute(ray)
        pending = [remote.remote(job, db_url) for job in jobs]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    result = ray.get(done[0])
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, Exception):
                        raise cause from None  # the job's own error (e.g. StoreError)
                    raise SteplabError(f"a Ray task failed ({_one_line(e)}): {_RESUME}") from None
                except ray.exceptions.RayError as e:
                    raise SteplabError(
                        f"a Ray worker died ({_one_line(e)}; out of memory?): {_RESUME}"
                    ) from None
                yield result
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._started:
            self._started = False
            self._ray.shutdown()


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
    workers = _check_workers(workers)
    if ray is None or ray is False:
        return SerialExecutor() if workers == 1 else ProcessPoolExecutor(workers)
    if ray is True or ray == "":
        return RayExecutor(address=None, workers=workers)
    if isinstance(ray, str):
        return RayExecutor(address=ray)
    raise SpecError(f"ray must be a bool or an address string, got {ray!r}")
