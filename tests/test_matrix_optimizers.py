"""The strongest baselines: Shampoo, SOAP and Muon from pytorch-optimizer (issue 9).

Checked against the package itself (the registry-built optimizer and the class constructed
by hand follow the same trajectory, bit for bit), on every workload's model, and Muon's
parameter split is counted by hand."""

from __future__ import annotations

import itertools

import pytest
import pytorch_optimizer as po
import torch
from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting
from torch import nn

from steplab import algorithms, workloads
from steplab.optim import optimizers as O
from steplab.optim.groups import muon_param_groups

NEW = ("shampoo", "soap", "muon")
CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 1, generator=g)
    out = []
    for _ in range(n):
        x = torch.randn(32, 4, generator=g)
        out.append((x, torch.tanh(x @ w)))
    return out


def train(model: nn.Module, opt: torch.optim.Optimizer, data: list) -> list[float]:
    losses = []
    for x, y in data:
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name,lr", [("shampoo", 3e-3), ("soap", 3e-3), ("muon", 0.02)])
def test_reduces_the_loss_of_a_small_regression(name, lr):
    model = mlp()
    opt = O.build_optimizer(name, model, lr, weight_decay=0.01, **({"adamw_lr": 3e-3} if name == "muon" else {}))
    losses = train(model, opt, batches(150))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.3 * first, (first, last)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("workload", ["charlm", "digits-mlp", "logreg", "modarith", "teacher-student"])
def test_steps_on_each_workload_model(name, workload):
    wl = workloads.get(workload)
    model = wl.init_model(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = O.build_optimizer(name, model, 1e-3, weight_decay=0.01)
    # two steps: SOAP's first only sets up its eigenbases (as the reference SOAP does)
    for batch in itertools.islice(wl.batches(0, CPU), 2):
        loss = wl.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_muon_split_puts_exactly_the_hidden_matrices_in_the_muon_group():
    def split(model: nn.Module) -> tuple[set[str], set[str]]:
        names = {id(p): n for n, p in model.named_parameters()}
        groups = muon_param_groups(model, 0.01)
        muon = {names[id(p)] for g in groups if g["use_muon"] for p in g["params"]}
        rest = {names[id(p)] for g in groups if not g["use_muon"] for p in g["params"]}
        assert muon.isdisjoint(rest) and muon | rest == set(names.values())
        return muon, rest

    # charlm base, by hand: embeddings tok (103x64) and pos (64x64) and the head (103x64) go to
    # AdamW with every bias and LayerNorm gain; the four block matrices go to Muon
    muon, rest = split(workloads.get("charlm").init_model(0))
    assert muon == {"blocks.0.qkv.weight", "blocks.0.proj.weight", "blocks.0.mlp.0.weight", "blocks.0.mlp.2.weight"}
    assert {"tok.weight", "pos.weight", "head.weight", "head.bias", "ln.weight", "blocks.0.qkv.bias"} <= rest
    assert len(split(workloads.get("charlm:deeper").init_model(0))[0]) == 8
    assert len(split(workloads.get("charlm:qk-ln").init_model(0))[0]) == 4  # the qk LayerNorms are 1-d
    assert split(workloads.get("digits-mlp").init_model(0))[0] == {"0.weight"}  # "2" is the head
    assert split(workloads.get("modarith").init_model(0))[0] == {"hidden.weight"}  # embed, out excluded
    assert split(workloads.get("teacher-student").init_model(0))[0] == {"w"}
    assert split(workloads.get("logreg").init_model(0))[0] == set()  # the only layer is the head
    # the Muon group first (its lr is the one the recorder logs), weight decay on matrices only
    groups = O.build_optimizer("muon", workloads.get("charlm").init_model(0), 0.02, weight_decay=0.1).param_groups
    assert [g["use_muon"] for g in groups] == [True, False, False]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.1, 0.0]


def _same_three_steps(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer,
                      m1: nn.Module, m2: nn.Module) -> None:
    data = batches(3, seed=7)
    train(m1, ours, data)
    train(m2, theirs, data)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(m1.parameters(), mlp().parameters()))


def _decay_groups(model: nn.Module, wd: float) -> list[dict]:
    return [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": wd},
            {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]


def test_shampoo_matches_the_package_class():
    m1, m2 = mlp(), mlp()
    ours = O.build_optimizer("shampoo", m1, 1e-2, weight_decay=0.05, betas=(0.9, 0.99))
    theirs = po.ScalableShampoo(_decay_groups(m2, 0.05), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05,
                                graft_type=LayerWiseGrafting.RMSPROP, moving_average_for_momentum=True,
                                decoupled_weight_decay=True, start_preconditioning_step=5,
                                preconditioning_compute_steps=5)
    _same_three_steps(ours, theirs, m1, m2)


def test_soap_matches_the_package_class():
    m1, m2 = mlp(), mlp()
    ours = O.build_optimizer("soap", m1, 1e-2, weight_decay=0.01, betas=(0.95, 0.95), precondition_frequency=2)
    theirs = po.SOAP(_decay_groups(m2, 0.01), lr=1e-2, betas=(0.95, 0.95), weight_decay=0.01,
                     precondition_frequency=2)
    _same_three_steps(ours, theirs, m1, m2)


def test_muon_matches_the_package_class():
    m1, m2 = mlp(), mlp()
    ours = O.build_optimizer("muon", m1, 0.02, weight_decay=0.01, momentum=0.9, adamw_lr=3e-3)
    # by hand: the middle Linear is the only hidden matrix (the first is hidden too: not an
    # embedding; the last Linear is the head)
    hidden = [m2[0].weight, m2[3].weight]
    other = [m2[5].weight]
    small = [p for p in m2.parameters() if p.ndim < 2]
    groups = [{"params": hidden, "weight_decay": 0.01, "use_muon": True},
              {"params": other, "weight_decay": 0.01, "use_muon": False},
              {"params": small, "weight_decay": 0.0, "use_muon": False}]
    theirs = po.Muon(groups, lr=0.02, momentum=0.9, weight_decay=0.01, adamw_lr=3e-3)
    _same_three_steps(ours, theirs, m1, m2)


@pytest.mark.parametrize("name", ["shampoo-cosine", "soap-cosine", "muon-cosine"])
def test_baselines_build_round_trip_and_train_charlm(name):
    algo = algorithms.get_algorithm(name)
    assert algorithms.Algorithm.from_dict(algo.to_dict()) == algo
    assert algorithms.from_toml(algo.to_toml()) == algo
    wl = workloads.get("charlm")
    model = wl.init_model(0)
    opt, sched = algo.resolved().build(model, 20)
    data = list(itertools.islice(wl.batches(0, CPU), 20))
    first = wl.loss(model, data[0]).item()
    for b in data:
        loss = wl.loss(model, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert wl.loss(model, data[0]).item() < first - 0.2  # from ln(103) = 4.6, at the defaults
