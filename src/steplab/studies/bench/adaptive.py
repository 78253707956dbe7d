"""``until_confident``: add studies to the cells that decide the top of the ranking until the
best algorithm is separated from the second at the spec's level, or ``max_studies`` is
reached, and say which happened.

The rule (``steplab.analysis.sequential``; every look is stored, ``looks.Look``):

1. **Planned looks, alpha spent.** A spec with ``studies = S``, ``max_studies = C`` and
   ``until_confident = L`` looks ``K = C - S + 1`` times, after ``S``, ``S + 1``, ..., ``C``
   studies, each at level ``1 - (1 - L) / K`` (Bonferroni: the chance that any look
   separates two identical algorithms stays below ``1 - L``). Adding studies until a
   plain 90% test passes would call a winner far more often than 10% of the time.
2. **What separates.** A look separates when both (a) the benchmark's verdict at the
   look's level (``analysis.verdicts``: paired bootstrap, Holm over all pairs) separates the
   top algorithm from the second, as the report will show it, and (b) a stratified
   permutation test of the two (``sequential.permutation_p``) rejects at that level: exact
   at every study count, it keeps the rule valid where percentile intervals from 3-5
   studies are too narrow.
3. **Where the next study goes.** Otherwise (and below the cap) one more study is added to
   the two algorithms the look compared, the top and the second, on the workloads where
   their time intervals overlap (all scored workloads when none does: the tie then lies in
   the aggregate). Each added cell gets exactly the trials its study would have had in a
   bigger spec (``planning.plan``), so a look adds at most ``2 x workloads x trials``
   trials, which bounds the cost of the cap.

Everything a look decides from is the stored trials of the studies planned before it, so
a killed run, or a second worker on the same store, reaches the same looks; the first
worker to decide a look stores it and the others read it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from steplab.analysis import scoring
from steplab.analysis.intervals import Interval
from steplab.analysis.sequential import LookPlan, permutation_p
from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.studies.bench.costs import costed_trials
from steplab.studies.bench.looks import Look, added_cells, note_name, stored_looks
from steplab.studies.bench.planning import Cell, added_jobs
from steplab.studies.bench.runner import Benchmark, run
from steplab.studies.bench.scores import SECOND_PASS, Scores, score_trials, scored_trials

#: random shuffles of the permutation test at each look
PERMUTATIONS = 5000


def look_plan(bench: Benchmark) -> LookPlan:
    """The planned looks of a benchmark whose spec sets ``until_confident``."""
    spec = bench.spec
    if spec.until_confident is None or spec.max_studies is None:
        raise SpecError("this benchmark adds no studies: set until_confident and max_studies in its spec")
    return LookPlan(spec.until_confident, spec.studies, spec.max_studies)


def cell_of(trial: TrialResult) -> tuple[int, str, str]:
    """``(study index, algorithm, workload key)`` of a scored trial (``scores.scored_trials``
    sets ``spec.study_id`` to the study index; a refined algorithm's second-pass view
    belongs to the refined algorithm's cell)."""
    name = trial.spec.algorithm.removesuffix(SECOND_PASS)
    return int(trial.spec.study_id or 0), name, scoring.workload_key(trial.spec)


def look_trials(store: Store, bench: Benchmark, added: Sequence[Cell]) -> list[TrialResult]:
    """The scored trials of the studies planned before a look: the spec's own studies and
    the cells ``added`` so far (trials of later looks, which another worker may already be
    running, are left out, so every worker decides a look from the same trials)."""
    cells = set(added)
    return [t for t in scored_trials(store, bench.study_id)
            if cell_of(t)[0] < bench.spec.studies or cell_of(t) in cells]


def _overlap(a: Interval, b: Interval) -> bool:
    if any(math.isnan(x) for x in (a.low, a.high, b.low, b.high)):
        return True
    return not (a.high < b.low or b.high < a.low)


def judge(trials: Sequence[TrialResult], lp: LookPlan, look: int) -> Look:
    """Decide look ``look`` of plan ``lp`` from ``trials``, which carry their cells' step
    costs (``costs.costed_trials``), by the module docstring's rule."""
    level = lp.look_level
    studies = lp.studies_at(look)
    sc = score_trials(trials, level=level)
    verdict, boot = sc.verdict, sc.bootstrap
    assert verdict is not None and boot is not None  # score_trials always sets both
    order = verdict.order
    if len(order) < 2:
        return Look(look, studies, level, order[0], None, 0.0, True, "separated")
    top, runner = order[0], order[1]
    p = _permutation_p(sc, top, runner, seed=look)
    separated = verdict.top_separated and p <= 1.0 - level
    decision = lp.decide(look, separated)
    added: tuple[Cell, ...] = ()
    if decision == "continue":
        added = tuple(next_cells(sc, top, runner, study=studies))
    return Look(look, studies, level, top, runner, p, separated, decision, added)


def _permutation_p(sc: Scores, top: str, runner: str, *, seed: int) -> float:
    """The permutation test of ``top`` against ``runner`` on the scored workloads, the
    other algorithms' fastest times held fixed (1 when no workload is scored)."""
    boot = sc.bootstrap
    assert boot is not None
    if not boot.scored:
        return 1.0
    cols = [boot.workloads.index(w) for w in boot.scored]
    others = [i for i, a in enumerate(boot.algorithms) if a not in (top, runner)]
    best = boot.point_times[np.ix_(others, cols)].min(axis=0) if others else None
    p = permutation_p([boot.point_study_times[(top, w)] for w in boot.scored],
                      [boot.point_study_times[(runner, w)] for w in boot.scored],
                      others_best=best, r_max=boot.r_max, n_permutations=PERMUTATIONS, rng=seed)
    return float(p)


def next_cells(sc: Scores, top: str, runner: str, *, study: int) -> list[Cell]:
    """The cells of study ``study`` to add: ``top`` and ``runner`` on the workloads where
    their time intervals overlap (all scored workloads when none does, all workloads when
    none is scored)."""
    boot = sc.bootstrap
    assert boot is not None
    scored = list(boot.scored) or list(boot.workloads)
    workloads = [w for w in scored if _overlap(sc.time_ci[top][w], sc.time_ci[runner][w])]
    cells = {(study, a.removesuffix(SECOND_PASS), w) for a in (top, runner) for w in (workloads or scored)}
    return sorted(cells)


def run_until_confident(bench: Benchmark, executor: Any, db_url: str, *, store: Store, poll_s: float = 2.0,
                        on_wait: Callable[[int], None] | None = None,
                        on_look: Callable[[Look, int], None] | None = None) -> Iterator[TrialResult]:
    """Run the benchmark (``runner.run``), then look, add a study where the rule says and
    run it, until a look separates the top or the cap is reached; yields every result as
    ``run`` does. ``on_look(look, new_jobs)`` is called after each look with how many jobs it
    added. A look already stored (a resumed or joined run) is read, not decided again.

    ``store`` is the caller's open store of ``db_url`` (the one ``open_benchmark`` used): the
    looks read and write through it rather than opening the database a second time in this
    process, which on SQLite would release this process's file locks while its first
    connection is open (https://www.sqlite.org/howtocorrupt.html, §2.2) and let a worker
    process delete the write-ahead log under it."""
    lp = look_plan(bench)
    yield from run(bench, executor, db_url, poll_s=poll_s, on_wait=on_wait)
    for k in range(1, lp.looks + 1):
        looks = stored_looks(store, bench.study_id)
        if len(looks) >= k:
            look = looks[k - 1]
        else:
            trials = costed_trials(store, look_trials(store, bench, added_cells(looks)))
            decided = judge(trials, lp, k)
            look = Look.from_dict(store.add_study_note(bench.study_id, note_name(k), decided.to_dict()))
        new = added_jobs(bench.spec, bench.study_id, look.added if look.decision == "continue" else ())
        known = {bench.key_of(j) for j in bench.jobs}
        new = [j for j in new if bench.key_of(j) not in known]  # a resumed run planned them already
        bench.jobs.extend(new)
        bench.done.update(store.finished_by_key(bench.study_id))
        if on_look is not None:
            on_look(look, len(new))
        if look.decision != "continue":
            return
        yield from run(bench, executor, db_url, poll_s=poll_s, on_wait=on_wait)
