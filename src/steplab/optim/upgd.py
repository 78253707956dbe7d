"""UPGD, utility-based perturbed gradient descent (Elsayed & Mahmood 2024, "Addressing
Loss of Plasticity and Catastrophic Forgetting in Continual Learning", ICLR, arXiv
2404.00781): small steps for useful weights, which protects them from forgetting, and
noise for useless ones, which restores their plasticity.

The global variant, step by step as in the authors' code (``mohmdelsayed/upgd``,
``core/optim/weight_upgd/first_order.py`` and ``second_order.py`` at 998f48b; read, not
copied), for every parameter tensor ``w`` with gradient ``g``:

1. instantaneous utility ``u = -g * w`` (first order, ``utility="first"``), or
   ``u = 0.5 * h * w**2 - g * w`` (second order, ``utility="second"``, ``h`` the diagonal
   of the Hessian): the Taylor expansion of the loss change when ``w`` is set to 0;
2. ``U <- beta_utility * U + (1 - beta_utility) * u``; ``M`` = the largest entry of every
   ``U`` of every group (before bias correction, as coded);
3. ``s = sigmoid((U / (1 - beta_utility**t)) / M)``;
4. ``xi ~ N(0, sigma**2)``; protecting (``protect=True``, the paper's UPGD):
   ``w <- (1 - lr * wd) w - lr (g + xi) (1 - s)``; non-protecting (``protect=False``):
   ``w <- (1 - lr * wd) w - lr (g + xi (1 - s))``.

Where steplab departs from the code, on purpose:

* ``M`` is clamped to at least ``1e-12`` (the code divides by ``M`` as is: an all-zero
  gradient gives ``0/0 = NaN`` in the weights, and an all-negative ``M`` flips the sign
  of every scaled utility). With the clamp, a zero utility gives ``s = 0.5``.
* Second order: the authors take ``h`` from HesScale (Elsayed & Mahmood 2022, a
  backpropagated diagonal-Hessian approximation, ``HesScale/hesscale``), which steplab
  does not ship. steplab uses Hutchinson's estimator (Bekas et al. 2007) from one
  Hessian-vector product per step, ``h = z * (H z)`` with Rademacher ``z``: unbiased
  for the exact diagonal, but noisy (the utility EMA averages it). It needs the gradient
  graph: the train loop calls ``loss.backward(create_graph=True)`` for optimizers with
  ``needs_graph`` (:func:`steplab.optim.optimizers.needs_graph`); without it ``step``
  raises.
* Parameters without a gradient are skipped (the code needs one for every parameter);
  weight decay follows steplab's groups (biases and norms not decayed by default), where
  the code decays every tensor.
* Defaults ``beta_utility=0.999, sigma=1e-3`` follow the README's standalone class (the
  classes in ``core`` default to 0 and 1); the README's class also doubles the step
  (``2 * lr``), which steplab does not: scale ``lr`` to compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["UPGD", "MIN_MAX_UTILITY"]

#: the floor of the global maximum utility ``M`` (the authors' code has none)
MIN_MAX_UTILITY = 1e-12
UTILITIES = ("first", "second")


class UPGD(torch.optim.Optimizer):
    """Global UPGD (Elsayed & Mahmood 2024, Algorithm 1; the authors' ``FirstOrderGlobalUPGD``,
    ``FirstOrderNonprotectingGlobalUPGD`` and their second-order twins).

    Args:
        params: parameters or parameter groups.
        lr: step size ``eta``.
        weight_decay: decoupled shrink ``w <- (1 - lr * weight_decay) w`` (as coded).
        beta_utility: EMA factor of the utility.
        sigma: standard deviation of the Gaussian perturbation.
        protect: True gates gradient and noise by ``1 - s`` (UPGD); False gates only the
            noise (the paper's non-protecting variant).
        utility: ``"first"`` (``-g w``) or ``"second"`` (adds ``h w^2 / 2``, Hutchinson
            diagonal; needs ``loss.backward(create_graph=True)``).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, weight_decay: float = 0.0,
                 beta_utility: float = 0.999, sigma: float = 1e-3, protect: bool = True,
                 utility: str = "first") -> None:
        if not isinstance(lr, (int, float)) or lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if not 0.0 <= beta_utility < 1.0:
            raise ValueError(f"beta_utility must be in [0, 1), got {beta_utility!r}")
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        if utility not in UTILITIES:
            raise ValueError(f"utility must be 'first' or 'second', got {utility!r}")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "beta_utility": beta_utility,
                                  "sigma": sigma, "protect": bool(protect), "utility": utility})

    @property
    def needs_graph(self) -> bool:
        """True for the second-order utility: the loop must keep the gradient's graph."""
        return any(g["utility"] == "second" for g in self.param_groups)

    def _hessian_diagonal(self, pairs: list[tuple[dict[str, Any], torch.Tensor]]) -> dict[int, torch.Tensor]:
        """Hutchinson's diagonal ``z * (H z)`` for the parameters of second-order groups."""
        second = [p for g, p in pairs if g["utility"] == "second"]
        if not second:
            return {}
        grads = [p.grad for p in second]
        if not all(g.requires_grad for g in grads):
            raise RuntimeError("UPGD with utility='second' needs the gradient's graph: call "
                               "loss.backward(create_graph=True) (steplab's train loop does this for "
                               "optimizers with needs_graph)")
        zs = [torch.randint_like(p, 2).mul_(2).sub_(1) for p in second]
        with torch.enable_grad():
            hz = torch.autograd.grad(grads, second, grad_outputs=zs, allow_unused=True)
        out = {}
        for p, z, h in zip(second, zs, hz, strict=True):
            out[id(p)] = torch.zeros_like(p) if h is None else (z * h).detach()
            p.grad = p.grad.detach()  # drop the graph (and the reference cycle it makes)
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        pairs = [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not pairs:
            return loss
        hess = self._hessian_diagonal(pairs)
        maxima = []
        for group, p in pairs:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["avg_utility"] = torch.zeros_like(p)
            state["step"] += 1
            g = p.grad.detach()
            u = -g * p
            if group["utility"] == "second":
                u = u + 0.5 * hess[id(p)] * p * p
            b = group["beta_utility"]
            state["avg_utility"].mul_(b).add_(u, alpha=1 - b)
            maxima.append(state["avg_utility"].max())
        top = torch.stack(maxima).max().clamp(min=MIN_MAX_UTILITY)
        for group, p in pairs:
            state = self.state[p]
            g = p.grad.detach()
            corrected = state["avg_utility"] / (1 - group["beta_utility"] ** state["step"])
            gate = 1 - torch.sigmoid(corrected / top)
            noise = torch.randn_like(p) * group["sigma"]
            direction = (g + noise) * gate if group["protect"] else g + noise * gate
            p.mul_(1 - group["lr"] * group["weight_decay"]).add_(direction, alpha=-group["lr"])
        return loss
