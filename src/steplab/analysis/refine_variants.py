"""Variants of schedule refinement (Defazio et al. 2023, arXiv 2310.07831) for non-convex
problems, where the closed form can put the peak late in the run (measured on digits-mlp
and modarith, ``benchmarks/refine.py``).

* **Monotone (isotonic) projection** (formula sheet ``workloads-curricula-schedules.md``
  §4.5, our idea; PAVA via ``sklearn.isotonic.IsotonicRegression(increasing=False)``): after
  the warm-up, replace the refined multipliers by their least-squares projection onto
  non-increasing sequences, clip to ``[0, max]``, rescale so the peak is 1. The warm-up
  (a linear ramp of ``warmup_steps``, :func:`steplab.analysis.refine.to_spec`) stays.
* **Iterated refinement**: refine the run that used a refined schedule (its own gradient
  norms), i.e. :func:`steplab.analysis.refine.refine_trial` on the second run; nothing new is
  computed here, see ``benchmarks/beat.py`` for its measurement.
* **Peak retuned on the refined shape**: a tuning question (``benchmarks/beat.py`` gives every
  schedule the same peak-lr grid).

The paper's closed form stays the default of ``steplab refine``; ``--monotone`` adds the
projection.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from steplab.analysis.refine import Refinement, to_spec
from steplab.errors import SpecError

__all__ = ["isotonic", "monotone"]


def isotonic(multipliers: np.ndarray, warmup: int = 0) -> np.ndarray:
    """Project ``multipliers[warmup:]`` onto non-increasing sequences (least squares, PAVA),
    clip to ``[0, max]``, set ``multipliers[:warmup]`` to the projected first value (the
    warm-up ramp is applied by the spec), and rescale so the maximum is 1.

    >>> isotonic(np.array([1, .8, .9, .95, .5, .6, .1, 0])).round(4).tolist()
    [1.0, 0.8833, 0.8833, 0.8833, 0.55, 0.55, 0.1, 0.0]
    """
    from sklearn.isotonic import IsotonicRegression

    y = np.asarray(multipliers, dtype=np.float64)
    if y.ndim != 1 or y.size < 2 or not np.all(np.isfinite(y)) or np.any(y < 0):
        raise SpecError("isotonic: pass a 1-D sequence of at least 2 finite, non-negative multipliers")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or not 0 <= warmup < y.size - 1:
        raise SpecError(f"isotonic: warmup must be a whole number of points in [0, {y.size - 1}), got {warmup!r}")
    top = float(y.max())
    if top <= 0:
        raise SpecError("isotonic: the multipliers are all zero")
    tail = y[warmup:]
    fit = IsotonicRegression(increasing=False, y_min=0.0, y_max=top).fit_transform(np.arange(tail.size), tail)
    out = np.concatenate([np.full(warmup, fit[0]), fit])
    return out / out.max()


def monotone(r: Refinement) -> Refinement:
    """A refinement with its multipliers projected by :func:`isotonic` after its warm-up
    (``r.warmup_steps`` of ``r.budget_steps``, mapped onto its normalized-time grid) and its
    spec rebuilt with the same warm-up ramp; ``method`` gains ``"+monotone"``."""
    w = int(np.searchsorted(r.grid, r.warmup_steps / r.budget_steps, side="left")) if r.warmup_steps else 0
    mult = isotonic(r.multipliers, min(w, r.grid.size - 2))
    spec = to_spec(r.grid, mult, r.budget_steps, warmup_steps=r.warmup_steps)
    return dataclasses.replace(r, multipliers=mult, spec=spec, method=r.method + "+monotone")
