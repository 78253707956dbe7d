"""Tests for steplab.optim.optimizers: registry, parameter groups, kwargs, train/eval modes.

Schedule-free wiring is checked against the ``schedulefree`` package itself (same
trajectory, bit for bit) and against the averaged iterate its README documents.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from steplab.errors import SpecError
from steplab.optim import modes as M
from steplab.optim import optimizers as O

SELF_TUNED = {"prodigy", "dadapt-adam", "dog", "ldog", "sgd-schedulefree"}


def tiny(seed: int = 0, bn: bool = False, plain: bool = False) -> nn.Module:
    """A 4-8-1 MLP with a norm layer (``plain``: none, for continual backprop, whose hidden
    units are rows of a Linear followed by a parameter-free activation and the next Linear)."""
    torch.manual_seed(seed)
    if plain:
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    norm = nn.BatchNorm1d(8) if bn else nn.LayerNorm(8)
    return nn.Sequential(nn.Linear(4, 8), norm, nn.Tanh(), nn.Linear(8, 1))


def data(n: int = 10, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g)) for _ in range(n)]


def step(model: nn.Module, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    opt.zero_grad()
    x, y = batch
    loss = ((model(x) - y) ** 2).mean()
    loss.backward(create_graph=O.needs_graph(opt))  # UPGD's second-order utility
    if O.needs_loss(opt):  # Polyak-type steps (steplab.optim.polyak) read the loss
        opt.step(lambda: loss)
    else:
        opt.step()


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ----------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", O.optimizer_names())
def test_every_registry_name_builds_and_steps(name: str) -> None:
    model = tiny(plain=name.startswith("cbp"))
    before = flat(model).clone()
    opt = O.build_optimizer(name, model, lr=1.0 if name in SELF_TUNED else 1e-2, weight_decay=0.01)
    for batch in data(8):  # RAdam-SF's silent phase skips the first steps
        step(model, opt, batch)
    with M.eval_mode(opt):
        after = flat(model)
        assert torch.isfinite(after).all()
        assert not torch.equal(after, before)
    assert name in O.describe(name)
    assert isinstance(O.is_adam_family(name), bool)


def test_expected_registry_and_families() -> None:
    names = set(O.optimizer_names())
    assert {"sgd", "adam", "adamw", "nadamw", "radam", "sgd-schedulefree", "adamw-schedulefree",
            "radam-schedulefree", "lion", "prodigy", "dadapt-adam", "adabelief", "adan", "dog"} <= names
    assert O.is_adam_family("adamw") and O.is_adam_family("lion") and O.is_adam_family("adamw-schedulefree")
    assert not O.is_adam_family("sgd") and not O.is_adam_family("dog") and not O.is_adam_family("sgd-schedulefree")


def test_param_groups_exempt_biases_and_norms() -> None:
    model = tiny()
    opt = O.build_optimizer("adamw", model, 1e-3, weight_decay=0.1)
    by_id = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert by_id[id(p)] == (0.1 if p.ndim >= 2 else 0.0), name
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))


def test_param_groups_single_group_when_no_decay_or_disabled() -> None:
    model = tiny()
    assert len(O.build_optimizer("adamw", model, 1e-3).param_groups) == 1
    opt = O.build_optimizer("adamw", model, 1e-3, weight_decay=0.1, no_decay_bias_norm=False)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1]


def test_frozen_params_are_left_out() -> None:
    model = tiny()
    model[0].weight.requires_grad_(False)
    opt = O.build_optimizer("sgd", model, 1e-3, weight_decay=0.1)
    assert all(p is not model[0].weight for g in opt.param_groups for p in g["params"])


def test_import_path_bring_your_own() -> None:
    model = tiny()
    opt = O.build_optimizer("torch.optim:Adagrad", model, 1e-2, weight_decay=1e-4, lr_decay=0.0)
    assert type(opt) is torch.optim.Adagrad
    step(model, opt, data(1)[0])
    assert O.is_adam_family("torch.optim:Adagrad")
    with pytest.raises(SpecError, match="cannot import"):
        O.build_optimizer("torch.optim:NoSuchThing", model, 1e-2)
    with pytest.raises(SpecError, match="not a torch.optim.Optimizer"):
        O.build_optimizer("torch.nn:Linear", model, 1e-2)


def test_unknown_name_is_one_line_spec_error() -> None:
    with pytest.raises(SpecError) as e:
        O.build_optimizer("adamx", tiny(), 1e-3)
    msg = str(e.value)
    assert "\n" not in msg and "'adamx'" in msg and "steplab algorithms optimizers" in msg


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("lion", {"betaz": (0.9, 0.99)}, "no parameter 'betaz'"),  # pytorch_optimizer would swallow it
        ("adamw", {"nesterov": True}, "no parameter 'nesterov'"),
        ("sgd", {"nesterov": True}, "rejected"),  # torch: nesterov needs momentum
        ("adamw", {"betas": (1.5, 0.9)}, "rejected"),
        ("adamw", {"beta1": 0.9, "one_minus_beta1": 0.1}, "not both"),
        ("sgd", {"beta2": 0.99}, "no second beta"),
        ("dog", {"beta1": 0.9}, "neither betas nor momentum"),
    ],
)
def test_bad_kwargs_are_one_line_spec_errors(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match) as e:
        O.build_optimizer(name, tiny(), 1e-3, **kwargs)
    assert "\n" not in str(e.value) and repr(name) in str(e.value)


def test_lr_and_weight_decay_are_not_kwargs() -> None:
    with pytest.raises(SpecError, match="own setting"):
        O.resolve_kwargs("adamw", {"weight_decay": 0.1})


def test_negative_lr_or_weight_decay() -> None:
    with pytest.raises(SpecError, match="lr"):
        O.build_optimizer("adamw", tiny(), -1.0)
    with pytest.raises(SpecError, match="weight_decay"):
        O.build_optimizer("adamw", tiny(), 1e-3, weight_decay=float("nan"))


def test_beta_convenience_kwargs() -> None:
    opt = O.build_optimizer("adamw", tiny(), 1e-3, beta1=0.8, one_minus_beta2=0.01)
    assert opt.defaults["betas"] == pytest.approx((0.8, 0.99))
    opt = O.build_optimizer("adan", tiny(), 1e-3, beta2=0.9)  # three betas: the third is kept
    assert opt.defaults["betas"] == pytest.approx((0.98, 0.9, 0.99))
    opt = O.build_optimizer("sgd", tiny(), 1e-3, one_minus_beta1=0.1, nesterov=True)
    assert opt.defaults["momentum"] == pytest.approx(0.9) and opt.defaults["nesterov"]
    opt = O.build_optimizer("adamw", tiny(), 1e-3, betas=[0.5, 0.9], beta2=0.95)
    assert opt.defaults["betas"] == pytest.approx((0.5, 0.95))


def test_nadamw_is_decoupled_with_constant_momentum() -> None:
    """AlgoPerf's NAdamW uses a constant beta1 (Choi et al. 2019, Table 1); torch's NAdam
    would ramp mu_t up from beta1/2. steplab sets momentum_decay=inf: mu_product = beta1^t."""
    model = tiny()
    opt = O.build_optimizer("nadamw", model, 1e-3, weight_decay=0.1)
    assert opt.defaults["decoupled_weight_decay"]
    for batch in data(4):
        step(model, opt, batch)
    assert float(opt.state[model[0].weight]["mu_product"]) == pytest.approx(0.9**4)


def test_modes_are_noops_for_plain_optimizers() -> None:
    model = tiny()
    opt = O.build_optimizer("adamw", model, 1e-3)
    before = flat(model).clone()
    with M.eval_mode(opt):
        assert torch.equal(flat(model), before)
    M.train_mode(opt)
    assert not M.is_schedule_free(opt) and not M.has_modes(opt)
    M.refresh_batchnorm(tiny(bn=True), opt, data(2))  # no modes: no-op, no error


# ----------------------------------------------------------------------------------
# schedule-free: steplab's wiring == the package's own trajectory
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls_name", "kw"),
    [
        ("adamw-schedulefree", "AdamWScheduleFree", {"betas": (0.9, 0.999)}),
        ("sgd-schedulefree", "SGDScheduleFree", {"momentum": 0.9}),
        ("radam-schedulefree", "RAdamScheduleFree", {"betas": (0.9, 0.999)}),
    ],
)
def test_schedulefree_matches_package_trajectory(name: str, cls_name: str, kw: dict) -> None:
    import schedulefree

    lr, wd = (0.5, 1e-3) if name.startswith("sgd") else (1e-2, 0.05)
    ours_model, ref_model = tiny(), tiny()
    ours = O.build_optimizer(name, ours_model, lr, weight_decay=wd, **kw)
    assert M.is_schedule_free(ours) and ours.param_groups[0]["train_mode"]
    groups = [
        {"params": [p for p in ref_model.parameters() if p.ndim >= 2], "weight_decay": wd},
        {"params": [p for p in ref_model.parameters() if p.ndim < 2], "weight_decay": 0.0},
    ]
    ref = getattr(schedulefree, cls_name)(groups, lr=lr, weight_decay=wd, **kw)
    ref.train()
    for i, batch in enumerate(data(12)):
        step(ours_model, ours, batch)
        step(ref_model, ref, batch)
        if i % 4 == 3:  # evaluate in the middle of training
            ref.eval()
            with M.eval_mode(ours):
                assert not ours.param_groups[0]["train_mode"]
                assert torch.equal(flat(ours_model), flat(ref_model))
            ref.train()
            assert ours.param_groups[0]["train_mode"]
        assert torch.equal(flat(ours_model), flat(ref_model))


def test_eval_mode_gives_the_documented_average_x() -> None:
    """README: params hold y in train mode and x in eval mode, where (lr constant, r=0,
    no warm-up) x_T is the uniform average of z_1..z_T. Fails if eval() is not called."""
    model = tiny()
    opt = O.build_optimizer("adamw-schedulefree", model, 1e-2)
    zs = []
    for batch in data(8):
        step(model, opt, batch)
        zs.append(torch.cat([opt.state[p]["z"].reshape(-1) for p in model.parameters()]).clone())
    x = torch.stack(zs).mean(0)
    y = flat(model).clone()
    assert not torch.allclose(y, x, atol=1e-5)  # train mode: params are y, not x
    with M.eval_mode(opt) as o:
        assert o is opt and opt.param_groups[0]["train_mode"] is False
        torch.testing.assert_close(flat(model), x, atol=1e-6, rtol=1e-5)
        # beta interpolation: y = beta1 x + (1 - beta1) z
        torch.testing.assert_close(y, 0.9 * x + 0.1 * zs[-1], atol=1e-6, rtol=1e-5)
    assert opt.param_groups[0]["train_mode"] is True
    torch.testing.assert_close(flat(model), y)


def test_eval_mode_plain_call_and_nesting() -> None:
    model = tiny()
    opt = O.build_optimizer("adamw-schedulefree", model, 1e-2)
    step(model, opt, data(1)[0])
    M.eval_mode(opt)
    assert not opt.param_groups[0]["train_mode"]
    with M.eval_mode(opt):  # already in eval: stays in eval afterwards
        pass
    assert not opt.param_groups[0]["train_mode"]
    with pytest.raises(Exception, match="train mode"):
        step(model, opt, data(1)[0])
    M.train_mode(opt)
    step(model, opt, data(1)[0])


def test_refresh_batchnorm_follows_readme_procedure() -> None:
    batches = data(6, seed=3)
    runs = []
    for use_helper in (True, False):
        model = tiny(bn=True)
        opt = O.build_optimizer("adamw-schedulefree", model, 1e-2)
        for batch in data(5):
            step(model, opt, batch)
        model.eval()
        if use_helper:
            M.refresh_batchnorm(model, opt, iter(batches), n=4)
            assert not opt.param_groups[0]["train_mode"] and not model.training
        else:  # schedulefree README, "Caveats"
            model.train()
            opt.eval()
            with torch.no_grad():
                for x, _ in batches[:4]:
                    model(x)
            model.eval()
        runs.append((flat(model).clone(), model[1].running_mean.clone(), model[1].running_var.clone()))
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)


def test_refresh_batchnorm_noop_without_batchnorm() -> None:
    model = tiny()
    opt = O.build_optimizer("adamw-schedulefree", model, 1e-2)
    step(model, opt, data(1)[0])
    before = flat(model).clone()
    M.refresh_batchnorm(model, opt, data(3))
    assert opt.param_groups[0]["train_mode"] and torch.equal(flat(model), before)


# ----------------------------------------------------------------------------------
# DoG: the dog-optimizer package + its polynomial-decay averager
# ----------------------------------------------------------------------------------
def test_dog_matches_package_with_averager() -> None:
    from dog import DoG, PolynomialDecayAverager

    ours_model, ref_model = tiny(), tiny()
    ours = O.build_optimizer("dog", ours_model, 1.0)
    ref = DoG(ref_model.parameters(), lr=1.0)
    averager = PolynomialDecayAverager(ref_model)
    for batch in data(6):
        step(ours_model, ours, batch)
        step(ref_model, ref, batch)
        averager.step()
    assert torch.equal(flat(ours_model), flat(ref_model))
    iterate = flat(ours_model).clone()
    with M.eval_mode(ours):
        assert torch.equal(flat(ours_model), flat(averager.averaged_model))
        assert not torch.equal(flat(ours_model), iterate)
        with pytest.raises(RuntimeError, match="eval mode"):
            step(ours_model, ours, data(1)[0])
    assert torch.equal(flat(ours_model), iterate)


def test_dog_without_averaging_has_noop_eval() -> None:
    model = tiny()
    opt = O.build_optimizer("dog", model, 1.0, average=False, reps_rel=1e-4)
    step(model, opt, data(1)[0])
    before = flat(model).clone()
    with M.eval_mode(opt):
        assert torch.equal(flat(model), before)


def test_default_kwargs_merge_registry_defaults() -> None:
    kw = O.default_kwargs("nadamw")
    assert kw["decoupled_weight_decay"] is True and kw["betas"] == (0.9, 0.999)
    assert O.default_kwargs("dadapt-adam")["weight_decouple"] is True
    assert "reps_rel" in O.default_kwargs("dog")


def test_models_are_not_shared_between_builds() -> None:
    model = tiny()
    a = O.build_optimizer("dog", model, 1.0)
    b = O.build_optimizer("dog", copy.deepcopy(model), 1.0)
    assert a.averager.model is model and b.averager.model is not model
