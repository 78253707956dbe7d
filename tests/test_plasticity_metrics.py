"""Plasticity metrics against hand computations (spec sheet
``shared/references/dynamics-plasticity-statistics.md`` §4, "Tests a steplab implementation
can assert"): effective rank (Roy & Vetterli 2007), dead and saturated units, approximate
rank, weight magnitude, the probe pass on a hand-built net, the online summary."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from steplab.analysis.plasticity import curve_from_rows, probe_from_rows
from steplab.results import EvalRow
from steplab.workloads.long_streams import online_summary
from steplab.workloads.plasticity_metrics import (
    approximate_rank,
    dead_fraction,
    effective_rank,
    probe_metrics,
    saturated_fraction,
    weight_magnitude,
)


def test_effective_rank_of_identity_rank_one_and_two_values():
    assert effective_rank(torch.eye(7)) == pytest.approx(7.0, rel=1e-9)
    u = torch.arange(1.0, 6.0)[:, None]
    assert effective_rank(u @ torch.tensor([[1.0, -2.0, 0.5]])) == pytest.approx(1.0, abs=1e-6)
    # sigma = (3, 1): p = (0.75, 0.25), H = -(0.75 ln 0.75 + 0.25 ln 0.25) = 0.5623
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert h == pytest.approx(0.5623, abs=1e-4)
    assert effective_rank(torch.tensor([3.0, 1.0]), singular=True) == pytest.approx(math.exp(h), rel=1e-12)
    assert effective_rank(torch.diag(torch.tensor([3.0, 1.0]))) == pytest.approx(1.7548, abs=1e-4)
    # zero singular values are ignored (0 log 0 = 0), an all-zero matrix has rank 0
    assert effective_rank(torch.tensor([3.0, 1.0, 0.0, 0.0]), singular=True) == pytest.approx(math.exp(h))
    assert effective_rank(torch.zeros(4, 3)) == 0.0


def test_dead_units_need_every_activation_zero():
    h = torch.zeros(2000, 4)
    h[:, 0] = 1.0
    h[1234, 1] = 0.3  # one positive activation in 2000 samples: not dead
    h[:, 3] = torch.rand(2000) + 0.1
    assert dead_fraction(h) == pytest.approx(1 / 4)  # only unit 2
    with pytest.raises(ValueError, match="examples, units"):
        dead_fraction(torch.zeros(5))


def test_saturated_units_of_a_bounded_activation():
    h = torch.tensor([[0.999, -0.9995, 0.2, 0.999],
                      [0.995, -0.999, 0.999, -0.999]])
    # margin 0.01 of the range 2: within 0.02 of a bound on every example, at the same bound
    assert saturated_fraction(h, -1.0, 1.0) == pytest.approx(2 / 4)


def test_approximate_rank_and_weight_magnitude():
    assert approximate_rank(torch.tensor([3.0, 1.0, 0.0]), singular=True) == 2
    assert approximate_rank(torch.tensor([99.0, 1.0]), singular=True) == 1  # 99% of the sum in one value
    assert approximate_rank(torch.tensor([98.0, 2.0]), singular=True) == 2
    mean, per = weight_magnitude([torch.tensor([[1.0, -3.0]]), torch.tensor([[2.0], [-2.0], [0.0], [4.0]])])
    assert per == pytest.approx([2.0, 2.0])
    assert mean == pytest.approx(12.0 / 6.0)


def test_probe_metrics_on_a_hand_built_net():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[2.0, -1.0, 1.0]]))
        net[2].bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])  # unit 3: -x1 - x2 < 0 everywhere: dead
    m = probe_metrics(net, lambda: net(x))
    assert m["plasticity/dead_fraction/layer1"] == pytest.approx(1 / 3)
    assert m["plasticity/dead_fraction"] == pytest.approx(1 / 3)
    # H = [[1,0,0],[0,2,0],[3,4,0]]: its singular values by hand are those of [[1,0],[0,2],[3,4]]
    s = torch.linalg.svdvals(torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    p = s / s.sum()
    assert m["plasticity/erank/layer1"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-9)
    # mean |w| over the 6 + 3 weights (biases excluded): (4 + 4) / 9
    assert m["plasticity/weight_magnitude"] == pytest.approx(8 / 9)
    assert m["plasticity/weight_magnitude/layer2"] == pytest.approx(4 / 3)
    tanh = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with torch.no_grad():
        tanh[0].weight.copy_(torch.tensor([[100.0, 100.0], [0.1, 0.0]]))
        tanh[0].bias.zero_()
    m = probe_metrics(tanh, lambda: tanh(x))
    assert m["plasticity/saturated_fraction/layer1"] == pytest.approx(0.5)


def test_online_summary_and_curves_from_rows():
    s = online_summary([0.5, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6, 0.6, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1,
                        0.1, 0.2])  # 20 tasks: 10% = 2 tasks
    assert s["first"] == pytest.approx(0.7)
    assert s["last"] == pytest.approx(0.15)
    assert s["drop"] == pytest.approx(0.55)
    assert s["mean"] == pytest.approx(8.1 / 20)  # (6.6 + 1.5) / 20
    loss = online_summary([1.0, 2.0, 3.0], higher_is_better=False)  # one task each end
    assert (loss["first"], loss["last"], loss["drop"]) == (1.0, 3.0, 2.0)
    rows = [EvalRow(0, 0.0, "plasticity", "plasticity/erank", 9.0),
            EvalRow(10, 0.0, "online", "online/task", 0.0), EvalRow(10, 0.0, "online", "online/accuracy", 0.25),
            EvalRow(10, 0.0, "plasticity", "plasticity/erank", 8.0),
            EvalRow(20, 0.0, "online", "online/task", 1.0), EvalRow(20, 0.0, "online", "online/accuracy", 0.75)]
    tasks, values = curve_from_rows(rows)
    assert tasks.tolist() == [0, 1] and values.tolist() == [0.25, 0.75]
    tasks, values = probe_from_rows(rows, "plasticity/erank", 10)
    assert tasks.tolist() == [0, 1] and values.tolist() == [9.0, 8.0]


def test_plasticity_monitor_concatenates_probe_batches_and_registers():
    from steplab.monitors import Probe, measure, parse_monitors

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    with torch.no_grad():
        net[0].weight.abs_().add_(0.1)  # units 1-4 positive on inputs in [0, 1)
        net[0].bias.zero_()
        net[0].weight[4].fill_(-1.0)  # unit 5 is dead there
    batches = [(torch.rand(6, 3), torch.zeros(6, 1)), (torch.rand(4, 3), torch.zeros(4, 1))]

    def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return ((model(batch[0]) - batch[1]) ** 2).mean()

    (monitor,) = parse_monitors("plasticity:batches=2")
    values = measure([monitor], Probe(net, loss, batches, None, 0, None, {}))
    every = torch.cat([b[0] for b in batches])
    hand = probe_metrics(net, lambda: net(every), prefix="dynamics/plasticity/")
    for key, value in hand.items():
        assert values[key] == pytest.approx(value, rel=1e-9), key
    assert values["dynamics/plasticity/dead_fraction/layer1"] == pytest.approx(1 / 5)
    assert net.training  # measure() put the mode back
