"""The benchmark: planning under each ruleset, specs, resuming a killed run, scoring."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from steplab import algorithms
from steplab.algorithms import space
from steplab.errors import SpecError, WorkloadError
from steplab.store import open_store
from steplab.studies import bench
from steplab.training.jobs import execute

TINY = (bench.SuiteEntry("logreg", budget_steps=60), bench.SuiteEntry("digits-mlp", budget_steps=40))


def test_external_plan_draws_inside_the_search_space():
    spec = bench.BenchSpec(algorithms=("adamw-cosine", "sgd-nesterov-cosine"), trials=3, studies=2, workloads=TINY)
    jobs = bench.plan(spec, study_id=7)
    assert len(jobs) == 2 * 3 * 2 * 2
    assert len({j.key() for j in jobs}) == len(jobs)
    for j in jobs:
        algo = algorithms.get_algorithm(j.algorithm["name"])
        drawn = {k: v for k, v in j.algorithm["hyperparameters"].items() if k in algo.search_space}
        assert space.contains(algo.search_space, drawn)
        assert j.study_id == 7
    # study s uses QMC seed seed+s: two studies draw different points, the same spec the same
    lrs = [j.algorithm["lr"] for j in jobs if j.workload == "logreg" and j.algorithm["name"] == "adamw-cosine"]
    assert len(set(lrs)) == 6
    again = bench.plan(spec, study_id=7)
    assert [j.key() for j in again] == [j.key() for j in jobs]


def test_self_tuning_uses_defaults_and_three_times_the_budget():
    spec = bench.BenchSpec(algorithms=("adamw-cosine",), ruleset="self", studies=2, workloads=TINY)
    jobs = bench.plan(spec, study_id=None)
    assert len(jobs) == 2 * 2
    assert {j.budget_steps for j in jobs if j.workload == "logreg"} == {180}
    default = algorithms.get_algorithm("adamw-cosine").resolved()
    assert all(j.algorithm["lr"] == default.lr for j in jobs)


def test_spec_errors_are_one_line(tmp_path):
    with pytest.raises(SpecError, match="ruleset"):
        bench.BenchSpec(ruleset="secret")
    with pytest.raises(SpecError, match="trials"):
        bench.BenchSpec(trials=0)
    with pytest.raises(WorkloadError, match="nope"):
        bench.parse_workload_list("digits-mlp,nope")
    bad = tmp_path / "b.toml"
    bad.write_text("suite = 'quick'\ntrails = 3\n")
    with pytest.raises(SpecError, match="trails"):
        bench.load_spec(bad)
    bad.write_text("suite = [\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        bench.load_spec(bad)


def test_example_specs_load():
    root = Path(__file__).parents[1] / "examples"
    quick = bench.load_spec(root / "bench-quick.toml")
    assert len(quick.algorithms) >= 6 and quick.studies >= 3
    custom = bench.load_spec(root / "bench-custom.toml")
    assert custom.algorithms[1].endswith("my-sgd.toml") and Path(custom.algorithms[1]).exists()
    assert bench.plan(custom, None)


def test_resume_skips_finished_and_reruns_interrupted(tmp_path):
    url = str(tmp_path / "r.db")
    spec = bench.BenchSpec(algorithms=("adamw-cosine",), trials=2, workloads=TINY[:1])
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        assert len(b.todo) == 2
        execute(b.todo[0], url)
        # a trial left "running" by a killed worker
        store.start_trial(b.todo[1].trial_spec())
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        assert len(b.todo) == 1 and len(b.done) == 1
        assert len(store.list_trials(study_id=b.study_id)) == 1  # the half-run trial is gone


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from steplab.studies import bench
    from steplab.training.executors import SerialExecutor
    from steplab.store import open_store, resolve_url
    url = resolve_url(sys.argv[1])
    spec = bench.BenchSpec(algorithms=("adamw-cosine", "sgd-nesterov-cosine"), trials=2, name="killme",
                           workloads=(bench.SuiteEntry("digits-mlp", budget_steps=1500,
                                                       target={"metric": "validation/accuracy", "value": 1.01, "mode": "max"}),))
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        for r in bench.run(b, SerialExecutor(), url):
            print("done", r.spec.key(), flush=True)
    print("finished", flush=True)
    """
)


@pytest.mark.slow
def test_benchmark_killed_midway_resumes_without_duplicates(tmp_path):
    db = tmp_path / "k.db"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    done_before = []
    for line in proc.stdout:  # kill after the second finished trial, mid-way through the third
        if line.startswith("done"):
            done_before.append(line.split()[1])
        if len(done_before) == 2:
            time.sleep(0.2)  # the third trial is running now (each takes > 1 s)
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    out = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rerun = [ln.split()[1] for ln in out.stdout.splitlines() if ln.startswith("done")]
    assert not set(rerun) & set(done_before), "finished trials were run again"
    assert len(rerun) == 2
    with open_store(str(db)) as store:
        study = store.find_study("killme")
        trials = store.list_trials(study_id=study["id"])
        keys = [t.spec.key() for t in trials]
        assert len(trials) == 4 and len(set(keys)) == 4
        assert all(t.status != "running" for t in trials)
        for t in trials:  # one trace per trial, no rows from the killed attempt
            steps = store.steps(t.id)["step"]
            assert list(steps) == list(range(len(steps))) and len(steps) == t.steps


def test_score_reads_studies_and_the_median(tmp_path):
    url = str(tmp_path / "s.db")
    spec = bench.BenchSpec(algorithms=("adamw-cosine",), trials=1, studies=3,
                           workloads=(bench.SuiteEntry("digits-mlp", budget_steps=400,
                                                       target={"metric": "validation/accuracy", "value": 0.9, "mode": "max"}),))
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        results = [execute(j, url) for j in b.todo]
        sc = bench.score(store, b.study_id)
    steps = sorted(r.steps_to_target for r in results)
    assert sc.steps["adamw-cosine"]["digits-mlp"] == steps[1]  # median of the 3 studies
    assert sc.score_steps["adamw-cosine"] == pytest.approx(1.0)
