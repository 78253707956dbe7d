"""The benchmark suites (steplab.studies.bench.suites): what `quick` and `standard` hold and the
invariants their scores and their rank agreement rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from steplab import workloads
from steplab.studies import bench

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: the two workloads written for these suites, each at a short (quick) and a long (standard) budget
PAIRED = ("mnist1d", "shakespeare-char")


def _suite(name: str) -> dict[str, bench.SuiteEntry]:
    return {e.key: e for e in bench.get_suite(name).entries}


def test_the_suites_by_name():
    assert {"quick", "standard", "full"} <= set(bench.SUITES)
    for name in ("quick", "standard", "full"):
        assert bench.get_suite(name).name == name
        keys = [e.key for e in bench.get_suite(name).entries]
        assert len(keys) == len(set(keys)), f"{name} lists a workload twice: {keys}"


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_every_entry_counts_in_the_score(name):
    # bench.score ranks on the base workloads whenever the suite has any, so a variant entry
    # would run without counting: quick and standard hold base variants only
    assert all(e.variant == "base" for e in bench.get_suite(name).entries)


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_targets_keep_the_workload_metric(name):
    # the report reads the target's metric to order the misses; a suite changes only the value
    for e in bench.get_suite(name).entries:
        own, wl = workloads.get(e.workload, e.variant).target, e.build()
        assert (wl.target.metric, wl.target.mode) == (own.metric, own.mode), e.key


def test_quick_drops_modarith_and_pairs_the_new_workloads_with_standard():
    quick, standard = _suite("quick"), _suite("standard")
    assert "modarith" not in quick  # no baseline reached its target at 600 steps (make demo, 36 trials)
    for key in PAIRED:
        assert key in quick and key in standard
        short, long = quick[key].build(), standard[key].build()
        assert short.budget_steps < long.budget_steps
        # a lower bar for the shorter budget (loss: higher value; accuracy: lower)
        sign = 1.0 if short.target.mode == "max" else -1.0
        assert sign * short.target.value < sign * long.target.value


def test_quick_targets_are_no_harder_than_the_standard_ones():
    quick, standard = _suite("quick"), _suite("standard")
    for key in set(quick) & set(standard):
        q, s = quick[key].build(), standard[key].build()
        if q.budget_steps <= s.budget_steps:
            sign = 1.0 if q.target.mode == "max" else -1.0
            assert sign * q.target.value <= sign * s.target.value, key


def test_the_standard_spec():
    spec = bench.load_spec(EXAMPLES / "bench-standard.toml")
    quick = bench.load_spec(EXAMPLES / "bench-quick.toml")
    assert spec.suite == "standard" and spec.ruleset == "external"
    assert set(spec.algorithms) == set(quick.algorithms) and len(spec.algorithms) == 6
    assert spec.trials >= quick.trials and spec.studies >= 3
    # other QMC draws and training seeds than the quick benchmark (seeds seed + s and
    # seed + 1000 s + i): the two rankings share no draw, so their agreement is not inflated
    q_seeds = {quick.seed + s for s in range(quick.studies)}
    assert q_seeds.isdisjoint({spec.seed + s for s in range(spec.studies)})
