"""Tests for steplab.optim.polyak (SPS_max, MoMo, ALR-SMAG) and their baselines.

First steps are compared with values computed by hand on f(x) = ||x||^2 / 2 from
x0 = (3, 4): f = 12.5, g = x, ||g||^2 = 25."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from steplab import algorithms, workloads
from steplab.errors import SpecError
from steplab.optim import optimizers
from steplab.optim.polyak import MoMo, PolyakMomentum, SPSMax
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial


def _point(*values: float) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))


def _half_sq(x: torch.Tensor, f_min: float = 0.0) -> torch.Tensor:
    return 0.5 * (x * x).sum() + f_min


def _step(opt: torch.optim.Optimizer, x: torch.nn.Parameter, f_min: float = 0.0) -> float:
    opt.zero_grad()
    loss = _half_sq(x, f_min)
    loss.backward()
    opt.step(lambda: loss)
    return float(loss.detach())


# ----------------------------------------------------------------------------------
# hand-computed steps
# ----------------------------------------------------------------------------------
def test_sps_first_step_by_hand() -> None:
    x = _point(3.0, 4.0)
    opt = SPSMax([x], lr=10.0, c=0.5)
    _step(opt, x)  # eta = 12.5 / (0.5 * 25) = 1: the exact minimizer of an isotropic quadratic
    assert opt.last_step_size == pytest.approx(1.0)
    assert x.detach().tolist() == pytest.approx([0.0, 0.0], abs=1e-12)

    x = _point(3.0, 4.0)
    opt = SPSMax([x], lr=0.4, c=0.5)  # the cap binds: eta = 0.4
    _step(opt, x)
    assert opt.last_step_size == pytest.approx(0.4)
    assert x.detach().tolist() == pytest.approx([1.8, 2.4])

    x = _point(3.0, 4.0)
    opt = SPSMax([x], lr=10.0, c=1.0, f_star=2.5)  # eta = (12.5 - 2.5) / 25 = 0.4
    _step(opt, x)
    assert x.detach().tolist() == pytest.approx([1.8, 2.4])


def test_sps_no_step_below_f_star_or_at_zero_gradient() -> None:
    x = _point(3.0, 4.0)
    opt = SPSMax([x], lr=10.0, f_star=20.0)  # loss 12.5 < f*: eta = max(0, .) = 0
    _step(opt, x)
    assert x.detach().tolist() == [3.0, 4.0] and opt.last_step_size == 0.0
    x = _point(0.0, 0.0)
    opt = SPSMax([x], lr=10.0, f_star=-1.0)  # g = 0: no NaN, no step
    _step(opt, x)
    assert x.detach().tolist() == [0.0, 0.0] and opt.last_step_size == 0.0


def test_momo_two_steps_and_f_star_estimate_by_hand() -> None:
    x = _point(3.0, 4.0)
    opt = MoMo([x], lr=1.0, momentum=0.9, online_f_star=True)
    _step(opt, x)
    # step 1: fbar = 12.5, d = g = (3, 4), gamma = <g, x> = 25, h = 12.5 + 25 - 25 = 12.5
    # tau = min(1, 12.5 / 25) = 0.5; lb = (h - tau ||d||^2 / 2) = 12.5 - 6.25 = 6.25
    assert opt.last_step_size == pytest.approx(0.5)
    assert x.detach().tolist() == pytest.approx([1.5, 2.0])
    assert opt.f_star_estimate == pytest.approx(6.25)
    _step(opt, x)
    # step 2 at x = (1.5, 2): f = 3.125; fbar = .9 * 12.5 + .1 * 3.125 = 11.5625
    # d = .9 (3, 4) + .1 (1.5, 2) = (2.85, 3.8); gamma = .9 * 25 + .1 * 6.25 = 23.125
    # <d, x> = 11.875 -> h = 0.3125 < lb = 6.25 -> reset lb = h / 2 = 0.15625
    # ||d||^2 = 22.5625 -> tau = (0.3125 - 0.15625) / 22.5625; lb = h - tau ||d||^2 / 2 = 0.234375
    tau = 0.15625 / 22.5625
    assert opt.last_step_size == pytest.approx(tau)
    assert x.detach().tolist() == pytest.approx([1.5 - tau * 2.85, 2.0 - tau * 3.8])
    assert opt.f_star_estimate == pytest.approx(0.234375)


def test_momo_fixed_lower_bound_keeps_f_star() -> None:
    x = _point(3.0, 4.0)
    opt = MoMo([x], lr=1.0, online_f_star=False, f_star=0.0)
    _step(opt, x)
    _step(opt, x)
    assert opt.f_star_estimate == 0.0
    # step 2 without the reset: tau = min(1, 0.3125 / 22.5625)
    assert opt.last_step_size == pytest.approx(0.3125 / 22.5625)


def test_polyak_momentum_two_steps_by_hand() -> None:
    x = _point(3.0, 4.0)
    opt = PolyakMomentum([x], lr=10.0, momentum=0.9, c=1.0)
    _step(opt, x)  # d = g: eta = 12.5 / 25 = 0.5
    assert x.detach().tolist() == pytest.approx([1.5, 2.0])
    _step(opt, x)  # d = .9 (3, 4) + (1.5, 2) = (4.2, 5.6), ||d||^2 = 49, f = 3.125
    eta = 3.125 / 49.0
    assert opt.last_step_size == pytest.approx(eta)
    assert x.detach().tolist() == pytest.approx([1.5 - eta * 4.2, 2.0 - eta * 5.6])


def test_weight_decay_is_decoupled_and_scaled_by_the_step() -> None:
    x = _point(3.0, 4.0)
    opt = SPSMax([{"params": [x], "weight_decay": 0.5}], lr=0.4, c=0.5)
    _step(opt, x)  # eta = 0.4: x <- (1 - 0.2) x - 0.4 g = 0.4 x
    assert x.detach().tolist() == pytest.approx([1.2, 1.6])


def test_missing_closure_is_a_clear_error() -> None:
    x = _point(3.0, 4.0)
    opt = SPSMax([x])
    _half_sq(x).backward()
    with pytest.raises(RuntimeError, match=r"opt.step\(lambda: loss\)"):
        opt.step()


def test_state_dict_round_trip_keeps_the_f_star_estimate() -> None:
    x = _point(3.0, 4.0)
    opt = MoMo([x])
    _step(opt, x)
    saved = copy.deepcopy(opt.state_dict())
    y = _point(*x.detach().tolist())
    other = MoMo([y])
    other.load_state_dict(saved)
    assert other.f_star_estimate == pytest.approx(6.25)
    _step(opt, x)
    _step(other, y)
    assert torch.equal(x.detach(), y.detach())


# ----------------------------------------------------------------------------------
# SPS on a quadratic with known f*: the linear rate of Loizou et al. 2021, Theorem 3.1
# ----------------------------------------------------------------------------------
def test_sps_converges_on_a_quadratic_at_its_rate() -> None:
    """f(x) = sum_i lam_i x_i^2 / 2 + f*, lam in [mu, L] = [1, 10], known f* = 3;
    deterministic (one function, so interpolation holds). With c = 1/2 the step is
    eta = 2 (f - f*) / ||g||^2 and, since <g, x - x*> = 2 (f - f*) on a quadratic, the
    distance to x* drops by exactly D_{k+1} = D_k - 4 (f_k - f*)^2 / ||g_k||^2, which is
    at most (1 - mu * min(1/L, gamma_b)) D_k (Loizou et al. 2021, Theorem 3.1, sigma = 0)."""
    lam = torch.tensor([1.0, 2.0, 5.0, 10.0], dtype=torch.float64)
    f_star, mu, big_l = 3.0, 1.0, 10.0
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 1.5], dtype=torch.float64))
    opt = SPSMax([x], lr=100.0, c=0.5, f_star=f_star)
    d0 = dist = float((x.detach() ** 2).sum())
    rate = 1 - mu * min(1 / big_l, 100.0)
    for k in range(1, 61):
        gap = float(0.5 * (lam * x.detach() ** 2).sum())
        gsq = float(((lam * x.detach()) ** 2).sum())
        opt.zero_grad()
        loss = 0.5 * (lam * x * x).sum() + f_star
        loss.backward()
        opt.step(lambda loss=loss: loss)
        new = float((x.detach() ** 2).sum())
        if k <= 25:  # later the gap f - f* is below 1e-4 and f - 3 - 3 loses digits
            assert opt.last_step_size == pytest.approx(2 * gap / gsq, rel=1e-9)
            assert new == pytest.approx(dist - 4 * gap**2 / gsq, rel=1e-9)
        assert new <= rate * dist * (1 + 1e-9)
        assert new <= rate**k * d0 * (1 + 1e-9)
        dist = new
    assert dist < 1e-9 * d0  # it does converge, faster than the worst case 0.9^60 = 1.8e-3


def test_sps_with_a_wrong_f_star_stalls() -> None:
    """The same kind of quadratic with f* = 3: told f* = 3, SPS converges; told f* = 0, the
    numerator never vanishes, the step stays near 2 * 3 / ||g||^2 and the stiff coordinate
    (lam = 10) oscillates around x* instead of converging."""

    def run(f_star: float) -> torch.Tensor:
        lam = torch.tensor([1.0, 10.0], dtype=torch.float64)
        x = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
        opt = SPSMax([x], lr=100.0, c=0.5, f_star=f_star)
        for _ in range(30):
            opt.zero_grad()
            loss = 0.5 * (lam * x * x).sum() + 3.0
            loss.backward()
            opt.step(lambda loss=loss: loss)
        return x.detach()

    assert float(run(3.0).abs().max()) < 1e-5
    assert float(run(0.0)[1].abs()) > 0.5


# ----------------------------------------------------------------------------------
# registry, baselines, train loop
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "cls"), [("sps", SPSMax), ("momo", MoMo), ("alr-smag", PolyakMomentum)])
def test_registry_builds_them(name: str, cls: type) -> None:
    model = torch.nn.Linear(3, 1)
    opt = optimizers.build_optimizer(name, model, 0.5, weight_decay=0.01)
    assert type(opt) is cls and optimizers.needs_loss(opt)
    assert not optimizers.is_adam_family(name)
    assert not optimizers.needs_loss(optimizers.build_optimizer("sgd", model, 0.1))
    with pytest.raises(SpecError, match="no parameter 'beta'"):
        optimizers.build_optimizer(name, model, 0.5, beta=0.9)


@pytest.mark.parametrize("name", ["sps", "momo", "polyak-momentum"])
def test_baselines_train_logreg_through_run_trial(name: str) -> None:
    wl = workloads.get("logreg", budget_steps=120)
    algo = algorithms.get_algorithm(name).resolved()
    r = run_trial(wl, algo, 0, config=TrainConfig(threads=1, stop_at_target=False))
    assert r.status == "budget", (r.status, r.message)
    assert 0.36 < r.final_metrics["validation/loss"] < 0.45  # from log 2 = 0.693 to near L* = 0.36
    again = run_trial(wl, algo, 0, config=TrainConfig(threads=1, stop_at_target=False))
    assert again.final_metrics["validation/loss"] == r.final_metrics["validation/loss"]


def test_diverging_polyak_run_is_a_recorded_outcome() -> None:
    wl = workloads.get("logreg", budget_steps=60)
    # a lower bound far below the loss makes every step the cap: lr 1e6 blows the logits up
    algo = algorithms.get_algorithm("sps").with_hyperparameters({"lr": 1e6, "optimizer.f_star": -1e6})
    r = run_trial(wl, algo, 0, config=TrainConfig(threads=1, stop_at_target=False))
    assert r.status == "diverged" and math.isinf(r.steps_to_target), (r.status, r.message)
    assert r.steps < 60
