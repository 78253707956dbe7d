"""Self-paced learning (Kumar et al. 2010) and Skill-it (Chen et al. 2023) samplers:
hand-computed Skill-it mixtures, the graph convention of the authors' code, the SPL
threshold and its non-decreasing selected fraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from steplab.curricula import TaskPool, build
from steplab.curricula.skill_it import graph_weights, skill_it_mixture
from steplab.errors import WorkloadError

# ---- Skill-it -------------------------------------------------------------------------------


def test_skill_it_mixtures_by_hand():
    s = np.array([6.0, 3.0, 3.0])
    np.testing.assert_allclose(skill_it_mixture(np.eye(3), s, 0.1), [0.4030, 0.2985, 0.2985], atol=1e-4)
    a = np.array([[1, 0.5, 0], [0, 1, 0], [0, 0.5, 1]])
    np.testing.assert_allclose(skill_it_mixture(a, s, 0.1), [0.4204, 0.2681, 0.3115], atol=1e-4)
    np.testing.assert_allclose(skill_it_mixture(np.eye(4), np.full(4, 2.7), 0.5), [0.25] * 4)


def test_graph_weights_follow_the_authors_convention():
    adjacency = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]])  # the addition graph
    np.testing.assert_array_equal(graph_weights(adjacency, 3), [[1, 0, 0], [0.5, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(graph_weights(np.zeros((2, 2)), 2), np.eye(2))
    np.testing.assert_array_equal(graph_weights(None, 3), np.eye(3))


def test_skill_it_sampler_recomputes_the_mixture_each_round_from_the_last_three_evals():
    tasks = np.repeat(np.arange(3), 100)
    graph = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]])  # -> A = [[1, .5, 0], [0, 1, 0], [0, .5, 1]]
    pool = TaskPool(np.zeros(300), tasks=tasks, skill_graph=graph)
    sampler = build("skill-it:eta=0.1,update_steps=10,eval_every=5", pool, 40, 64, 0)
    assert sampler.eval_every == 5
    a = np.array([[1, 0.5, 0], [0, 1, 0], [0, 0.5, 1]])
    np.testing.assert_allclose(sampler.state()["mixture"], skill_it_mixture(a, np.ones(3), 0.1), atol=1e-6)
    evals = {0: [9.0, 9.0, 9.0], 5: [2.0, 1.0, 1.0], 10: [2.0, 1.0, 1.0], 15: [2.0, 1.0, 1.0]}
    for t in range(20):
        sampler.sample(t)
        if t in evals:
            sampler.observe_eval(t, np.array(evals[t]))
        if t == 10:  # the round ending at step 10 saw the evals at 0 and 5
            expected = skill_it_mixture(a, np.array([11.0, 10.0, 10.0]), 0.1)
            np.testing.assert_allclose(sampler.state()["mixture"], expected, atol=1e-6)
    sampler.sample(20)  # window of 3: evals at 5, 10, 15 sum to (6, 3, 3)
    np.testing.assert_allclose(sampler.state()["mixture"], [0.4204, 0.2681, 0.3115], atol=1e-4)
    counts = np.bincount(np.concatenate([tasks[sampler.sample(t)] for t in range(21, 40)]), minlength=3)
    assert stats.chisquare(counts, np.array([0.4204, 0.2681, 0.3115]) * counts.sum()).pvalue > 0.001


def test_skill_it_rejects_a_wrong_eval_vector():
    sampler = build("skill-it", TaskPool(np.zeros(4), tasks=np.array([0, 1, 1, 0])), 10, 2, 0)
    with pytest.raises(WorkloadError, match="each of its 2 skills"):
        sampler.observe_eval(0, np.array([1.0, 2.0, 3.0]))


def test_skill_it_defaults_scale_with_the_budget():
    sampler = build("skill-it", TaskPool(np.arange(100.0)), 600, 8, 0)
    assert sampler.update_steps == 60 and sampler.eval_every == 20 and sampler.k == 10
    assert sampler.edges is not None and sampler.edges.size == 11


# ---- self-paced -----------------------------------------------------------------------------


def _spl_run(spec: str, n: int = 1000, batch: int = 20, budget: int = 400):
    loss = np.linspace(0.1, 3.0, n)[np.random.default_rng(0).permutation(n)]
    sampler = build(spec, TaskPool(np.zeros(n)), budget, batch, 0)
    fractions, lambdas, batches = [], [], []
    for t in range(budget):
        idx = sampler.sample(t)
        sampler.observe(t, idx, loss[idx])
        fractions.append(sampler.state()["pool_fraction"])
        lambdas.append(sampler.state()["lambda"])
        batches.append(idx)
    return loss, sampler, fractions, lambdas, batches


def test_spl_fraction_is_non_decreasing_and_reaches_one_by_end():
    loss, sampler, fractions, lambdas, batches = _spl_run("self-paced:q0=0.3,mu=1.2,period=20,end=0.75")
    assert sampler.warmup == 40  # min(ceil(1000 / 20), ceil(0.1 * 400))
    assert fractions[:40] == [None] * 40  # the warm-up measures losses, selects nothing
    assert all(b >= a for a, b in zip(fractions[40:], fractions[41:]))
    assert fractions[300] == 1.0 and lambdas[300] is None and lambdas[299] is not None
    assert fractions[40] < 0.5


def test_spl_threshold_is_the_q0_quantile_growing_by_mu_each_period():
    loss, sampler, fractions, lambdas, batches = _spl_run("self-paced:q0=0.3,mu=1.2,period=20,end=0.75")
    seen = np.unique(np.concatenate(batches[:40]))
    assert seen.size == 800  # 40 warm-up batches of 20 walk a permutation
    lam0 = np.quantile(loss[seen], 0.3)
    for t in (40, 59, 60, 100, 299 - 1):
        assert lambdas[t] == pytest.approx(lam0 * 1.2 ** ((t - 40) // 20))
    # first selection: the seen examples under lambda_0 and the 200 unseen ones (counted easy)
    assert fractions[40] == pytest.approx((np.sum(loss[seen] <= lam0) + 200) / 1000)
    known = np.isin(batches[40], seen)
    assert (loss[batches[40][known]] <= lam0).all()
    # every batch comes from the m_t examples with the lowest loss estimates (last seen loss)
    estimate = np.full(loss.size, -np.inf)
    for t in range(300):
        if t >= 40:
            m = round(fractions[t] * loss.size)
            assert (estimate[batches[t]] <= np.sort(estimate)[m - 1]).all()
        estimate[batches[t]] = loss[batches[t]]


def test_spl_defaults_follow_the_budget():
    sampler = build("self-paced", TaskPool(np.zeros(4000)), 1000, 64, 0)
    assert sampler.period == 50 and sampler.warmup == math.ceil(4000 / 64) and sampler.end_step == 800
