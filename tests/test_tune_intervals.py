"""``steplab tune --seeds K``: the best point on fresh seeds with a Student-t interval, and
the interval helpers over seeds (``analysis.seeds``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from steplab.analysis.seeds import difference_interval, seed_interval
from steplab.store import open_store
from steplab.studies import tuning


def test_seed_interval_by_hand():
    # mean 4, sd sqrt(((-2)^2 + 0 + 2^2)/2) = 2, t(0.95, 2) = 2.919986: 4 +- 2.919986 x 2 / sqrt(3)
    iv = seed_interval([2.0, 4.0, 6.0], 0.9)
    assert iv.point == 4.0 and iv.high - 4.0 == pytest.approx(2.919986 * 2 / math.sqrt(3), rel=1e-6)
    assert iv.low == pytest.approx(8.0 - iv.high)
    assert seed_interval([5.0, 5.0], 0.9).low == seed_interval([5.0, 5.0], 0.9).high == 5.0
    assert math.isnan(seed_interval([1.0], 0.9).low) and math.isnan(seed_interval([1.0, math.nan], 0.9).point)
    # Welch: a 0.5 shift with sd 1 on 3 seeds each is a tie; 9 apart is not
    assert difference_interval([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], 0.9).contains(0.0)
    assert difference_interval([10.0, 11.0, 12.0], [1.0, 2.0, 3.0], 0.9).low > 0


def _spec(**kw: object) -> tuning.TuneSpec:
    return tuning.TuneSpec("logreg", "adamw-cosine", "tpe", budget_steps=100, trial_steps=50, params=("lr",),
                           evals=5, **kw)


def test_tune_seeds_retrain_the_best_point_and_give_an_interval(tmp_path: Path):
    assert _spec(seeds=3).study_name() == _spec().study_name()  # the same search, with or without seeds
    with open_store(tmp_path / "t.db") as store:
        res = tuning.run_tune(_spec(seeds=3), store)
        check = res.seed_check
        assert check is not None and check.seeds == (1, 2, 3)
        lr = res.best.spec.hyperparameters["lr"]
        assert all(t.spec.hyperparameters["lr"] == lr and t.steps == 50 for t in check.trials)
        assert check.values == tuple(tuning.final_value(t, "validation/loss") for t in check.trials)
        assert check.interval == seed_interval(check.values, 0.9) and check.interval.low < check.interval.high
        assert res.steps_used == 100  # the seed runs are outside the search's budget
        again = tuning.run_tune(_spec(seeds=3), store)  # resumed: nothing runs again
        assert [t.id for t in again.seed_check.trials] == [t.id for t in check.trials]
        assert tuning.load_result(store, _spec().study_name()).seed_check.values == check.values


def test_cli_tune_seeds_json(tmp_path: Path):
    from typer.testing import CliRunner

    from steplab.cli import app

    db = str(tmp_path / "c.db")
    args = ["tune", "logreg", "-s", "tpe", "--budget", "100", "--trial-steps", "50", "--params", "lr", "--evals",
            "5", "--db", db, "--seeds", "2"]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    seeds = json.loads(r.stdout)["best"]["over_seeds"]
    assert seeds["seeds"] == [1, 2] and len(seeds["values"]) == 2
    assert seeds["interval"]["level"] == 0.9 and seeds["mean"] == pytest.approx(sum(seeds["values"]) / 2)
    shown = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert "over 2 fresh seeds: validation/loss" in shown.output and "t-interval" in shown.output
