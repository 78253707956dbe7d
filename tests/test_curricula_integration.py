"""Curricula as part of an algorithm (issue 25): the ``curriculum`` table of an Algorithm,
``curriculum.<option>`` keys, the training loop driving a sampler, and the CLI flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab import algorithms, curricula, workloads
from steplab.algorithms import curriculum as table
from steplab.algorithms.labels import run_label
from steplab.cli import app
from steplab.errors import SpecError, WorkloadError
from steplab.training import curriculum as feeding
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial, train_step

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
runner = CliRunner()


def adamw(**changes: object) -> algorithms.Algorithm:
    import dataclasses

    return dataclasses.replace(algorithms.get_algorithm("adamw-cosine"), **changes)


# -- the algorithm's table --------------------------------------------------------------
def test_uniform_is_left_out_of_every_stored_dict():
    algo = algorithms.get_algorithm("adamw-cosine")
    assert algo.curriculum == {"name": "uniform"}
    assert "curriculum" not in algo.to_dict() and "curriculum" not in algo.resolved().to_dict()
    assert "[curriculum]" not in algo.to_toml()


def test_table_round_trips_through_dict_toml_and_set():
    algo = adamw(curriculum="easy-to-hard:pacing=root,start=0.3,score=reference")
    assert algo.curriculum == {"name": "easy-to-hard", "pacing": "root", "start": 0.3, "score": "reference"}
    assert algorithms.Algorithm.from_dict(algo.to_dict()) == algo
    assert algorithms.from_toml(algo.to_toml()) == algo
    assert algorithms.ResolvedAlgorithm.from_dict(algo.resolved().to_dict()) == algo.resolved()
    text = 'name = "mine"\noptimizer = "adamw"\n\n[curriculum]\nname = "self-paced"\nq0 = 0.4\n'
    assert algorithms.from_toml(text).curriculum == {"name": "self-paced", "q0": 0.4}
    assert algorithms.from_toml('name = "m"\noptimizer = "adamw"\ncurriculum = "cyclical"\n').curriculum == {"name": "cyclical"}
    over = algorithms.apply_overrides(algo, ["curriculum.start=0.1"])
    assert over.curriculum["start"] == 0.1 and over.curriculum["pacing"] == "root"
    fresh = algorithms.apply_overrides(algorithms.get_algorithm("adamw-cosine"), ["curriculum.name=skill-it", "curriculum.eta=0.2"])
    assert fresh.curriculum == {"name": "skill-it", "eta": 0.2}
    # options equal to the curriculum's defaults are not stored (one form per setting)
    assert adamw(curriculum={"name": "easy-to-hard", "start": 0.2}).curriculum == {"name": "easy-to-hard"}


def test_hyperparameter_keys_reach_the_table_and_the_search_space():
    algo = adamw(curriculum="easy-to-hard", search_space={"lr": {"log_uniform": [1e-3, 1e-1]},
                                                         "curriculum.start": {"uniform": [0.05, 0.5]}})
    point = algo.with_hyperparameters({"curriculum.start": 0.4, "lr": 0.01})
    assert point.curriculum == {"name": "easy-to-hard", "start": 0.4} and point.lr == 0.01
    assert algo.defaults()["curriculum.start"] == 0.2  # the sampler's default: the tuning centre
    assert algorithms.parse_key("curriculum.start") == algorithms.Key("table", "start", "curriculum")


@pytest.mark.parametrize("bad,words", [
    ("no-such-curriculum", "no-such-curriculum"),
    ("easy-to-hard:pace=root", "pace"),
    ("easy-to-hard:score=oracle", "score"),
    ("easy-to-hard:start", "key=value"),
])
def test_bad_tables_fail_in_one_line(bad: str, words: str):
    with pytest.raises(SpecError) as err:
        adamw(curriculum=bad)
    assert "\n" not in str(err.value) and words in str(err.value)


def test_label_shows_a_curriculum_that_is_not_uniform():
    from steplab.results import trial_spec

    wl = workloads.get("teacher-student-noise")
    plain = trial_spec(wl, algorithms.get_algorithm("adamw-cosine").resolved(), 0)
    assert "curriculum" not in run_label(plain)
    spec = trial_spec(wl, adamw(curriculum="easy-to-hard:pacing=root").resolved(), 0)
    assert "curriculum=easy-to-hard:pacing=root" in run_label(spec)
    assert table.key({"name": "easy-to-hard", "score": "reference"}) == "easy-to-hard:score=reference"


# -- the loop ----------------------------------------------------------------------------
def test_a_workload_without_tasks_refuses_a_curriculum_and_names_those_with_tasks():
    with pytest.raises(WorkloadError) as err:
        run_trial(workloads.get("logreg", budget_steps=5), adamw(curriculum="easy-to-hard").resolved(), 0)
    msg = str(err.value)
    assert "\n" not in msg and "logreg" in msg and "teacher-student-noise" in msg and "mnist1d-tasks" in msg


def test_uniform_leaves_an_existing_workload_untouched():
    wl = workloads.get("logreg", budget_steps=30)
    algo = algorithms.get_algorithm("adamw-cosine").resolved()
    data = feeding.feed(wl, algo, 0, CPU, wl.init_model(0), train_step)
    assert data.task is wl and data.sampler is None and data.metrics() == {}
    a = next(data.batches)
    b = next(wl.batches(0, CPU))
    torch.testing.assert_close(a, b)


class Recording:
    """A throwaway sampler: uniform draws, and a log of what the loop told it."""

    def __init__(self, pool: curricula.TaskPool, budget_steps: int, batch_size: int, seed: int, eval_every: int) -> None:
        self.rng, self.n, self.b = np.random.default_rng(seed), pool.size, batch_size
        self.eval_every, self.drawn, self.seen, self.evals = eval_every, [], [], []

    def sample(self, step: int) -> np.ndarray:
        idx = self.rng.integers(0, self.n, self.b)
        self.drawn.append((step, idx))
        return idx

    def observe(self, step: int, indices: np.ndarray, losses: np.ndarray) -> None:
        self.seen.append((step, indices.copy(), losses.copy()))

    def observe_eval(self, step: int, task_losses: np.ndarray) -> None:
        self.evals.append((step, task_losses.copy()))

    def state(self) -> dict:
        return {"draws": len(self.drawn), "name": "recording"}


def test_the_loop_feeds_the_samplers_batches_and_returns_the_forward_pass_losses(monkeypatch):
    wl = workloads.get("teacher-student-noise", budget_steps=12)
    made: list[Recording] = []

    def fake_build(spec, pool, budget_steps, batch_size, seed):  # noqa: ANN001
        made.append(Recording(pool, budget_steps, batch_size, seed, eval_every=5))
        return made[-1]

    monkeypatch.setattr(curricula, "build", fake_build)
    algo = adamw(curriculum="self-paced", lr=1e-2).resolved()
    result = run_trial(wl, algo, 3, config=TrainConfig(stop_at_target=False))
    rec = made[0]
    assert result.steps == 12 and [s for s, _ in rec.drawn] == list(range(12))  # one batch per update, no more
    # observe(t) for every update before the last, in order, with that update's own batch
    assert [s for s, _, _ in rec.seen] == list(range(11))
    for (step, idx), (seen_step, seen_idx, losses) in zip(rec.drawn, rec.seen):
        assert step == seen_step and np.array_equal(idx, seen_idx) and losses.shape == (wl.batch_size,)
    # the losses of update 0 are the initial model's on that batch (before the update)
    model = wl.init_model(3)
    with torch.no_grad():
        first = wl.example_losses(model, wl.examples(rec.drawn[0][1], CPU)).numpy()
    np.testing.assert_allclose(rec.seen[0][2], first, rtol=1e-5)
    # per-task probe losses every eval_every steps, one value per task
    assert [s for s, _ in rec.evals] == [5, 10]
    assert all(v.shape == (4,) and np.all(v > 0) for _, v in rec.evals)
    assert result.final_metrics["curriculum/draws"] == 12.0 and "curriculum/name" not in result.final_metrics


def test_the_uniform_sampler_trains_the_same_trajectory_as_the_plain_loop():
    wl = workloads.get("teacher-student-noise", budget_steps=20)
    algo = adamw(lr=1e-2).resolved()
    plain = run_trial(wl, algo, 1, config=TrainConfig(stop_at_target=False))
    sampler = curricula.build(curricula.spec_from("uniform"), wl.task_pool(CPU), 20, wl.batch_size, 1)
    task = feeding.CurriculumTask(wl)
    stream = feeding._batches(wl, sampler, task, wl.init_model(1), CPU, 0)
    mine = wl.batches(1, CPU)
    for _ in range(5):
        torch.testing.assert_close(next(stream), next(mine))
    again = run_trial(wl, algo, 1, config=TrainConfig(stop_at_target=False))
    assert plain.final_metrics["validation/loss"] == again.final_metrics["validation/loss"]


@pytest.mark.parametrize("name", curricula.curriculum_names())
def test_every_curriculum_runs_its_whole_budget(name: str):
    wl = workloads.get("teacher-student-noise", budget_steps=24)
    res = run_trial(wl, adamw(curriculum=name, lr=1e-2).resolved(), 0, config=TrainConfig(stop_at_target=False))
    assert res.status == "budget" and res.steps == 24, res.message
    assert np.isfinite(res.final_metrics["validation/loss"])
    if name != "uniform":
        assert res.spec.algorithm_spec["curriculum"]["name"] == name


def test_reference_scores_rank_noisy_labels_as_hard_and_are_cached():
    from scipy.stats import spearmanr

    wl = workloads.get("teacher-student-noise", budget_steps=200)
    scores = feeding.reference_difficulty(wl, 0, CPU, train_step)
    assert scores.shape == (len(wl.task_data(CPU).y),) and np.all(np.isfinite(scores))
    assert feeding.reference_difficulty(wl, 0, CPU, train_step) is scores
    rho = spearmanr(scores, wl.task_data(CPU).difficulty).statistic
    # a noisier label is further from a smooth fit: positive rank correlation, > 4 standard
    # errors (1 / sqrt(N - 1) = 0.022) above the 0 of an unrelated score, after 20 reference steps
    assert rho > 0.1
    res = run_trial(wl, adamw(curriculum="easy-to-hard:score=reference", lr=1e-2).resolved(), 0,
                    config=TrainConfig(stop_at_target=False))
    assert res.status == "budget"


# -- the command line --------------------------------------------------------------------
def test_run_flag_trains_with_a_curriculum_and_refuses_a_workload_without_tasks(tmp_path):
    db = str(tmp_path / "s.db")
    ok = runner.invoke(app, ["run", "teacher-student-noise", "--curriculum", "easy-to-hard:pacing=root",
                             "--steps", "20", "--db", db])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["run", "logreg", "--curriculum", "easy-to-hard", "--steps", "5", "--db", db])
    assert bad.exit_code != 0 and "no task structure" in bad.output


def test_tune_searches_curriculum_options_by_their_tunable_range():
    from steplab.studies.tuning.spec import TuneSpec, setup

    spec = TuneSpec(workload="teacher-student-noise", algorithm="adamw-cosine", strategy="qmc", budget_steps=1200,
                    params=("lr", "curriculum.start"), overrides=("curriculum=easy-to-hard",))
    su = setup(spec)
    assert set(su.space) == {"lr", "curriculum.start"}
    lo_hi = curricula.CURRICULA["easy-to-hard"].tunable["start"]["uniform"]
    assert (su.space["curriculum.start"].low, su.space["curriculum.start"].high) == tuple(lo_hi)
    assert su.resolve({"lr": 0.01, "curriculum.start": 0.3}).curriculum == {"name": "easy-to-hard", "start": 0.3}


def test_bench_flag_sets_every_algorithms_curriculum():
    from steplab.cli.bench import _bench_spec

    spec = _bench_spec(None, {"algorithms": "adamw-cosine"}, ["curriculum=cyclical"])
    assert "curriculum=cyclical" in spec.overrides


def test_loops_that_do_not_drive_samplers_refuse_a_curriculum():
    feeding.require_uniform(algorithms.get_algorithm("adamw-cosine").resolved(), "autolrs")  # uniform: fine
    with pytest.raises(SpecError, match="autolrs trains with uniform batches only"):
        feeding.require_uniform(adamw(curriculum="cyclical").resolved(), "autolrs")
