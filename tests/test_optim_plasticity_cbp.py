"""Tests for continual backprop (:mod:`steplab.optim.cbp`).

The reference here re-derives, in plain torch, the authors' generate-and-test step
(``shibhansh/loss-of-plasticity`` @ bdfe0dd, ``lop/algos/gnt.py`` ``GnT.gen_and_test`` and
``lop/utils/AdamGnT.py``; read, not copied) and checks steplab's optimizer against it step
for step on a 3-4-4-2 MLP, with two documented differences: ``compensate=False`` reproduces
gnt.py's bias correction (which adds 0), and Adam's eps enters as in ``torch.optim.Adam``.
The bookkeeping numbers (396 replacements) are the formula
sheet's (``shared/references/dynamics-plasticity-statistics.md`` §4.3)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from steplab.errors import WorkloadError
from steplab.optim import optimizers as O
from steplab.optim.cbp import ContinualBackprop, hidden_pairs


def _mlp(seed: int = 0, sizes: tuple[int, ...] = (3, 4, 4, 2), act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers).double()


def _batch(seed: int, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g)


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch[0]), batch[1])


class _AuthorsGnT:
    """gnt.py's GnT + AdamGnT re-derived for an nn.Sequential MLP (Linear at 0, 2, 4, ...).

    Per step: the base update (torch SGD, or AdamGnT with per-entry step counts; eps as in
    torch.optim.Adam, see base_step), then for every hidden layer: age += 1, the
    utility and mean-activation EMAs, the count of units to replace, the lowest-utility
    eligible units (utility and mean zeroed *before* generation reads the mean: the bias
    correction adds 0), and after all layers were tested, generation (U(-b, b) rows, zero
    bias, zero outgoing columns, age 0) and the Adam state resets."""

    def __init__(self, net: nn.Sequential, base: str, lr: float, rate: float, maturity: int, decay: float,
                 util_type: str, accumulate: bool) -> None:
        self.net, self.base, self.lr = net, base, lr
        self.rate, self.maturity, self.decay, self.util_type, self.accumulate = rate, maturity, decay, util_type, accumulate
        self.lin = [m for m in net if isinstance(m, nn.Linear)]
        n_hidden = len(self.lin) - 1
        self.util = [torch.zeros(m.out_features, dtype=torch.float64) for m in self.lin[:-1]]
        self.mean = [torch.zeros_like(u) for u in self.util]
        self.ages = [torch.zeros_like(u) for u in self.util]
        self.acc = [0.0] * n_hidden
        self.bounds = [nn.init.calculate_gain("relu") * math.sqrt(3 / m.in_features) for m in self.lin[:-1]]
        self.adam: dict[int, dict[str, torch.Tensor]] = {}

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], x
        for m in self.lin[:-1]:
            h = torch.relu(m(h))
            out.append(h.detach())
        return out

    @torch.no_grad()
    def base_step(self) -> None:
        for p in self.net.parameters():
            if self.base == "sgd":
                p.add_(p.grad, alpha=-self.lr)
                continue
            st = self.adam.setdefault(id(p), {"step": torch.zeros_like(p), "m": torch.zeros_like(p),
                                              "v": torch.zeros_like(p)})
            st["step"] += 1
            st["m"].mul_(0.9).add_(p.grad, alpha=0.1)
            st["v"].mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
            scale = (1 - 0.999 ** st["step"]).sqrt() / (1 - 0.9 ** st["step"])
            # AdamGnT adds eps to sqrt(v) before the bias correction; steplab adds it after, as
            # torch.optim.Adam does (its one documented difference), so this line follows torch
            p.add_(-self.lr * scale * st["m"] / (st["v"].sqrt() + 1e-8 * scale * (1 - 0.9 ** st["step"])))

    @torch.no_grad()
    def gen_and_test(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        chosen = []
        for i, f in enumerate(feats):
            self.ages[i] += 1
            self.util[i] *= self.decay
            bc = 1 - self.decay ** self.ages[i]
            self.mean[i] = self.mean[i] * self.decay + (1 - self.decay) * f.mean(dim=0)
            out_mag = self.lin[i + 1].weight.abs().mean(dim=0)
            if self.util_type == "contribution":
                new = out_mag * f.abs().mean(dim=0)
            else:
                new = out_mag * (f - self.mean[i] / bc).abs().mean(dim=0) / self.lin[i].weight.abs().mean(dim=1)
            self.util[i] += (1 - self.decay) * new
            corrected = self.util[i] / bc
            eligible = torch.where(self.ages[i] > self.maturity)[0]
            if len(eligible) == 0:
                chosen.append(eligible)
                continue
            num = self.rate * len(eligible)
            self.acc[i] += num
            if self.accumulate:
                num = int(self.acc[i])
                self.acc[i] -= num
            else:
                if num < 1 and torch.rand(1) <= num:
                    num = 1
                num = int(num)
            if num == 0:
                chosen.append(eligible[:0])
                continue
            idx = eligible[torch.topk(-corrected[eligible], num)[1]]
            self.util[i][idx] = 0
            self.mean[i][idx] = 0
            chosen.append(idx)
        for i, idx in enumerate(chosen):
            if len(idx) == 0:
                continue
            cur, nxt = self.lin[i], self.lin[i + 1]
            cur.weight[idx, :] = torch.empty(len(idx), cur.in_features).uniform_(-self.bounds[i], self.bounds[i]).double()
            cur.bias[idx] = 0
            nxt.bias += (nxt.weight[:, idx] * self.mean[i][idx] / (1 - self.decay ** self.ages[i][idx])).sum(dim=1)
            nxt.weight[:, idx] = 0
            self.ages[i][idx] = 0
            if self.base == "adam":
                for p, sl in ((cur.weight, (idx, slice(None))), (cur.bias, (idx,)), (nxt.weight, (slice(None), idx))):
                    for v in self.adam[id(p)].values():
                        v[sl] = 0
        return chosen


@pytest.mark.parametrize("base,utility,accumulate,rate", [
    ("sgd", "contribution", True, 0.3), ("sgd", "adaptable_contribution", False, 0.1),
    ("adam", "adaptable_contribution", True, 0.3), ("adam", "contribution", False, 0.1)])
def test_matches_the_authors_generate_and_test(base: str, utility: str, accumulate: bool, rate: float) -> None:
    """steplab's ContinualBackprop (compensate=False) against the re-derivation of gnt.py /
    AdamGnT.py (loss-of-plasticity @ bdfe0dd) on a 3-4-4-2 ReLU MLP, 12 steps, the same
    RNG seed before each generate-and-test."""
    ours, theirs = _mlp(3), _mlp(3)
    lr = 0.1 if base == "sgd" else 0.01
    opt = ContinualBackprop(ours.parameters(), model=ours, lr=lr, base=base, replacement_rate=rate, maturity=2,
                            decay_rate=0.9, utility=utility, accumulate=accumulate, compensate=False)
    ref = _AuthorsGnT(theirs, base, lr, rate, 2, 0.9, utility, accumulate)
    replaced = 0
    for t in range(12):
        batch = _batch(t)
        opt.zero_grad()
        _loss(ours, batch).backward()
        torch.manual_seed(50 + t)
        opt.step()
        theirs.zero_grad()
        _loss(theirs, batch).backward()
        feats = ref.features(batch[0])
        ref.base_step()
        torch.manual_seed(50 + t)
        replaced += sum(len(i) for i in ref.gen_and_test(feats))
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-12), t
    assert sum(opt.replaced) == replaced > 0


def test_output_preserved_when_the_unit_sits_at_its_mean() -> None:
    """Right after a replacement, the network equals the old one with the replaced unit's
    activation fixed at its bias-corrected running mean (lr = 0: only CBP moves weights)."""
    for compensate in (True, False):
        model = _mlp(1, (3, 4, 2), nn.Tanh)
        opt = ContinualBackprop(model.parameters(), model=model, lr=0.0, replacement_rate=0.25, maturity=3,
                                decay_rate=0.9, activation="tanh", compensate=compensate)
        for t in range(3):  # warm the EMAs; the 4th step finds 4 mature units and replaces one
            opt.zero_grad()
            _loss(model, _batch(t)).backward()
            opt.step()
        before = copy.deepcopy(model)
        st = opt.state[model[0].weight]
        mean0, age0 = st["cbp_mean"].clone(), st["cbp_age"].clone()
        x = _batch(7)[0]
        opt.zero_grad()
        _loss(model, (x, _batch(7)[1])).backward()
        opt.step()
        changed = (model[0].weight != before[0].weight).any(dim=1).nonzero().flatten()
        assert changed.numel() == 1
        j = changed.item()
        h = torch.tanh(before[0](x)).mean(dim=0)[j]
        f_hat = (0.9 * mean0[j] + 0.1 * h) / (1 - 0.9 ** (age0[j] + 1))
        z = torch.randn(10, 3, dtype=torch.float64)
        hid = torch.tanh(before[0](z))
        hid[:, j] = f_hat
        forced = before[2](hid)
        gap = (model(z) - forced).abs().max().item()
        assert abs(f_hat.item()) > 1e-3 and before[2].weight[:, j].abs().min() > 1e-3
        if compensate:
            assert gap < 1e-12
        else:  # gnt.py's arithmetic: the bias gains 0
            assert gap > 1e-4 and torch.equal(model[2].bias, before[2].bias)


def test_replaced_units_are_fresh_and_their_adam_state_restarts() -> None:
    model = _mlp(2, (3, 6, 2))
    opt = ContinualBackprop(model.parameters(), model=model, lr=0.01, base="adam", replacement_rate=0.5,
                            maturity=3, decay_rate=0.9)
    for t in range(3):  # ages 1..3: nobody is mature yet
        opt.zero_grad()
        _loss(model, _batch(t)).backward()
        opt.step()
    assert opt.replaced == [0]
    before = copy.deepcopy(model)
    opt.zero_grad()
    _loss(model, _batch(3)).backward()
    opt.step()  # age 4 > 3: rate 0.5 of 6 eligible = 3 units
    assert opt.replaced == [3]
    idx = (model[2].weight == 0).all(dim=0).nonzero().flatten()
    assert idx.numel() == 3
    bound = math.sqrt(2) * math.sqrt(3 / 3)
    assert (model[0].weight[idx].abs() <= bound).all() and not torch.equal(model[0].weight[idx], before[0].weight[idx])
    assert (model[0].bias[idx] == 0).all()
    for p, sl in ((model[0].weight, (idx,)), (model[0].bias, (idx,)), (model[2].weight, (slice(None), idx))):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert (opt.state[p][key][sl] == 0).all(), key
    assert (opt.state[model[0].weight]["cbp_age"][idx] == 0).all()


def test_units_at_or_below_maturity_are_never_replaced() -> None:
    model = _mlp(0, (3, 5, 2))
    opt = ContinualBackprop(model.parameters(), model=model, lr=0.05, replacement_rate=0.5, maturity=4)
    ages_at_replacement = []
    for t in range(20):
        st_age = opt.state[model[0].weight].get("cbp_age")
        prev = None if st_age is None else st_age.clone()
        opt.zero_grad()
        _loss(model, _batch(t)).backward()
        opt.step()
        new_age = opt.state[model[0].weight]["cbp_age"]
        if prev is not None:
            reset = (new_age == 0).nonzero().flatten()
            ages_at_replacement += (prev[reset] + 1).tolist()
    assert ages_at_replacement and min(ages_at_replacement) > 4


def test_bookkeeping_of_the_fractional_count() -> None:
    """2000 mature units, rho = 1e-4, m = 100, accumulate: 0.2 replacements per step, 396
    in 2000 steps (replaced units are immature for m steps) - the formula sheet's number."""
    model = nn.Sequential(nn.Linear(1, 2000), nn.ReLU(), nn.Linear(2000, 1))
    opt = ContinualBackprop(model.parameters(), model=model, lr=0.0, replacement_rate=1e-4, maturity=100)
    opt._unit_state(opt._pairs[0])["cbp_age"].fill_(1000.0)
    x = torch.ones(1, 1)
    for _ in range(2000):
        model(x)
        opt.step()
    assert opt.replaced == [396]


