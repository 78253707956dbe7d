"""``until_confident``: the looks plan, the optional-stopping guard, a planted difference
through the benchmark (separated, stops early), no difference (tied at the cap), resuming."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest

from steplab.analysis.sequential import LookPlan, permutation_p
from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.store import open_store
from steplab.studies import bench
from steplab.studies.bench import adaptive
from steplab.training.jobs import Job

FAST, SLOW = "adamw-cosine", "sgd-nesterov-cosine"
TINY = (bench.SuiteEntry("logreg", budget_steps=60), bench.SuiteEntry("digits-mlp", budget_steps=40),
        bench.SuiteEntry("teacher-student", budget_steps=40))


# ------------------------------------------------------------------ the rule, simulated
def test_look_plan_spends_alpha_over_the_planned_looks():
    lp = LookPlan(level=0.9, first=3, cap=7)
    assert lp.looks == 5 and lp.look_level == pytest.approx(0.98)
    assert [lp.studies_at(k) for k in range(1, 6)] == [3, 4, 5, 6, 7]
    assert [lp.decide(k, False) for k in (1, 4, 5)] == ["continue", "continue", "cap"]
    assert lp.decide(2, True) == "separated"
    with pytest.raises(ValueError):
        lp.studies_at(6)


def test_permutation_p_is_exact_on_a_hand_counted_case():
    # one workload, 2 studies each: the 4 times split into 2+2 in 6 ways; the observed split
    # {1, 2} | {3, 4} and its mirror are the only ones with |score difference| as large: p = 2/6
    a, b = [np.array([1.0, 2.0])], [np.array([3.0, 4.0])]
    p = permutation_p(a, b, n_permutations=20000, rng=1)
    assert p == pytest.approx(2 / 6, abs=0.01)
    assert permutation_p(a, a, n_permutations=100) == 1.0  # identical data: nothing is more extreme
    # a miss (inf) on both sides of one workload carries no evidence
    assert permutation_p([np.array([math.inf, math.inf])], [np.array([math.inf, math.inf])], n_permutations=50) == 1.0


def test_optional_stopping_guard_identical_methods():
    """Two identical algorithms, 2 workloads, studies added one at a time from 3 to 7 and a
    look after each: the Bonferroni-spent rule calls a winner in <= 6% of 2000 simulated
    benchmarks at level 0.95, while looking at the plain level after each study does not
    (the statistics sheet's guard, §7.5). One set of draws feeds both rules."""
    rng = np.random.default_rng(2024)
    sims, first, cap, level = 2000, 3, 7, 0.95
    lp = LookPlan(level, first, cap)
    # study time = fastest of 2 trials, log-normal spread 0.3, 15% misses, workload scales 1 and 2
    t = np.exp(0.3 * rng.standard_normal((2, 2, sims, cap, 2))).min(axis=-1) * np.array([1.0, 2.0])[None, :, None, None]
    t = np.where(rng.random(t.shape) < 0.15, math.inf, t)
    p = np.stack([permutation_p([t[0, w, :, :n] for w in range(2)], [t[1, w, :, :n] for w in range(2)],
                                n_permutations=100, rng=rng) for n in range(first, cap + 1)])
    spent = (p <= 1 - lp.look_level).any(axis=0).mean()
    naive = (p <= 1 - level).any(axis=0).mean()
    assert spent <= 0.06
    assert naive > 0.09  # optional stopping without spending inflates the error (here ~2.5x)


# ------------------------------------------------------------------ through the benchmark
class Fabricator:
    """An executor that trains nothing: each job's trial is stored as reached after
    ``draw(job, rng)`` = (steps to target, seconds per step), with a generator seeded by the
    job's key, so the same job always gives the same trial."""

    workers = 1

    def __init__(self, draw: Callable[[Job, np.random.Generator], tuple[int, float]]) -> None:
        self.draw = draw
        self.ran = 0

    def __enter__(self) -> Fabricator:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, jobs: Sequence[Job], db_url: str) -> Iterator[TrialResult]:
        with open_store(db_url) as store:
            for job in jobs:
                spec = job.trial_spec()
                key = spec.key()
                steps, per_step = self.draw(job, np.random.default_rng(int(key[:12], 16)))
                result = TrialResult(spec, "reached", steps, steps * per_step, 0.0, steps * per_step, float(steps))
                tid = store.start_trial(spec, key=key)
                store.finish_trial(tid, result)
                self.ran += 1
                yield dataclasses.replace(result, id=tid)


def planted(speedup: float) -> Callable[[Job, np.random.Generator], tuple[int, float]]:
    """FAST needs ``1/speedup`` of SLOW's steps (log-normal noise 0.15 on both); 10 ms a step."""
    def draw(job: Job, rng: np.random.Generator) -> tuple[int, float]:
        base = 200.0 / (speedup if job.algorithm["name"] == FAST else 1.0)
        return max(1, round(base * math.exp(0.15 * rng.standard_normal()))), 0.01 * (1 + 0.1 * rng.random())
    return draw


