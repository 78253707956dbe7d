"""Loss-curve laws: predict a training-loss curve from the (absolute) learning-rate schedule.

Four laws, each a frozen, JSON-round-tripping dataclass with ``predict``:

* :class:`AnnealingLaw` - Tissue, Wang & Wang 2024, "Scaling Law with Learning Rate
  Annealing" (arXiv:2408.11029), the law of their abstract:
  ``L(s) = L0 + A*S1(s)**-alpha - C*S2(s)``.
* :class:`MultiPowerLaw` - Luo et al. 2025, "A Multi-Power Law for Loss Curve Prediction
  Across Learning Rate Schedules" (arXiv:2503.12811), the multi-power form
  ``L(t) = L0 + A*(S1(t)+S_W)**-alpha - LD(t)``.
* :class:`BoundLaw` - Schaipp et al. 2025, "The Surprising Agreement Between Convex
  Optimization Theory and Learning-Rate Scheduling for Large Model Training"
  (arXiv:2501.18965): their convex last-iterate bound fitted to a curve,
  ``L(s) = L0 + A*S1(s)**-alpha + B*R(s)``.
* :class:`PowerLawBaseline` - ``L(t) = a + b*t**-c``: what learning-curve extrapolation does
  when it does not know the schedule.

Formulas follow ``shared/references/schedules-and-prediction.md`` §6; §14.4 is the pitfall
that matters most: **the areas are sums of absolute learning rates**, not of multipliers, so
fitted ``A``, ``C``, ``B`` are tied to the LR scale of the runs they were fitted on.

Conventions
-----------
* ``lrs[k]`` is the absolute LR of update ``k = 0 .. T-1`` (the trace convention of
  :mod:`steplab.schedules`). In the papers' 1-based notation ``eta_i = lrs[i-1]``.
* ``L(s)`` is the loss *after* ``s`` updates. A trace logs at update ``k`` the training loss
  computed *before* update ``k`` (it reflects updates ``0 .. k-1``), so ``loss[k]`` is compared
  with ``L(s=k)``; ``k = 0`` (no update yet, zero LR area) is skipped. ``predict(lrs)``
  returns ``L(1) .. L(T)``: ``out[k-1]`` goes with ``loss[k]``; ``out[T-1]`` is the loss after
  the last update, which a trace of length ``T`` does not log.
* Warm-up (both laws, default): the first ``warmup_steps = W`` updates are left out of the
  annealing sums (``S2``, and ``LD`` of the Multi-Power Law), which start at update ``W``
  (1-based step ``W+1``) with ``eta_W := eta_{W+1}``, so no spurious "drop" is counted where
  warm-up hands over; the forward area keeps the warm-up's LR area as a fixed offset ``S_W``
  (``S1(s) = S_W + sum_{i=W+1}^{s} eta_i``, Luo et al.'s convention, which formula sheet §6.1
  names as the one its "exclude" default matches); ``L(s)`` for ``s <= W`` is NaN. Why: while
  the LR rises the momentum ``m_i`` is negative, so ``S2`` would count warm-up as negative
  annealing; and restarting ``S1`` at 0 after warm-up would make the law jump to
  ``L0 + A*eta**-alpha`` at ``s = W+1`` (the warm-up area is small late in training, not
  just after warm-up). Sheet §6.1 marks the paper's own warm-up handling as *unverified*
  (not checked here either). ``AnnealingLaw(include_warmup=True)`` sums both areas from
  update 0 (``warmup_steps`` then only labels the run); for sums that restart after warm-up,
  predict on ``lrs[W:]`` with ``warmup_steps=0``.

Curves to fit are built in :mod:`steplab.analysis.law_curves`, fits are in
:mod:`steplab.analysis.law_fit`, the shared input checks in :mod:`steplab.analysis.law_inputs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import signal

from steplab.analysis.bound import noise_terms
from steplab.analysis.law_inputs import (
    Array,
    as_eval_steps,
    as_lrs,
    check_lam,
    check_params,
    check_warmup,
    law_from_fields,
    one_blas_thread,
)
from steplab.errors import SpecError

__all__ = [
    "AnnealingLaw",
    "BoundLaw",
    "Law",
    "LossDrop",
    "MultiPowerLaw",
    "PowerLawBaseline",
    "annealing_areas",
    "law_from_dict",
]

#: entries per (evaluation step x drop step) block in the Multi-Power Law sum (8 MiB of float64)
_BLOCK = 1 << 20
#: relative floor for LRs raised to ``-gamma`` (a zero LR would give 0 * inf)
_ETA_FLOOR = 1e-12
#: most (s, k) entries a fit keeps cached per curve (64 MiB of float64)
_CACHE = 1 << 23


# ----------------------------------------------------------------------------------
# Tissue et al. 2024: forward area S1 and annealing area S2
# ----------------------------------------------------------------------------------
def annealing_areas(
    lrs: Sequence[float] | Array,
    *,
    lam: float = 0.999,
    warmup_steps: int = 0,
    include_warmup: bool = False,
) -> tuple[Array, Array]:
    """Forward area ``S1(s)`` and annealing area ``S2(s)`` for ``s = 1 .. T`` (Tissue et al.
    2024, arXiv:2408.11029: ``S1`` and the momentum form of ``S2``; formula sheet §6.1).

    ``S1(s) = sum_{i<=s} eta_i``; ``m_i = lam*m_{i-1} + (eta_{i-1} - eta_i)`` with
    ``eta_0 := eta_1`` (so ``m_1 = 0``); ``S2(s) = sum_{i<=s} m_i``. ``S2`` is computed in O(T)
    with a first-order recursive filter. With ``include_warmup=False`` (default) the ``S2`` sum
    starts at update ``warmup_steps`` (1-based ``i = W+1``, with ``eta_W := eta_{W+1}``), ``S1``
    keeps the warm-up area as a fixed offset ``S_W``, and both are NaN for ``s <= W``.

    >>> s1, s2 = annealing_areas([1.0, 1.0, 0.5], lam=0.0)
    >>> s1.tolist(), s2.tolist()
    ([1.0, 2.0, 2.5], [0.0, 0.0, 0.5])
    """
    eta = as_lrs(lrs)
    lam = check_lam(lam)
    check_warmup(warmup_steps)
    start = 0 if include_warmup else check_warmup(warmup_steps, eta.size)
    seg = eta[start:]
    drops = np.zeros_like(seg)
    drops[1:] = seg[:-1] - seg[1:]
    momentum = signal.lfilter([1.0], [1.0, -lam], drops)
    s1 = np.cumsum(eta)
    s2 = np.full(eta.size, np.nan)
    s1[:start] = np.nan
    s2[start:] = np.cumsum(momentum)
    return s1, s2


@dataclasses.dataclass(frozen=True)
class AnnealingLaw:
    """``L(s) = L0 + A * S1(s)**(-alpha) - C * S2(s)`` (Tissue et al. 2024, arXiv:2408.11029).

    ``S1``, ``S2`` come from :func:`annealing_areas` on *absolute* LRs; ``A`` and ``C`` are in
    loss units per LR-area unit, so a fitted law transfers only to runs with the same LR scale.
    """

    L0: float
    A: float
    alpha: float
    C: float
    lam: float = 0.999  # momentum decay of S2; the sheet's default (§6.1)
    warmup_steps: int = 0  # updates left out of S2 (S1 keeps their area) unless include_warmup
    include_warmup: bool = False

    LAW: ClassVar[str] = "annealing"

    def __post_init__(self) -> None:
        check_params(self, ("L0", "A", "alpha", "C"))
        check_lam(self.lam)
        object.__setattr__(self, "lam", float(self.lam))
        check_warmup(self.warmup_steps)
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))
        if not isinstance(self.include_warmup, bool):
            raise SpecError(f"include_warmup must be true or false, got {self.include_warmup!r}")

    def predict(
        self, lrs: Sequence[float] | Array, steps: Sequence[int] | Array | None = None
    ) -> Array:
        """Loss after ``s`` updates for ``s = 1 .. len(lrs)`` (or only the given ``steps``)."""
        s1, s2 = annealing_areas(
            lrs, lam=self.lam, warmup_steps=self.warmup_steps, include_warmup=self.include_warmup
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.L0 + self.A * s1 ** (-self.alpha) - self.C * s2
        return out if steps is None else out[as_eval_steps(steps, out.size) - 1]

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnnealingLaw:
        return law_from_fields(cls, d)


# ----------------------------------------------------------------------------------
# Luo et al. 2025: Multi-Power Law
# ----------------------------------------------------------------------------------
class LossDrop:
    """``sum_k d_k G(eta_k**-gamma * S_k(s))`` (= ``LD(s) / B``) at fixed steps ``s`` of one
    schedule, with ``d_k = eta_{k-1} - eta_k`` over the post-warm-up steps whose LR changed.

    The ``(s, k)`` matrix is walked in row blocks of at most ``_BLOCK`` entries, each only as
    wide as its largest ``s`` needs (terms with ``k > s`` vanish: ``S_k(s)`` is clipped at 0),
    so memory stays bounded. With ``cache=True`` the blocks of ``S_k(s)`` are kept (if they fit
    in ``_CACHE`` entries) for repeated evaluation during a fit.
    """

    def __init__(self, eta: Array, s: Array, warmup_steps: int, *, cache: bool = False) -> None:
        # 1-based k; the first post-warm-up step has no drop (eta_W := eta_{W+1})
        k = np.arange(warmup_steps + 2, eta.size + 1)
        d = eta[k - 2] - eta[k - 1]
        keep = d != 0
        self.k, self.d = k[keep], d[keep]
        self.log_eta = np.log(np.maximum(eta[self.k - 1], _ETA_FLOOR * float(eta.max())))
        self.cum = np.concatenate([[0.0], np.cumsum(eta)])
        self.order = np.argsort(s, kind="stable")
        self.s = s[self.order]
        self.n = s.size
        self.blocks: list[tuple[slice, int]] = []
        if self.k.size == 0 or self.n == 0:
            return
        rows = max(1, min(_BLOCK // self.k.size, -(-self.n // 8)))
        for i0 in range(0, self.n, rows):
            kmax = int(np.searchsorted(self.k, self.s[min(i0 + rows, self.n) - 1], side="right"))
            if kmax:
                self.blocks.append((slice(i0, min(i0 + rows, self.n)), kmax))
        total = sum((sl.stop - sl.start) * kmax for sl, kmax in self.blocks)
        self.cached = (
            [self._area(sl, kmax) for sl, kmax in self.blocks]
            if cache and total <= _CACHE
            else None
        )

    def _area(self, sl: slice, kmax: int) -> Array:
        x = self.cum[self.s[sl]][:, None] - self.cum[self.k[:kmax] - 1][None, :]  # S_k(s)
        return np.maximum(x, 0.0, out=x)

    def __call__(self, C: float, beta: float, gamma: float, grad: bool = False) -> Array:
        """Row 0: the sum; rows 1-3 (if ``grad``): its derivatives in ``C``, ``beta``, ``gamma``."""
        res = np.zeros((4 if grad else 1, self.n))
        scale = np.exp(-gamma * self.log_eta)  # eta_k ** -gamma
        for j, (sl, kmax) in enumerate(self.blocks):
            area = self.cached[j] if self.cached is not None else self._area(sl, kmax)
            x = area * scale[:kmax]
            cx = x * C
            u = np.log1p(cx)
            em = np.expm1(u * -beta)  # (1 + C x)**-beta - 1 = -G
            dk = self.d[:kmax]
            res[0, sl] = -(em @ dk)
            if grad:
                e = np.add(em, 1.0, out=em)
                cx += 1.0
                w = np.multiply(e, x, out=x)
                w /= cx  # (1 + C x)**(-beta-1) * x = dG/dC / beta
                res[1, sl] = beta * (w @ dk)
                res[2, sl] = np.multiply(u, e, out=u) @ dk
                res[3, sl] = -beta * C * (w @ (dk * self.log_eta[:kmax]))
        out = np.empty_like(res)
        out[:, self.order] = res
        return out


@dataclasses.dataclass(frozen=True)
class MultiPowerLaw:
    """``L(t) = L0 + A*(S1(t)+S_W)**(-alpha) - LD(t)`` (Luo et al. 2025, arXiv:2503.12811), with
    ``LD(t) = B * sum_{k=1}^{t} (eta_{k-1}-eta_k) * G(eta_k**(-gamma) * S_k(t))``,
    ``G(x) = 1 - (C*x + 1)**(-beta)``, ``S_k(t) = sum_{tau=k}^{t} eta_tau``.

    ``S_W`` is the LR area of the first ``warmup_steps`` updates; ``S1``, ``LD`` count the updates
    after it (the first post-warm-up update has no drop). A constant LR gives ``LD = 0``.
    """

    L0: float
    A: float
    alpha: float
    B: float
    C: float
    beta: float
    gamma: float
    warmup_steps: int = 0

    LAW: ClassVar[str] = "multipower"

    def __post_init__(self) -> None:
        check_params(self, ("L0", "A", "alpha", "B", "C", "beta", "gamma"))
        check_warmup(self.warmup_steps)
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))

    @one_blas_thread
    def predict(
        self, lrs: Sequence[float] | Array, steps: Sequence[int] | Array | None = None
    ) -> Array:
        """Loss after ``s`` updates for ``s = 1 .. len(lrs)`` (or only the given ``steps``;
        evaluating a subsample saves time: the cost is O(#steps x #LR changes))."""
        eta = as_lrs(lrs)
        w = check_warmup(self.warmup_steps, eta.size)
        s = np.arange(1, eta.size + 1) if steps is None else as_eval_steps(steps, eta.size)
        cum = np.concatenate([[0.0], np.cumsum(eta)])
        out = np.full(s.size, np.nan)
        valid = s > w
        sv = s[valid]
        ld = LossDrop(eta, sv, w)(self.C, self.beta, self.gamma)[0]
        with np.errstate(divide="ignore"):
            out[valid] = self.L0 + self.A * cum[sv] ** (-self.alpha) - self.B * ld
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MultiPowerLaw:
        return law_from_fields(cls, d)


# ----------------------------------------------------------------------------------
# Schaipp et al. 2025: the convex bound fitted as a law
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BoundLaw:
    """``L(s) = L0 + A * S1(s)**(-alpha) + B * R(s)``: the last-iterate bound of Schaipp et
    al. 2025 ("The Surprising Agreement Between Convex Optimization Theory and Learning-Rate
    Scheduling for Large Model Training", arXiv 2501.18965, Thm 1) fitted to a loss curve.

    With constant gradient norms ``G`` their fit to real curves (formula sheet §7.4, their
    ``fit.py``: ``loss = C + M * Omega_s``) reads ``L0 + (M D^2 / 2) / S1(s) + M G^2 R(s)``,
    ``R = T2 + T3`` at ``G = 1`` (:func:`steplab.analysis.bound.noise_terms`): the law with
    ``alpha = 1``, the default of :func:`~steplab.analysis.law_fit.fit_bound`. ``alpha`` free
    is our extension (a non-convex curve falls more slowly than ``1/S1``). ``S1(s)`` sums every
    update's LR, warm-up included, and so does ``R``; ``L(s)`` for ``s <= warmup_steps`` is
    NaN, as for the other laws, and so is ``L(s)`` where the LR of update ``s`` is 0 (the bound
    divides by zero there).

    ``C * exp(-S1(s) / tau)`` (default ``C = 0``: none) is our second extension, the
    ``bound-transient`` fit of :func:`~steplab.analysis.law_fit.fit_bound`: an early
    transient that dies out as LR area accumulates (a network's first fast fall, which the
    bound does not describe), so the fit needs no start share left out.
    """

    L0: float
    A: float
    alpha: float
    B: float
    warmup_steps: int = 0
    C: float = 0.0
    tau: float = 1.0

    LAW: ClassVar[str] = "bound"

    def __post_init__(self) -> None:
        check_params(self, ("L0", "A", "alpha", "B", "C", "tau"))
        if self.tau <= 0:
            raise SpecError(f"BoundLaw.tau must be > 0, got {self.tau!r}")
        check_warmup(self.warmup_steps)
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))

    def predict(
        self, lrs: Sequence[float] | Array, steps: Sequence[int] | Array | None = None
    ) -> Array:
        """Loss after ``s`` updates for ``s = 1 .. len(lrs)`` (or only the given ``steps``;
        the cost is O(#steps x len(lrs)))."""
        eta = as_lrs(lrs)
        w = check_warmup(self.warmup_steps, eta.size)
        s = np.arange(1, eta.size + 1) if steps is None else as_eval_steps(steps, eta.size)
        out = np.full(s.size, np.nan)
        valid = s > w
        if valid.any():
            sv = s[valid]
            r = noise_terms(eta, sv)
            with np.errstate(divide="ignore", invalid="ignore"):
                s1 = np.cumsum(eta)[sv - 1]
                pred = self.L0 + self.A * s1 ** (-self.alpha) + self.B * r + self.C * np.exp(-s1 / self.tau)
            out[valid] = np.where(np.isfinite(r), pred, np.nan)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BoundLaw:
        return law_from_fields(cls, d)


