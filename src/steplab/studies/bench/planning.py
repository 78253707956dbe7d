"""A benchmark's trials, in a fixed order: per algorithm, study and hyperparameter point,
one trial per workload (AlgoPerf, Dahl et al. 2023, arXiv 2306.07179, §4.2.1 external
tuning: quasi-random points from the search space; §4.2.2 self-tuning: the defaults with 3x
the budget), plus the tradeoff trials (``steplab.studies.tradeoff``)."""

from __future__ import annotations

import dataclasses

from steplab.algorithms import space
from steplab.studies import tradeoff
from steplab.studies.bench.names import algorithm_for, parse_refined
from steplab.studies.bench.spec import BenchSpec
from steplab.training.jobs import Job

#: AlgoPerf's self-tuning ruleset allows 3x the external-tuning budget
SELF_TUNING_BUDGET_FACTOR = 3


def plan(spec: BenchSpec, study_id: int | None) -> list[Job]:
    """The trials of ``spec``, in a fixed order. Study ``s`` draws its ``N`` points with QMC
    seed ``seed + s`` and runs trial ``i`` with training seed ``seed + 1000 s + i``."""
    jobs: list[Job] = []
    entries = spec.entries()
    for entry in entries:
        entry.build()  # unknown workloads fail before anything runs
    for name in spec.algorithms:
        algo = algorithm_for(name, spec.overrides)
        refined = parse_refined(name)
        for s in range(spec.studies):
            if spec.ruleset == "external":
                if not algo.search_space:
                    points = [algo.defaults()] * spec.trials
                else:
                    points = space.sample(algo.search_space, spec.trials, seed=spec.seed + s)
                    points = [{**algo.defaults(), **pt} for pt in points]
                budget_factor = 1
            else:
                points = [algo.defaults()]
                budget_factor = SELF_TUNING_BUDGET_FACTOR
            for i, point in enumerate(points):
                resolved = algo.with_hyperparameters(point)
                for entry in entries:
                    wl = entry.build()
                    jobs.append(
                        Job(
                            workload=entry.workload,
                            variant=entry.variant,
                            budget_steps=wl.budget_steps * budget_factor,
                            target=dataclasses.asdict(wl.target),
                            algorithm=resolved.to_dict(),
                            seed=spec.seed + 1000 * s + i,
                            study_id=study_id,
                            index=s * len(points) + i,
                            refine=refined[1] if refined else None,
                        )
                    )
    if spec.tradeoff == "cyclic":
        jobs.extend(tradeoff_jobs(spec, study_id))
    return jobs


def tradeoff_jobs(spec: BenchSpec, study_id: int | None) -> list[Job]:
    """The tradeoff trials of ``spec`` (``steplab.studies.tradeoff.jobs``): per plain algorithm and
    workload, the algorithm's defaults, the first seed, the workload's budget."""
    out: list[Job] = []
    for name in spec.algorithms:
        if parse_refined(name) is not None:
            continue
        algo = algorithm_for(name, spec.overrides)
        resolved = algo.with_hyperparameters(algo.defaults())
        for entry in spec.entries():
            wl = entry.build()
            out.extend(tradeoff.jobs(entry.workload, resolved, budget_steps=wl.budget_steps, seed=spec.seed,
                                     variant=entry.variant, target=dataclasses.asdict(wl.target),
                                     study_id=study_id))
    return out
