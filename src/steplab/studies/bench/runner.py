"""Running a benchmark: open (or resume) its study in a store and run the trials still to
do on an executor. Every trial is keyed by everything that determines it
(``TrialSpec.key``), so a killed benchmark resumes where it stopped."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from steplab.errors import StoreError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies.bench.planning import plan
from steplab.studies.bench.spec import BenchSpec
from steplab.studies.resume import open_study
from steplab.training.jobs import Job


@dataclasses.dataclass
class Benchmark:
    """A benchmark opened in a store: its study row and the jobs still to run."""

    spec: BenchSpec
    study_id: int
    jobs: list[Job]
    done: dict[str, TrialResult]

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if j.key() not in self.done]


def open_benchmark(spec: BenchSpec, store: Store) -> Benchmark:
    """Find or create the study of ``spec`` (``resume.open_study``: a killed run's dead
    claims are removed) and plan its jobs; those already finished are ``done``."""
    study_id = open_study(store, spec.study_name(), "benchmark", spec.to_dict())
    jobs = plan(spec, study_id)
    done = store.finished_by_key(study_id)
    return Benchmark(spec, study_id, jobs, done)


def run(bench: Benchmark, executor: Any, db_url: str, *, poll_s: float = 2.0,
        on_wait: Callable[[int], None] | None = None) -> Iterator[TrialResult]:
    """Run the benchmark's remaining jobs on ``executor``, yielding each result as it
    finishes (already stored by the worker).

    Several processes (or machines, on a shared database) may run the same benchmark at
    once: every job is claimed before it runs (``jobs.claim_and_run``), so each trial runs
    once. Jobs another live process holds are waited for, polling the store every
    ``poll_s`` seconds (``on_wait(n)`` is called with how many), and yielded when they
    finish there; one whose process died is claimed again and run here."""
    from steplab.store import open_store

    # a refined job's stored spec holds the refined schedule, so match results to jobs by
    # what identifies a trial within the study rather than by spec key
    keys = {(j.algorithm["name"], j.workload, j.variant, j.seed, j.index): j.key() for j in bench.jobs}
    while bench.todo:
        held = ran = 0
        for result in executor.run(bench.todo, db_url):
            if result.status == "running":  # another live worker holds it
                held += 1
                continue
            s = result.spec
            bench.done[keys.get((s.algorithm, s.workload, s.variant, s.seed, s.index), s.key())] = result
            ran += 1
            yield result
        if not held:
            if not ran:
                raise StoreError(f"{len(bench.todo)} trials of study {bench.study_id} ran but their results "
                                 "match no job of the benchmark: report this as a bug")
            continue
        if on_wait is not None:
            on_wait(held)
        time.sleep(poll_s)
        with open_store(db_url) as store:
            finished = store.finished_by_key(bench.study_id)
        for job in bench.todo:
            if job.key() in finished:
                bench.done[job.key()] = finished[job.key()]
                yield finished[job.key()]