# ----------------------------------------------------------------------------------
# Schedule-blind baseline
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PowerLawBaseline:
    """``L(t) = a + b * t**(-c)`` in update numbers ``t >= 1`` (saturating power law, the usual
    learning-curve extrapolator; it does not see the LR schedule)."""

    a: float
    b: float
    c: float

    LAW: ClassVar[str] = "power"

    def __post_init__(self) -> None:
        check_params(self, ("a", "b", "c"))

    def predict(self, steps: Sequence[int] | Array) -> Array:
        """Loss logged at update ``t`` (same step convention as the curve it was fitted on)."""
        t = np.asarray(steps, dtype=np.float64)
        if t.ndim != 1 or np.any(~np.isfinite(t)) or np.any(t < 1):
            raise SpecError("steps must be a 1-D sequence of update numbers >= 1")
        return self.a + self.b * t ** (-self.c)

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PowerLawBaseline:
        return law_from_fields(cls, d)


Law = AnnealingLaw | MultiPowerLaw | BoundLaw | PowerLawBaseline
_LAWS: dict[str, Any] = {c.LAW: c for c in (AnnealingLaw, MultiPowerLaw, BoundLaw, PowerLawBaseline)}


def law_from_dict(d: Mapping[str, Any]) -> Law:
    """Rebuild a law from ``to_dict()`` output, dispatching on its ``"law"`` key."""
    tag = d.get("law") if isinstance(d, Mapping) else None
    if tag not in _LAWS:
        raise SpecError(f"law dict needs a 'law' key in {sorted(_LAWS)}, got {tag!r}")
    return _LAWS[tag].from_dict(d)
