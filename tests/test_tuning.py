"""steplab tune: the predict pruner on exact laws, budgets, resuming a killed tune, the CLI."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from steplab import schedules
from steplab.analysis import laws
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.studies import tuning

T = 400


def cosine_lrs(lr: float, steps: int = T) -> np.ndarray:
    f = schedules.build({"name": "cosine"}, steps)
    return lr * np.array([f(k) for k in range(steps)])


def exact_losses(lr: float, steps: np.ndarray, L0: float) -> np.ndarray:
    law = laws.AnnealingLaw(L0=L0, A=0.05, alpha=0.5, C=0.002)
    return law.predict(cosine_lrs(lr), steps)


def L0_of(lr: float) -> float:  # the best final loss is at lr = 1e-2 (0.432; 2e-2: 0.436, 3e-2: 0.455)
    return 0.4 + 0.2 * (math.log10(lr) + 2.0) ** 2


def test_predict_final_recovers_an_exact_law_from_the_first_40_percent() -> None:
    lrs = cosine_lrs(0.03)
    steps = np.arange(8, int(0.4 * T) + 1, 8)
    law = laws.AnnealingLaw(L0=0.5, A=0.3, alpha=0.5, C=0.02)
    truth = float(law.predict(lrs)[-1])
    pred, sd = tuning.predict_final(steps, law.predict(lrs, steps), lrs, 0)
    assert pred == pytest.approx(truth, rel=2e-3)
    assert sd < 0.01 * truth
    noisy = law.predict(lrs, steps) * np.exp(np.random.default_rng(0).normal(0, 0.01, steps.size))
    pred_n, sd_n = tuning.predict_final(steps, noisy, lrs, 0)
    assert sd_n > sd and abs(pred_n - truth) < 4 * sd_n  # noise widens the interval, which covers the truth


def test_predict_final_cannot_tell_before_any_annealing() -> None:
    lrs = np.full(T, 0.03)
    lrs[int(0.8 * T):] = np.linspace(0.03, 0.0, T - int(0.8 * T))  # WSD: decay in the last 20%
    steps = np.arange(8, int(0.4 * T) + 1, 8)
    law = laws.AnnealingLaw(L0=0.5, A=0.3, alpha=0.5, C=0.02)
    _, sd = tuning.predict_final(steps, law.predict(lrs, steps), lrs, 0)
    assert sd == math.inf  # C is invisible while the LR is constant: no decision
    with pytest.raises(SpecError):
        tuning.predict_final(steps[:5], law.predict(lrs, steps[:5]), lrs, 0)


@pytest.mark.parametrize("order", [[3e-3, 3e-2, 1e-2, 1e-1, 1e-3], [1e-1, 2e-2, 5e-3, 1e-2, 1e-3],
                                   [1e-3, 1e-1, 3e-3, 3e-2, 1e-2]])
def test_predict_pruner_never_prunes_the_grid_best(order: list[float]) -> None:
    """Trials follow exact annealing laws; the full grid's best (lr = 1e-2) must survive
    wherever it comes, and trials clearly worse than the incumbent must be pruned."""
    pp = tuning.PredictPruner(lambda tr: (cosine_lrs(tr.params["lr"]), 0), T, checkpoints=(0.1, 0.2, 0.4))
    study = optuna.create_study(pruner=tuning.optuna_pruner(pp))
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}
    eval_steps = np.arange(8, T + 1, 8)
    outcome, incumbent = {}, math.inf
    for lr in order:
        study.enqueue_trial({"lr": lr})
        trial = study.ask(dist)
        values = exact_losses(lr, eval_steps, L0_of(lr))
        pruned = False
        for s, v in zip(eval_steps, values, strict=True):
            trial.report(float(v), int(s))
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(values[-1]))
        final = float(values[-1])
        if final < incumbent:  # better than the incumbent: must run to its end
            assert not pruned, f"lr {lr} (final {final:.4f}) pruned against {incumbent:.4f}"
        elif final > incumbent + 0.02:  # clearly worse: the exact fit must see it by 40%
            assert pruned, f"lr {lr} (final {final:.4f}) kept against {incumbent:.4f}"
        if not pruned:
            incumbent = min(incumbent, final)
        outcome[lr] = pruned
    assert outcome[1e-2] is False and study.best_params["lr"] == pytest.approx(1e-2)
    assert all(d[1] <= 0.4 * T + 8 for d in pp.decisions)  # decisions only at the checkpoints


def _spec(strategy: str, budget: int = 450, **kw) -> tuning.TuneSpec:
    kw.setdefault("params", ("lr", "weight_decay"))
    return tuning.TuneSpec("logreg", "adamw-cosine", strategy, budget_steps=budget, trial_steps=100, evals=20, **kw)


@pytest.mark.parametrize("strategy", ["qmc", "tpe", "median", "hyperband", "predict"])
def test_every_optuna_strategy_keeps_to_the_budget(strategy: str, tmp_path: Path) -> None:
    with open_store(tmp_path / "t.db") as store:
        res = tuning.run_tune(_spec(strategy), store)
        assert res.steps_used == sum(t.steps for t in res.trials) <= 450
        assert res.steps_used > 450 - 100  # it spends the budget, not less than a trial short of it
        last = max(res.trials, key=lambda t: t.id)
        if last.steps < 100:
            assert tuning.BUDGET_MESSAGE in last.message or last.status == "pruned"
        assert res.best is not None and res.best.steps == 100
        assert all(t.spec.study_id == res.study_id for t in res.trials)
        if strategy in ("qmc", "tpe"):
            assert all(t.status != "pruned" or tuning.BUDGET_MESSAGE in t.message for t in res.trials)
        again = tuning.run_tune(_spec(strategy), store)  # finished: resuming runs nothing more
        assert [t.id for t in again.trials] == [t.id for t in res.trials]


def test_bad_specs_are_one_line_errors() -> None:
    with pytest.raises(SpecError, match="unknown tuning strategy"):
        _spec("grid")
    with pytest.raises(SpecError, match="loss metric"):
        _spec("predict", metric="validation/accuracy", mode="max")
    with pytest.raises(SpecError, match="not in the search space"):
        tuning.setup(_spec("tpe", params=("momentum",)))
    with pytest.raises(SpecError, match="less than one trial"):
        tuning.setup(_spec("tpe", budget=50))


KILLED = """
import sys
from steplab.studies import tuning
from steplab.store import open_store
spec = tuning.TuneSpec("logreg", "adamw-cosine", "predict", budget_steps=900, trial_steps=100,
                       params=("lr", "weight_decay"), evals=20)
