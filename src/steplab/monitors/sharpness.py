"""``sharpness``: the top Hessian eigenvalue of the training loss, and Adam's preconditioned
sharpness, beside the stability threshold of the optimizer.

Cohen et al. 2021 ("Gradient Descent on Neural Networks Typically Occurs at the Edge of
Stability", ICLR): gradient descent with step ``lr`` on a quadratic is stable iff
``lambda_max(H) < 2/lr``; on neural networks the sharpness rises until it reaches ``2/lr``
and then hovers there. Cohen et al. 2022 ("Adaptive Gradient Methods at the Edge of
Stability", arXiv 2207.14484): for Adam the *preconditioned* sharpness ``lambda_max(P^-1 H)``
equilibrates at ``(2 + 2 beta1) / ((1 - beta1) lr)`` (38/lr for beta1 = 0.9), with
``P_t = (1 - beta1^t) diag(sqrt(v_t / (1 - beta2^t)) + eps)`` so that torch's bias-corrected
step is exactly ``theta <- theta - lr P^-1 m``.

Hessian-vector products: Pearlmutter's double backward with ``torch.autograd.grad``: the
gradient of the mean loss over the probe batches is built once with ``create_graph=True``
and every product ``Hv`` is one more backward pass through that graph (``retain_graph``).
Double backward rather than ``torch.func`` forward-over-reverse because the workload's loss
is an arbitrary callable of the module (no ``functional_call`` needed) and the graph is
reused across the Lanczos iterations; attention runs in the math SDPA backend while the
graph is built (the fused CPU flash kernel has no second derivative). The top eigenvalue:
Lanczos (``scipy.sparse.linalg.eigsh(which='LA')``: the largest *algebraic* eigenvalue;
the default ``'LM'`` would return a dominant negative one) or power iteration (shifted by
the dominant eigenvalue when that is negative), warm-started from the previous measurement's
eigenvector. The preconditioned operator is the symmetric ``P^-1/2 H P^-1/2`` (the same
spectrum as ``P^-1 H``), as in the authors' ``src/adam.py``.

Thresholds (frozen quadratic, torch conventions): plain SGD ``2/lr``; heavy ball with
momentum ``beta`` and dampening ``d``: ``(2 + 2 beta) / ((1 - d) lr)``; Nesterov:
``(2 + 2 beta) / ((1 + 2 beta) lr)``; no optimizer (a user's own loop): ``2/lr``. Coupled
weight decay (torch ``SGD``/``Adam`` ``weight_decay``) is part of the gradient the optimizer
follows, so ``wd`` is added to ``H`` on the decayed tensors; AdamW's decoupled decay is not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from steplab.monitors.base import Monitor, MonitorError, Probe

METHODS = ("lanczos", "power")


class HessianOperator:
    """``v -> H v`` (flat float64 numpy vectors) for the mean training loss over the first
    ``batches`` probe batches at the current parameters, plus :attr:`diagonal` (flat, per
    coordinate: coupled weight decay) when set. :attr:`calls` counts the products."""

    def __init__(self, probe: Probe, batches: int) -> None:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        self.params = [p for _, p in probe.named_parameters()]
        if not self.params:
            raise MonitorError("the model has no trainable parameters")
        chosen = list(probe.batches[:batches])
        if not chosen:
            raise MonitorError("sharpness needs at least one probe batch")
        total: list[torch.Tensor | None] = [None] * len(self.params)
        with sdpa_kernel(SDPBackend.MATH):
            for batch in chosen:
                loss = probe.loss(probe.model, batch) / len(chosen)
                grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
                total = [g if t is None else (t if g is None else t + g) for t, g in zip(total, grads, strict=True)]
        self.outputs = [(i, g) for i, g in enumerate(total) if g is not None and g.requires_grad]
        self.sizes = [p.numel() for p in self.params]
        self.size = sum(self.sizes)
        self.device = self.params[0].device
        self.diagonal: np.ndarray | None = None
        self.calls = 0

    def split(self, vec: np.ndarray) -> list[torch.Tensor]:
        flat = torch.as_tensor(vec, dtype=torch.float64, device=self.device)
        return [t.view_as(p).to(p.dtype) for t, p in zip(flat.split(self.sizes), self.params, strict=True)]

    def __call__(self, vec: np.ndarray) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float64).reshape(-1)
        self.calls += 1
        parts = self.split(vec)
        out = [torch.zeros_like(p) for p in self.params]
        if self.outputs:
            hv = torch.autograd.grad([g for _, g in self.outputs], self.params,
                                     grad_outputs=[parts[i] for i, _ in self.outputs],
                                     retain_graph=True, allow_unused=True)
            out = [h if h is not None else o for h, o in zip(hv, out, strict=True)]
        result = torch.cat([t.reshape(-1) for t in out]).detach().double().cpu().numpy()
        if self.diagonal is not None:
            result = result + self.diagonal * vec
        return result


def top_eigenpair(apply: Callable[[np.ndarray], np.ndarray], size: int, *, method: str, iters: int,
                  tol: float, start: np.ndarray | None, ncv: int = 10) -> tuple[float, np.ndarray]:
    """The largest algebraic eigenvalue of the symmetric operator ``apply`` and its unit
    eigenvector, by Lanczos (ARPACK ``eigsh(which='LA')``, ``ncv`` Lanczos vectors, at most
    ``iters`` restarts) or power iteration (``iters`` products), starting from
    ``start`` (else a fixed pseudo-random vector: measurements are reproducible)."""
    v0 = start if start is not None and start.shape == (size,) else np.random.default_rng(0).standard_normal(size)
    if size < 3:  # ARPACK needs k < size; build the matrix
        dense = np.stack([apply(e) for e in np.eye(size)], axis=1)
        values, vectors = np.linalg.eigh((dense + dense.T) / 2)
        return float(values[-1]), vectors[:, -1]
    if method == "lanczos":
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

        op = LinearOperator((size, size), matvec=apply, dtype=np.float64)
        try:
            values, vectors = eigsh(op, k=1, which="LA", v0=v0, tol=tol, maxiter=iters, ncv=min(size, ncv))
        except ArpackNoConvergence as e:
            if len(e.eigenvalues) == 0:
                raise MonitorError(f"Lanczos did not converge in {iters} restarts; raise iters=") from None
            values, vectors = e.eigenvalues, e.eigenvectors
        return float(values[-1]), vectors[:, -1]
    value, vector = _power(apply, v0, iters, tol)
    if value < 0:  # the dominant eigenvalue is negative: iterate on H - value*I (all >= 0)
        shift = value
        shifted, vector = _power(lambda x: apply(x) - shift * x, vector, iters, tol)
        value = shifted + shift
    return value, vector


def _power(apply: Callable[[np.ndarray], np.ndarray], v: np.ndarray, iters: int, tol: float) -> tuple[float, np.ndarray]:
    """Power iteration: the eigenvalue of largest magnitude (Rayleigh quotient) and its vector."""
    v = v / np.linalg.norm(v)
    value = 0.0
    for i in range(max(1, iters)):
        w = apply(v)
        new = float(v @ w)
        norm = np.linalg.norm(w)
        if norm == 0:
            return 0.0, v
        v = w / norm
        if i and abs(new - value) <= tol * abs(new):
            return new, v
        value = new
    return value, v


def sgd_threshold(optimizer: torch.optim.Optimizer | None, lr: float) -> float | None:
    """The frozen-quadratic stability threshold on ``lambda_max(H)`` (module docstring), or
    None for an optimizer it does not cover."""
    if optimizer is None:
        return 2.0 / lr
    if type(optimizer) is not torch.optim.SGD:
        return None
    group = optimizer.param_groups[0]
    beta, damp = float(group.get("momentum", 0.0)), float(group.get("dampening", 0.0))
    if beta == 0:
        return 2.0 / lr
    if group.get("nesterov", False):
        return (2 + 2 * beta) / ((1 + 2 * beta) * lr)
    return (2 + 2 * beta) / ((1 - damp) * lr)


def _is_adam(optimizer: torch.optim.Optimizer | None) -> bool:
    return isinstance(optimizer, torch.optim.Adam)  # AdamW subclasses Adam in torch >= 2.6


def coupled_decay(probe: Probe, op: HessianOperator) -> np.ndarray | None:
    """Per coordinate ``wd`` of torch SGD/Adam groups with coupled (L2) weight decay."""
    opt = probe.optimizer
    if opt is None or not (type(opt) is torch.optim.SGD or type(opt) is torch.optim.Adam):
        return None
    decay = {id(p): float(g.get("weight_decay", 0.0)) for g in opt.param_groups for p in g["params"]
             if not g.get("decoupled_weight_decay", False)}
    parts = [np.full(p.numel(), decay.get(id(p), 0.0)) for p in op.params]
    flat = np.concatenate(parts)
    return flat if flat.any() else None


def adam_preconditioner(probe: Probe, op: HessianOperator, lr: float) -> np.ndarray | None:
    """``P`` of Cohen et al. 2022 per coordinate (flat), scaled by ``lr / lr_group`` so that one
    threshold in ``lr`` covers groups with other rates; None before Adam's first step."""
    opt = probe.optimizer
    if opt is None or not _is_adam(opt):
        return None
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    parts = []
    for p in op.params:
        state, group = opt.state.get(p, {}), groups.get(id(p))
        if group is None or "exp_avg_sq" not in state or float(state.get("step", 0)) == 0:
            return None
        beta1, beta2 = group["betas"]
        t = float(state["step"])
        v = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
        p_diag = (1 - beta1**t) * ((v.double() / (1 - beta2**t)).sqrt() + group["eps"])
        ratio = lr / float(group["lr"]) if float(group["lr"]) > 0 else float("inf")
        parts.append((p_diag * ratio).reshape(-1).cpu().numpy())
    return np.concatenate(parts)


