"""Trials on Ray: a pool of long-lived actors, one CPU each, on a local Ray instance or a
cluster of several machines (DESIGN.md, "executors").

Each actor imports torch and steplab once (:func:`~steplab.training.executor_base.warm_up`)
and then runs trial after trial, as ``ray.util.ActorPool`` does: a new trial goes to the
first actor that is free, so the pool stays busy while this process reads results. Ray's
own worker reuse keeps a task's process alive too, but an actor pins the process, its
imports and its CPU for the whole run, and says where it runs (:meth:`RayExecutor.placements`).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from steplab.errors import SteplabError
from steplab.results import TrialResult
from steplab.training.executor_base import (
    RESUME,
    Executor,
    check_workers,
    one_line,
    shared_url,
    warm_up,
)
from steplab.training.jobs import Job, execute

__all__ = ["RayExecutor"]


def import_ray() -> Any:
    """``ray``, or a one-line :class:`SteplabError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SteplabError("Ray is not installed: pip install 'steplab[ray]'") from None
    return ray


class TrialActor:
    """One long-lived trial worker (a Ray actor needing one CPU): imports once, then runs
    :func:`~steplab.training.jobs.execute` for each job it is handed."""

    def __init__(self) -> None:
        warm_up()

    def where(self) -> dict[str, Any]:
        """``{"node", "host", "pid"}``: the Ray node id and the process this actor runs in
        (the store's ``worker`` column of its trials is ``host:pid:nonce``)."""
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "pid": os.getpid()}

    def run(self, job: Job, db_url: str) -> TrialResult:
        return execute(job, db_url)


#: the settings of a local instance: no dashboard, no logs shipped to this process, and the
#: workers at this process's priority (Ray's default worker niceness is 15, which loses
#: the cores to any other work on the machine)
LOCAL_INIT: dict[str, Any] = {
    "include_dashboard": False,
    "log_to_driver": False,
    "_system_config": {"worker_niceness": 0},
}


class RayExecutor(Executor):
    """Trials on a pool of Ray actors, one CPU each, on a local Ray instance or a cluster.

    Args:
      address: ``None`` starts a local Ray instance with ``workers`` CPUs (unless Ray is
        already initialized in this process, which is then used as is); otherwise the
        address passed to ``ray.init`` (``"auto"``, ``"HEAD:6379"``, ``"ray://head:10001"``).
      workers: actors, i.e. trials at once (default: every core of this machine). On a
        cluster the default is the cluster's CPU count, read once connected, and more than
        that is capped to it (an actor that never gets a CPU would hold its trials).

    The actors start on the first :meth:`run` and are reused until :meth:`close`, spread
    over the cluster's nodes (``SPREAD``). ``db_url`` must be reachable from every actor: a
    SQLite file path works on one machine; several machines need a database server
    (``postgresql+psycopg://...``). The actors import steplab, and a user's workload file
    (``file.py:Class``) from the same path, so both must be there on every node.
    :meth:`close` shuts Ray down only if this executor started it.
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self._ray = import_ray()
        self.address = address
        self.workers = check_workers(workers if workers is not None else os.cpu_count() or 1)
        self._workers_given = workers is not None
        self._started = False
        self._actors: list[Any] = []
        self._where: list[dict[str, Any]] = []

    def _connect(self) -> Any:
        ray = self._ray
        if ray.is_initialized():
            return ray
        if self.address is None:
            # "local": a private instance even where this machine is a node of a cluster
            ray.init(address="local", num_cpus=self.workers, ignore_reinit_error=True, **LOCAL_INIT)
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, ignore_reinit_error=True)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SteplabError(
                    f"cannot connect to Ray at {self.address!r} ({one_line(e)}): start the "
                    "cluster (ray start --head) or check --ray-address"
                ) from None
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self.workers = min(self.workers, cpus) if self._workers_given else cpus
        self._started = True
        return ray

    def _pool(self, ray: Any) -> list[Any]:
        """The actors, started (and warmed up) on first use."""
        if not self._actors:
            actor = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(TrialActor)
            self._actors = [actor.options(scheduling_strategy="SPREAD").remote()
                            for _ in range(self.workers)]
            self._where = []
        return self._actors

    def placements(self) -> list[dict[str, Any]]:
        """``[{"node", "host", "pid"}]``, one per actor: where the trials run (waits for the
        actors to start). Match a stored trial to its node by the pid in its ``worker``."""
        if self._actors and not self._where:
            self._where = self._ray.get([a.where.remote() for a in self._actors])
        return list(self._where)

    def _drop_pool(self) -> None:
        """Kill the actors now, running trials included (their claims die with them)."""
        actors, self._actors, self._where = self._actors, [], []
        for actor in actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor, no_restart=True)

    def _result(self, ref: Any) -> TrialResult:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the job's own error (e.g. StoreError)
            raise SteplabError(f"a Ray task failed ({one_line(e)}): {RESUME}") from None
        except ray.exceptions.RayError as e:
            raise SteplabError(
                f"a Ray worker died ({one_line(e)}; out of memory?): {RESUME}"
            ) from None

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        if not jobs:
            return
        db_url = shared_url(db_url)
        ray = self._connect()
        queue = deque(jobs)
        running: dict[Any, Any] = {}  # result ref -> the actor running it
        for actor in self._pool(ray)[: len(queue)]:
            running[actor.run.remote(queue.popleft(), db_url)] = actor
        try:
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(ref)
                result = self._result(ref)
                if queue:  # hand the free actor its next trial before yielding
                    running[actor.run.remote(queue.popleft(), db_url)] = actor
                yield result
        except BaseException:
            # Ctrl-C, a job's error, a dead actor, or the caller stopped iterating: stop the
            # trials still running; a later run starts new actors
            self._drop_pool()
            raise

    def close(self) -> None:
        self._drop_pool()
        if self._started:
            self._started = False
            self._ray.shutdown()
