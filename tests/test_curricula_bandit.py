"""The learning-progress bandit (steplab.curricula.bandit): Exp3.S against a hand-computed
update (Graves et al. 2017, Algorithm 1), the reward rescaling by reservoir quantiles, the
exploration floor, and a task with planted progress drawn most."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steplab.curricula import TaskPool, build
from steplab.curricula.bandit import Reservoir, exp3s_probabilities, exp3s_update, rescale


def test_one_exp3s_update_by_hand():
    # N = 3, w = 0, eps = 0.05, eta = 0.1, beta = 0, alpha = 0.01, arm 0, rescaled reward 1:
    # rhat = (3, 0, 0); w0' = log(0.99 e^0.3 + 0.005 * 2), w1' = log(0.99 + 0.005 (e^0.3 + 1))
    w = np.zeros(3)
    pi = exp3s_probabilities(w, 0.05)
    np.testing.assert_allclose(pi, [1 / 3] * 3)
    w2 = exp3s_update(w, 0, 1.0, pi, eta=0.1, beta=0.0, alpha=0.01)
    np.testing.assert_allclose(w2, [0.297405, 0.001748, 0.001748], atol=1e-6)
    assert w2[0] == pytest.approx(math.log(0.99 * math.exp(0.3) + 0.01))
    np.testing.assert_allclose(exp3s_probabilities(w2, 0.05), [0.398486, 0.300757, 0.300757], atol=1e-6)


def test_update_is_invariant_to_a_shift_and_stable_for_large_weights():
    w = np.array([1000.0, 999.0, 998.0])
    pi = exp3s_probabilities(w, 0.05)
    a = exp3s_update(w, 1, -1.0, pi, eta=0.5, beta=0.1, alpha=0.2)
    b = exp3s_update(w - 1000.0, 1, -1.0, pi, eta=0.5, beta=0.1, alpha=0.2)
    np.testing.assert_allclose(a - 1000.0, b, atol=1e-9)
    assert np.isfinite(a).all()


def test_rescaling_by_the_20_80_quantiles():
    reservoir = Reservoir(1000, np.random.default_rng(0))
    for v in np.arange(1, 101) / 100:  # 0.01 .. 1.00
        reservoir.add(v)
    lo, hi = reservoir.quantiles()
    assert (lo, hi) == pytest.approx((0.208, 0.802))
    assert rescale(0.5, lo, hi) == pytest.approx(-0.01684, abs=1e-5)
    assert rescale(0.1, lo, hi) == -1.0 and rescale(0.9, lo, hi) == 1.0
    assert rescale(0.3, 0.3, 0.3) == 0.0
    raw = np.random.default_rng(3).exponential(size=500)
    assert all(-1.0 <= rescale(v, lo, hi) <= 1.0 for v in raw)


def test_reservoir_keeps_a_uniform_sample_of_bounded_size():
    means = []
    for seed in range(20):
        reservoir = Reservoir(100, np.random.default_rng(seed))
        for v in range(10_000):
            reservoir.add(float(v))
        assert reservoir.values.size == 100 and reservoir.seen == 10_000
        means.append(reservoir.values.mean())
    # the mean of 100 uniform draws from 0..9999 has sd 2887 / 10; of 20 such means, / sqrt(20)
    assert abs(np.mean(means) - 4999.5) < 4 * 288.7 / math.sqrt(20)


def _run(sampler, tasks, steps, rng, progress_task=None):
    visits = np.zeros(tasks.max() + 1)
    for t in range(steps):
        idx = sampler.sample(t)
        arm = int(tasks[idx[0]])
        assert (tasks[idx] == arm).all()  # one task per batch (Graves et al.)
        visits[arm] += 1
        loss = 1.0 + 0.01 * rng.standard_normal(idx.size)
        if arm == progress_task:
            loss = loss + 2.0 * math.exp(-visits[arm] / 400.0) * (1 + 0.3 * rng.standard_normal())
        sampler.observe(t, idx, loss)
        pi = np.array(sampler.state()["probabilities"])
        assert (pi >= 0.05 / pi.size - 1e-12).all() and pi.sum() == pytest.approx(1.0, abs=1e-5)
    return visits


def test_bandit_draws_the_task_with_planted_progress_most():
    tasks = np.repeat(np.arange(4), 50)
    sampler = build("lp-bandit:eta=0.02", TaskPool(np.zeros(200), tasks=tasks), 1500, 8, 0)
    visits = _run(sampler, tasks, 1500, np.random.default_rng(1), progress_task=2)
    assert visits.argmax() == 2 and visits[2] > 0.4 * visits.sum()


def test_bandit_sampler_applies_exp3s_with_the_rescaled_reward():
    tasks = np.repeat(np.arange(3), 10)
    sampler = build("lp-bandit:eta=0.1,alpha=0.01", TaskPool(np.zeros(30), tasks=tasks), 50, 4, 0)
    arms, pis, losses = [], [], []
    w = np.zeros(3)
    last = {}
    raw = []
    for t in range(12):
        pi = exp3s_probabilities(w, 0.05)
        idx = sampler.sample(t)
        arm = int(tasks[idx[0]])
        loss = 1.0 / (t + 1)
        sampler.observe(t, idx, np.full(4, loss))
        if arm in last:  # the hand-made twin: |loss change since the arm's last draw|, rescaled
            raw.append(abs(loss - last[arm]))
            lo, hi = np.quantile(raw, [0.2, 0.8])
            w = exp3s_update(w, arm, rescale(raw[-1], lo, hi), pi, eta=0.1, beta=0.0, alpha=0.01)
        last[arm] = loss
        arms.append(arm), pis.append(pi), losses.append(loss)
        np.testing.assert_allclose(sampler.state()["probabilities"], exp3s_probabilities(w, 0.05), atol=1e-6)
    assert sampler.state()["rounds"] == len(raw) > 0


def test_tasks_come_from_difficulty_bins_without_task_ids():
    difficulty = np.arange(1000.0)
    sampler = build("lp-bandit:bins=5", TaskPool(difficulty), 20, 16, 0)
    for t in range(20):
        idx = sampler.sample(t)
        assert len(set((difficulty[idx] // 200).tolist())) == 1  # one quantile bin per batch
