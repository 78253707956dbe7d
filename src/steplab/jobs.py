"""A trial as a unit of work: plain JSON-able data an executor ships to any process or
machine, and :func:`execute` that runs it there and writes the result to the store."""

from __future__ import annotations

import dataclasses
import math
import socket
from typing import Any

from steplab.algorithms import ResolvedAlgorithm
from steplab.results import TrialResult, TrialSpec
from steplab.train import TrainConfig, run_trial
from steplab.workloads.base import Target

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
        algo = self.resolved()
        return TrialSpec(
            workload=self.workload,
            variant=self.variant,
            algorithm=algo.name,
            algorithm_spec=algo.to_dict(),
            hyperparameters=dict(algo.hyperparameters),
            seed=self.seed,
            budget_steps=self.budget_steps,
            study_id=self.study_id,
            index=self.index,
            stop_at_target=self.stop_at_target,
        )

    def key(self) -> str:
        return self.trial_spec().key()

    def config(self) -> TrainConfig:
        """How ``run_trial`` runs this job."""
        return TrainConfig(device=self.device, stop_at_target=self.stop_at_target, threads=self.threads,
                           eval_steps=tuple(self.eval_steps))


def execute(job: Job, db_url: str | None) -> TrialResult:
    """Run ``job`` in this process, writing its trace and result to the store at ``db_url``
    (``None``: keep nothing). Opens and closes its own store connection, so it is safe in
    worker processes and Ray tasks."""
    from steplab.store import open_store

    if job.refine is not None:
        with open_store(db_url if db_url is not None else "sqlite://") as store:
            return execute_refined(job, store)
    store = open_store(db_url) if db_url is not None else None
    try:
        return _run(job, store)
    finally:
        if store is not None:
            store.close()


def _run(job: Job, store: Any, algorithm: ResolvedAlgorithm | None = None, **kwargs: Any) -> TrialResult:
    return run_trial(job.build_workload(), algorithm or job.resolved(), job.seed, store=store,
                     study_id=job.study_id, index=job.index, config=job.config(), **kwargs)


def first_pass(job: Job) -> Job:
    """The first pass of a refined job: the same algorithm with its own schedule, trained
    to the end of the budget (refinement needs the norms of the whole run)."""
    algorithm = {**job.algorithm, "name": job.algorithm["name"] + FIRST_PASS}
    return dataclasses.replace(job, refine=None, stop_at_target=False, algorithm=algorithm)


def execute_refined(job: Job, store: Any) -> TrialResult:
    """The two-pass protocol of Defazio et al. 2023 (§5): run the algorithm with its own
    schedule for the whole budget, refine a schedule from that run's gradient norms
    (:func:`steplab.refine.refine_trial`), and run it again with the refined schedule.

    The first pass is stored as its own trial (named ``... first pass``) and reused when a
    killed benchmark resumes; the second pass is stored under ``job.key()`` with the first
    pass's cost in its final metrics (``first_pass/train_time_s``, ``first_pass/steps``)
    so scoring can count the algorithm's time with and without it."""
    from steplab import refine

    opts = dict(job.refine or {})
    first = first_pass(job)
    prior = store.finished_by_key(job.study_id).get(first.key())
    if prior is None:
        prior = _run(first, store)
    extra = {
        "first_pass/train_time_s": float(prior.train_time_s),
        "first_pass/steps": float(prior.steps),
        "first_pass/trial_id": float(prior.id if prior.id is not None else -1),
    }
    algo = job.resolved()
    if prior.status in ("diverged", "failed"):
        return _record_unrun(job, store, algo, prior, extra)
    r = refine.refine_trial(store, prior.id, tau=float(opts.get("tau", 0.1)), norm=str(opts.get("norm", "auto")),
                            steps=job.budget_steps)
    second = dataclasses.replace(algo, schedule=r.spec.to_dict())
    return _run(job, store, algorithm=second, key=job.key(), extra_metrics=extra)


def _record_unrun(job: Job, store: Any, algo: ResolvedAlgorithm, prior: TrialResult,
                  extra: dict[str, float]) -> TrialResult:
    """A second pass that cannot run because its first pass broke: a recorded outcome
    (never reached), not a crash."""
    from steplab.recorder import package_versions

    spec = job.trial_spec()
    tid = store.start_trial(spec, host=socket.gethostname(), versions=package_versions(), key=job.key())
    result = TrialResult(
        spec=spec, status=prior.status, steps=0, train_time_s=0.0, eval_time_s=0.0,
        time_to_target_s=math.inf, steps_to_target=math.inf, final_metrics=extra,
        message=f"first pass (trial {prior.id}) {prior.status}: {prior.message}"[:500],
        device=prior.device, host=socket.gethostname(), versions=package_versions(), id=tid,
    )
    store.finish_trial(tid, result)
    return result