def test_hidden_pairs_and_clear_errors() -> None:
    model = _mlp(0, (3, 4, 4, 2))
    assert [(a.in_features, b.out_features) for a, b in hidden_pairs(model)] == [(3, 4), (4, 2)]
    with pytest.raises(WorkloadError, match="two nn.Linear layers in sequence"):
        O.build_optimizer("cbp", nn.Linear(3, 2), 0.1)
    norm_between = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with pytest.raises(WorkloadError, match="this model has none"):
        O.build_optimizer("cbp-adam", norm_between, 0.1)
    opt = O.build_optimizer("cbp", model, 0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    with pytest.raises(RuntimeError, match="no hidden activation"):
        opt.step()  # no forward in train mode since the last step
    model.eval()
    model(torch.zeros(1, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="no hidden activation"):
        opt.step()  # evaluation forwards are not recorded


def test_state_dict_round_trip_continues_identically() -> None:
    a = _mlp(0)
    oa = O.build_optimizer("cbp-adam", a, 0.01, replacement_rate=0.2, maturity=1)
    for t in range(4):
        oa.zero_grad()
        _loss(a, _batch(t)).backward()
        oa.step()
    b = _mlp(0)
    b.load_state_dict(a.state_dict())
    ob = O.build_optimizer("cbp-adam", b, 0.01, replacement_rate=0.2, maturity=1)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))
    for model, opt in ((a, oa), (b, ob)):
        opt.zero_grad()
        _loss(model, _batch(9)).backward()
        torch.manual_seed(1)
        opt.step()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
