"""The plain SGD and Adam updates that the plasticity optimizers build on (continual backprop,
L2 Init, spectral regularization, shrink-and-perturb): :class:`BaseUpdate` adds a
regularizer's gradient, or resets units, around one of them.

* ``base="sgd"``: torch's SGD (Robbins & Monro 1951) with heavy-ball ``momentum`` (buffer
  ``b <- momentum * b + g``, the first buffer is ``g``) and L2 ``weight_decay`` added to the
  gradient, as ``torch.optim.SGD`` with ``dampening=0, nesterov=False``.
* ``base="adam"``: Adam (Kingma & Ba 2015, Algorithm 1) with L2 ``weight_decay`` added to the
  gradient, as ``torch.optim.Adam``, but with a **per-element** step count: the bias
  corrections ``1 - beta**t`` use ``t`` of each entry, so continual backprop can restart the
  moments of the entries it reinitializes (``AdamGnT`` of Dohare et al. 2024,
  ``shibhansh/loss-of-plasticity``, ``lop/utils/AdamGnT.py``). Without resets it equals
  ``torch.optim.Adam`` (``tests/test_optim_plasticity.py`` checks this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

BASES = ("sgd", "adam")


def check_base(base: str, betas: Sequence[float], momentum: float, eps: float) -> None:
    """Raise ``ValueError`` (build_optimizer turns it into a SpecError) for bad base settings."""
    if base not in BASES:
        raise ValueError(f"base must be one of {', '.join(BASES)}, got {base!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")


class BaseUpdate(torch.optim.Optimizer):
    """SGD or Adam with a hook for the subclass: :meth:`extra_grad` returns a tensor added to
    each parameter's gradient before the update (a regularizer's gradient), :meth:`after_step`
    runs once after all parameters moved. The step reads no loss (``needs_loss`` is False)."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if not isinstance(defaults["lr"], (int, float)) or defaults["lr"] < 0:
            raise ValueError(f"lr must be >= 0, got {defaults['lr']!r}")
        if defaults.get("weight_decay", 0.0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {defaults['weight_decay']!r}")
        check_base(defaults["base"], defaults["betas"], defaults["momentum"], defaults["eps"])
        super().__init__(params, defaults)

    def extra_grad(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor | None:
        """A tensor added to ``p.grad`` before the base update (default: none)."""
        return None

    def before_step(self) -> None:
        """Runs once before the parameters move (default: nothing)."""

    def after_step(self) -> None:
        """Runs once after every parameter moved (default: nothing)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.before_step()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                extra = self.extra_grad(group, p)
                if extra is not None:
                    grad = grad + extra
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if group["base"] == "sgd":
                    _sgd(p, grad, self.state[p], group)
                else:
                    _adam(p, grad, self.state[p], group)
        self.after_step()
        return loss


def _sgd(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
    mom = group["momentum"]
    if mom:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = grad.detach().clone()
        else:
            buf.mul_(mom).add_(grad)
        grad = buf
    p.add_(grad, alpha=-group["lr"])


def _adam(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
    if "exp_avg" not in state:
        state["step"] = torch.zeros_like(p)  # one count per entry (AdamGnT)
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
    b1, b2 = group["betas"]
    step, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
    step.add_(1)
    m.mul_(b1).add_(grad, alpha=1 - b1)
    v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    # torch.optim.Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), bc = 1 - beta**t per entry
    bc1 = torch.pow(b1, step).neg_().add_(1)
    bc2 = torch.pow(b2, step).neg_().add_(1)
    denom = v.sqrt().div_(bc2.sqrt_()).add_(group["eps"])
    p.addcdiv_(bc1.reciprocal_().mul_(m), denom, value=-group["lr"])