def _spec(name: str, workloads: tuple[bench.SuiteEntry, ...] = TINY, **kw: object) -> bench.BenchSpec:
    return bench.BenchSpec(algorithms=(FAST, SLOW), trials=2, studies=3, workloads=workloads, name=name, **kw)


def _run(url: str, spec: bench.BenchSpec, executor: Fabricator, stop_after: int | None = None) -> list[bench.Look]:
    looks: list[bench.Look] = []
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        results = bench.run_until_confident(b, executor, url, store=store, poll_s=0.01,
                                            on_look=lambda lk, n: looks.append(lk))
        for i, _ in enumerate(results):
            if stop_after is not None and i + 1 >= stop_after:
                break  # a killed run: the generator is dropped mid-way
    return looks


def test_a_planted_2x_difference_is_separated_and_stops_at_the_first_look(tmp_path, monkeypatch):
    from steplab.studies.bench import scores

    monkeypatch.setattr(scores, "TIME_MEASURE", "cost_s")  # the looks rank by the robust time axis
    url = str(tmp_path / "p.db")
    fab = Fabricator(planted(2.0))
    looks = _run(url, _spec("planted", until_confident=0.9, max_studies=6), fab)
    assert [lk.decision for lk in looks] == ["separated"]
    assert looks[0].studies == 3 and looks[0].top == FAST and looks[0].runner_up == SLOW
    assert looks[0].level == pytest.approx(1 - 0.1 / 4) and looks[0].p_value <= 0.025
    assert fab.ran == 2 * 3 * 2 * 3  # no study added
    assert "separated at 0.9 after 3 studies" in looks[0].summary(0.9)
    with open_store(url) as store:  # the report at the look's level agrees
        trials = bench.scored_trials(store, store.find_study("planted")["id"])
        sc = scores.score_trials(bench.costed_trials(store, trials), level=looks[0].level)
    assert sc.verdict.order[0] == FAST and sc.verdict.top_separated


def test_no_difference_is_tied_at_the_cap_every_look_is_stored_and_a_killed_run_resumes(tmp_path):
    url = str(tmp_path / "t.db")
    spec = _spec("same", TINY[:2], until_confident=0.9, max_studies=5)
    fab = Fabricator(planted(1.0))
    looks = _run(url, spec, fab)
    assert [lk.decision for lk in looks] == ["continue", "continue", "cap"]
    assert [lk.studies for lk in looks] == [3, 4, 5]
    assert "cap 5 studies reached: still tied" in looks[-1].summary(0.9)
    # each added study went to the contenders (both algorithms here) on the listed workloads
    for lk in looks[:-1]:
        assert lk.added and {s for s, _, _ in lk.added} == {lk.studies}
        assert {a for _, a, _ in lk.added} == {FAST, SLOW}
    n_added = sum(len(lk.added) for lk in looks) * 2  # 2 trials per added cell
    assert fab.ran == 2 * 2 * 2 * 3 + n_added
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        notes = store.study_notes(b.study_id)
        assert sorted(notes) == ["look-1", "look-2", "look-3"]
        assert [bench.Look.from_dict(notes[f"look-{k}"]) for k in (1, 2, 3)] == looks
        assert store.add_study_note(b.study_id, "look-1", {"late": True}) == notes["look-1"]  # the first writer wins
        assert not b.todo and len(b.jobs) == fab.ran  # the stored looks' studies are planned on reopening

    killed = str(tmp_path / "k.db")
    first = Fabricator(planted(1.0))
    _run(killed, spec, first, stop_after=24 + 3)  # killed inside the first added study
    second = Fabricator(planted(1.0))
    assert _run(killed, spec, second) == looks  # look 1 read back from the store, the later ones decided alike
    assert first.ran + second.ran == fab.ran  # nothing ran twice
    joined = Fabricator(planted(1.0))  # a worker joining a finished benchmark runs nothing
    assert _run(killed, spec, joined) == looks and joined.ran == 0


def test_adaptive_spec_errors_are_one_line(tmp_path):
    with pytest.raises(SpecError, match="max_studies"):
        _spec("x", until_confident=0.9)
    with pytest.raises(SpecError, match="until_confident"):
        _spec("x", max_studies=5)
    with pytest.raises(SpecError, match="above 'studies'"):
        _spec("x", until_confident=0.9, max_studies=3)
    with pytest.raises(SpecError, match=r"\[0.5, 1\)"):
        _spec("x", until_confident=1.5, max_studies=5)
    toml = tmp_path / "a.toml"
    toml.write_text('algorithms = ["adamw-cosine"]\nstudies = 2\nuntil_confident = 0.9\nmax_studies = 4\n')
    spec = bench.load_spec(toml)
    assert (spec.until_confident, spec.max_studies) == (0.9, 4)
    assert spec.to_dict()["max_studies"] == 4 and "until_confident" not in bench.BenchSpec().to_dict()
    assert adaptive.look_plan(bench.Benchmark(spec, 1, [], {})).looks == 3
