"""A benchmark's trials, in a fixed order (AlgoPerf, Dahl et al. 2023, arXiv 2306.07179,
§4.2.1 external tuning: quasi-random points from the search space; §4.2.2 self-tuning: the
defaults with 3x the budget), plus the studies ``--until-confident`` added to some cells
and the tradeoff trials (``steplab.studies.tradeoff``).

The order interleaves the algorithms: by study, hyperparameter point, workload, then
algorithm, so the timing runs of different algorithms alternate and a slow spell of the
machine falls on all of them rather than on one algorithm's block of trials (the per-step
cost, ``steplab.analysis.scoring.step_costs``, is then compared under the same load). The
order never changes a trial's key, so benchmarks stored before resume unchanged."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from steplab import algorithms as algos_mod
from steplab.algorithms import space
from steplab.studies import tradeoff
from steplab.studies.bench.names import algorithm_for, parse_refined
from steplab.studies.bench.spec import BenchSpec
from steplab.studies.bench.suites import SuiteEntry
from steplab.training.jobs import Job

#: AlgoPerf's self-tuning ruleset allows 3x the external-tuning budget
SELF_TUNING_BUDGET_FACTOR = 3

#: a cell of an added study: (study index, algorithm name as stored and scored, workload key)
Cell = tuple[int, str, str]
#: quasi-random draws already made, by (search space, count, QMC seed)
_DRAWS: dict[str, list[dict[str, Any]]] = {}


def plan(spec: BenchSpec, study_id: int | None, added: Iterable[Cell] = ()) -> list[Job]:
    """The trials of ``spec``, in a fixed order. Study ``s`` draws its ``N`` points with QMC
    seed ``seed + s`` and runs trial ``i`` with training seed ``seed + 1000 s + i``.
    ``added`` are the cells of studies ``s >= spec.studies`` that ``--until-confident``
    added (``steplab.studies.bench.adaptive``): each gets exactly the trials study ``s``
    would have had in a spec with more studies."""
    entries = spec.entries()
    for entry in entries:
        entry.build()  # unknown workloads fail before anything runs
    jobs = study_jobs(spec, study_id, range(spec.studies), spec.algorithms, entries)
    jobs.extend(added_jobs(spec, study_id, added))
    if spec.tradeoff == "cyclic":
        jobs.extend(tradeoff_jobs(spec, study_id))
    return jobs


def added_jobs(spec: BenchSpec, study_id: int | None, added: Iterable[Cell]) -> list[Job]:
    """The trials of the added cells, by study, then algorithm in the spec's order."""
    by_study: dict[int, set[tuple[str, str]]] = {}
    for s, name, wk in added:
        by_study.setdefault(int(s), set()).add((name, wk))
    if not by_study:
        return []
    entries = spec.entries()
    stored = {name: algorithm_for(name, spec.overrides).name for name in spec.algorithms}
    jobs: list[Job] = []
    for s in sorted(by_study):
        for name in spec.algorithms:
            chosen = tuple(e for e in entries if (stored[name], e.key) in by_study[s])
            if chosen:
                jobs.extend(study_jobs(spec, study_id, [s], [name], chosen))
    return jobs


def study_jobs(spec: BenchSpec, study_id: int | None, studies: Iterable[int], algorithms: Sequence[str],
               entries: Sequence[SuiteEntry]) -> list[Job]:
    """The trials of ``algorithms`` on ``entries`` in the studies ``studies``, ordered by
    study, hyperparameter point, workload, then algorithm (the interleaved order)."""
    algos = {name: algorithm_for(name, spec.overrides) for name in algorithms}
    built = [(entry, entry.build()) for entry in entries]
    budget_factor = 1 if spec.ruleset == "external" else SELF_TUNING_BUDGET_FACTOR
    jobs: list[Job] = []
    for s in studies:
        points = {name: _points(spec, algo, s) for name, algo in algos.items()}
        for i in range(max(len(p) for p in points.values())):
            for entry, wl in built:
                for name, algo in algos.items():
                    if i >= len(points[name]):
                        continue
                    refined = parse_refined(name)
                    jobs.append(Job(
                        workload=entry.workload,
                        variant=entry.variant,
                        budget_steps=wl.budget_steps * budget_factor,
                        target=dataclasses.asdict(wl.target),
                        algorithm=algo.with_hyperparameters(points[name][i]).to_dict(),
                        seed=spec.seed + 1000 * s + i,
                        study_id=study_id,
                        index=s * len(points[name]) + i,
                        refine=refined[1] if refined else None,
                    ))
    return jobs


def _points(spec: BenchSpec, algo: algos_mod.Algorithm, s: int) -> list[dict[str, Any]]:
    """Study ``s``'s hyperparameter points of ``algo``: ``N`` quasi-random draws (QMC seed
    ``seed + s``) laid over its defaults, or its defaults alone (self-tuning, or no space)."""
    defaults = algo.defaults()
    if spec.ruleset != "external":
        return [defaults]
    if not algo.search_space:
        return [defaults] * spec.trials
    key = json.dumps([algo.search_space, spec.trials, spec.seed + s], sort_keys=True, default=str)
    if key not in _DRAWS:  # the same draws every time (space.sample is deterministic): drawn once
        _DRAWS[key] = space.sample(algo.search_space, spec.trials, seed=spec.seed + s)
    return [{**defaults, **pt} for pt in copy.deepcopy(_DRAWS[key])]


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
