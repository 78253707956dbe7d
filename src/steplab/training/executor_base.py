"""What every executor shares: the :class:`Executor` contract, the checks of ``workers`` and
of the store URL, the serial executor, and :func:`warm_up`, which a long-lived worker (a pool
process, a Ray actor) runs once so that its trials do not pay the imports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.training.jobs import Job, execute

#: the tail of every "the run stopped" message
RESUME = "re-run the same command to resume (finished trials are kept in the store)"


def one_line(error: BaseException) -> str:
    """The first non-empty line of ``error``'s message (its type's name if none)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def shared_url(db_url: str) -> str:
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


def check_workers(workers: int) -> int:
    """``workers`` if it is a whole number >= 1, else a one-line :class:`SpecError`."""
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


def warm_up() -> None:
    """Import what every trial needs (torch, the training loop, the built-in workloads) and
    set one torch thread, once per long-lived worker, so its first trial does not pay the
    imports (a few seconds). Each trial still sets its own thread count (``Job.threads``)."""
    import torch

    import steplab.training.loop  # noqa: F401  (the loop, the recorder, the optimizers)
    import steplab.workloads  # noqa: F401

    torch.set_num_threads(1)
