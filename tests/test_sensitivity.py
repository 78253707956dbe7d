"""Tests for steplab.analysis.sensitivity (Wortsman et al. 2023's LR sensitivity), the sweep
(steplab.studies.sensitivity) and its command."""

from __future__ import annotations

import dataclasses
import math

import pytest
from typer.testing import CliRunner

from steplab import algorithms, workloads
from steplab.analysis import sensitivity
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.studies import sensitivity as sweeps
from steplab.training.config import TrainConfig

NAN, INF = float("nan"), float("inf")


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------
# the formula, against hand computations
# ----------------------------------------------------------------------------------
def test_lr_sensitivity_matches_a_hand_computation():
    # 5 grid points, L_init = 3.0: a diverged run (nan), one above L_init (3.5), the best 1.8
    losses = [3.5, 2.1, 1.8, 2.4, NAN]
    # clamped: [3.0, 2.1, 1.8, 2.4, 3.0]; gaps to 1.8: [1.2, 0.3, 0.0, 0.6, 1.2]; mean 3.3 / 5
    assert sensitivity.clamped(losses, 3.0) == [3.0, 2.1, 1.8, 2.4, 3.0]
    assert sensitivity.lr_sensitivity(losses, 3.0) == pytest.approx(0.66, abs=1e-12)
    assert sensitivity.grid_best(losses, 3.0) == 1.8
    # inf counts as L_init too; a flat curve has sensitivity 0
    assert sensitivity.lr_sensitivity([INF, 2.0], 4.0) == pytest.approx(1.0)
    assert sensitivity.lr_sensitivity([2.0, 2.0, 2.0], 4.0) == 0.0
    # every run diverged: no progress anywhere, sensitivity 0 and best = L_init
    assert sensitivity.lr_sensitivity([NAN, NAN], 4.6) == 0.0 and sensitivity.grid_best([NAN], 4.6) == 4.6


def test_per_seed_then_mean_on_a_fixed_table():
    grid = [1e-3, 1e-2, 1e-1]
    table = {0: ([2.0, 1.0, NAN], 4.0), 1: ([2.5, 1.5, 3.0], 5.0)}
    points = [sensitivity.Point(lr, s, loss, init, "diverged" if math.isnan(loss) else "budget")
              for s, (losses, init) in table.items() for lr, loss in zip(grid, losses)]
    r = sensitivity.SensitivityResult("w", "a", grid, 10, "validation/loss", points)
    # seed 0: clamped [2, 1, 4], best 1, gaps [1, 0, 3] -> 4/3; seed 1: [2.5, 1.5, 3], gaps [1, 0, 1.5] -> 2.5/3
    assert r.per_seed() == {0: (pytest.approx(4 / 3), 1.0), 1: (pytest.approx(2.5 / 3), 1.5)}
    assert r.sensitivity == pytest.approx((4 / 3 + 2.5 / 3) / 2)
    assert r.sensitivity_sd == pytest.approx(abs(4 / 3 - 2.5 / 3) / math.sqrt(2))
    assert r.best_loss == pytest.approx(1.25)
    mean, div = r.mean_curve()
    assert mean == pytest.approx([2.25, 1.25, 3.5]) and div == [0.0, 0.0, 1.0]
    assert r.best_lr() == 1e-2 and r.mean_init_loss == 4.5
    # a seed missing a point is not scored
    r.points = [p for p in points if not (p.seed == 1 and p.lr == 1e-1)]
    assert r.complete_seeds() == [0] and r.sensitivity == pytest.approx(4 / 3)


def test_lr_grid_is_log_spaced():
    g = sensitivity.lr_grid(3e-4, 3e-1, 7)
    expected = [3e-4 * 1000 ** (j / 6) for j in range(7)]  # eta_j = a (b/a)^(j/(J-1))
    assert g == pytest.approx(expected, rel=1e-12)
    assert g[0] == pytest.approx(3e-4) and g[-1] == pytest.approx(3e-1) and g[2] == pytest.approx(3e-3)
    assert sensitivity.parse_grid("3e-4:3e-1:7") == (3e-4, 3e-1, 7)
    assert sensitivity.parse_grid("1e-3:1") == (1e-3, 1.0, sensitivity.DEFAULT_POINTS)
    for bad in ("1:1e-3", "0:1", "1e-3:1:1", "a:b", "1e-3", "1e-3:inf"):
        with pytest.raises(SpecError):
            sensitivity.parse_grid(bad)


