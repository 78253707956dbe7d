"""Loss-curve laws: predict a training-loss curve from the (absolute) learning-rate schedule.

Three laws, each a frozen, JSON-round-tripping dataclass with ``predict``:

* :class:`AnnealingLaw` - Tissue, Wang & Wang 2024, "Scaling Law with Learning Rate
  Annealing" (arXiv:2408.11029), the law of their abstract:
  ``L(s) = L0 + A*S1(s)**-alpha - C*S2(s)``.
* :class:`MultiPowerLaw` - Luo et al. 2025, "A Multi-Power Law for Loss Curve Prediction
  Across Learning Rate Schedules" (arXiv:2503.12811), the multi-power form
  ``L(t) = L0 + A*(S1(t)+S_W)**-alpha - LD(t)``.
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
* Fits minimise ``sum Huber_delta(log L_pred - log L_obs)`` with ``delta = 1e-3`` (both
  papers; Chinchilla-style), by L-BFGS-B in log-parameter space from a few starts chosen by a
  non-negative least-squares scan (the laws are linear in ``L0, A, C`` / ``L0, A, B`` once the
  exponents are fixed).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
from scipy import optimize, signal

from steplab.errors import SpecError

#: Huber threshold on log-loss residuals (Tissue et al. 2024; Luo et al. 2025).
HUBER_DELTA = 1e-3
#: fewest finite curve points a fit accepts
MIN_POINTS = 10
#: entries per (evaluation step x drop step) block in the Multi-Power Law sum (8 MiB of float64)
_BLOCK = 1 << 20
#: relative floor for LRs raised to ``-gamma`` (a zero LR would give 0 * inf)
_ETA_FLOOR = 1e-12
#: most (s, k) entries a fit keeps cached per curve (64 MiB of float64)
_CACHE = 1 << 23

Array = np.ndarray
F = TypeVar("F", bound=Callable[..., Any])


def _one_blas_thread(fit: F) -> F:
    """Run ``fit`` (a fit or a prediction) with BLAS limited to one thread. The matrices are
    small, and numpy's and scipy's separate OpenBLAS pools busy-waiting against each other
    made L-BFGS-B ~30x slower on a loaded 2-core machine. ``threadpoolctl`` comes with
    scikit-learn; without it, no limit is set."""

    @functools.wraps(fit)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - scikit-learn (a dependency) installs it
            return fit(*args, **kwargs)
        with threadpool_limits(limits=1, user_api="blas"):
            return fit(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------
def _as_lrs(lrs: Any) -> Array:
    eta = np.asarray(lrs, dtype=np.float64)
    if eta.ndim != 1 or eta.size == 0:
        raise SpecError(
            f"lrs must be a non-empty 1-D sequence of absolute LRs, got shape {eta.shape}"
        )
    if not np.all(np.isfinite(eta)):
        raise SpecError("lrs contains NaN or inf; pass the finite absolute LR of every update")
    if np.any(eta < 0):
        raise SpecError("lrs must be >= 0 (absolute learning rates, one per update)")
    if not np.any(eta > 0):
        raise SpecError("lrs are all zero; pass absolute learning rates (not all zero)")
    return eta


def _check_warmup(warmup_steps: int, total: int | None = None) -> int:
    ok = isinstance(warmup_steps, (int, np.integer)) and not isinstance(warmup_steps, bool)
    if not ok or warmup_steps < 0:
        raise SpecError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
    if total is not None and warmup_steps >= total:
        raise SpecError(
            f"warmup_steps={warmup_steps} leaves no post-warm-up update in a schedule of "
            f"{total} steps; pass a longer schedule or fewer warmup_steps"
        )
    return int(warmup_steps)


def _check_lam(lam: float) -> float:
    if not (isinstance(lam, (int, float)) and 0.0 <= lam < 1.0):
        raise SpecError(f"lam (annealing-momentum decay) must be in [0, 1), got {lam!r}")
    return float(lam)


def _as_eval_steps(steps: Any, total: int) -> Array:
    s = np.asarray(steps)
    if s.ndim != 1 or (s.size and not np.all(np.equal(np.mod(s, 1), 0))):
        raise SpecError("steps must be a 1-D sequence of integer step numbers s (updates done)")
    s = s.astype(np.int64)
    if s.size and (s.min() < 1 or s.max() > total):
        raise SpecError(
            f"steps must lie in 1..{total} (the number of updates done), got {s.min()}..{s.max()}"
        )
    return s


def _check_params(obj: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not abs(value) <= sys.float_info.max  # NaN, inf, an int too large for a float
        ):
            raise SpecError(f"{type(obj).__name__}.{name} must be a finite number, got {value!r}")
        if value < 0:
            raise SpecError(f"{type(obj).__name__}.{name} must be >= 0, got {value!r}")
        object.__setattr__(obj, name, float(value))


def _from_dict(cls: Any, d: Mapping[str, Any]) -> Any:
    data = dict(d)
    tag = data.pop("law", cls.LAW)
    if tag != cls.LAW:
        raise SpecError(f"expected law {cls.LAW!r}, got {tag!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown {cls.LAW} law field(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise SpecError(f"bad {cls.LAW} law dict: {exc}") from None


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
    eta = _as_lrs(lrs)
    lam = _check_lam(lam)
    _check_warmup(warmup_steps)
    start = 0 if include_warmup else _check_warmup(warmup_steps, eta.size)
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
        _check_params(self, ("L0", "A", "alpha", "C"))
        _check_lam(self.lam)
        object.__setattr__(self, "lam", float(self.lam))
        _check_warmup(self.warmup_steps)
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
        return out if steps is None else out[_as_eval_steps(steps, out.size) - 1]

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnnealingLaw:
        return _from_dict(cls, d)


# ----------------------------------------------------------------------------------
# Luo et al. 2025: Multi-Power Law
# ----------------------------------------------------------------------------------
class _LossDrop:
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
        _check_params(self, ("L0", "A", "alpha", "B", "C", "beta", "gamma"))
        _check_warmup(self.warmup_steps)
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))

    @_one_blas_thread
    def predict(
        self, lrs: Sequence[float] | Array, steps: Sequence[int] | Array | None = None
    ) -> Array:
        """Loss after ``s`` updates for ``s = 1 .. len(lrs)`` (or only the given ``steps``;
        evaluating a subsample saves time: the cost is O(#steps x #LR changes))."""
        eta = _as_lrs(lrs)
        w = _check_warmup(self.warmup_steps, eta.size)
        s = np.arange(1, eta.size + 1) if steps is None else _as_eval_steps(steps, eta.size)
        cum = np.concatenate([[0.0], np.cumsum(eta)])
        out = np.full(s.size, np.nan)
        valid = s > w
        sv = s[valid]
        ld = _LossDrop(eta, sv, w)(self.C, self.beta, self.gamma)[0]
        with np.errstate(divide="ignore"):
            out[valid] = self.L0 + self.A * cum[sv] ** (-self.alpha) - self.B * ld
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.LAW, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MultiPowerLaw:
        return _from_dict(cls, d)


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
        _check_params(self, ("a", "b", "c"))

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
        return _from_dict(cls, d)


Law = AnnealingLaw | MultiPowerLaw | PowerLawBaseline
_LAWS: dict[str, Any] = {c.LAW: c for c in (AnnealingLaw, MultiPowerLaw, PowerLawBaseline)}


def law_from_dict(d: Mapping[str, Any]) -> Law:
    """Rebuild a law from ``to_dict()`` output, dispatching on its ``"law"`` key."""
    tag = d.get("law") if isinstance(d, Mapping) else None
    if tag not in _LAWS:
        raise SpecError(f"law dict needs a 'law' key in {sorted(_LAWS)}, got {tag!r}")
    return _LAWS[tag].from_dict(d)


# ----------------------------------------------------------------------------------
# Curves
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Curve:
    """A training curve ready to fit.

    ``lrs[k]`` is the absolute LR of update ``k`` for every ``k = 0 .. max(steps) - 1`` at
    least; ``steps`` (>= 1) and ``losses`` are the smoothed, subsampled points, ``losses[j]`` being
    the loss logged at update ``steps[j]``, i.e. after ``steps[j]`` updates.
    """

    lrs: Array
    steps: Array
    losses: Array

    def __post_init__(self) -> None:
        lrs = _as_lrs(self.lrs)
        steps = np.asarray(self.steps)
        losses = np.asarray(self.losses, dtype=np.float64)
        if steps.ndim != 1 or losses.shape != steps.shape:
            raise SpecError(
                f"Curve steps and losses must be 1-D and the same length, got {steps.shape} and {losses.shape}"
            )
        if steps.size and (steps.min() < 1 or steps.max() > lrs.size):
            raise SpecError(
                f"Curve steps must lie in 1..{lrs.size} (len(lrs)); build curves with prepare_curve"
            )
        if not np.all(np.isfinite(losses) & (losses > 0)):
            raise SpecError(
                "Curve losses must be finite and positive; build curves with prepare_curve"
            )
        object.__setattr__(self, "lrs", lrs)
        object.__setattr__(self, "steps", steps.astype(np.int64))
        object.__setattr__(self, "losses", losses)


def _smooth(losses: Array, width: int) -> Array:
    """Centred moving average (NaN where ``losses`` is not finite). The half-width at index
    ``i`` is ``min(width // 2, i // 10, n-1-i)``, where ``i`` counts from the start or from
    the last non-finite entry, and is cut so the window holds no non-finite entry: small
    early, where the curve bends fast, and always symmetric, so a straight stretch comes back
    unchanged."""
    n = losses.size
    finite = np.isfinite(losses)
    i = np.arange(n)
    last_bad = np.maximum.accumulate(np.where(finite, -1, i))  # latest non-finite index <= i
    next_bad = np.minimum.accumulate(np.where(finite, n, i)[::-1])[::-1]  # earliest >= i
    age = i - last_bad - 1  # finite entries since the start or the last gap
    h = np.minimum.reduce([np.full(n, width // 2), age // 10, n - 1 - i, next_bad - i - 1])
    h = np.maximum(h, 0)
    cs = np.concatenate([[0.0], np.cumsum(np.where(finite, losses, 0.0))])
    out = (cs[i + h + 1] - cs[i - h]) / (2 * h + 1)
    return np.where(finite, out, np.nan)


def prepare_curve(
    steps: Sequence[int] | Array,
    lrs: Sequence[float] | Array,
    losses: Sequence[float] | Array,
    *,
    max_points: int = 400,
    smooth: int = 21,
) -> Curve:
    """Turn a trace into a :class:`Curve`.

    Args:
        steps: 0-based update numbers at which ``losses`` were logged, increasing. The loss at
            update ``k`` was computed before update ``k``: it is ``L(s=k)``. Step 0 is dropped.
        lrs: absolute LR of *every* update ``0 .. max(steps)`` (length ``> max(steps)``; extra
            entries are dropped). For a trace logged at every update this is the trace's LR column.
        losses: training losses, same length as ``steps``; NaN/inf entries are dropped.
        max_points: keep at most this many points, evenly spaced in index (as the papers
            subsample every n-th step).
        smooth: width (in logged points) of a centred moving average (see :func:`_smooth`);
            1 disables smoothing.

    Raises:
        SpecError: mismatched lengths, unsorted steps, too short ``lrs``, non-positive losses,
            or fewer than ``MIN_POINTS`` finite points after step 0.
    """
    st = np.asarray(steps)
    loss = np.asarray(losses, dtype=np.float64)
    if st.ndim != 1 or loss.ndim != 1 or st.size != loss.size:
        raise SpecError(
            f"steps and losses must be 1-D and the same length, got {st.shape} and {loss.shape}"
        )
    if st.size == 0 or not np.all(np.equal(np.mod(st, 1), 0)):
        raise SpecError("steps must be a non-empty sequence of integer update numbers")
    st = st.astype(np.int64)
    if st[0] < 0 or np.any(np.diff(st) <= 0):
        raise SpecError("steps must be >= 0 and strictly increasing")
    eta = _as_lrs(lrs)
    if eta.size <= st[-1]:
        raise SpecError(
            f"lrs has {eta.size} entries but steps go up to {st[-1]}; pass the LR of every "
            f"update 0..{st[-1]} (length {st[-1] + 1}), not only of the logged ones"
        )
    if isinstance(max_points, bool) or int(max_points) != max_points or max_points < MIN_POINTS:
        raise SpecError(f"max_points must be an integer >= {MIN_POINTS}, got {max_points!r}")
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 1:
        raise SpecError(f"smooth must be an integer window width >= 1, got {smooth!r}")
    finite = np.isfinite(loss)
    if np.any(loss[finite] <= 0):
        raise SpecError("losses must be positive (the laws are fitted on log loss)")
    smoothed = _smooth(loss, int(smooth))
    idx = np.flatnonzero(finite & (st >= 1))
    if idx.size < MIN_POINTS:
        raise SpecError(
            f"only {idx.size} finite losses after step 0; a fit needs at least {MIN_POINTS}"
        )
    if idx.size > max_points:
        idx = idx[
            np.unique(np.round(np.linspace(0, idx.size - 1, int(max_points))).astype(np.int64))
        ]
    return Curve(lrs=eta[: st[-1] + 1].copy(), steps=st[idx], losses=smoothed[idx])


# ----------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FitResult:
    """A fitted law and how well it fits: ``residual`` is the final objective
    ``sum Huber_1e-3(log L_pred - log L_obs)``; ``rmse_log`` the RMS log error."""

    law: Law
    residual: float
    rmse_log: float
    n_points: int


def _huber(r: Array) -> tuple[float, Array]:
    a = np.abs(r)
    quad = a <= HUBER_DELTA
    val = np.where(quad, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))
    return float(val.sum()), np.clip(r, -HUBER_DELTA, HUBER_DELTA)


def _objective(pred: Array, y: Array) -> float:
    if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
        return math.inf
    return _huber(np.log(pred) - np.log(y))[0]


Model = Callable[[Array], tuple[Array, Array]]  # params -> (pred, d pred / d params)


def _polish(
    model: Model, y: Array, p0: Array, lower: Array, upper: Array, maxiter: int = 3000
) -> tuple[Array, float]:
    """L-BFGS-B on ``log p`` (all parameters positive). The objective is divided by
    ``delta**2`` so its scale is O(#points) and scipy's absolute tolerances bite sensibly."""
    logy = np.log(y)
    scale = 1.0 / HUBER_DELTA**2

    def fun(theta: Array) -> tuple[float, Array]:
        p = np.exp(theta)
        pred, jac = model(p)
        if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
            return 1e10, np.zeros_like(theta)
        val, dr = _huber(np.log(pred) - logy)
        return val * scale, (jac.T @ (dr / pred)) * p * scale

    lo, hi = np.log(lower), np.log(upper)
    theta0 = np.clip(np.log(p0), lo, hi)
    res = optimize.minimize(
        fun,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi)),
        options={"maxiter": maxiter, "ftol": 1e-11, "gtol": 1e-7},
    )
    p = np.exp(res.x)
    return p, _objective(model(p)[0], y)


def _best_of(
    model: Model, y: Array, starts: list[Array], lower: Array, upper: Array, race: int = 0
) -> tuple[Array, float]:
    """Polish every start and keep the best; with ``race > 0`` first run each start for only
    ``race`` iterations, then finish the leader (for expensive models)."""
    if race and len(starts) > 1:
        raced = [_polish(model, y, p0, lower, upper, race) for p0 in starts]
        starts = [min(raced, key=lambda fit: fit[1])[0]]
    fits = [_polish(model, y, p0, lower, upper) for p0 in starts]
    return min(fits, key=lambda fit: fit[1])


def _nnls_scan(columns: Array, y: Array) -> tuple[Array, float]:
    """Non-negative least squares of relative error (~ log error) for the linear parameters."""
    coef, _ = optimize.nnls(columns / y[:, None], np.ones_like(y))
    return coef, _objective(columns @ coef, y)


def _floor(coef: Array, columns: Array, y: Array) -> Array:
    """Lift zero NNLS coefficients to a value whose term is ~1e-4 of the loss, so that
    log-space L-BFGS-B can still move them."""
    size = np.max(np.abs(columns), axis=0)
    tiny = 1e-4 * float(np.median(y)) / np.where(size > 0, size, 1.0)
    return np.maximum(coef, tiny)


def _as_curves(curves: Curve | Sequence[Curve]) -> list[Curve]:
    out = [curves] if isinstance(curves, Curve) else list(curves)
    if not out or not all(isinstance(c, Curve) for c in out):
        raise SpecError("pass one Curve or a non-empty list of Curves (see prepare_curve)")
    return out


def _rmse_log(pred: Array, y: Array) -> float:
    return float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))