with open_store(sys.argv[1]) as store:
    tuning.run_tune(spec, store)
"""


@pytest.mark.slow
def test_a_killed_tune_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db)], env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            time.sleep(0.2)
            if db.exists():
                with open_store(db) as store:
                    if len(store.list_trials(status=("budget", "reached", "pruned"))) >= 3:
                        break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with open_store(db) as store:
        before = {t.id: t.steps for t in store.list_trials(status=("budget", "reached", "pruned", "diverged"))}
        assert len(before) >= 3
        spec = tuning.TuneSpec("logreg", "adamw-cosine", "predict", budget_steps=900, trial_steps=100,
                               params=("lr", "weight_decay"), evals=20)
        res = tuning.run_tune(spec, store)
        after = {t.id: t.steps for t in res.trials}
        assert all(after[i] == s for i, s in before.items())  # kept, not re-run
        assert res.steps_used == sum(after.values()) <= 900 and res.steps_used > 800
        assert store.list_trials(status="running") == []  # the killed attempt is gone
        keys = [t.spec.key() for t in res.trials]
        assert len(keys) == len(set(keys))


def test_cli_tune_prints_the_best_and_plots(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steplab.cli import app

    png = tmp_path / "tune.png"
    r = CliRunner().invoke(app, ["tune", "logreg", "-s", "tpe", "--budget", "300", "--trial-steps", "100",
                                 "--params", "lr", "--evals", "10", "--db", str(tmp_path / "c.db"), "--plot", str(png)],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "compute: 300 of 300 steps (100%)" in r.output and "best: trial" in r.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(app, ["tune", "logreg", "-s", "nope", "--budget", "300", "--db", str(tmp_path / "c.db")])
    assert bad.exit_code != 0 and "unknown tuning strategy" in bad.output and "Traceback" not in bad.output
