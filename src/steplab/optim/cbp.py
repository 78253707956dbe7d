"""Continual backprop (Dohare et al. 2024, "Loss of plasticity in deep continual learning",
Nature 632; Methods, "Continual backprop"): after every SGD or Adam step, reinitialize a
small fraction of the mature hidden units with the lowest utility.

Units are the rows of a hidden ``nn.Linear``'s weight; their outgoing weights are the
matching columns of the next ``nn.Linear`` of the same ``nn.Sequential`` (only
parameter-free modules such as activations or dropout in between). A forward pre-hook on
the next layer records its input, the hidden activation ``h`` of the current batch. Per
hidden unit ``i``, after each step, as in the authors' generate-and-test
(``shibhansh/loss-of-plasticity``, ``lop/algos/gnt.py`` at bdfe0dd; read, not copied):

1. ``age_i += 1``; running mean ``f_i <- eta f_i + (1 - eta) mean_batch(h_i)``, its bias
   correction ``f^_i = f_i / (1 - eta**age_i)``;
2. instantaneous utility: ``contribution`` (paper eq. 1) ``mean_k |w_out,ki| *
   mean_batch |h_i|``; ``adaptable_contribution`` (every released config)
   ``mean_k |w_out,ki| * mean_batch |h_i - f^_i| / mean_j |w_in,ij|``;
   ``u_i <- eta u_i + (1 - eta) c_i``, ``u^_i = u_i / (1 - eta**age_i)``;
3. eligible units have ``age > maturity``; ``replacement_rate * #eligible`` units are
   replaced per step (``accumulate=True``: the fractional part carries over; else one unit
   with that probability); those with the lowest ``u^``;
4. a replaced unit gets incoming weights ``U(-b, b)``, ``b = gain(activation) *
   sqrt(3 / fan_in)``, incoming bias 0, outgoing weights 0; the next layer's bias gains
   ``sum_i w_out,:i * f^_i`` so the expected output is unchanged (output preservation);
   ``u``, ``f`` and the age restart at 0; with ``base="adam"`` the moments and step counts
   of its incoming row, bias and outgoing column restart at 0 (``AdamGnT``).

One difference from ``gnt.py``: it zeroes ``f`` before the bias step reads it, so its
compensation adds 0. steplab applies the compensation the paper describes; with
``compensate=False`` it reproduces ``gnt.py`` step for step
(``tests/test_optim_plasticity_cbp.py``). gnt.py's default ``accumulate`` is False;
steplab's is True (a deterministic count). Adam's ``eps`` is added as in
``torch.optim.Adam`` (AdamGnT adds it before the bias correction of the second moment).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from steplab.errors import WorkloadError
from steplab.optim.base_update import BaseUpdate

__all__ = ["ContinualBackprop", "hidden_pairs"]

CBP_UTILITIES = ("contribution", "adaptable_contribution")


@dataclass
class _Pair:
    """A hidden layer, the next layer, and the activation captured between them."""

    layer: nn.Linear
    nxt: nn.Linear
    bound: float
    features: torch.Tensor | None = None


def hidden_pairs(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    """Pairs (hidden ``nn.Linear``, next ``nn.Linear``) of every ``nn.Sequential`` in ``model``
    with only parameter-free modules between them and matching widths, in module order."""
    out = []
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        prev: nn.Linear | None = None
        for child in seq.children():
            if isinstance(child, nn.Linear):
                if prev is not None and prev.out_features == child.in_features:
                    out.append((prev, child))
                prev = child
            elif any(True for _ in child.parameters()):
                prev = None
    return out


class _Capture:
    """Forward pre-hook: keeps the next layer's input (detached) in training mode."""

    def __init__(self, pair: _Pair) -> None:
        self.pair = pair

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training and torch.is_grad_enabled():
            x = args[0].detach()
            self.pair.features = x.reshape(-1, x.shape[-1])