def _too_few(n: int, what: str) -> SpecError:
    return SpecError(
        f"only {n} curve points lie after warm-up for the {what} fit; need {MIN_POINTS}"
    )


@_one_blas_thread
def fit_annealing(
    curves: Curve | Sequence[Curve],
    *,
    lam: float = 0.999,
    warmup_steps: int = 0,
    include_warmup: bool = False,
) -> FitResult:
    """Fit :class:`AnnealingLaw` jointly to one or more curves (Huber on log loss, L-BFGS-B,
    several starts: the fitting recipe of formula sheet §6.1). ``lam`` and the warm-up handling
    are fixed, not fitted; points with ``s <= warmup_steps`` are left out when excluded."""
    s1s, s2s, ys = [], [], []
    for c in _as_curves(curves):
        s1, s2 = annealing_areas(
            c.lrs, lam=lam, warmup_steps=warmup_steps, include_warmup=include_warmup
        )
        a, b = s1[c.steps - 1], s2[c.steps - 1]
        ok = np.isfinite(a) & (a > 0)
        s1s.append(a[ok])
        s2s.append(b[ok])
        ys.append(c.losses[ok])
    S1, S2, y = np.concatenate(s1s), np.concatenate(s2s), np.concatenate(ys)
    if y.size < MIN_POINTS:
        raise _too_few(y.size, "annealing")
    logS1 = np.log(S1)

    def model(p: Array) -> tuple[Array, Array]:
        L0, A, alpha, C = p
        pw = np.exp(-alpha * logS1)
        pred = L0 + A * pw - C * S2
        return pred, np.column_stack([np.ones_like(S1), pw, -A * pw * logS1, -S2])

    scans = []
    for alpha in np.geomspace(0.05, 3.0, 24):
        cols = np.column_stack([np.ones_like(S1), S1**-alpha, -S2])
        coef, val = _nnls_scan(cols, y)
        coef = _floor(coef, cols, y)
        scans.append((val, np.array([coef[0], coef[1], alpha, coef[2]])))
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, 1e-4, 1e-12])
    upper = np.array([1e3 * y.max(), 1e12, 10.0, 1e12])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper)
    law = AnnealingLaw(
        L0=p[0],
        A=p[1],
        alpha=p[2],
        C=p[3],
        lam=lam,
        warmup_steps=warmup_steps,
        include_warmup=include_warmup,
    )
    return FitResult(
        law=law, residual=val, rmse_log=_rmse_log(model(p)[0], y), n_points=int(y.size)
    )