@dataclasses.dataclass
class Sharpness(Monitor):
    """``sharpness`` (``lambda_max(H)`` of the mean loss over the probe batches),
    ``sharpness/threshold`` where one applies, ``sharpness/preconditioned`` and
    ``sharpness/preconditioned/threshold`` for torch Adam/AdamW, ``sharpness/hvps`` (the
    Hessian-vector products spent). See the module docstring."""

    name: ClassVar[str] = "sharpness"
    #: ``lanczos`` (ARPACK, which='LA') or ``power``
    method: str = "lanczos"
    #: power: iterations; Lanczos: restarts (ARPACK's maxiter)
    iters: int = 20
    #: relative accuracy of the eigenvalue
    tol: float = 1e-4
    #: Lanczos vectors per restart (ARPACK's ncv; ~ncv + 1 products per eigenvalue)
    lanczos_vectors: int = 10
    #: probe batches averaged into the loss (the "fixed data subset" of Cohen et al.)
    batches: int = 1
    #: also the preconditioned sharpness for Adam
    preconditioned: bool = True
    _vector: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)
    _pre_vector: np.ndarray | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.iters < 1 or self.batches < 1 or self.lanczos_vectors < 3 or not 0 <= self.tol < 1:
            raise ValueError("iters and batches must be >= 1, lanczos_vectors >= 3 and tol in [0, 1)")

    def __call__(self, probe: Probe) -> dict[str, float]:
        op = HessianOperator(probe, self.batches)
        op.diagonal = coupled_decay(probe, op)
        value, self._vector = top_eigenpair(op, op.size, method=self.method, iters=self.iters,
                                            tol=self.tol, start=self._vector, ncv=self.lanczos_vectors)
        out = {"sharpness": value}
        lr = probe.current_lr()
        threshold = sgd_threshold(probe.optimizer, lr) if lr else None
        if threshold is not None:
            out["sharpness/threshold"] = threshold
        p_diag = adam_preconditioner(probe, op, lr) if lr and self.preconditioned else None
        if p_diag is not None:
            scale = 1.0 / np.sqrt(p_diag)  # P^-1/2 (0 where the group's lr is 0)

            def pre(v: np.ndarray) -> np.ndarray:
                return scale * op(scale * v)

            pvalue, self._pre_vector = top_eigenpair(pre, op.size, method=self.method, iters=self.iters,
                                                     tol=self.tol, start=self._pre_vector,
                                                     ncv=self.lanczos_vectors)
            beta1 = probe.optimizer.param_groups[0]["betas"][0]  # type: ignore[union-attr]
            out["sharpness/preconditioned"] = pvalue
            out["sharpness/preconditioned/threshold"] = (2 + 2 * beta1) / ((1 - beta1) * lr)
        out["sharpness/hvps"] = float(op.calls)
        return out
