"""Law-optimal schedules (Luo et al. 2025's projected-Adam optimiser on a fitted law)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from steplab import schedules
from steplab.analysis import law_optimal as lo
from steplab.analysis.laws import AnnealingLaw, BoundLaw, MultiPowerLaw
from steplab.errors import SpecError

# Luo et al.'s fitted 400M parameters (MultiPowerLaw src/config.py PARAMS["400"]), their
# optimiser's setting (T = 24,000, W = 2,160, peak 3e-4) and results (formula sheet
# workloads-curricula-schedules.md §4.1): official final 2.53322, the sheet's
# re-implementation 2.53328; the official optimum stays at peak for 86.8-88.7% of the
# post-warm-up steps and ends at 1.1-1.4e-6.
P400 = MultiPowerLaw(L0=2.37474466, A=0.65421216, alpha=0.42878731, B=523.42464371, C=2.02462735,
                     beta=0.59350493, gamma=0.63472457)
T, W, PEAK = 24_000, 2_160, 3e-4


def _full(law, lrs, w):
    return float(dataclasses.replace(law, warmup_steps=w).predict(lrs)[-1])


def test_gradient_matches_finite_differences_and_predict():
    rng = np.random.default_rng(0)
    post = PEAK * np.sort(rng.uniform(0.05, 1.0, 300))[::-1]
    post[0] = PEAK
    ramp = PEAK * (np.arange(30) + 1) / 30
    bound = BoundLaw(L0=2.3, A=1e-3, alpha=0.8, B=400.0)
    transient = dataclasses.replace(bound, C=0.5, tau=0.05)  # S1(T) ~ 0.055: the term is 0.17 nats
    for law in (P400, AnnealingLaw(L0=2.3, A=0.6, alpha=0.45, C=200.0, lam=0.99), bound, transient):
        val, grad = lo.final_loss_grad(law, post, float(ramp.sum()), ramp)
        assert val == pytest.approx(_full(law, np.concatenate([ramp, post]), 30), abs=1e-12)
        for i in (0, 7, 150, 299):
            e = np.zeros_like(post)
            e[i] = 1e-10
            fd = (lo.final_loss_grad(law, post + e, float(ramp.sum()), ramp)[0]
                  - lo.final_loss_grad(law, post - e, float(ramp.sum()), ramp)[0]) / 2e-10
            assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)
    with pytest.raises(SpecError, match="pass ramp"):  # the bound's noise term needs each warm-up LR
        lo.final_loss_grad(bound, post, float(ramp.sum()))


def test_reproduces_luo_400m_optimum_shortened():
    # Kept check (the full recipe, 10k Adam iterations from a constant LR, is the slow test
    # below): 500 iterations started from the best standard schedule reach the published
    # optimum's predicted loss within 1e-4 (measured 2.53330 vs official 2.53322) and its shape;
    # the sheet (§4.1) puts WSD 1-sqrt 10% at 3e-4..6e-4 above the optimum.
    r = lo.optimize_schedule(P400, T, PEAK, warmup_steps=W, iterations=500)
    assert r.predicted[0] == pytest.approx(2.53322, abs=1e-4)
    assert r.predicted[0] == pytest.approx(_full(P400, r.lrs, W), abs=1e-9)  # one convention
    post = r.lrs[W:]
    assert np.all(np.diff(post) <= 1e-18)  # non-increasing after warm-up
    assert 0.84 <= r.at_peak_fraction() <= 0.90
    assert 0.5e-6 < post[-1] < 3e-6  # ends near 0.4% of the peak, not at 10%
    # below every standard schedule under the same law (sheet table: WSD 1-sqrt 10% is 3e-4-6e-4 worse)
    assert all(r.predicted[0] <= v[0] for v in r.standard.values())
    assert 3e-4 < r.standard["wsd-10%-1-sqrt"][0] - r.predicted[0] < 1e-3


@pytest.mark.slow
def test_reproduces_luo_400m_optimum_full_recipe():
    r = lo.optimize_schedule(P400, T, PEAK, warmup_steps=W, init="constant", iterations=10_000)
    assert r.predicted[0] == pytest.approx(2.53322, abs=2.5e-4)
    assert 0.85 <= r.at_peak_fraction() <= 0.90


@pytest.mark.parametrize("law", [
    MultiPowerLaw(L0=2.5, A=0.3, alpha=0.5, B=400, C=2.0, beta=0.6, gamma=0.5),
    AnnealingLaw(L0=2.0, A=0.5, alpha=0.6, C=150.0, lam=0.99),
    BoundLaw(L0=2.0, A=0.5, alpha=0.6, B=300.0),
    BoundLaw(L0=2.0, A=0.5, alpha=0.6, B=300.0, C=0.5, tau=0.2),
])
def test_optimum_beats_every_standard_schedule(law):
    n, w, peak = 1500, 75, 1e-3
    r = lo.optimize_schedule(law, n, peak, warmup_steps=w, iterations=400)
    post = r.lrs[w:]
    assert np.all(np.diff(post) <= 1e-18) and post[0] == peak and post.min() >= lo.MIN_LR
    for name, d in lo.STANDARD.items():  # recomputed through law.predict, not the optimiser
        spec = schedules.spec_from({**d, "warmup": w / n})
        lrs = peak * np.asarray(schedules.values(schedules.build(spec, n), n))
        assert r.predicted[0] <= _full(law, lrs, w) + 1e-12, name


def test_piecewise_spec_round_trips_and_repredicts():
    law = MultiPowerLaw(L0=2.5, A=0.3, alpha=0.5, B=400, C=2.0, beta=0.6, gamma=0.5)
    n, w, peak = 2000, 100, 1e-3
    r = lo.optimize_schedule(law, n, peak, warmup_steps=w, iterations=300)
    again = schedules.spec_from(json.loads(json.dumps(r.spec.to_dict())))
    assert again == r.spec
    lrs = peak * np.asarray(schedules.values(schedules.build(again, n), n))
    np.testing.assert_allclose(lrs[:w], r.lrs[:w], rtol=1e-9)  # the same warm-up ramp
    assert abs(_full(law, lrs, w) - r.predicted[0]) < 1e-4
    assert abs(r.spec_predicted[0] - r.predicted[0]) < 1e-4


def test_worst_case_over_an_ensemble():
    a = MultiPowerLaw(L0=2.5, A=0.3, alpha=0.5, B=400, C=2.0, beta=0.6, gamma=0.5)
    b = dataclasses.replace(a, B=300, C=0.5)
    n, peak = 1000, 1e-3
    r = lo.optimize_schedule([a, b], n, peak, objective="worst", iterations=300)
    worst = max(r.predicted)
    for v in r.standard.values():
        assert worst <= max(v) + 1e-12


def test_a_law_extrapolated_below_its_floor_is_flagged():
    # a degenerate multi-power fit (huge B, tiny beta, gamma > 1, as fitted on two short
    # logreg runs) rewards any LR drop without bound: the "optimum" predicts a loss below L0
    bad = MultiPowerLaw(L0=0.32, A=0.24, alpha=0.5, B=3e8, C=1.3e-8, beta=1e-4, gamma=1.59)
    r = lo.optimize_schedule(bad, 1800, 0.03, warmup_steps=89, iterations=300)
    assert r.predicted[0] < bad.L0 and "extrapolated" in r.suspect
    ok = lo.optimize_schedule(P400, 2400, PEAK, warmup_steps=216, iterations=100)
    assert ok.suspect == ""


def test_bad_input():
    with pytest.raises(SpecError, match="objective"):
        lo.optimize_schedule(P400, 100, PEAK, objective="median")
    with pytest.raises(SpecError, match="warmup_steps"):
        lo.optimize_schedule(P400, 100, PEAK, warmup_steps=100)
    with pytest.raises(SpecError, match="peak_lr"):
        lo.optimize_schedule(P400, 100, -1.0)
    with pytest.raises(SpecError, match="include-warmup"):
        lo.optimize_schedule(AnnealingLaw(L0=2, A=1, alpha=0.5, C=1, include_warmup=True), 100, PEAK)