@_one_blas_thread
def fit_multipower(curves: Curve | Sequence[Curve], *, warmup_steps: int = 0) -> FitResult:
    """Fit :class:`MultiPowerLaw` jointly to one or more curves (Luo et al. 2025: Huber on log
    loss, grid of starts, L-BFGS-B; their extra AdamW refinement is not done). Cost per
    objective evaluation is O(#points x #LR changes) per curve, computed in bounded blocks."""
    drops, logzs, ys = [], [], []
    for c in _as_curves(curves):
        w = _check_warmup(warmup_steps, c.lrs.size)
        cum = np.concatenate([[0.0], np.cumsum(c.lrs)])
        ok = (c.steps > w) & (cum[c.steps] > 0)
        drops.append(_LossDrop(c.lrs, c.steps[ok], w, cache=True))
        logzs.append(np.log(cum[c.steps[ok]]))
        ys.append(c.losses[ok])
    y, logZ = np.concatenate(ys), np.concatenate(logzs)
    if y.size < MIN_POINTS:
        raise _too_few(y.size, "multi-power")

    def ld(C: float, beta: float, gamma: float, grad: bool) -> Array:
        return np.concatenate([drop(C, beta, gamma, grad) for drop in drops], axis=1)

    def model(p: Array) -> tuple[Array, Array]:
        L0, A, alpha, B, C, beta, gamma = p
        pw = np.exp(-alpha * logZ)
        g = ld(C, beta, gamma, True)
        pred = L0 + A * pw - B * g[0]
        jac = np.column_stack(
            [np.ones_like(pw), pw, -A * pw * logZ, -g[0], -B * g[1], -B * g[2], -B * g[3]]
        )
        return pred, jac

    scans = []
    for C in (0.3, 3.0, 30.0):
        for beta in (0.3, 0.6, 1.2):
            for gamma in (0.3, 0.6):
                basis = ld(C, beta, gamma, False)[0]
                for alpha in np.geomspace(0.1, 2.0, 8):
                    cols = np.column_stack([np.ones_like(logZ), np.exp(-alpha * logZ), -basis])
                    coef, val = _nnls_scan(cols, y)
                    coef = _floor(coef, cols, y)
                    scans.append(
                        (val, np.array([coef[0], coef[1], alpha, coef[2], C, beta, gamma]))
                    )
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, 1e-4, 1e-12, 1e-8, 1e-4, 1e-4])
    upper = np.array([1e3 * y.max(), 1e12, 10.0, 1e12, 1e8, 10.0, 5.0])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper, race=40)
    law = MultiPowerLaw(
        L0=p[0],
        A=p[1],
        alpha=p[2],
        B=p[3],
        C=p[4],
        beta=p[5],
        gamma=p[6],
        warmup_steps=warmup_steps,
    )
    return FitResult(
        law=law, residual=val, rmse_log=_rmse_log(model(p)[0], y), n_points=int(y.size)
    )


