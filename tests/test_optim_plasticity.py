"""Tests for the plasticity optimizers: UPGD (:mod:`steplab.optim.upgd`), L2 Init, spectral
regularization, shrink-and-perturb (:mod:`steplab.optim.regularized`) and their SGD/Adam
bases (:mod:`steplab.optim.base_update`). Continual backprop is in
``test_optim_plasticity_cbp.py``.

Expected values are computed by hand (the formula sheet's cases,
``shared/references/dynamics-plasticity-statistics.md`` §5–6), by torch's own optimizers, by
autograd, or by a re-derivation of the authors' update written in this file."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from steplab.errors import SpecError, WorkloadError
from steplab.optim import optimizers as O
from steplab.optim.base_update import BaseUpdate
from steplab.optim.regularized import (
    L2Init,
    ShrinkPerturb,
    SpectralReg,
    power_iteration,
    shrink_perturb,
)
from steplab.optim.upgd import UPGD
from steplab.training.loop import train_step

PLASTICITY = ["upgd", "upgd-np", "upgd-so", "cbp", "cbp-adam", "shrink-perturb", "l2init", "l2init-adam",
              "spectral", "spectral-adam"]


def _mlp(seed: int = 0, sizes: tuple[int, ...] = (3, 4, 2)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double()


def _batch(seed: int, n: int = 5, d: int = 3, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


def _param(*values: float) -> nn.Parameter:
    return nn.Parameter(torch.tensor(values, dtype=torch.float64))


# ----------------------------------------------------------------------------------
# UPGD: the formula sheet's hand-computed cases
# ----------------------------------------------------------------------------------
def test_upgd_hand_step_protecting() -> None:
    """sigma=0, beta=0, w=(1,-1,2), g=(-1,1,0.5): u=-g*w=(1,1,-1), max 1, s=sigmoid(u);
    w <- w - 0.1 g (1 - s) with 1 - sigmoid(1) = 0.2689414, 1 - sigmoid(-1) = 0.7310586."""
    w = _param(1.0, -1.0, 2.0)
    w.grad = torch.tensor([-1.0, 1.0, 0.5], dtype=torch.float64)
    UPGD([w], lr=0.1, beta_utility=0.0, sigma=0.0).step()
    expected = [1 + 0.1 * 0.2689414, -1 - 0.1 * 0.2689414, 2 - 0.1 * 0.5 * 0.7310586]
    assert w.detach().tolist() == pytest.approx(expected, abs=1e-7)


def test_upgd_max_utility_gets_a_fraction_of_its_gradient_and_zero_utility_half() -> None:
    w = _param(2.0, 0.0)
    w.grad = torch.tensor([-1.0, 3.0], dtype=torch.float64)  # u = (2, 0): max 2
    UPGD([w], lr=1.0, beta_utility=0.0, sigma=0.0).step()
    assert w[0].item() == pytest.approx(2.0 + 1.0 * (1 - 1 / (1 + math.exp(-1))), abs=1e-12)
    assert w[1].item() == pytest.approx(-3.0 * 0.5, abs=1e-12)


def test_upgd_non_protecting_without_noise_is_sgd_with_decoupled_decay() -> None:
    torch.manual_seed(3)
    w = nn.Parameter(torch.randn(4, 3, dtype=torch.float64))
    ref = w.detach().clone()
    opt = UPGD([w], lr=0.05, weight_decay=0.1, beta_utility=0.9, sigma=0.0, protect=False)
    for _ in range(3):
        g = torch.randn(4, 3, dtype=torch.float64)
        w.grad = g.clone()
        opt.step()
        ref = ref * (1 - 0.05 * 0.1) - 0.05 * g
    assert torch.allclose(w.detach(), ref, atol=1e-14)


def test_upgd_zero_gradient_leaves_no_nan() -> None:
    w = _param(1.0, -2.0, 0.5)
    w.grad = torch.zeros(3, dtype=torch.float64)
    UPGD([w], lr=0.1, beta_utility=0.999, sigma=0.0).step()  # max utility 0: clamped, s = 0.5
    assert w.detach().tolist() == [1.0, -2.0, 0.5]
    w.grad = torch.zeros(3, dtype=torch.float64)
    UPGD([w], lr=0.1, sigma=1.0).step()
    assert torch.isfinite(w).all()


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")
def test_upgd_second_order_utility_on_a_diagonal_quadratic() -> None:
    """L = sum a_i w_i^2 / 2: the Hessian is diag(a), so Hutchinson's z * (H z) = a exactly
    (z_i^2 = 1) and u = a w^2 / 2 - a w * w = -a w^2 / 2; beta=0, sigma=0."""
    a = torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64)
    w = _param(1.0, -0.5, 2.0)
    opt = UPGD([w], lr=0.1, beta_utility=0.0, sigma=0.0, utility="second")
    assert opt.needs_graph
    (0.5 * (a * w * w).sum()).backward(create_graph=True)
    g = (a * w).detach()
    u = -0.5 * a * w.detach() ** 2  # (-0.5, -0.5, -1): max -0.5 < 0, clamped to 1e-12
    s = torch.sigmoid(u / 1e-12)
    expected = w.detach() - 0.1 * g * (1 - s)
    opt.step()
    assert torch.allclose(w.detach(), expected, atol=1e-12)
    assert not w.grad.requires_grad  # the graph is dropped after the step


def test_upgd_second_order_without_the_graph_says_so() -> None:
    w = _param(1.0, 2.0)
    (w * w).sum().backward()
    with pytest.raises(RuntimeError, match="create_graph=True"):
        UPGD([w], utility="second").step()


def _authors_upgd_step(params: list[torch.Tensor], state: dict[int, dict], lr: float, wd: float,
                       beta: float, sigma: float, protect: bool) -> None:
    """The global UPGD step re-derived from mohmdelsayed/upgd @ 998f48b,
    core/optim/weight_upgd/first_order.py (FirstOrderGlobalUPGD, protect=True, and
    FirstOrderNonprotectingGlobalUPGD): a first pass updates every utility EMA and takes the
    max of the raw EMAs, a second pass draws randn_like per tensor (in order) and steps."""
    top = -math.inf
    for p in params:
        st = state.setdefault(id(p), {"t": 0, "u": torch.zeros_like(p)})
        st["t"] += 1
        st["u"] = beta * st["u"] + (1 - beta) * (-p.grad * p.detach())
        top = max(top, st["u"].max().item())
    with torch.no_grad():
        for p in params:
            st = state[id(p)]
            noise = torch.randn_like(p.grad) * sigma
            s = torch.sigmoid((st["u"] / (1 - beta ** st["t"])) / top)
            direction = (p.grad + noise) * (1 - s) if protect else p.grad + noise * (1 - s)
            p.mul_(1 - lr * wd).add_(direction, alpha=-lr)


@pytest.mark.parametrize("protect", [True, False])
def test_upgd_matches_the_authors_first_order_global_update(protect: bool) -> None:
    """steplab's UPGD and a re-derivation of the authors' FirstOrder(Nonprotecting)GlobalUPGD
    (mohmdelsayed/upgd @ 998f48b) on a 3-4-2 MLP, 5 steps, same noise seed each step."""
    ours, theirs = _mlp(1), _mlp(1)
    opt = UPGD(ours.parameters(), lr=0.1, weight_decay=0.01, beta_utility=0.9, sigma=0.1, protect=protect)
    state: dict[int, dict] = {}
    for t in range(5):
        batch = _batch(t)
        for model in (ours, theirs):
            model.zero_grad()
            _loss(model, batch).backward()
        torch.manual_seed(100 + t)
        opt.step()
        torch.manual_seed(100 + t)
        _authors_upgd_step(list(theirs.parameters()), state, 0.1, 0.01, 0.9, 0.1, protect)
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-12), t


# ----------------------------------------------------------------------------------
# the SGD / Adam bases
# ----------------------------------------------------------------------------------
class _Plain(BaseUpdate):
    def __init__(self, params, lr=1e-3, weight_decay=0.0, base="sgd", momentum=0.0, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "base": base, "momentum": momentum,
                                  "betas": tuple(betas), "eps": eps})


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_bases_equal_torch_sgd_and_adam(base: str) -> None:
    ours, ref = _mlp(2), _mlp(2)
    if base == "sgd":
        o1 = _Plain(ours.parameters(), lr=0.1, weight_decay=0.01, momentum=0.9)
        o2 = torch.optim.SGD(ref.parameters(), lr=0.1, weight_decay=0.01, momentum=0.9)
    else:
        o1 = _Plain(ours.parameters(), lr=0.01, weight_decay=0.01, base="adam", betas=(0.8, 0.99))
        o2 = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=0.01, betas=(0.8, 0.99))
    for t in range(6):
        for model, opt in ((ours, o1), (ref, o2)):
            opt.zero_grad()
            _loss(model, _batch(t)).backward()
            opt.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


# ----------------------------------------------------------------------------------
# L2 Init
# ----------------------------------------------------------------------------------
def test_l2init_no_pull_at_init_then_the_papers_sgd_step() -> None:
    w = _param(1.0, -2.0)
    theta0 = w.detach().clone()
    opt = L2Init([w], lr=0.1, l2_init=0.5)
    w.grad = torch.tensor([0.3, -0.1], dtype=torch.float64)
    opt.step()  # at theta_0 the pull is 0: plain SGD
    assert w.detach().tolist() == pytest.approx([1.0 - 0.03, -2.0 + 0.01], abs=1e-14)
    theta = w.detach().clone()
    g = torch.tensor([0.2, 0.4], dtype=torch.float64)
    w.grad = g.clone()
    opt.step()  # paper (App. A.3): (1 - a l) theta + a l theta_0 - a g
    assert torch.allclose(w.detach(), (1 - 0.05) * theta + 0.05 * theta0 - 0.1 * g, atol=1e-14)


def test_l2init_loss_convention_doubles_the_pull() -> None:
    w = _param(1.0, -2.0)
    theta0 = w.detach().clone()
    opt = L2Init([w], lr=0.1, l2_init=0.5, convention="loss")
    with torch.no_grad():
        w.add_(torch.tensor([0.5, 0.5], dtype=torch.float64))
    theta = w.detach().clone()
    g = torch.tensor([0.2, 0.4], dtype=torch.float64)
    w.grad = g.clone()
    opt.step()  # loss term l ||theta - theta_0||^2: (1 - 2 a l) theta + 2 a l theta_0 - a g
    assert torch.allclose(w.detach(), (1 - 0.1) * theta + 0.1 * theta0 - 0.1 * g, atol=1e-14)


def test_l2init_adam_normalizes_the_pull() -> None:
    ours, ref = _mlp(4), _mlp(4)
    init = [p.detach().clone() for p in ref.parameters()]
    o1 = L2Init(ours.parameters(), lr=0.05, base="adam", l2_init=0.1)
    o2 = torch.optim.Adam(ref.parameters(), lr=0.05)
    for t in range(4):
        for model, opt in ((ours, o1), (ref, o2)):
            opt.zero_grad()
            _loss(model, _batch(t)).backward()
        with torch.no_grad():
            for p, p0 in zip(ref.parameters(), init, strict=True):
                p.grad.add_(0.1 * (p - p0))
        o1.step()
        o2.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


# ----------------------------------------------------------------------------------
# spectral regularization
# ----------------------------------------------------------------------------------
def test_power_iteration_matches_the_matrix_2_norm() -> None:
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(100, 50, generator=g, dtype=torch.float64)
        u0 = nn.functional.normalize(torch.randn(100, generator=g, dtype=torch.float64), dim=0)
        sigma, _, _ = power_iteration(w, u0, 200)
        exact = torch.linalg.matrix_norm(w, 2)
        assert abs(sigma - exact) / exact < 1e-6


@pytest.mark.parametrize("penalty,power", [("power-minus-one-squared", 2.0), ("power-minus-one-squared", 1.0),
                                           ("deviation-power", 2.0), ("deviation-power", 3.0)])
def test_spectral_gradient_equals_autograd_of_the_penalty(penalty: str, power: float) -> None:
    """The penalty's gradient on [W | b] (u v^T times dR/dsigma) against autograd through
    torch.linalg.matrix_norm(., 2) of the bias-augmented matrix."""
    model = _mlp(5, (6, 5, 3))
    opt = SpectralReg(model.parameters(), model=model, lr=0.1, spectral=0.3, power=power, penalty=penalty,
                      warmup_iters=500)
    opt.before_step()
    for i, layer in enumerate(m for m in model if isinstance(m, nn.Linear)):
        w = layer.weight.detach().clone().requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)
        sigma = torch.linalg.matrix_norm(torch.cat([w, b[:, None]], dim=1), 2)
        r = 0.3 * ((sigma ** power - 1) ** 2 if penalty == "power-minus-one-squared" else (sigma - 1).abs() ** power)
        gw, gb = torch.autograd.grad(r, (w, b))
        assert opt.sigmas[i] == pytest.approx(sigma.item(), rel=1e-9)
        assert torch.allclose(opt.extra_grad({}, layer.weight), gw, atol=1e-8)
        assert torch.allclose(opt.extra_grad({}, layer.bias), gb, atol=1e-8)


def test_spectral_penalty_vanishes_at_sigma_one() -> None:
    layer = nn.Linear(2, 2).double()
    with torch.no_grad():  # [W | b] = [[0.6, 0, 0], [0, 0.8, 0.6]]: orthogonal rows of norm 0.6 and 1
        layer.weight.copy_(torch.tensor([[0.6, 0.0], [0.0, 0.8]], dtype=torch.float64))
        layer.bias.copy_(torch.tensor([0.0, 0.6], dtype=torch.float64))
    opt = SpectralReg(layer.parameters(), model=layer, lr=0.1, spectral=1.0, warmup_iters=100)
    opt.before_step()
    assert opt.sigmas[0] == pytest.approx(1.0, abs=1e-9)
    assert opt.extra_grad({}, layer.weight).abs().max() < 1e-8


def test_spectral_needs_layers() -> None:
    class Bare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))
    m = Bare()
    with pytest.raises(WorkloadError, match="nn.Linear or nn.Conv"):
        SpectralReg(m.parameters(), model=m)


# ----------------------------------------------------------------------------------
# shrink and perturb
# ----------------------------------------------------------------------------------
def test_shrink_perturb_dohare_form() -> None:
    """lop/algos/bp.py: SGD with L2 weight decay, then + sigma * N(0, 1) (not scaled by lr)."""
    w = _param(1.0, -2.0, 0.5)
    g = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    w.grad = g.clone()
    opt = ShrinkPerturb([w], lr=0.1, weight_decay=0.01, sigma=0.05)
    torch.manual_seed(7)
    opt.step()
    torch.manual_seed(7)
    xi = torch.randn(3, dtype=torch.float64)
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(w.detach(), w0 - 0.1 * (g + 0.01 * w0) + 0.05 * xi, atol=1e-14)


def test_shrink_perturb_upgd_form() -> None:
    """core/optim/shrink_and_perturb.py: (1 - lr wd) w - lr (g + sigma xi)."""
    w = _param(1.0, -2.0, 0.5)
    g = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    w.grad = g.clone()
    opt = ShrinkPerturb([w], lr=0.1, weight_decay=0.01, sigma=0.05, form="upgd")
    torch.manual_seed(7)
    opt.step()
    torch.manual_seed(7)
    xi = torch.randn(3, dtype=torch.float64)
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert torch.allclose(w.detach(), (1 - 0.001) * w0 - 0.1 * (g + 0.05 * xi), atol=1e-14)


def test_ash_adams_shrink_perturb_at_a_task_boundary() -> None:
    model, fresh = _mlp(0), _mlp(9)
    before = [p.detach().clone() for p in model.parameters()]
    shrink_perturb(model, 1.0, 0.0, fresh)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))
    shrink_perturb(model, 0.4, 0.1, fresh)
    for p, p0, pf in zip(model.parameters(), before, fresh.parameters(), strict=True):
        assert torch.allclose(p, 0.4 * p0 + 0.1 * pf, atol=1e-15)
    shrink_perturb(model, 0.0, 1.0, fresh)  # a fresh start
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters(), strict=True))
    with pytest.raises(SpecError, match="same parameters"):
        shrink_perturb(model, 0.4, 0.1, _mlp(0, (3, 5, 2)))


# ----------------------------------------------------------------------------------
# by name, through the train loop
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PLASTICITY)
def test_every_plasticity_optimizer_trains_by_name(name: str) -> None:
    model = _mlp(0, (3, 8, 8, 2))
    kwargs = {"maturity": 2, "replacement_rate": 0.2} if name.startswith("cbp") else {}
    opt = O.build_optimizer(name, model, lr=0.05, weight_decay=1e-3, **kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    params = list(model.parameters())
    batch = _batch(0, n=64)
    first = _loss(model, batch).item()
    for _ in range(40):
        train_step(_loss, model, batch, opt, sched, grad_clip=None, params=params,
                   needs_loss=O.needs_loss(opt), needs_graph=O.needs_graph(opt))
    last = _loss(model, batch).item()
    assert math.isfinite(last) and last < first, (first, last)
    assert name in O.describe(name)


def test_plasticity_kwargs_are_checked_by_name() -> None:
    with pytest.raises(SpecError, match="has no parameter 'sigmma'"):
        O.resolve_kwargs("upgd", {"sigmma": 0.1})
    with pytest.raises(SpecError, match="utility must be"):
        O.build_optimizer("upgd", _mlp(), 0.1, utility="third")
    with pytest.raises(SpecError, match="base must be"):
        O.build_optimizer("l2init", _mlp(), 0.1, base="rmsprop")
    assert O.default_kwargs("upgd-np")["protect"] is False
    assert O.default_kwargs("cbp-adam")["base"] == "adam"


@pytest.mark.parametrize("name", ["l2init", "spectral-adam", "upgd", "shrink-perturb"])
def test_state_dict_round_trip_continues_identically(name: str) -> None:
    a = _mlp(0)
    oa = O.build_optimizer(name, a, lr=0.05)
    for t in range(3):
        oa.zero_grad()
        _loss(a, _batch(t)).backward()
        oa.step()
    b = _mlp(0)
    b.load_state_dict(a.state_dict())
    ob = O.build_optimizer(name, b, lr=0.05)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))  # as Trainee.checkpoint (torch would alias tensors)
    for model, opt in ((a, oa), (b, ob)):
        opt.zero_grad()
        _loss(model, _batch(9)).backward()
        torch.manual_seed(1)
        opt.step()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
