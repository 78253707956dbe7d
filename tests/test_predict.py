"""steplab predict: laws fitted on stored runs, curves, family search, bound, transfer, cooldowns."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from steplab import schedules
from steplab.analysis import laws, predict
from steplab.cli import app
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.training.recorder import Recorder

runner = CliRunner()
LAW = laws.AnnealingLaw(L0=1.5, A=2.0, alpha=0.6, C=0.05)
PEAK = 0.01


def _store_law_run(db, spec: str, steps: int, seed: int) -> int:
    """A 'user run' recorded with the Recorder whose loss follows LAW (plus noise): the lr
    the optimizer really used comes from the schedule, the loss from the law."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=PEAK)
    sched = schedules.to_lr_scheduler(opt, schedules.build(spec, steps))
    mult = np.asarray(schedules.values(schedules.build(spec, steps), steps))
    w = predict.warmup_steps_of(mult)
    truth = np.concatenate([[np.nan], LAW.__class__(**{**LAW.__dict__, "warmup_steps": w}).predict(PEAK * mult)[:-1]])
    rng = np.random.default_rng(seed)
    with Recorder(opt, db=db, name=spec) as rec:
        for k in range(steps):
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            opt.zero_grad()
            sched.step()
            value = truth[k] if np.isfinite(truth[k]) else 10.0
            rec.log(float(value * (1 + 0.003 * rng.standard_normal())))
        return rec.trial_id


@pytest.fixture(scope="module")
def law_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("p") / "p.db"
    ids = {s: _store_law_run(db, s, 1200, i) for i, s in enumerate(
        ["constant:warmup=0.05", "cosine:warmup=0.05", "wsd:decay=0.2,shape=1-sqrt,warmup=0.05"])}
    return db, ids


def test_warmup_is_read_off_the_lrs():
    assert predict.warmup_steps_of([0.1, 0.2, 0.3, 0.3, 0.2]) == 2
    assert predict.warmup_steps_of([1.0, 0.5, 0.2]) == 0
    assert predict.warmup_steps_of(np.ones(5)) == 0
    mult = schedules.values(schedules.build("cosine:warmup=0.1", 100), 100)
    assert predict.warmup_steps_of(mult) == 9  # update 9 is the first at the peak ((k+1)/W)


def test_fit_on_stored_runs_predicts_an_unseen_schedule(law_db):
    db, ids = law_db
    with open_store(db) as store:
        fitted = predict.fit_trials(store, [ids["constant:warmup=0.05"], ids["cosine:warmup=0.05"]])
        unseen = predict.load_run(store, ids["wsd:decay=0.2,shape=1-sqrt,warmup=0.05"])
    assert fitted.peak_lr == pytest.approx(PEAK)
    assert fitted.law.L0 == pytest.approx(LAW.L0, rel=0.05)
    pred = predict.predict_curve(fitted.law, "wsd:decay=0.2,shape=1-sqrt,warmup=0.05", 1200, PEAK)
    c = unseen.curve()
    assert pred[c.steps[-1] - 1] == pytest.approx(c.losses[-1], rel=0.01)


def test_law_file_round_trip_and_errors(tmp_path, law_db):
    db, ids = law_db
    with open_store(db) as store:
        fitted = predict.fit_trials(store, [ids["cosine:warmup=0.05"]], "annealing")
    path = fitted.save(tmp_path / "law.json")
    again = predict.load_law(path)
    assert again.law == fitted.law and again.trial_ids == fitted.trial_ids
    with pytest.raises(SpecError, match="not found"):
        predict.load_law(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"law": {"law": "annealing"}}))
    with pytest.raises(SpecError, match="steplab predict fit"):
        predict.load_law(tmp_path / "bad.json")
    with pytest.raises(SpecError, match="unknown law"):
        predict.fit_runs([], "cubic")


