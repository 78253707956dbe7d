"""Plasticity metrics on tensors: dead and saturated units, effective rank, weight magnitude
(Dohare et al. 2024, "Loss of plasticity in deep continual learning", Nature 632; metrics as
computed in their released code, ``lop/permuted_mnist/online_expr.py`` and
``lop/utils/miscellaneous.py``; restated in ``shared/references/dynamics-plasticity-statistics.md`` §4.2).

Dohare et al. measure at each task start, before training on it, on the first 2000 examples
of the new task: the post-activation matrix ``H`` (examples x units) of every hidden layer.

* dead units: a unit whose activation is exactly 0 on every example of the probe
  (:func:`dead_fraction`, reported as a fraction, not a percentage);
* saturated units, for bounded activations (tanh, sigmoid): a unit whose activation stays
  within ``margin`` of a bound on every example (:func:`saturated_fraction`; the tanh/sigmoid
  analogue of a dead ReLU, Dohare et al. discuss it for their slowly-changing regression);
* effective rank (Roy & Vetterli 2007, "The effective rank: a measure of effective
  dimensionality", EUSIPCO, eq. 2-3): singular values ``s`` of ``H``, ``p_k = s_k / sum s``,
  ``erank = exp(-sum_k p_k log p_k)`` with ``0 log 0 = 0`` (:func:`effective_rank`);
* approximate rank ``srank_delta`` (Kumar et al. 2021, used by Kumar, Marklund & Van Roy 2023
  "Maintaining plasticity via regenerative regularization"): the fewest ``k`` with
  ``sum_{i<=k} s_i / sum s >= 1 - delta`` (:func:`approximate_rank`);
* weight magnitude: the mean absolute value of the weights of each layer (Dohare et al. log
  ``sum |w|`` per layer; divided by the element count here), :func:`weight_magnitude`.

They live with the workloads, below the monitors and analyses, because the long streams
(:mod:`steplab.workloads.long_streams`) report them at task starts;
:mod:`steplab.monitors.plasticity` measures them in any ``steplab run``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "approximate_rank",
    "dead_fraction",
    "effective_rank",
    "hidden_activations",
    "layer_metrics",
    "probe_metrics",
    "saturated_fraction",
    "singular_values",
    "weight_magnitude",
    "weight_metrics",
]

#: activation modules whose outputs are the hidden representations (and their bounds, for
#: saturation; ``None``: unbounded, a ReLU-type unit is dead instead)
ACTIVATIONS: dict[type[nn.Module], tuple[float, float] | None] = {
    nn.ReLU: None, nn.LeakyReLU: None, nn.ELU: None, nn.GELU: None, nn.SiLU: None,
    nn.Tanh: (-1.0, 1.0), nn.Sigmoid: (0.0, 1.0),
}


def _matrix(acts: torch.Tensor) -> torch.Tensor:
    if acts.dim() < 2:
        raise ValueError(f"activations must be (examples, units...), got shape {tuple(acts.shape)}")
    return acts.detach().reshape(acts.shape[0], -1).to(torch.float64)


def dead_fraction(acts: torch.Tensor) -> float:
    """Fraction of units (columns of ``acts``, examples x units) that are exactly 0 on every
    example (Dohare et al. 2024, Extended Data Fig. 3: "dead units")."""
    h = _matrix(acts)
    return float((h == 0).all(dim=0).double().mean())


def saturated_fraction(acts: torch.Tensor, low: float, high: float, margin: float = 0.01) -> float:
    """Fraction of units of a bounded activation (bounds ``low < high``) whose every
    activation is within ``margin * (high - low)`` of a bound (all near ``low`` or all near
    ``high``): the units that pass almost no gradient."""
    h = _matrix(acts)
    band = margin * (high - low)
    near_low = (h <= low + band).all(dim=0)
    near_high = (h >= high - band).all(dim=0)
    return float((near_low | near_high).double().mean())


def singular_values(acts: torch.Tensor) -> torch.Tensor:
    """Singular values of the (examples x units) matrix, in float64, descending."""
    return torch.linalg.svdvals(_matrix(acts))


def effective_rank(acts_or_sv: torch.Tensor, *, singular: bool = False) -> float:
    """Effective rank (Roy & Vetterli 2007, eq. 2-3): ``exp(-sum p_k log p_k)``,
    ``p_k = s_k / sum s`` over the singular values ``s`` (zero ones ignored). Pass the matrix,
    or its singular values with ``singular=True``. 0 for an all-zero matrix.

    >>> round(effective_rank(torch.tensor([3.0, 1.0]), singular=True), 4)
    1.7548
    """
    s = acts_or_sv.detach().to(torch.float64).flatten() if singular else singular_values(acts_or_sv)
    s = s[s > 0]
    if s.numel() == 0:
        return 0.0
    p = s / s.sum()
    return float(torch.exp(-(p * torch.log(p)).sum()))


def approximate_rank(acts_or_sv: torch.Tensor, delta: float = 0.01, *, singular: bool = False) -> int:
    """``srank_delta``: the fewest singular values whose sum reaches ``1 - delta`` of the
    total (Kumar et al. 2021; Dohare et al.'s "abs approximate rank" with 99%).

    >>> approximate_rank(torch.tensor([3.0, 1.0, 0.0]), singular=True)
    2
    """
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    s = acts_or_sv.detach().to(torch.float64).flatten() if singular else singular_values(acts_or_sv)
    s = torch.sort(s, descending=True).values
    total = float(s.sum())
    if total <= 0:
        return 0
    cum = torch.cumsum(s, 0) / total
    return int(torch.searchsorted(cum, torch.tensor(1.0 - delta - 1e-12, dtype=torch.float64)).item()) + 1


def weight_magnitude(layers: Iterable[torch.Tensor]) -> tuple[float, list[float]]:
    """Mean ``|w|`` over every element of ``layers`` (weight matrices), and per layer."""
    per, total, count = [], 0.0, 0
    for w in layers:
        a = w.detach().abs().to(torch.float64)
        per.append(float(a.mean()))
        total += float(a.sum())
        count += a.numel()
    return (total / count if count else math.nan), per


def hidden_activations(model: nn.Module, run: Callable[[], object]) -> list[tuple[nn.Module, torch.Tensor]]:
    """The outputs of every activation module of :data:`ACTIVATIONS` in ``model`` while
    ``run()`` does one forward pass (forward hooks, removed afterwards), in call order,
    each flattened to (examples, units)."""
    found: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, _i, out: found.append((mod, out.detach())))
             for m in model.modules() if type(m) in ACTIVATIONS]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return [(m, a.reshape(a.shape[0], -1)) for m, a in found]


def layer_metrics(layers: list[tuple[nn.Module, torch.Tensor]], prefix: str = "plasticity/") -> dict[str, float]:
    """Per hidden layer ``l`` (1-based, in call order; ``(activation module, examples x
    units)`` as :func:`hidden_activations` gives them): ``dead_fraction/layer{l}`` (or
    ``saturated_fraction/layer{l}`` for tanh/sigmoid) and ``erank/layer{l}``, and their
    unit-weighted / plain means ``dead_fraction`` (dead or saturated) and ``erank``."""
    out: dict[str, float] = {}
    dead_units, units, eranks = 0.0, 0, []
    for k, (mod, h) in enumerate(layers, start=1):
        bounds = ACTIVATIONS[type(mod)]
        frac = dead_fraction(h) if bounds is None else saturated_fraction(h, *bounds)
        out[f"{prefix}{'dead' if bounds is None else 'saturated'}_fraction/layer{k}"] = frac
        dead_units += frac * h.shape[1]
        units += h.shape[1]
        eranks.append(effective_rank(h))
        out[f"{prefix}erank/layer{k}"] = eranks[-1]
    if units:
        out[f"{prefix}dead_fraction"] = dead_units / units
        out[f"{prefix}erank"] = sum(eranks) / len(eranks)
    return out


def weight_metrics(model: nn.Module, prefix: str = "plasticity/") -> dict[str, float]:
    """``weight_magnitude`` (mean ``|w|`` of the weight matrices of every ``nn.Linear``,
    ``nn.Conv1d``/``nn.Conv2d``; biases excluded) and ``weight_magnitude/layer{l}``."""
    weights = [m.weight for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) and m.weight is not None]
    if not weights:
        return {}
    mean, per = weight_magnitude(weights)
    return {f"{prefix}weight_magnitude": mean, **{f"{prefix}weight_magnitude/layer{k}": v
                                                  for k, v in enumerate(per, start=1)}}


def probe_metrics(model: nn.Module, run: Callable[[], object], prefix: str = "plasticity/") -> dict[str, float]:
    """:func:`layer_metrics` of the activations of one forward pass ``run()`` plus
    :func:`weight_metrics` of ``model``."""
    return {**layer_metrics(hidden_activations(model, run), prefix), **weight_metrics(model, prefix)}
