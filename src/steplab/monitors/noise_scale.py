"""``gns``: the simple gradient noise scale and the critical batch size it implies.

McCandlish, Kaplan, Amodei et al. 2018 ("An Empirical Model of Large-Batch Training", arXiv
1812.06162): with per-example gradients of mean ``G`` and covariance ``Sigma``, a size-``B``
minibatch gradient has ``E |G_B|^2 = |G|^2 + tr(Sigma) / B``. From two batch sizes
``B_s < B_b`` (their App. A) the unbiased estimates are

    |G|^2     ~ (B_b |G_Bb|^2 - B_s |G_Bs|^2) / (B_b - B_s)
    tr(Sigma) ~ (|G_Bs|^2 - |G_Bb|^2) / (1/B_s - 1/B_b)

and ``B_simple = tr(Sigma) / |G|^2``; the critical batch size (steps and examples to a
target trade off as ``(S/S_min - 1)(E/E_min - 1) = 1``, ``B_crit = E_min/S_min``) is
``B_crit ~ B_noise ~ B_simple`` (their §2.2; equal when the Hessian is a multiple of the
identity). Here ``B_s`` is one probe batch (``|G_Bs|^2`` averaged over the ``k`` batches,
each unbiased) and ``B_b = k B_s`` is their mean gradient (the large batch contains the
small ones, as in data-parallel training: both estimates stay unbiased). Single estimates
are noisy (``|G|^2`` is often negative), so, as gpt-neox's implementation does, the two
estimates are smoothed by separate bias-corrected EMAs and ``B_simple`` is the ratio of the
EMAs, never an EMA of ratios. Units: examples of the workload's batch (sequences for a
language model). Drawn without replacement from a training set of ``N`` examples (the
batches of one epoch), a batch of ``B`` carries the noise of ``B (N - 1) / (N - B)``
independent draws: with ``population=N`` the estimates use these effective sizes (when
``k B`` approaches ``N``, uncorrected estimates overstate ``B_simple``). Zhang et al. 2024
("How Does Critical Batch Size Scale in Pre-training?", arXiv 2410.21676) find the critical
batch size grows with the training duration: report it with the step and loss it was
measured at.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from steplab.monitors.base import Monitor, MonitorError, Probe, batch_examples


def two_batch_estimates(small_sq: float, big_sq: float, b_small: float, b_big: float) -> tuple[float, float]:
    """Unbiased ``(|G|^2, tr(Sigma))`` from the squared norms of a size-``b_small`` and a
    size-``b_big`` minibatch gradient (McCandlish et al. 2018, App. A)."""
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got {b_small} and {b_big}")
    inv_small, inv_big = 1 / b_small, 1 / b_big  # b_big may be inf: the exact gradient
    g2 = (inv_small * big_sq - inv_big * small_sq) / (inv_small - inv_big)
    trace = (small_sq - big_sq) / (inv_small - inv_big)
    return g2, trace


def effective_batch(size: int, population: int) -> float:
    """The batch size that sampling ``size`` of ``population`` examples *without replacement*
    is worth: ``Var(mean) = Sigma/size * (N - size)/(N - 1)`` (the finite-population
    correction), so ``size (N - 1)/(N - size)``; ``population`` 0 means infinite."""
    if not population:
        return float(size)
    return math.inf if size >= population else size * (population - 1) / (population - size)


@dataclasses.dataclass
class EMA:
    """A bias-corrected exponential moving average (Kingma & Ba 2015's correction)."""

    beta: float
    value: float = 0.0
    count: int = 0

    def update(self, x: float) -> float:
        self.count += 1
        self.value = self.beta * self.value + (1 - self.beta) * x
        return self.mean

    @property
    def mean(self) -> float:
        return self.value / (1 - self.beta**self.count)


@dataclasses.dataclass
class NoiseScale(Monitor):
    """``gns/b_simple`` and ``gns/critical_batch`` (the EMA ratio; left out while the
    smoothed ``|G|^2`` is not positive), ``gns/g2`` and ``gns/trace_sigma`` (the smoothed
    estimates), ``gns/batch_size`` (``B_s``). See the module docstring."""

    name: ClassVar[str] = "gns"
    #: probe batches: B_small = one, B_big = all of them
    batches: int = 8
    #: EMA factor per measurement (measurements come on the evaluation cadence, ~20-30 per
    #: run, so far below gpt-neox's per-step 0.99)
    beta: float = 0.8
    #: examples per probe batch; 0 = the leading size of the batch's first tensor
    batch_size: int = 0
    #: size of the training set the probe batches were drawn from without replacement
    #: (consecutive batches of one epoch): corrects for the finite population; 0 = infinite
    population: int = 0
    _g2: EMA = dataclasses.field(init=False, repr=False)
    _trace: EMA = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.batches < 2:
            raise ValueError(f"batches must be >= 2 (two batch sizes), got {self.batches}")
        if not 0 <= self.beta < 1 or self.batch_size < 0 or self.population < 0:
            raise ValueError("beta must be in [0, 1), batch_size and population >= 0")
        self._g2, self._trace = EMA(self.beta), EMA(self.beta)

    def __call__(self, probe: Probe) -> dict[str, float]:
        chosen = list(probe.batches[: self.batches])
        if len(chosen) < 2:
            raise MonitorError(f"gns needs at least 2 probe batches, the run has {len(chosen)}")
        params = [p for _, p in probe.named_parameters()]
        b_small = self.batch_size or batch_examples(chosen[0])
        total = [torch.zeros_like(p, dtype=torch.float64) for p in params]
        small_sq = 0.0
        for batch in chosen:
            grads = torch.autograd.grad(probe.loss(probe.model, batch), params, allow_unused=True)
            for t, g in zip(total, grads, strict=True):
                if g is not None:
                    t += g.detach()
            small_sq += float(sum(g.detach().double().square().sum() for g in grads if g is not None)) / len(chosen)
        big_sq = float(sum((t / len(chosen)).square().sum() for t in total))
        if self.population and b_small * len(chosen) > self.population:
            raise MonitorError(f"{len(chosen)} probe batches of {b_small} exceed population={self.population}; "
                               "use fewer batches")
        g2, trace = two_batch_estimates(small_sq, big_sq, effective_batch(b_small, self.population),
                                        effective_batch(b_small * len(chosen), self.population))
        g2_mean, trace_mean = self._g2.update(g2), self._trace.update(trace)
        out = {"gns/g2": g2_mean, "gns/trace_sigma": trace_mean, "gns/batch_size": float(b_small)}
        if g2_mean > 0:
            out["gns/b_simple"] = out["gns/critical_batch"] = trace_mean / g2_mean
        return out