def test_a_fit_can_leave_out_the_start_of_each_run(law_db, tmp_path):
    db, ids = law_db
    with open_store(db) as store:
        runs = [predict.load_run(store, ids[s]) for s in ("constant:warmup=0.05", "cosine:warmup=0.05")]
    whole = predict.fit_runs(runs, "annealing")
    late = predict.fit_runs(runs, "annealing", start=0.5)
    # 400 points per 1,200-update run, those after warm-up (60 updates) are fitted
    kept = [int(np.sum(r.curve().steps > 60)) for r in runs]
    assert whole.n_points == sum(kept) and whole.start == 0.0
    assert late.n_points == sum(int(np.sum(r.curve().steps >= 600)) for r in runs) and late.start == 0.5
    assert late.law.L0 == pytest.approx(LAW.L0, rel=0.05)  # the law holds on the late half too
    again = predict.load_law(late.save(tmp_path / "late.json"))
    assert again.start == 0.5 and again.law == late.law
    for bad in (-0.1, 0.95, "x", True):
        with pytest.raises(SpecError, match="start must be a share"):
            predict.fit_runs(runs, "annealing", start=bad)
    r = runner.invoke(app, ["predict", "fit", str(runs[0].trial_id), str(runs[1].trial_id), "--law", "bound",
                            "--db", str(db), "--out", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    assert "bound law" in r.output and "first 10% of each run left out" in r.output
    assert predict.load_law(tmp_path / "b.json").law.LAW == "bound"
    # the transient variant fits the whole run after warm-up by default; its law file keeps C, tau
    r = runner.invoke(app, ["predict", "fit", str(runs[0].trial_id), str(runs[1].trial_id), "--law",
                            "bound-transient", "--db", str(db), "--out", str(tmp_path / "t.json")])
    assert r.exit_code == 0, r.output
    t = predict.load_law(tmp_path / "t.json")
    assert t.start == 0.0 and t.n_points == whole.n_points and t.law.LAW == "bound" and t.law.C > 0
    r = runner.invoke(app, ["predict", "fit", str(runs[0].trial_id), "--start", "2", "--db", str(db)])
    assert r.exit_code == 2 and "start must be a share" in r.output and "Traceback" not in r.output


def test_runs_with_different_warmups_are_refused(law_db, tmp_path):
    db, ids = law_db
    other = _store_law_run(db, "cosine:warmup=0.2", 1200, 9)
    with open_store(db) as store, pytest.raises(SpecError, match="warm up"):
        predict.fit_trials(store, [ids["constant:warmup=0.05"], other])


def test_best_in_family_prefers_a_cooldown_over_constant():
    # with C > 0 the law rewards annealing: any WSD cooldown beats none, and the search
    # returns its specs sorted by predicted final loss
    ranked = predict.best_in_family(LAW, "wsd", 1000, PEAK)
    losses = [x[1] for x in ranked]
    assert losses == sorted(losses)
    const = predict.final_loss(LAW, "constant", 1000, PEAK)
    assert ranked[0][1] < const
    with pytest.raises(SpecError, match="family"):
        predict.best_in_family(LAW, "zigzag", 100, PEAK)


def test_tuned_horizons_pick_the_best_lr_per_budget(tmp_path):
    from steplab import workloads
    from steplab.algorithms import get_algorithm
    from steplab.training.config import TrainConfig
    from steplab.training.loop import run_trial

    with open_store(tmp_path / "h.db") as store:
        for steps in (40, 80):
            wl = workloads.get("logreg", budget_steps=steps)
            for lr in (1e-3, 3e-2):
                algo = get_algorithm("adamw-linear").with_hyperparameters({"lr": lr})
                run_trial(wl, algo, 0, store=store, config=TrainConfig(stop_at_target=False))
        tuned = predict.tuned_horizons(store, "logreg", "adamw-linear")
    assert tuned == {40: 3e-2, 80: 3e-2}  # the larger lr wins at these short horizons


# ---------------------------------------------------------------------------------- CLI
def test_cli_fit_curve_best(law_db, tmp_path):
    db, ids = law_db
    out, png = tmp_path / "law.json", tmp_path / "fit.png"
    r = runner.invoke(app, ["predict", "fit", str(ids["constant:warmup=0.05"]), str(ids["cosine:warmup=0.05"]),
                            "--db", str(db), "--out", str(out), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "annealing law" in r.output and png.read_bytes()[:4] == b"\x89PNG"
    curve = tmp_path / "curve.png"
    r = runner.invoke(app, ["predict", "curve", str(out), "-s", "cosine", "-s", "wsd:decay=0.1", "--steps", "2400",
                            "--out", str(curve)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "wsd:decay=0.1" in r.output and curve.exists()
    r = runner.invoke(app, ["predict", "best", str(out), "--family", "cosine", "--steps", "1200"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "cosine" in r.output
    r = runner.invoke(app, ["predict", "fit", "77", "--db", str(db)])
    assert r.exit_code == 2 and "77" in r.output and "Traceback" not in r.output


def test_cli_bound_transfer_cooldown(tmp_path):
    png = tmp_path / "b.png"
    r = runner.invoke(app, ["predict", "bound", "-s", "linear", "-s", "cosine", "-s", "constant", "--steps", "200",
                            "--optimal-lr", "--out", str(png)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert png.exists() and "gamma*" in r.output
    r = runner.invoke(app, ["predict", "transfer", "-s", "linear", "--from", "400", "--lr", "0.003", "--to", "1600"])
    assert r.exit_code == 0 and "0.001509" in r.output  # 0.503x, as bound.transfer_lr computes
    r = runner.invoke(app, ["predict", "cooldown", "--steps", "400", "--from", "200"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "best cooldown" in r.output and "continue" in r.output
    r = runner.invoke(app, ["predict", "transfer", "-s", "linear", "--from", "400", "--lr", "0.003", "--to", "1600",
                            "--workload", "logreg"])
    assert r.exit_code == 2 and "both" in r.output


def _store_eval_run(db, spec: str, steps: int, seed: int, every: int = 20, truth: laws.AnnealingLaw = LAW) -> int:
    """A recorded run whose per-step losses are very noisy (20%) but whose ``train/loss``
    evaluations every ``every`` updates are the exact law (what an average over a fixed
    training sample approaches)."""
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=PEAK)
    sched = schedules.to_lr_scheduler(opt, schedules.build(spec, steps))
    mult = np.asarray(schedules.values(schedules.build(spec, steps), steps))
    law = dataclasses.replace(truth, warmup_steps=predict.warmup_steps_of(mult))
    after = law.predict(PEAK * mult)  # after[k - 1]: loss after k updates
    rng = np.random.default_rng(seed)
    with Recorder(opt, db=db, name=spec) as rec:
        for k in range(steps):
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            opt.zero_grad()
            sched.step()
            value = after[k - 1] if k >= 1 and np.isfinite(after[k - 1]) else 10.0
            rec.log(float(value * (1 + 0.2 * rng.standard_normal())))
            if (k + 1) % every == 0 and np.isfinite(after[k]):
                rec.eval(step=k + 1, **{"train/loss": float(after[k])})
        return rec.trial_id


def test_fit_on_evaluations_instead_of_the_noisy_trace(tmp_path):
    db = tmp_path / "e.db"
    ids = [_store_eval_run(db, s, 1200, i) for i, s in enumerate(["constant:warmup=0.05", "cosine:warmup=0.05"])]
    unseen_spec = "wsd:decay=0.2,shape=1-sqrt,warmup=0.05"
    with open_store(db) as store:
        run = predict.load_run(store, ids[0], "train/loss")
        assert run.smooth == 1 and run.updates == 1200
        # the law is undefined during the 59-update warm-up, so the first evaluation is at 60
        assert list(run.steps[:3]) == [60, 80, 100] and run.steps[-1] == 1200
        fitted = predict.fit_trials(store, ids, "annealing", metric="train/loss")
        assert fitted.steps == (1200, 1200)
        with pytest.raises(SpecError, match=r"0 evaluations of 'validation/loss'.*train/loss"):
            predict.load_run(store, ids[0], "validation/loss")
    mult = np.asarray(schedules.values(schedules.build(unseen_spec, 1200), 1200))
    truth = LAW.__class__(**{**LAW.__dict__, "warmup_steps": predict.warmup_steps_of(mult)}).predict(PEAK * mult)
    pred = predict.predict_curve(fitted.law, unseen_spec, 1200, PEAK)
    assert pred[-1] == pytest.approx(truth[-1], rel=2e-3)
    # the curve reaches past the last update: an evaluation after all T updates is fitted too
    curve = run.curve()
    assert curve.steps[-1] == 1200 and curve.lrs.size == 1201


def test_cli_fit_metric(tmp_path):
    db = tmp_path / "e.db"
    ids = [_store_eval_run(db, s, 600, i) for i, s in enumerate(["constant:warmup=0.05", "cosine:warmup=0.05"])]
    out = tmp_path / "law.json"
    r = runner.invoke(app, ["predict", "fit", *map(str, ids), "--metric", "train/loss", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["fit"]["steps"] == [600, 600]
    bad = runner.invoke(app, ["predict", "fit", str(ids[0]), "--metric", "nope", "--db", str(db)])
    assert bad.exit_code != 0 and "evaluations of 'nope'" in bad.output


def test_lambda_fit_picks_the_decay_of_a_short_memory(tmp_path):
    db = tmp_path / "l.db"
    short = dataclasses.replace(LAW, lam=0.95, C=2.0)
    ids = [_store_eval_run(db, s, 800, i, truth=short) for i, s in enumerate(["constant:warmup=0.05", "cosine:warmup=0.05"])]
    with open_store(db) as store:
        runs = [predict.load_run(store, i, "train/loss") for i in ids]
    chosen = predict.fit_runs(runs, lam="fit")
    paper = predict.fit_runs(runs, lam=0.999)
    assert chosen.law.lam == 0.95 and chosen.residual < paper.residual
    spec = "wsd:decay=0.2,shape=1-sqrt,warmup=0.05"
    mult = np.asarray(schedules.values(schedules.build(spec, 800), 800))
    truth = dataclasses.replace(short, warmup_steps=predict.warmup_steps_of(mult)).predict(PEAK * mult)[-1]
    assert predict.final_loss(chosen.law, spec, 800, PEAK) == pytest.approx(truth, rel=2e-3)
    with pytest.raises(SpecError, match="'fit'"):
        predict.fit_runs(runs, lam="best")
    with pytest.raises(SpecError, match="annealing law only"):
        predict.fit_runs(runs, "multipower", lam="fit")
    bad = runner.invoke(app, ["predict", "fit", str(ids[0]), "--lambda", "x", "--db", str(db)])
    assert bad.exit_code != 0 and "--lambda must be a number or 'fit'" in bad.output


def test_lambda_fit_passes_over_a_decay_whose_fit_is_refused(tmp_path, monkeypatch):
    db = tmp_path / "l.db"
    short = dataclasses.replace(LAW, lam=0.95, C=2.0)
    ids = [_store_eval_run(db, s, 800, i, truth=short) for i, s in enumerate(["constant:warmup=0.05", "cosine:warmup=0.05"])]
    with open_store(db) as store:
        runs = [predict.load_run(store, i, "train/loss") for i in ids]
    real = predict.fit_annealing
    refused = {0.95}

    def refuse(curves, *, lam, **kw):  # as _best_of does when no parameters give positive losses
        if lam in refused:
            raise SpecError("the fit found no parameters whose predicted losses are all positive")
        return real(curves, lam=lam, **kw)

    monkeypatch.setattr(predict, "fit_annealing", refuse)
    chosen = predict.fit_runs(runs, lam="fit")
    assert chosen.law.lam != 0.95 and chosen.law.lam in predict.LAMBDA_GRID  # the next best decay
    refused.update(predict.LAMBDA_GRID)
    with pytest.raises(SpecError, match="no parameters whose predicted losses"):
        predict.fit_runs(runs, lam="fit")
