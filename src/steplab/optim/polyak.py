"""Polyak-type step sizes: SPS_max, MoMo with its online estimate of f*, and ALR-SMAG.

Polyak's step for gradient descent, ``eta_t = (f(x_t) - f*) / ||g_t||^2`` (Polyak 1987,
"Introduction to Optimization", §5.3), needs the loss at the current point. Each optimizer
here reads the minibatch loss through ``step(closure)``: ``closure()`` returns the loss
already computed for the step (steplab's train loop passes ``lambda: loss``; nothing is
recomputed). :func:`steplab.optim.optimizers.needs_loss` tells a loop which optimizers want it
(the class attribute ``needs_loss = True``).

No installed package provides these (``pytorch_optimizer`` 4.1 has no SPS/MoMo; the
authors' ``momo-opt`` had one release, 2023-05), so they are written here from the
papers, checked against the authors' reference code (read, not copied): IssamLaradji/sps
``sps/sps.py``, fabian-sp/MoMo ``momo/momo.py``, fabian-sp/step-back
``stepback/optim/alr_smag.py``. ``tests/test_polyak.py`` checks first steps against hand
computation and SPS's linear rate on a quadratic.

Conventions shared by the three:

* One step size for the whole parameter vector: norms and inner products run over every
  parameter of every group. The scheduled ``lr`` (``param_groups[0]["lr"]``) is the cap
  ``gamma_b``, so an lr schedule scales the cap, not the adaptive step.
* ``weight_decay`` is decoupled and scaled by the adaptive step, ``x <- (1 - eta_t *
  lambda) x`` before the update (as step-back's ALR-SMAG does); the step-size formulas do
  not include the regularizer (the proximal variants of Schaipp et al. 2023 are not
  implemented). The built-in baselines use no weight decay.
* All arithmetic stays in 0-d tensors on the parameters' device: no host synchronization.
* Scalars that evolve (running loss, f* estimate, last step size) live in
  ``self.state["polyak"]``, so ``state_dict()``/``load_state_dict()`` checkpoint them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["MoMo", "PolyakMomentum", "SPSMax"]


def _dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def _dot(a: list[torch.Tensor], b: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """``sum_i <a_i, b_i>`` over a list of tensors, as a 0-d tensor of ``dtype``."""
    return torch.stack([(x.to(dtype) * y.to(dtype)).sum() for x, y in zip(a, b, strict=True)]).sum()


class _Polyak(torch.optim.Optimizer):
    """What the three share: the loss from the closure, the gradient list, the global state."""

    #: the train loop passes ``step(lambda: loss)`` to optimizers with this flag
    needs_loss = True

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if not isinstance(defaults["lr"], (int, float)) or defaults["lr"] < 0:
            raise ValueError(f"lr (the step-size cap) must be >= 0, got {defaults['lr']!r}")
        if defaults.get("weight_decay", 0.0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {defaults['weight_decay']!r}")
        super().__init__(params, defaults)

    def _loss(self, closure: Callable[[], Any] | None, like: torch.Tensor) -> torch.Tensor:
        """The closure's loss as a 0-d tensor on ``like``'s device, in its dtype (at least
        float32: the step-size arithmetic of half-precision parameters runs in float32)."""
        if closure is None:
            raise RuntimeError(
                f"{type(self).__name__} needs the minibatch loss: call opt.step(lambda: loss) "
                "(steplab's train loop does this for optimizers with needs_loss)"
            )
        loss = closure()
        return torch.as_tensor(loss.detach() if isinstance(loss, torch.Tensor) else loss,
                               dtype=_dtype(like), device=like.device)

    def _with_grad(self) -> list[tuple[dict[str, Any], torch.Tensor]]:
        return [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]

    def _begin(self, closure: Callable[[], Any] | None) -> tuple[list[tuple[dict[str, Any], torch.Tensor]], torch.Tensor | None]:
        """The (group, parameter) pairs with a gradient, and the closure's loss (``None``
        when no parameter has a gradient: the step does nothing)."""
        pairs = self._with_grad()
        return (pairs, self._loss(closure, pairs[0][1])) if pairs else (pairs, None)

    def _global(self) -> dict[str, Any]:
        return self.state.setdefault("polyak", {"k": 0})  # type: ignore[call-overload]

    @staticmethod
    def _apply(pairs: list[tuple[dict[str, Any], torch.Tensor]], eta: torch.Tensor,
               directions: list[torch.Tensor]) -> None:
        """``x <- (1 - eta * weight_decay) x - eta * direction`` for every parameter."""
        for (group, p), d in zip(pairs, directions, strict=True):
            if group.get("weight_decay", 0.0):
                p.mul_(1.0 - eta * group["weight_decay"])
            p.addcmul_(d, eta, value=-1.0)

    @property
    def last_step_size(self) -> float:
        """The step size of the latest update (a host copy; NaN before the first step)."""
        eta = self._global().get("step_size")
        return float(eta) if eta is not None else float("nan")


class SPSMax(_Polyak):
    """Stochastic Polyak step with a cap, SPS_max (Loizou, Vaswani, Laradji, Lacoste-Julien,
    AISTATS 2021, arXiv 2002.10542, §3, "SPS_max")::

        eta_t   = min( max(0, f_i(x_t) - f_i*) / (c * ||g_t||^2), gamma_b )
        x_{t+1} = x_t - eta_t * g_t

    with ``f_i`` the minibatch loss, ``g_t`` its gradient, ``gamma_b = lr`` (scheduled) and
    ``eta_t = 0`` when ``g_t = 0`` (IssamLaradji/sps does the same below 1e-8). ``c = 1/2``
    is the constant of the paper's theory (Theorem 3.1: linear convergence to a neighbourhood
    for strongly convex ``f``, exact under interpolation, at rate ``1 - mu * min(1/(2 c L_max),
    gamma_b)``); ``f_star = 0`` is the usual lower bound of a non-negative loss.

    Args:
        params: parameters or groups.
        lr: the cap ``gamma_b`` (an lr schedule scales it).
        c: the constant ``c > 0`` of the denominator.
        f_star: the (lower bound of the) optimal minibatch loss ``f_i*``.
        weight_decay: decoupled, scaled by ``eta_t`` (see the module docstring).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, c: float = 0.5, f_star: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        if not c > 0:
            raise ValueError(f"c must be > 0, got {c!r}")
        super().__init__(params, {"lr": lr, "c": float(c), "f_star": float(f_star), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        pairs, loss = self._begin(closure)
        if loss is None:
            return None
        grads = [p.grad for _, p in pairs]
        sq = _dot(grads, grads, loss.dtype)  # type: ignore[arg-type]
        g0 = self.param_groups[0]
        raw = torch.clamp(loss - g0["f_star"], min=0.0) / (g0["c"] * sq)
        eta = torch.where(sq > 0, torch.clamp(raw, max=g0["lr"]), torch.zeros_like(sq))
        self._apply(pairs, eta, grads)  # type: ignore[arg-type]
        state = self._global()
        state["k"] += 1
        state["step_size"] = eta
        return loss


class MoMo(_Polyak):
    """MoMo, momentum model with the online estimate of f* (Schaipp, Ohana, Eickenberg,
    Defazio, Gower 2023, "MoMo: Momentum Models for Adaptive Learning Rates", arXiv
    2305.07583, Algorithm 1 and §5 "estimating f*"; reference code fabian-sp/MoMo
    ``momo/momo.py`` with ``use_fstar=True``). With ``beta = momentum`` and exponential
    averages over the steps so far of the loss, the gradient and ``<g, x>``::

        fbar_k  = beta fbar_{k-1}  + (1 - beta) f(x_k)
        d_k     = beta d_{k-1}     + (1 - beta) g_k
        gam_k   = beta gam_{k-1}   + (1 - beta) <g_k, x_k>
        h_k     = fbar_k + <d_k, x_k> - gam_k          # the model's value at x_k
        tau_k   = min( lr / rho_k, max(0, h_k - rho_k * lb) / ||d_k||^2 )
        x_{k+1} = x_k - tau_k d_k

    (averages start at the first values, ``rho_k = 1``; with ``bias_correction`` they start
    at 0 and ``rho_k = 1 - beta^k``). The lower bound ``lb`` of f* starts at ``f_star`` and,
    with ``online_f_star``, is updated every step: before it, if ``h_k < rho_k lb`` then
    ``lb <- max(f_star, h_k / (2 rho_k))`` (reset); after it,
    ``lb <- max(f_star, (h_k - tau_k ||d_k||^2 / 2) / rho_k)``. The estimate is kept in
    ``state["polyak"]["f_star"]`` (:attr:`f_star_estimate`).

    Args:
        lr: the cap (``1.0`` in the paper: MoMo needs little tuning of it).
        momentum: ``beta`` of the averages.
        f_star: the initial (and always-kept) lower bound of the loss.
        online_f_star: estimate f* online (else ``lb = f_star`` throughout).
        bias_correction: Adam-style bias correction of the averages.
        weight_decay: decoupled, scaled by ``tau_k`` (see the module docstring).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, momentum: float = 0.9, f_star: float = 0.0,
                 online_f_star: bool = True, bias_correction: bool = False, weight_decay: float = 0.0) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        super().__init__(params, {"lr": lr, "momentum": float(momentum), "f_star": float(f_star),
                                  "online_f_star": bool(online_f_star), "bias_correction": bool(bias_correction),
                                  "weight_decay": weight_decay})

    @property
    def f_star_estimate(self) -> float:
        """The current lower bound ``lb`` of f* (``f_star`` before the first step)."""
        lb = self._global().get("f_star")
        return float(lb) if lb is not None else self.param_groups[0]["f_star"]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        pairs = self._with_grad()
        if not pairs:
            return None
        device = pairs[0][1].device
        loss = self._loss(closure, pairs[0][1])
        dt = loss.dtype
        g0 = self.param_groups[0]
        beta, lb0, correct = g0["momentum"], g0["f_star"], g0["bias_correction"]
        state = self._global()
        state["k"] += 1
        k = state["k"]
        first = k == 1
        params = [p for _, p in pairs]
        gx = _dot([p.grad for p in params], params, dt)  # type: ignore[misc]
        if first and not correct:
            fbar, gam = loss.clone(), gx
        else:
            fbar0 = state.get("loss_avg", torch.zeros((), dtype=dt, device=device))
            gam0 = state.get("gdotx_avg", torch.zeros((), dtype=dt, device=device))
            fbar, gam = beta * fbar0 + (1 - beta) * loss, beta * gam0 + (1 - beta) * gx
        directions = []
        for _, p in pairs:
            s = self.state[p]
            if "d" not in s:
                s["d"] = p.grad.clone() if not correct else torch.zeros_like(p)
                if correct:
                    s["d"].add_(p.grad, alpha=1 - beta)
            else:
                s["d"].mul_(beta).add_(p.grad, alpha=1 - beta)
            directions.append(s["d"])
        dx = _dot(directions, params, dt)
        dsq = _dot(directions, directions, dt)
        rho = 1.0 - beta**k if correct else 1.0
        h = fbar + dx - gam
        lb = state.get("f_star", torch.tensor(lb0, dtype=dt, device=device))
        if g0["online_f_star"]:  # reset a bound the model already undercuts
            lb = torch.where(h < rho * lb, torch.clamp(h / (2 * rho), min=lb0), lb)
        raw = torch.clamp(h - rho * lb, min=0.0) / dsq
        tau = torch.where(dsq > 0, torch.clamp(raw, max=g0["lr"] / rho), torch.zeros_like(dsq))
        if g0["online_f_star"]:
            lb = torch.clamp((h - 0.5 * tau * dsq) / rho, min=lb0)
        self._apply(pairs, tau, directions)
        state.update(loss_avg=fbar, gdotx_avg=gam, f_star=lb, step_size=tau)
        return loss


class PolyakMomentum(_Polyak):
    """Generalized Polyak step with heavy-ball momentum, ALR-SMAG (Wang, Johansson, Zhang,
    ICML 2023, "Generalized Polyak Step Size for First Order Optimization with Momentum",
    arXiv 2305.12939, the stochastic moving-average-gradient method ALR-SMAG; reference
    code fabian-sp/step-back ``stepback/optim/alr_smag.py``)::

        d_t     = beta d_{t-1} + g_t                    # d_{-1} = 0, a sum, not an average
        eta_t   = min( max(0, f_i(x_t) - f_i*) / (c ||d_t||^2), gamma_b )
        x_{t+1} = x_t - eta_t d_t

    The Polyak step is taken along the momentum direction with the momentum's own norm in
    the denominator, which the paper shows makes the method insensitive to ``beta`` and
    avoids heavy-ball's oscillation on ill-conditioned problems.

    Args:
        lr: the cap ``gamma_b``.
        momentum: ``beta``.
        c: the constant of the denominator (1 in the reference code).
        f_star: the lower bound ``f_i*`` of the minibatch loss.
        weight_decay: decoupled, scaled by ``eta_t`` (see the module docstring).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1.0, momentum: float = 0.9, c: float = 1.0,
                 f_star: float = 0.0, weight_decay: float = 0.0) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not c > 0:
            raise ValueError(f"c must be > 0, got {c!r}")
        super().__init__(params, {"lr": lr, "momentum": float(momentum), "c": float(c), "f_star": float(f_star),
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        pairs, loss = self._begin(closure)
        if loss is None:
            return None
        g0 = self.param_groups[0]
        directions = []
        for _, p in pairs:
            s = self.state[p]
            if "d" not in s:
                s["d"] = p.grad.clone()
            else:
                s["d"].mul_(g0["momentum"]).add_(p.grad)
            directions.append(s["d"])
        dsq = _dot(directions, directions, loss.dtype)
        raw = torch.clamp(loss - g0["f_star"], min=0.0) / (g0["c"] * dsq)
        eta = torch.where(dsq > 0, torch.clamp(raw, max=g0["lr"]), torch.zeros_like(dsq))
        self._apply(pairs, eta, directions)
        state = self._global()
        state["k"] += 1
        state["step_size"] = eta
        return loss