class ContinualBackprop(BaseUpdate):
    """Continual backprop (Dohare et al. 2024): SGD or Adam, then generate-and-test.

    Args:
        params: parameters or groups (every parameter of the hidden pairs must be in them).
        model: the model; its hidden pairs are found by :func:`hidden_pairs`.
        lr, weight_decay: the base update's step size and L2 weight decay.
        base: ``"sgd"`` or ``"adam"`` (per-element step counts, ``AdamGnT``).
        momentum: SGD heavy-ball momentum. betas, eps: Adam's.
        replacement_rate: fraction ``rho`` of eligible units replaced per step.
        maturity: a unit is eligible when its age exceeds this many steps.
        decay_rate: ``eta`` of the utility and mean-activation EMAs.
        utility: ``"contribution"`` or ``"adaptable_contribution"``.
        accumulate: carry fractional replacement counts (else draw one unit with that probability).
        activation: the hidden nonlinearity, for the init bound's gain (``nn.init.calculate_gain``).
        compensate: add the replaced units' mean contribution to the next layer's bias.
    """

    def __init__(self, params: Iterable[Any], model: nn.Module, lr: float = 1e-2, weight_decay: float = 0.0,
                 base: str = "sgd", momentum: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, replacement_rate: float = 1e-4, maturity: int = 100,
                 decay_rate: float = 0.99, utility: str = "contribution", accumulate: bool = True,
                 activation: str = "relu", compensate: bool = True) -> None:
        if not 0.0 <= replacement_rate <= 1.0:
            raise ValueError(f"replacement_rate must be in [0, 1], got {replacement_rate!r}")
        if isinstance(maturity, bool) or not isinstance(maturity, int) or maturity < 0:
            raise ValueError(f"maturity must be an integer >= 0, got {maturity!r}")
        if not 0.0 <= decay_rate < 1.0:
            raise ValueError(f"decay_rate must be in [0, 1), got {decay_rate!r}")
        if utility not in CBP_UTILITIES:
            raise ValueError(f"utility must be one of {', '.join(CBP_UTILITIES)}, got {utility!r}")
        gain = nn.init.calculate_gain(activation)  # ValueError for an unknown name
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "base": base, "momentum": momentum,
                                  "betas": tuple(betas), "eps": eps})
        pairs = hidden_pairs(model)
        if not pairs:
            raise WorkloadError("continual backprop needs two nn.Linear layers in sequence inside an "
                                "nn.Sequential (hidden units = rows of the first); this model has none: "
                                "use another optimizer or an MLP")
        owned = {id(p) for g in self.param_groups for p in g["params"]}
        for layer, nxt in pairs:
            for p in (layer.weight, nxt.weight, *(b for b in (layer.bias, nxt.bias) if b is not None)):
                if id(p) not in owned:
                    raise WorkloadError("continual backprop: a hidden layer's parameter is not trained by this "
                                        "optimizer (frozen?); train every hidden nn.Linear")
        self.cbp = {"replacement_rate": replacement_rate, "maturity": maturity, "decay_rate": decay_rate,
                    "utility": utility, "accumulate": bool(accumulate), "compensate": bool(compensate)}
        self._pairs = [_Pair(layer, nxt, gain * math.sqrt(3.0 / layer.in_features)) for layer, nxt in pairs]
        self._hooks = [p.nxt.register_forward_pre_hook(_Capture(p)) for p in self._pairs]
        #: units replaced so far, per hidden layer (for monitors and tests)
        self.replaced = [0] * len(self._pairs)

    def _unit_state(self, pair: _Pair) -> dict[str, torch.Tensor]:
        """Per-unit statistics, kept in the optimizer state of the hidden weight (checkpointed)."""
        st = self.state[pair.layer.weight]
        if "cbp_age" not in st:
            z = pair.layer.weight.new_zeros(pair.layer.out_features)
            # the fractional count stays a Python float (float64, never cast to the weights' dtype)
            st.update(cbp_age=z.clone(), cbp_util=z.clone(), cbp_mean=z.clone(), cbp_due=0.0)
        return st

    def after_step(self) -> None:
        rate = self.cbp["replacement_rate"]
        if rate == 0:
            return
        missing = [i for i, p in enumerate(self._pairs) if p.features is None]
        if missing:
            raise RuntimeError("continual backprop saw no hidden activation since its last step: run the "
                               "model's forward in train mode (with grad) before each step")
        chosen = [self._test(pair) for pair in self._pairs]  # gnt.py: every layer tested, then generated
        for i, (pair, (idx, bias_mean)) in enumerate(zip(self._pairs, chosen, strict=True)):
            if idx.numel():
                self._generate(pair, idx, bias_mean)
                self.replaced[i] += idx.numel()
            pair.features = None

    def _test(self, pair: _Pair) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ages and utilities; the units to replace and their bias-corrected mean
        activations (read before the reset)."""
        cfg, st = self.cbp, self._unit_state(pair)
        eta, h = cfg["decay_rate"], pair.features
        if h is None:  # after_step checked every pair
            raise RuntimeError("continual backprop: no hidden activation captured")
        age, util, mean = st["cbp_age"], st["cbp_util"], st["cbp_mean"]
        age.add_(1)
        correction = 1 - eta ** age
        mean.mul_(eta).add_(h.mean(dim=0), alpha=1 - eta)
        out_mag = pair.nxt.weight.abs().mean(dim=0)
        if cfg["utility"] == "contribution":
            c = out_mag * h.abs().mean(dim=0)
        else:
            in_mag = pair.layer.weight.abs().mean(dim=1)
            c = out_mag * (h - mean / correction).abs().mean(dim=0) / in_mag
        util.mul_(eta).add_(c, alpha=1 - eta)
        corrected_util = util / correction
        eligible = torch.nonzero(age > cfg["maturity"]).flatten()
        empty = eligible.new_zeros(0)
        if eligible.numel() == 0:
            return empty, h.new_zeros(0)
        due = cfg["replacement_rate"] * eligible.numel()
        st["cbp_due"] += due
        if cfg["accumulate"]:
            n = int(st["cbp_due"])
            st["cbp_due"] -= n
        else:
            n = 1 if due < 1 and torch.rand(1).item() <= due else int(due)
        if n == 0:
            return empty, h.new_zeros(0)
        idx = eligible[torch.topk(-corrected_util[eligible], n)[1]]
        bias_mean = mean[idx] / correction[idx]
        util[idx] = 0.0
        mean[idx] = 0.0
        return idx, bias_mean

    def _generate(self, pair: _Pair, idx: torch.Tensor, bias_mean: torch.Tensor) -> None:
        layer, nxt, st = pair.layer, pair.nxt, self._unit_state(pair)
        fresh = torch.empty(idx.numel(), layer.in_features).uniform_(-pair.bound, pair.bound)
        layer.weight[idx, :] = fresh.to(layer.weight)
        if layer.bias is not None:
            layer.bias[idx] = 0.0
        if self.cbp["compensate"] and nxt.bias is not None:
            nxt.bias.add_((nxt.weight[:, idx] * bias_mean).sum(dim=1))
        nxt.weight[:, idx] = 0.0
        st["cbp_age"][idx] = 0.0
        for p, sl in ((layer.weight, (idx, slice(None))), (layer.bias, (idx,)), (nxt.weight, (slice(None), idx))):
            if p is None:
                continue
            for key in ("exp_avg", "exp_avg_sq", "step"):  # gnt.py leaves SGD's momentum as it is
                if key in self.state[p]:
                    self.state[p][key][sl] = 0.0
