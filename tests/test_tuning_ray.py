"""steplab tune's Ray Tune strategies (asha, pbt) end to end on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from steplab.store import open_store
from steplab.studies import tuning

tune = pytest.importorskip("ray.tune", reason="the ray extra (ray[tune]) is not installed")

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.mark.parametrize("strategy", ["asha", "pbt"])
def test_ray_strategies_keep_to_the_budget_and_record_every_trial(strategy: str, tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ray.db"
    url = f"sqlite:///{db}"
    spec = tuning.TuneSpec("logreg", "adamw-cosine", strategy, budget_steps=400, trial_steps=100,
                           params=("lr",), evals=10, population=2 if strategy == "pbt" else None)
    with open_store(url) as store:
        res = tuning.run_tune(spec, store, db_url=url)
        assert 0 < res.steps_used <= 400  # the steps leased in the store: every step trained
        assert store.leased_steps(res.study_id) == res.steps_used
        assert store.list_trials(status="running") == []
        assert all(t.spec.study_id == res.study_id and t.spec.budget_steps == 100 for t in res.trials)
        for t in res.trials:  # one row per step of the trajectory each trial kept
            rows = store.steps(t.id)["step"].tolist()
            if strategy == "asha":
                assert rows == list(range(t.steps))
            else:  # a member restarted from a donor's checkpoint goes on from the donor's step
                assert rows == sorted(set(rows)) and len(rows) <= t.steps and (not rows or rows[-1] < t.steps)
        if strategy == "asha":
            assert sum(t.steps for t in res.trials) == res.steps_used
        assert res.best is not None and res.best.steps == 100
        if strategy == "pbt":
            assert len(res.trials) == 2 and all("pbt/exploits" in t.final_metrics for t in res.trials)
    out, err = capfd.readouterr()  # Ray's own noise is silenced without verbose (issue 27)
    noise = [line for line in (out + err).splitlines()
             if any(w in line.lower() for w in ("metrics", "token", "error", "warning", "configuration for"))]
    assert noise == [], noise
