"""A trial as a unit of work: plain JSON-able data an executor ships to any process or
machine, and :func:`execute` that runs it there and writes the result to the store."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

from steplab.algorithms import ResolvedAlgorithm
from steplab.results import TrialResult, TrialSpec, current_environment, trial_spec
from steplab.training.config import TrainConfig
from steplab.workloads.target import Target

#: suffix of the algorithm name of a refined algorithm's first pass (not scored itself)
FIRST_PASS = " first pass"


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything needed to run one trial, JSON-able (so it pickles to a pool or Ray)."""

    workload: str
    variant: str
    budget_steps: int
    #: target override {"metric", "value", "mode"} or None for the workload's default
    target: dict[str, Any] | None
    algorithm: dict[str, Any]  # ResolvedAlgorithm.to_dict()
    seed: int
    study_id: int | None
    index: int
    stop_at_target: bool = True
    device: str | None = None
    threads: int | None = 1
    #: ``{"tau", "norm"}``: run the refinement protocol (see :func:`execute_refined`)
    refine: dict[str, Any] | None = None
    #: evaluate after exactly these update counts too (``TrainConfig.eval_steps``)
    eval_steps: tuple[int, ...] = ()

    def build_workload(self) -> Any:
        from steplab import workloads

        target = Target(**self.target) if self.target else None
        return workloads.get(self.workload, self.variant, budget_steps=self.budget_steps, target=target)

    def resolved(self) -> ResolvedAlgorithm:
        return ResolvedAlgorithm.from_dict(self.algorithm)

    def trial_spec(self) -> TrialSpec:
        """The spec ``run_trial`` will store: its ``key()`` tells whether the job already ran."""
        return trial_spec(self.build_workload(), self.resolved(), self.seed, settings=self.config().settings(),
                          study_id=self.study_id, index=self.index, stop_at_target=self.stop_at_target)

    def key(self) -> str:
        return self.trial_spec().key()

    def config(self) -> TrainConfig:
        """How ``run_trial`` runs this job."""
        return TrainConfig(device=self.device, stop_at_target=self.stop_at_target, threads=self.threads,
                           eval_steps=tuple(self.eval_steps))


def execute(job: Job, db_url: str | None) -> TrialResult:
    """Run ``job`` in this process, writing its trace and result to the store at ``db_url``
    (``None``: keep nothing). Opens and closes its own store connection, so it is safe in
    worker processes and Ray tasks. With a store, the job is claimed first
    (:func:`claim_and_run`), so several processes may be handed the same job."""
    from steplab.store import open_store

    if db_url is None and job.refine is None:
        return _run(job, None)
    with open_store(db_url if db_url is not None else "sqlite://") as store:
        return claim_and_run(job, store)


def claim_and_run(job: Job, store: Any) -> TrialResult:
    """Claim ``job``'s trial in ``store`` (``Store.claim_trial``) and run it. When it is
    finished already, that stored result is returned; when another live worker holds it, a
    result with status ``running`` (not stored, ``message`` naming the worker) says so, and
    the caller waits for that worker (``bench.run``) instead of running it twice."""
    from steplab.errors import StoreError
    from steplab.store import new_worker_id

    worker = new_worker_id()
    tid = store.claim_trial(job.trial_spec(), worker=worker, key=job.key(),
                            **current_environment(job.device or "").fields())
    if tid is None:
        return held_elsewhere(job, store)
    try:
        if job.refine is not None:
            return execute_refined(job, store, trial_id=tid, worker=worker)
        return _run(job, store, trial_id=tid, worker=worker)
    except StoreError:
        if not store.trial_exists(tid):  # a worker that thought this one dead took it over
            return held_elsewhere(job, store)
        _give_back(store, worker)
        raise
    except BaseException:  # an error outside the training loop, Ctrl-C: give the claim back
        _give_back(store, worker)
        raise


def _give_back(store: Any, worker: str) -> None:
    from steplab.errors import StoreError

    with contextlib.suppress(StoreError):  # the claim then dies by its heartbeat instead
        store.release(worker)


