"""Fixed curricula and pacing (steplab.curricula.fixed / pacing): hand-computed pool sizes
(Hacohen & Weinshall's exponential pacing, Platanios et al.'s linear and root competence),
Kesgin & Amasyali's cyclic sequence, uniform as the exact no-op control, orderings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from steplab.curricula import TaskPool, build, cyclic_fractions, pacing_fraction, pacing_size
from steplab.errors import SpecError


def test_exponential_pacing_pool_sizes_of_hacohen_weinshall():
    g = pacing_size(2500, "exp", start=0.04, end_steps=1, inc=1.9, step_len=100)
    sizes = [g(t) for t in range(0, 800)]
    assert [sizes[t] for t in range(0, 700, 100)] == [100, 190, 361, 686, 1304, 2477, 2500]
    assert set(sizes[:100]) == {100} and set(sizes[600:]) == {2500}


def test_exp_pacing_derives_its_step_length_from_end():
    # start 0.04, inc 1.9: 0.04 * 1.9**5 < 1 <= 0.04 * 1.9**6, so 6 jumps over E = 600 updates
    g = pacing_size(2500, "exp", start=0.04, end_steps=600, inc=1.9, step_len=0)
    assert [g(t) for t in (0, 99, 100, 599, 600)] == [100, 100, 190, 2477, 2500]


def test_linear_root_and_step_pacing_by_hand():
    lin = pacing_fraction("linear", start=0.2, end_steps=100)
    assert [lin(t) for t in (0, 50, 100, 200)] == pytest.approx([0.2, 0.6, 1.0, 1.0])
    root = pacing_fraction("root", start=0.2, end_steps=100)
    assert root(0) == pytest.approx(0.2) and root(100) == 1.0
    assert root(50) == pytest.approx(math.sqrt(0.04 + 0.96 * 0.5))
    assert root(10) > lin(10)  # the root pace grows faster early (Platanios et al. 2019, fig. 2)
    step = pacing_fraction("step", start=0.2, end_steps=100, stages=4)
    assert [step(t) for t in (0, 24, 25, 50, 99, 100)] == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.8, 1.0])
    g = pacing_size(1000, "linear", start=0.2, end_steps=100)
    assert [g(0), g(50), g(100)] == [200, 600, 1000]
    with pytest.raises(SpecError, match="unknown pacing"):
        pacing_fraction("cubic", start=0.5, end_steps=10)


def test_cyclic_sequence_of_kesgin_amasyali():
    s = cyclic_fractions(0.25, 1.0, 0.5, 30)
    assert len(s) == 54 and sum(s) == 30.0
    assert s[:8] == [0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 1.0, 0.5]
    with pytest.raises(SpecError, match="alpha"):
        cyclic_fractions(0.25, 1.0, 1.5, 3)


def test_uniform_reproduces_the_plain_generator_exactly():
    pool = TaskPool(np.zeros(4000))
    sampler = build("uniform", pool, 50, 64, 7)
    ref = np.random.default_rng(7)
    for t in range(50):
        np.testing.assert_array_equal(sampler.sample(t), ref.integers(0, 4000, 64))
    again = sampler.sample(49)  # a repeated call returns the same batch, draws nothing
    np.testing.assert_array_equal(again, sampler.sample(49))


@pytest.mark.parametrize("name, lowest", [("easy-to-hard", True), ("hard-to-easy", False)])
def test_paced_batches_come_from_the_easiest_or_hardest_prefix(name, lowest):
    n, batch, budget = 1000, 16, 100
    difficulty = np.random.default_rng(1).permutation(n).astype(float)  # ranks 0..999
    sampler = build(f"{name}:pacing=linear,start=0.2,end=0.5", TaskPool(difficulty), budget, batch, 0)
    for t in range(budget):
        idx = sampler.sample(t)
        size = math.ceil(round(n * min(1.0, 0.2 + 0.8 * t / 50), 9))
        assert len(set(idx.tolist())) == batch  # without replacement within a batch
        d = difficulty[idx]
        assert (d < size).all() if lowest else (d >= n - size).all()
        assert sampler.state()["pool_fraction"] == pytest.approx(size / n)


def test_random_order_has_the_same_pacing_but_no_difficulty_trend():
    n = 2000
    difficulty = np.arange(n, dtype=float)
    sampler = build("random-order:start=0.1,end=0.9", TaskPool(difficulty), 200, 32, 3)
    first = np.concatenate([sampler.sample(t) for t in range(5)])
    assert sampler.state()["pool_fraction"] == pytest.approx(0.1 + 0.9 * 4 / 180, abs=1e-3)
    # the early pool is a random 10% of the data, not the easiest 10%: difficulties ~ uniform
    assert stats.kstest(difficulty[first] / n, "uniform").pvalue > 0.01


def test_ties_in_difficulty_are_broken_at_random():
    difficulty = np.repeat([0.0, 1.0], 500)  # easy half stored first
    sampler = build("easy-to-hard:start=0.2,end=1", TaskPool(difficulty), 100, 50, 0)
    idx = sampler.sample(0)
    assert (idx < 500).all() and idx.max() > 200  # a random fifth of the easy half, not indices 0..199


def test_cyclical_serves_epochs_of_cycling_size_with_easy_examples_favoured():
    n, batch = 1000, 50
    difficulty = np.linspace(0, 1, n)
    sampler = build("cyclical", TaskPool(difficulty), 200, batch, 0)
    seen, epochs = [], []
    for t in range(200):
        seen.append(sampler.sample(t))
        epochs.append(sampler.state()["epoch"])
    # epoch sizes 250, 500, 1000, 500, 250, ...: 2000 examples after 40 updates = 4 epochs
    assert epochs[4] == 0 and epochs[5] == 1 and epochs[14] == 1 and epochs[15] == 2
    flat = np.concatenate(seen)
    first = flat[:250]
    assert len(set(first.tolist())) == 250  # one epoch draws without replacement
    assert difficulty[first].mean() < 0.45  # easy-favoured (score 1 / (0.1 + d))
    full = flat[750:1750]  # the third epoch is the whole set
    assert sorted(full.tolist()) == list(range(n))


def test_pool_smaller_than_a_batch_still_gives_full_batches():
    pool = TaskPool(np.arange(5.0))
    for name in ("easy-to-hard", "hard-to-easy", "random-order", "cyclical"):
        sampler = build(name, pool, 10, 8, 0)
        for t in range(10):
            idx = sampler.sample(t)
            assert idx.shape == (8,) and idx.min() >= 0 and idx.max() < 5
