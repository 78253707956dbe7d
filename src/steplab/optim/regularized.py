"""Regularizers against loss of plasticity, on an SGD or Adam base
(:class:`steplab.optim.base_update.BaseUpdate`): L2 Init, spectral regularization and
per-step shrink-and-perturb; and :func:`shrink_perturb`, Ash & Adams' once-per-task form
for task boundaries.

* **L2 Init** (Kumar, Marklund & Van Roy 2023, "Maintaining Plasticity in Continual
  Learning via Regenerative Regularization", arXiv 2308.11958, §3 and App. A.3): pull every
  weight and bias toward its value at construction, ``theta_0``. The paper writes the SGD
  step ``theta <- (1 - a l) theta + a l theta_0 - a grad L``, i.e. the regularizer's
  gradient ``l (theta - theta_0)`` (``convention="paper"``, default); the loss term
  ``l ||theta - theta_0||^2`` differentiates to ``2 l (theta - theta_0)``
  (``convention="loss"``). With Adam the pull goes through Adam's normalization, as in the
  paper. Default ``l = 1e-2`` (the paper's best in most settings).
* **Spectral regularization** (Lewandowski et al. 2025, "Learning Continually by Spectral
  Regularization", ICLR, arXiv 2406.06811): keep the largest singular value of each layer
  near 1. For each ``nn.Linear`` / ``nn.Conv*d`` with weight ``W`` (conv kernels as
  ``out x (in * k...)``) and bias ``b``: ``W~ = [W | b]``, ``sigma`` by power iteration
  (``u``, ``v`` kept across steps, as in spectral normalization, Miyato et al. 2018), and
  ``d sigma / d W~ = u v^T``. The exact penalty is not verified here (the formula sheet
  tags it [U]): ``penalty="power-minus-one-squared"`` (default) is ``l (sigma^k - 1)^2``
  (default ``k = 2``), ``penalty="deviation-power"`` is ``l |sigma - 1|^k``.
* **Shrink and perturb, per step**: ``form="dohare"`` (Dohare et al. 2024,
  ``lop/algos/bp.py``): the base step with L2 ``weight_decay``, then ``theta += N(0,
  sigma^2)`` (noise not scaled by lr); ``form="upgd"`` (Elsayed & Mahmood 2024,
  ``core/optim/shrink_and_perturb.py``): ``theta <- (1 - lr wd) theta - lr (g + sigma xi)``.
  The shrink is steplab's ``weight_decay`` (biases and norms exempt unless
  ``no_decay_bias_norm=False``); noise goes into every trained tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from steplab.errors import SpecError, WorkloadError
from steplab.optim.base_update import BaseUpdate

__all__ = ["L2Init", "ShrinkPerturb", "SpectralReg", "power_iteration", "shrink_perturb",
           "spectral_penalty_grad"]

L2_CONVENTIONS = ("paper", "loss")
PENALTIES = ("power-minus-one-squared", "deviation-power")
SP_FORMS = ("dohare", "upgd")


def _base_defaults(lr: float, weight_decay: float, base: str, momentum: float,
                   betas: tuple[float, float], eps: float, **extra: Any) -> dict[str, Any]:
    return {"lr": lr, "weight_decay": weight_decay, "base": base, "momentum": momentum,
            "betas": tuple(betas), "eps": eps, **extra}


class L2Init(BaseUpdate):
    """SGD or Adam on ``L + l ||theta - theta_0||^2`` (Kumar et al. 2023); ``theta_0`` = the
    parameters when the optimizer is built (kept in its state, so checkpoints carry it).

    Args:
        l2_init: the coefficient ``l``; convention: ``"paper"`` (pull ``l (theta - theta_0)``)
            or ``"loss"`` (``2 l (theta - theta_0)``). Other args as :class:`BaseUpdate`'s bases.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, weight_decay: float = 0.0, base: str = "sgd",
                 momentum: float = 0.0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 l2_init: float = 1e-2, convention: str = "paper") -> None:
        if l2_init < 0:
            raise ValueError(f"l2_init must be >= 0, got {l2_init!r}")
        if convention not in L2_CONVENTIONS:
            raise ValueError(f"convention must be 'paper' or 'loss', got {convention!r}")
        super().__init__(params, _base_defaults(lr, weight_decay, base, momentum, betas, eps,
                                                l2_init=l2_init, convention=convention))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["init"] = p.detach().clone()

    def extra_grad(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor | None:
        lam = group["l2_init"] * (2.0 if group["convention"] == "loss" else 1.0)
        return (p - self.state[p]["init"]).mul_(lam) if lam else None


def power_iteration(w: torch.Tensor, u: torch.Tensor, iters: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``iters`` rounds of ``v <- W^T u / |.|``, ``u <- W v / |.|`` from ``u``; returns
    ``(sigma, u, v)`` with ``sigma = u^T W v`` (Miyato et al. 2018, Algorithm 1)."""
    v = w.new_zeros(w.shape[1])
    for _ in range(max(iters, 1)):
        v = w.t() @ u
        v = v / v.norm().clamp(min=1e-12)
        u = w @ v
        u = u / u.norm().clamp(min=1e-12)
    return u @ w @ v, u, v


def spectral_penalty_grad(sigma: torch.Tensor, lam: float, k: float, penalty: str) -> torch.Tensor:
    """``d R / d sigma`` of ``R = lam (sigma^k - 1)^2`` (``power-minus-one-squared``) or
    ``R = lam |sigma - 1|^k`` (``deviation-power``)."""
    if penalty == "power-minus-one-squared":
        return lam * 2.0 * (sigma ** k - 1.0) * k * sigma ** (k - 1.0)
    d = sigma - 1.0
    return lam * k * d.abs() ** (k - 1.0) * torch.sign(d)


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and m.weight.requires_grad]


class SpectralReg(BaseUpdate):
    """SGD or Adam plus ``l * penalty(sigma_max([W | b]))`` per layer (Lewandowski et al. 2025).

    Args:
        model: the model; every ``nn.Linear`` and ``nn.Conv*d`` with a trained weight is regularized.
        spectral: the coefficient ``l``; power: ``k``; penalty: the penalty's shape (see the module).
        power_iters: power iterations per step (after ``warmup_iters`` at the first step).
    """

    def __init__(self, params: Iterable[Any], model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                 base: str = "sgd", momentum: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, spectral: float = 1e-4, power: float = 2.0,
                 penalty: str = "power-minus-one-squared", power_iters: int = 1, warmup_iters: int = 20) -> None:
        if spectral < 0 or power <= 0:
            raise ValueError(f"spectral must be >= 0 and power > 0, got {spectral!r}, {power!r}")
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}, got {penalty!r}")
        if penalty == "deviation-power" and power < 1:
            raise ValueError(f"penalty 'deviation-power' needs power >= 1, got {power!r}")
        if power_iters < 1 or warmup_iters < 1:
            raise ValueError("power_iters and warmup_iters must be >= 1")
        super().__init__(params, _base_defaults(lr, weight_decay, base, momentum, betas, eps))
        self.spec = {"spectral": spectral, "power": power, "penalty": penalty,
                     "power_iters": power_iters, "warmup_iters": warmup_iters}
        self._layers = _layers(model)
        if not self._layers:
            raise WorkloadError("spectral regularization needs nn.Linear or nn.Conv layers; this model has none")
        self._grads: dict[int, torch.Tensor] = {}
        #: the last sigma_max estimate per layer (for monitors and tests)
        self.sigmas: list[float] = []

    def before_step(self) -> None:
        """Estimate each layer's sigma and turn the penalty's gradient into per-tensor terms."""
        self._grads = {}
        self.sigmas = []
        cfg = self.spec
        for m in self._layers:
            w = m.weight.detach()
            mat = w.reshape(w.shape[0], -1)
            if m.bias is not None:
                mat = torch.cat([mat, m.bias.detach().reshape(-1, 1)], dim=1)
            st = self.state[m.weight]
            first = "spectral_u" not in st
            if first:
                st["spectral_u"] = torch.nn.functional.normalize(torch.randn(mat.shape[0]).to(mat), dim=0)
            sigma, u, v = power_iteration(mat, st["spectral_u"], cfg["warmup_iters"] if first else cfg["power_iters"])
            st["spectral_u"] = u
            self.sigmas.append(float(sigma))
            if cfg["spectral"] == 0:
                continue
            g = spectral_penalty_grad(sigma, cfg["spectral"], cfg["power"], cfg["penalty"]) * torch.outer(u, v)
            ncol = mat.shape[1] - (1 if m.bias is not None else 0)
            self._grads[id(m.weight)] = g[:, :ncol].reshape(w.shape)
            if m.bias is not None:
                self._grads[id(m.bias)] = g[:, ncol]

    def extra_grad(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor | None:
        return self._grads.get(id(p))


class ShrinkPerturb(BaseUpdate):
    """Per-step shrink and perturb: the shrink is ``weight_decay``, the noise ``sigma``.

    Args:
        sigma: standard deviation of the Gaussian noise added to every trained tensor.
        form: ``"dohare"`` (base step with L2 decay, then ``+ sigma xi``, default) or
            ``"upgd"`` (``(1 - lr wd) theta - lr (g + sigma xi)``; SGD base without momentum only).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, weight_decay: float = 1e-4, base: str = "sgd",
                 momentum: float = 0.0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 sigma: float = 1e-5, form: str = "dohare") -> None:
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        if form not in SP_FORMS:
            raise ValueError(f"form must be 'dohare' or 'upgd', got {form!r}")
        if form == "upgd" and (base != "sgd" or momentum):
            raise ValueError("form 'upgd' is plain SGD: use base='sgd' and momentum=0, or form='dohare'")
        super().__init__(params, _base_defaults(lr, weight_decay, base, momentum, betas, eps, sigma=sigma, form=form))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        if all(g["form"] == "dohare" for g in self.param_groups):
            loss = super().step(closure)
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(torch.randn_like(p), alpha=group["sigma"])
            return loss
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                noise = torch.randn_like(p).mul_(group["sigma"])
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(p.grad + noise, alpha=-group["lr"])
        return loss


@torch.no_grad()
def shrink_perturb(model: nn.Module, shrink: float, noise: float, fresh_model: nn.Module) -> None:
    """Ash & Adams 2020 ("On Warm-Starting Neural Network Training", NeurIPS, §4;
    ``JordanAsh/warm_start``): ``theta <- shrink * theta + noise * theta_fresh`` for every
    parameter, ``theta_fresh`` from ``fresh_model``, a freshly initialized twin of ``model``
    (so the noise follows each layer's init scale). Call it at a task boundary;
    ``(1, 0)`` keeps the model, ``(0, 1)`` is a fresh start. Buffers are left as they are."""
    for name, val in (("shrink", shrink), ("noise", noise)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise SpecError(f"shrink_perturb: {name} must be a finite number, got {val!r}")
    own, fresh = dict(model.named_parameters()), dict(fresh_model.named_parameters())
    if own.keys() != fresh.keys() or any(own[k].shape != fresh[k].shape for k in own):
        raise SpecError("shrink_perturb: fresh_model must have the same parameters and shapes as model "
                        "(build it with the workload's init and a new seed)")
    for k, p in own.items():
        p.mul_(shrink).add_(fresh[k].to(p), alpha=noise)