def held_elsewhere(job: Job, store: Any) -> TrialResult:
    """The stored result of ``job`` if it finished, else a ``running`` placeholder naming
    the worker that holds it (see :func:`claim_and_run`)."""
    from steplab.results import FINISHED

    trials = store.list_trials(study_id=job.study_id, key=job.key())
    finished = [t for t in trials if t.status in FINISHED]
    if finished:
        return finished[-1]
    holders = [c for c in store.claims(job.study_id) if c["key"] == job.key()]
    who = holders[-1]["worker"] if holders else "another worker"
    return TrialResult(spec=job.trial_spec(), status="running", steps=0, train_time_s=0.0, eval_time_s=0.0,
                       message=f"running in {who}", id=holders[-1]["id"] if holders else None)


def _run(job: Job, store: Any, algorithm: ResolvedAlgorithm | None = None, **kwargs: Any) -> TrialResult:
    from steplab.training.loop import run_trial  # the loop (and torch) only where a job trains

    return run_trial(job.build_workload(), algorithm or job.resolved(), job.seed, store=store,
                     study_id=job.study_id, index=job.index, config=job.config(), **kwargs)


def first_pass(job: Job) -> Job:
    """The first pass of a refined job: the same algorithm with its own schedule, trained
    to the end of the budget (refinement needs the norms of the whole run)."""
    algorithm = {**job.algorithm, "name": job.algorithm["name"] + FIRST_PASS}
    return dataclasses.replace(job, refine=None, stop_at_target=False, algorithm=algorithm)


def execute_refined(job: Job, store: Any, *, trial_id: int | None = None, worker: str | None = None) -> TrialResult:
    """The two-pass protocol of Defazio et al. 2023 (§5): run the algorithm with its own
    schedule for the whole budget, refine a schedule from that run's gradient norms
    (:func:`steplab.analysis.refine.refine_trial`), and run it again with the refined schedule.

    The first pass is stored as its own trial (named ``... first pass``) and reused when a
    killed benchmark resumes; the second pass is stored under ``job.key()`` with the first
    pass's cost in its final metrics (``first_pass/train_time_s``, ``first_pass/steps``)
    so scoring can count the algorithm's time with and without it. ``trial_id`` is the
    second pass's trial when ``worker`` claimed it already (the first pass runs under the
    same worker, so its heartbeat covers both)."""
    from steplab.analysis import refine

    opts = dict(job.refine or {})
    first = first_pass(job)
    prior = store.finished_by_key(job.study_id).get(first.key())
    if prior is None:
        prior = _run(first, store, worker=worker)
    extra = {
        "first_pass/train_time_s": float(prior.train_time_s),
        "first_pass/steps": float(prior.steps),
        "first_pass/trial_id": float(prior.id if prior.id is not None else -1),
    }
    algo = job.resolved()
    if prior.status in ("diverged", "failed"):
        return _record_unrun(job, store, algo, prior, extra, trial_id)
    r = refine.refine_trial(store, prior.id, tau=float(opts.get("tau", 0.1)), norm=str(opts.get("norm", "auto")),
                            budget_steps=job.budget_steps)
    second = dataclasses.replace(algo, schedule=r.spec.to_dict())
    return _run(job, store, algorithm=second, key=job.key(), extra_metrics=extra, trial_id=trial_id, worker=worker)


def _record_unrun(job: Job, store: Any, algo: ResolvedAlgorithm, prior: TrialResult,
                  extra: dict[str, float], trial_id: int | None = None) -> TrialResult:
    """A second pass that cannot run because its first pass broke: a recorded outcome
    (never reached), not a crash."""
    spec = job.trial_spec()
    env = current_environment(prior.device)
    tid = trial_id if trial_id is not None else store.start_trial(spec, key=job.key(), **env.fields())
    result = TrialResult(
        spec=spec, status=prior.status, steps=0, train_time_s=0.0, eval_time_s=0.0,
        time_to_target_s=math.inf, steps_to_target=math.inf, final_metrics=extra,
        message=f"first pass (trial {prior.id}) {prior.status}: {prior.message}"[:500], id=tid, **env.fields(),
    )
    store.finish_trial(tid, result)
    return result
