"""Running a benchmark: open (or resume) its study in a store and run the trials still to
do on an executor. Every trial is keyed by everything that determines it
(``TrialSpec.key``), so a killed benchmark resumes where it stopped."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from steplab.errors import StoreError, WorkloadError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies.bench.looks import added_cells, stored_looks
from steplab.studies.bench.planning import plan
from steplab.studies.bench.spec import BenchSpec
from steplab.studies.resume import open_study
from steplab.training.jobs import Job
from steplab.workloads import references


@dataclasses.dataclass
class Benchmark:
    """A benchmark opened in a store: its study row and the jobs still to run."""

    spec: BenchSpec
    study_id: int
    jobs: list[Job]
    done: dict[str, TrialResult]
    #: job keys by what identifies a job within the study (a key builds the workload: slow)
    _keys: dict[tuple[Any, ...], str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def key_of(self, job: Job) -> str:
        """``job.key()``, computed once per job."""
        ident = (job.algorithm["name"], job.workload, job.variant, job.seed, job.index, job.budget_steps)
        if ident not in self._keys:
            self._keys[ident] = job.key()
        return self._keys[ident]

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if self.key_of(j) not in self.done]


def open_benchmark(spec: BenchSpec, store: Store) -> Benchmark:
    """Find or create the study of ``spec`` (``resume.open_study``: a killed run's dead
    claims are removed) and plan its jobs, with the studies its stored looks added
    (``until_confident``, ``steplab.studies.bench.adaptive``); those already finished are
    ``done``."""
    study_id = open_study(store, spec.study_name(), "benchmark", spec.to_dict())
    added = added_cells(stored_looks(store, study_id)) if spec.until_confident is not None else []
    jobs = plan(spec, study_id, added)
    done = store.finished_by_key(study_id)
    return Benchmark(spec, study_id, jobs, done)


def _check_source(result: TrialResult, expected: str | None) -> None:
    """A trial a worker ran from another version of a workload file than this process
    loaded (the file differs on that worker, or changed during the run) stops the benchmark."""
    got = result.spec.settings.get("workload_sha256")
    if expected is not None and got is not None and got != expected:
        raise WorkloadError(
            f"trial {result.id} ran {result.spec.workload} from a source with sha256 {got[:12]}, but this "
            f"process loaded {expected[:12]}: the file differs on that worker or changed during the run; "
            "give every worker the same file, then run again under a new name (--name)")


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
    sources = {w: references.source_sha256(w) for w in {j.workload for j in bench.jobs}}
    while bench.todo:
        held = ran = 0
        for result in executor.run(bench.todo, db_url):
            if result.status == "running":  # another live worker holds it
                held += 1
                continue
            s = result.spec
            _check_source(result, sources.get(s.workload))
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