@_one_blas_thread
def fit_power_baseline(steps: Sequence[int] | Array, losses: Sequence[float] | Array) -> FitResult:
    """Fit :class:`PowerLawBaseline` to ``(steps, losses)`` (typically the first part of a
    curve) with the same Huber-on-log-loss objective. Steps < 1 and non-finite losses are
    dropped; pass already-smoothed losses (e.g. ``Curve.steps``/``Curve.losses``) for noisy data."""
    t = np.asarray(steps, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if t.ndim != 1 or y.shape != t.shape:
        raise SpecError(
            f"steps and losses must be 1-D and the same length, got {t.shape} and {y.shape}"
        )
    ok = np.isfinite(t) & np.isfinite(y) & (t >= 1)
    t, y = t[ok], y[ok]
    if y.size < MIN_POINTS:
        raise SpecError(
            f"only {y.size} finite losses at steps >= 1; a fit needs at least {MIN_POINTS}"
        )
    if np.any(y <= 0):
        raise SpecError("losses must be positive (the baseline is fitted on log loss)")
    logt = np.log(t)

    def model(p: Array) -> tuple[Array, Array]:
        a, b, c = p
        pw = np.exp(-c * logt)
        return a + b * pw, np.column_stack([np.ones_like(t), pw, -b * pw * logt])

    scans = []
    for c in np.geomspace(0.02, 3.0, 24):
        cols = np.column_stack([np.ones_like(t), t**-c])
        coef, val = _nnls_scan(cols, y)
        coef = _floor(coef, cols, y)
        scans.append((val, np.array([coef[0], coef[1], c])))
    scans.sort(key=lambda item: item[0])
    lower = np.array([1e-8, 1e-12, 1e-4])
    upper = np.array([1e3 * y.max(), 1e12, 10.0])
    p, val = _best_of(model, y, [p0 for _, p0 in scans[:3]], lower, upper)
    law = PowerLawBaseline(a=p[0], b=p[1], c=p[2])
    return FitResult(
        law=law, residual=val, rmse_log=_rmse_log(model(p)[0], y), n_points=int(y.size)
    )
