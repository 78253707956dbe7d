"""ALP-GMM (steplab.curricula.alp_gmm) against the facts of Portelas et al. 2019 and the
authors' code: the first 6 ALPs are 0, fits exactly every fit_rate episodes on the last
fit_rate rows with k chosen by the lowest AIC, random_task_ratio 1 is uniform, and a
learner whose progress is planted in [0.7, 0.9] gets that region sampled most."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.mixture import GaussianMixture

from steplab.curricula import TaskPool, build
from steplab.curricula.alp_gmm import ALPGMM, GroupALP, NearestALP


def test_first_six_alps_are_zero_then_nearest_earlier_task():
    alp = NearestALP(1)
    tasks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.21, 0.79]
    rewards = [0.1, 0.9, 0.3, 0.5, 0.2, 0.7, 0.4, 0.6]
    out = [alp(np.array([t]), r) for t, r in zip(tasks, rewards)]
    assert out[:6] == [0.0] * 6
    assert out[6] == pytest.approx(abs(0.4 - 0.9))  # nearest earlier task 0.2
    assert out[7] == pytest.approx(abs(0.6 - 0.2))  # nearest earlier task 0.8


def test_group_alp_matches_the_one_at_a_time_definition_in_batches():
    rng = np.random.default_rng(0)
    vectors = rng.random((12, 2))
    groups = rng.integers(0, 12, 200)  # repeats, also within a batch
    rewards = rng.random(200)
    slow = NearestALP(2)
    expected = [slow(vectors[g], r) for g, r in zip(groups, rewards)]
    fast = GroupALP(vectors)
    got = np.concatenate([fast(groups[i:i + 8], rewards[i:i + 8]) for i in range(0, 200, 8)])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert (got[:6] == 0).all()


def test_fits_exactly_every_fit_rate_on_the_last_rows_by_lowest_aic(monkeypatch):
    rng = np.random.default_rng(1)
    teacher = ALPGMM(2, fit_rate=250, seed=3)
    seen: list[np.ndarray] = []
    real_fit = ALPGMM._fit

    def spy(self, x):
        seen.append(x.copy())
        real_fit(self, x)

    monkeypatch.setattr(ALPGMM, "_fit", spy)
    tasks, alps = rng.random((600, 2)), rng.random(600) * 0.1
    tasks[:, 0] = np.where(alps > 0.05, 0.8 * tasks[:, 0], tasks[:, 0])
    for start in range(0, 600, 37):  # chunks that straddle the fit boundaries
        teacher.add(tasks[start:start + 37], alps[start:start + 37])
        if teacher.n < 250:
            assert teacher.means is None  # no fit before fit_rate episodes
    assert [n for n, _, _ in teacher.fits] == [250, 500]
    rows = np.column_stack([tasks, alps])
    for (n, k, score), x in zip(teacher.fits, seen):
        np.testing.assert_array_equal(x, rows[n - 250:n])
        aics = [GaussianMixture(j, covariance_type="full", random_state=3).fit(x).aic(x) for j in range(2, 11)]
        assert k == 2 + int(np.argmin(aics)) and score == pytest.approx(min(aics))


def test_random_task_ratio_one_is_uniform_even_after_fits():
    rng = np.random.default_rng(2)
    teacher = ALPGMM(1, fit_rate=250, random_task_ratio=1.0, seed=5)
    teacher.add(rng.random((500, 1)) * 0.2, rng.random(500))  # a GMM that would favour [0, 0.2]
    assert teacher.means is not None
    draws = teacher.sample(3000)[:, 0]
    assert stats.kstest(draws, "uniform").pvalue > 0.01
    assert draws.min() >= 0 and draws.max() <= 1


def test_bootstrap_is_uniform_before_the_first_fit():
    teacher = ALPGMM(1, fit_rate=250, random_task_ratio=0.0, seed=6)
    assert stats.kstest(teacher.sample(2000)[:, 0], "uniform").pvalue > 0.01


def _planted_teacher(seed: int) -> ALPGMM:
    """1000 episodes of a learner that improves only on tasks in [0.7, 0.9] of [0, 1]."""
    rng = np.random.default_rng(100 + seed)
    teacher, alp, competence = ALPGMM(1, fit_rate=250, seed=seed), NearestALP(1), 0.0
    for _ in range(1000):
        tau = teacher.sample(1)[0]
        inside = 0.7 <= tau[0] <= 0.9
        competence = min(1.0, competence + 0.002) if inside else competence
        reward = float(np.clip((competence if inside else 0.1) + rng.normal(0, 0.01), 0, 1))
        teacher.add(tau[None], np.array([alp(tau, reward)]))
    return teacher


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_progress_region_is_sampled_most(seed):
    teacher = _planted_teacher(seed)
    assert len(teacher.fits) == 4
    teacher.ratio = 0.0  # the non-random draws only
    x = teacher.sample(4000)[:, 0]
    assert np.mean((x >= 0.7) & (x <= 0.9)) > 0.5  # uniform would give 0.2


def test_sampler_on_a_pool_finds_the_planted_region():
    """The supervised adaptation: one episode per example, reward exp(-loss)."""
    n, batch, budget = 2000, 32, 150
    params = np.random.default_rng(0).random(n)
    region = (params >= 0.7) & (params <= 0.9)
    sampler = build("alp-gmm:fit_rate=320", TaskPool(params, params=params), budget, batch, 0)
    trained = 0.0
    late = []
    for t in range(budget):
        idx = sampler.sample(t)
        losses = np.where(region[idx], 2.0 * np.exp(-trained / 300.0), 1.0)
        trained += region[idx].sum()
        sampler.observe(t, idx, losses)
        if t >= budget // 2:
            late.append(region[idx].mean())
    assert sampler.state()["fits"] == budget * batch // 320
    assert np.mean(late) > 0.5


def test_sampler_reaches_every_member_of_a_tied_task():
    difficulty = np.repeat([0.0, 1.0, 2.0], 100)  # three task levels, 100 examples each
    sampler = build("alp-gmm", TaskPool(difficulty), 50, 64, 1)
    idx = np.concatenate([sampler.sample(t) for t in range(50)])
    assert len(np.unique(idx)) > 250  # not one representative per level
