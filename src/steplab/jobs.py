"""A trial as a unit of work: plain JSON-able data an executor ships to any process or
machine, and :func:`execute` that runs it there and writes the result to the store."""

from __future__ import annotations

import dataclasses
from typing import Any

from steplab.algorithms import ResolvedAlgorithm
from steplab.results import TrialResult, TrialSpec
from steplab.train import TrainConfig, run_trial
from steplab.workloads.base import Target


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


def execute(job: Job, db_url: str | None) -> TrialResult:
    """Run ``job`` in this process, writing its trace and result to the store at ``db_url``
    (``None``: keep nothing). Opens and closes its own store connection, so it is safe in
    worker processes and Ray tasks."""
    from steplab.store import open_store

    config = TrainConfig(device=job.device, stop_at_target=job.stop_at_target, threads=job.threads)
    store = open_store(db_url) if db_url is not None else None
    try:
        return run_trial(
            job.build_workload(),
            job.resolved(),
            job.seed,
            store=store,
            study_id=job.study_id,
            index=job.index,
            config=config,
        )
    finally:
        if store is not None:
            store.close()
