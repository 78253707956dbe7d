"""Training curves ready to fit a loss-curve law (:mod:`steplab.analysis.laws`): the absolute LR
of every update with the loss logged after ``s`` updates, smoothed and subsampled from a trace
(:func:`prepare_curve`). Conventions follow formula sheet §6
(``shared/references/schedules-and-prediction.md``; Tissue et al. 2024, Luo et al. 2025)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from steplab.analysis.law_inputs import Array, as_lrs
from steplab.errors import SpecError

__all__ = ["MIN_POINTS", "Curve", "prepare_curve"]

#: fewest finite curve points a fit accepts
MIN_POINTS = 10


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
        lrs = as_lrs(self.lrs)
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

    def since(self, first: int) -> Curve:
        """The points taken after ``first`` updates or more (the LRs stay whole: a law's
        areas still start at update 0)."""
        keep = self.steps >= int(first)
        return Curve(lrs=self.lrs, steps=self.steps[keep], losses=self.losses[keep])


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
    eta = as_lrs(lrs)
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