def test_default_ranges_by_family():
    assert sensitivity.default_range("adamw") == (3e-4, 3e-1)
    assert sensitivity.default_range("adamw-schedulefree") == (3e-4, 3e-1)
    assert sensitivity.default_range("soap") == (3e-4, 3e-1)
    assert sensitivity.default_range("sgd") == (1e-3, 1.0)
    assert sensitivity.default_range("lion") == (3e-5, 3e-2)
    assert sensitivity.default_range("prodigy") == (0.1, 10.0)
    assert sensitivity.default_range("sps") == (1e-2, 10.0)
    assert sensitivity.default_range("torch.optim:Adagrad") == (3e-4, 3e-1)  # Adam-like by name
    assert sensitivity.default_range("torch.optim:ASGD") == (1e-3, 1.0)


# ----------------------------------------------------------------------------------
# the sweep: runs, resumes, reads back
# ----------------------------------------------------------------------------------
def _sweep(db, seeds, base_lr=None):
    wl = workloads.get("digits-mlp", budget_steps=20)
    algo = sweeps.base_point(algorithms.get_algorithm("adamw-cosine"), wl)
    if base_lr is not None:  # the base point's own lr plays no part: every point replaces it
        algo = dataclasses.replace(algo, lr=base_lr, hyperparameters={**algo.hyperparameters, "lr": base_lr})
    assert algo.weight_decay == wl.default_hyperparameters["weight_decay"]  # the calibrated point
    with open_store(db) as store:
        r = sweeps.sweep(wl, algo, [1e-3, 3e-2, 30.0], seeds, store=store,
                              config=TrainConfig(threads=1, record_norms=False))
        n = len(store.list_trials())
    return r, n


def test_sweep_runs_every_point_once_and_resumes(tmp_path):
    db = str(tmp_path / "s.db")
    r, n = _sweep(db, [0])
    assert n == 3 and r.complete_seeds() == [0] and r.workload == "digits-mlp"
    init = sweeps.init_loss(workloads.get("digits-mlp"), 0, "validation/loss")
    assert all(p.init_loss == init for p in r.points) and init > 2.0  # ~ln 10 at initialization
    by_lr = {p.lr: p for p in r.points}
    assert by_lr[30.0].diverged  # lr 30 blows up: counted as L_init
    assert by_lr[3e-2].loss < by_lr[1e-3].loss < init
    assert r.sensitivity == pytest.approx(sensitivity.lr_sensitivity(r.losses(0), init))
    assert r.best_loss == pytest.approx(by_lr[3e-2].loss)
    r2, n2 = _sweep(db, [0, 1])  # seed 0 is skipped, seed 1 runs
    assert n2 == 6 and r2.complete_seeds() == [0, 1]
    assert _sweep(db, [0, 1], base_lr=0.5)[1] == 6  # same study, nothing left to run
    with open_store(db) as store:
        found = sensitivity.results_in_store(store)
    assert list(found) == [("adamw-cosine", "digits-mlp")]
    assert found[("adamw-cosine", "digits-mlp")].sensitivity == pytest.approx(r2.sensitivity)


def test_plot_and_command(tmp_path):
    db, png = str(tmp_path / "c.db"), tmp_path / "s.png"
    r = CliRunner().invoke(
        __import__("steplab.cli", fromlist=["app"]).app,
        ["sensitivity", "digits-mlp", "--grid", "1e-3:1e-1:3", "--seeds", "1", "--steps", "10",
         "--threads", "1", "--db", db, "--plot", str(png)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "LR sensitivity" in r.output and "grid-best loss" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(__import__("steplab.cli", fromlist=["app"]).app,
                             ["sensitivity", "digits-mlp", "--grid", "1:1e-3", "--db", db])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "low must be below high" in bad.output


def test_report_shows_a_column_where_a_sweep_exists(tmp_path):
    from steplab import report
    from steplab.training.loop import run_trial

    db = str(tmp_path / "r.db")
    wl = workloads.get("digits-mlp", budget_steps=10)
    algo = sweeps.base_point(algorithms.get_algorithm("adamw-cosine"), wl)
    cfg = TrainConfig(threads=1, record_norms=False)
    with open_store(db) as store:
        study = store.create_study("bench", "benchmark", {})
        for name in ("adamw-cosine", "sgd-nesterov-cosine"):
            run_trial(wl, algorithms.get_algorithm(name).resolved(), 0, store=store, study_id=study, config=cfg)
        without = report.render_html(store, study)
        r = sweeps.sweep(wl, algo, [1e-3, 1e-2], [0], store=store, config=cfg)
        html = report.render_html(store, study)
    assert "LR sensitivity" not in without
    assert "<th class='n'>LR sensitivity</th>" in html
    assert f"{r.sensitivity:.3f}" in html and "Sweeps: adamw-cosine: lr 0.001..0.01 &times; 2, 10 steps" in html
