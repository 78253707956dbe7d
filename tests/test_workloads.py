"""Tests for the built-in workloads (``steplab.workloads.*``): contract, determinism, learning."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from steplab import workloads
from steplab.errors import WorkloadError
from steplab.workloads import Workload

CPU = torch.device("cpu")
FAMILIES = ["charlm", "digits-mlp", "logreg", "modarith", "teacher-student"]
ALL = [
    (name, variant)
    for name in FAMILIES
    for variant in sorted(workloads.workload_class(name).variants)
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _first(wl: Workload, seed: int, n: int = 3) -> list:
    return list(itertools.islice(wl.batches(seed, CPU), n))


def _same_batches(a: list, b: list) -> bool:
    def flat(batches: list) -> list[torch.Tensor]:
        return [t for x in batches for t in (x if isinstance(x, tuple) else (x,))]

    return all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(flat(a), flat(b), strict=True)
    )


def _same_weights(m1: torch.nn.Module, m2: torch.nn.Module) -> bool:
    s1, s2 = m1.state_dict(), m2.state_dict()
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_registry_lists_the_five_families():
    assert set(FAMILIES) <= set(workloads.names())


@pytest.mark.parametrize("name,variant", ALL)
def test_builds_and_describes(name: str, variant: str):
    wl = workloads.get(name, variant)
    assert wl.key == (name if variant == "base" else f"{name}:{variant}")
    assert workloads.get(wl.key).variant == variant
    d = wl.describe()
    assert d["target"]["metric"].startswith("validation/")
    assert d["target"]["mode"] in ("max", "min")
    assert wl.batch_size > 0 and wl.eval_every > 0
    # 20-50 evaluations per budget (give or take one for rounding)
    assert 19 <= wl.budget_steps / wl.eval_every <= 51
    assert wl.description and wl.__doc__


@pytest.mark.parametrize("name,variant", ALL)
def test_default_baseline_resolves(name: str, variant: str):
    from steplab import algorithms

    wl = workloads.get(name, variant)
    algo = algorithms.get_algorithm(wl.default_algorithm)
    resolved = algo.with_hyperparameters(wl.default_hyperparameters)
    assert resolved.lr == wl.default_hyperparameters["lr"]


@pytest.mark.parametrize("name,variant", ALL)
def test_deterministic_init_and_batches(name: str, variant: str):
    wl = workloads.get(name, variant)
    assert _same_weights(wl.init_model(3), wl.init_model(3))
    assert not _same_weights(wl.init_model(3), wl.init_model(4))
    assert _same_batches(_first(wl, 3), _first(wl, 3))
    assert not _same_batches(_first(wl, 3), _first(wl, 4))


def test_init_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for name in FAMILIES:
        workloads.get(name).init_model(1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name,variant", ALL)
def test_loss_and_evaluate(name: str, variant: str):
    wl = workloads.get(name, variant)
    model = wl.init_model(0)
    batch = next(wl.batches(0, CPU))
    loss = wl.loss(model, batch)
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.requires_grad
    model.eval()
    metrics = wl.evaluate(model, CPU)
    model.train()
    assert wl.target.metric in metrics
    assert all(k.startswith("validation/") for k in metrics)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    # the untrained model is far from the target
    assert not wl.target.reached(metrics[wl.target.metric])


@pytest.mark.parametrize("name", FAMILIES)
def test_unknown_variant_raises_one_line(name: str):
    with pytest.raises(WorkloadError) as err:
        workloads.get(name, "no-such-variant")
    msg = str(err.value)
    assert "\n" not in msg and "no-such-variant" in msg and "base" in msg


def test_overrides():
    wl = workloads.get("digits-mlp", budget_steps=10)
    assert wl.budget_steps == 10
    assert wl.default_budget_steps > 10
    # the evaluation cadence follows an overridden budget (a suite's short runs)
    assert workloads.get("charlm", budget_steps=1200).eval_every == 60


def test_datasets_are_cached_and_fixed():
    from steplab.workloads import charlm, digits, modarith

    assert digits._data(CPU) is digits._data(CPU)
    x_tr, y_tr, x_va, y_va = digits._data(CPU)
    assert (len(x_tr), len(x_va)) == (1400, 397)
    assert torch.bincount(y_va).min() >= 35  # stratified: ~40 per class
    assert x_tr.mean().abs() < 1e-4  # standardized with training statistics
    tr, _, va, y = modarith._data(97, 0.3, CPU)
    assert len(tr) == round(0.3 * 97 * 97)
    assert torch.equal(y, (va[:, 0] + va[:, 1]) % 97)
    assert not set(map(tuple, tr.tolist())) & set(map(tuple, va.tolist()))
    train_ids, windows = charlm._data(CPU)
    text_len = len(charlm._text())
    assert abs(len(train_ids) - 0.9 * text_len) < 1000
    assert windows.shape == (charlm.N_EVAL, charlm.CONTEXT + 1)


def test_logreg_reference_optimum_matches_lbfgs():
    from steplab.workloads import logreg

    # the optimum is the same for every kappa (the problems are affine images of each
    # other); check the extremes
    for variant in ("base", "kappa1000"):
        assert logreg.optimum(variant) == pytest.approx(logreg.OPTIMUM, abs=2e-5)


def _train(wl: Workload, steps: int, lr: float, weight_decay: float = 0.0) -> tuple[float, float]:
    """(metric before, metric after) ``steps`` AdamW updates, 10-step warm-up then constant."""
    torch.manual_seed(0)
    model = wl.init_model(0)
    metric = wl.target.metric
    before = wl.evaluate(model, CPU)[metric]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: min(1.0, (k + 1) / 10))
    for batch in itertools.islice(wl.batches(0, CPU), steps):
        loss = wl.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return before, wl.evaluate(model, CPU)[metric]


@pytest.mark.parametrize(
    "name,steps,lr,wd,before_bound,after_bound",
    [
        ("digits-mlp", 200, 3e-3, 0.01, 0.2, 0.95),  # accuracy: chance -> > 95%
        ("logreg", 300, 3e-2, 0.0, 0.6, 0.375),  # loss: ~0.7 -> near L* = 0.358
        ("modarith", 300, 0.1, 1.0, 0.02, 0.9),  # accuracy: grokked within 300 steps
        ("teacher-student", 300, 0.1, 0.0, 0.9, 0.06),  # MSE: Var(y) = 1 -> < 0.06
        ("charlm", 200, 1e-2, 0.01, 4.0, 2.4),  # nats/char: ln(103) = 4.6 -> < 2.4
    ],
)
def test_short_training_improves_markedly(name, steps, lr, wd, before_bound, after_bound):
    wl = workloads.get(name)
    before, after = _train(wl, steps, lr, wd)
    if wl.target.mode == "max":
        assert before < before_bound and after > after_bound, (before, after)
    else:
        assert before > before_bound and after < after_bound, (before, after)
