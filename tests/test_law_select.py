"""Leave-one-schedule-out law selection, ensembles, intervals, the wall-clock form."""

from __future__ import annotations

import numpy as np
import pytest

from steplab.analysis import law_select as ls
from steplab.analysis import predict
from steplab.analysis.laws import AnnealingLaw, BoundLaw, MultiPowerLaw
from steplab.errors import SpecError

PEAK, T = 1e-3, 800
MPL = MultiPowerLaw(L0=2.5, A=0.3, alpha=0.5, B=400, C=2.0, beta=0.6, gamma=0.5)
ANN = AnnealingLaw(L0=2.5, A=0.3, alpha=0.5, C=30.0, lam=0.95)


def _lrs(kind: str, n: int = T) -> np.ndarray:
    k = np.arange(n)
    if kind == "constant":
        return np.full(n, PEAK)
    if kind == "cosine":  # to 10% of peak
        return PEAK * (0.1 + 0.45 * (1 + np.cos(np.pi * k / n)))
    if kind == "linear":
        return PEAK * (1 - 0.9 * k / n)
    lrs = np.full(n, PEAK)
    if kind == "wsd":  # linear cooldown over the last 20%
        m = int(0.2 * n)
        lrs[n - m:] = PEAK * (1 - 0.9 * np.arange(1, m + 1) / m)
    else:  # step: x0.3 at 50%, x0.1 at 75%
        lrs[n // 2:] = 0.3 * PEAK
        lrs[3 * n // 4:] = 0.1 * PEAK
    return lrs


def _runs(law, seed: int = 0) -> list[predict.Run]:
    """Traces from ``law`` with 0.3% multiplicative noise; loss[k] is L(s=k) (logged before update k)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, kind in enumerate(("constant", "cosine", "wsd", "step")):
        lrs = _lrs(kind)
        loss = np.empty(T)
        loss[0] = 10.0
        loss[1:] = law.predict(lrs)[:-1]
        out.append(predict.Run(i, np.arange(T), lrs, loss * (1 + 0.003 * rng.standard_normal(T)), 0))
    return out


CANDS = [ls.Candidate("multipower"), ls.Candidate("annealing", 0.95), ls.Candidate("annealing", 0.999)]


@pytest.mark.parametrize(("true", "label"), [(MPL, "multipower"), (ANN, "annealing(lambda=0.95)")])
def test_loso_picks_the_law_that_generated_the_curves(true, label):
    sel = ls.select(_runs(true), CANDS)
    assert sel.chosen.label == label
    table = sel.table()
    assert table[0][0] == label and table[0][1] < table[1][1]
    assert len(sel.final[label]) == 4  # one held-out error per schedule
    assert sel.q == pytest.approx(max(sel.final[label]))


def test_the_bound_law_is_a_candidate_fitted_after_its_default_start():
    assert ls.Candidate("bound") in ls.CANDIDATES
    truth = BoundLaw(L0=2.4, A=0.3, alpha=1.0, B=300.0)  # alpha 1: the fit's default
    runs = _runs(truth)
    sel = ls.select(runs, [ls.Candidate("bound"), ls.Candidate("annealing", 0.999)], ensemble=1)
    assert sel.chosen.label == "bound" and max(sel.final["bound"]) < 0.01  # 0.3% noise per point
    assert np.mean(sel.final["bound"]) < np.mean(sel.final["annealing(lambda=0.999)"])
    # fitted on the points after the first 10% of each run (predict.DEFAULT_START)
    fitted = predict.fit_runs(runs[:2], "bound")
    assert fitted.start == predict.DEFAULT_START["bound"] == 0.1
    assert fitted.n_points == predict.fit_runs(runs[:2], "bound", start=0.0).n_points - 2 * int(0.1 * 400)


def test_loso_picks_the_transient_law_for_curves_with_an_early_fall():
    assert ls.Candidate("bound-transient") in ls.CANDIDATES
    truth = BoundLaw(L0=2.4, A=0.3, alpha=0.8, B=300.0, C=1.0, tau=0.05)  # the fall ends by ~a third of T
    sel = ls.select(_runs(truth), [ls.Candidate("bound-transient"), ls.Candidate("bound")], ensemble=1)
    assert sel.chosen.label == "bound-transient" and max(sel.final["bound-transient"]) < 0.01
    assert np.mean(sel.final["bound-transient"]) < np.mean(sel.final["bound"])


def test_select_skips_a_candidate_whose_refit_on_all_runs_fails(monkeypatch):
    runs = _runs(MPL)[:3]
    real = ls.fit_candidate

    def fails_on_all_runs(rs, cand, **kw):  # e.g. no parameters with positive losses fit
        if cand.label == "multipower" and len(rs) == len(runs):
            raise SpecError("the fit found no parameters whose predicted losses are all positive")
        return real(rs, cand, **kw)

    monkeypatch.setattr(ls, "fit_candidate", fails_on_all_runs)
    sel = ls.select(runs, CANDS, ensemble=2)
    assert np.mean(sel.final["multipower"]) == min(np.mean(v) for v in sel.final.values())  # the LOSO winner ...
    assert "multipower" not in sel.labels and len(sel.ensemble) == 2  # ... is skipped, the next two kept
    with pytest.raises(SpecError, match="no candidate law could be fitted on all the runs"):
        ls.select(runs, CANDS[:1])


def test_interval_holds_the_truth_for_an_unseen_schedule():
    sel = ls.select(_runs(MPL), CANDS, ensemble=2)
    iv = ls.predict_interval(sel, {"name": "linear", "end": 0.1}, T, PEAK)
    truth = float(MPL.predict(_lrs("linear"))[-1])
    assert iv.low <= truth <= iv.high
    assert iv.low <= iv.point <= iv.high
    assert (iv.high - iv.low) / iv.point < 0.05  # a band of a few %, not a shrug


def test_wall_clock_budget_buys_steps():
    # 10 s at 0.01 s/step = 1000 updates; the slow end (0.0125 s) buys 800, the fast (0.008) 1250
    iv, steps = ls.predict_at_time(MPL, "cosine", 10.0, (0.01, 0.008, 0.0125), PEAK)
    assert steps == (1000, 800, 1250)
    assert iv.point == pytest.approx(predict.final_loss(MPL, "cosine", 1000, PEAK))
    assert iv.low == pytest.approx(predict.final_loss(MPL, "cosine", 1250, PEAK))  # more steps, lower loss
    assert iv.high == pytest.approx(predict.final_loss(MPL, "cosine", 800, PEAK))


def test_bad_input():
    runs = _runs(MPL)
    with pytest.raises(SpecError, match="at least 2 schedules"):
        ls.loso(runs[:1], CANDS)
    with pytest.raises(SpecError, match="ensemble"):
        ls.select(runs, CANDS, ensemble=0)
    with pytest.raises(SpecError, match="s_per_step"):
        ls.predict_at_time(MPL, "cosine", 10.0, -1.0, PEAK)
    with pytest.raises(SpecError, match="longer budget"):
        ls.predict_at_time(MPL, "cosine", 0.01, 0.01, PEAK)


def test_cli_select_then_optimize(tmp_path):
    import json

    import torch
    from typer.testing import CliRunner

    from steplab import schedules
    from steplab.cli import app
    from steplab.training.recorder import Recorder

    runner = CliRunner()
    db = tmp_path / "s.db"
    ids = []
    for i, kind in enumerate(("constant", "cosine", "step")):
        lrs = _lrs(kind, 400)
        truth = MPL.predict(lrs)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=PEAK)
        rng = np.random.default_rng(i)
        with Recorder(opt, db=db, name=kind, grad_norm=False, l1=False, update_norm=False) as rec:
            for k in range(400):
                for g in opt.param_groups:
                    g["lr"] = float(lrs[k])
                model(torch.ones(1, 2)).sum().backward()
                opt.step()
                opt.zero_grad()
                rec.log(float((truth[k - 1] if k else 10.0) * (1 + 0.002 * rng.standard_normal())))
            ids.append(rec.trial_id)
    law = tmp_path / "law.json"
    r = runner.invoke(app, ["predict", "select", *map(str, ids), "--db", str(db), "--out", str(law)],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "chosen: multipower" in r.output and law.exists()
    spec = tmp_path / "opt.json"
    r = runner.invoke(app, ["predict", "optimize", str(law), "--steps", "400", "--warmup", "0.05",
                            "--iterations", "200", "--out", str(spec)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "law-optimal (spec)" in r.output and "wsd-20%-1-sqrt" in r.output
    loaded = schedules.spec_from(str(spec))  # what --schedule FILE reads
    assert loaded == schedules.spec_from(json.loads(spec.read_text())) and loaded.name == "piecewise"
    bad = runner.invoke(app, ["predict", "optimize", str(law), "--steps", "400", "--objective", "median"])
    assert bad.exit_code != 0 and "objective" in bad.output
