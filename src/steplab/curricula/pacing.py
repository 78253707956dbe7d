"""Pacing functions: pure maps from the update number to the size of the curriculum's pool.

A fixed curriculum orders the ``N`` examples (easy to hard, hard to easy, or shuffled) and
at update ``t`` draws its batch from the first ``g(t)`` of them (Hacohen & Weinshall 2019,
"On the Power of Curriculum Learning in Training Deep Networks", ICML, arXiv 1904.03626,
§2). ``start`` is the pool fraction at ``t = 0`` and ``end`` the fraction of the budget
after which the whole set is used (``E = end * budget_steps`` updates). Shapes:

* ``linear``: f(t) = min(1, start + (1 - start) t / E) (Platanios et al. 2019,
  "Competence-based Curriculum Learning for NMT", NAACL, arXiv 1903.09848, eq. 5).
* ``root``: f(t) = min(1, sqrt(start^2 + (1 - start^2) t / E)) (Platanios et al. 2019,
  eq. 6, the square-root competence).
* ``step``: f(t) = min(1, start + (1 - start) floor(stages t / E) / stages): ``stages`` equal
  jumps, the last at ``E`` (the "step" family of Wu, Dyer & Neyshabur 2021, "When Do
  Curricula Work?", ICLR, arXiv 2012.03107, §2; this parametrisation is steplab's).
* ``exp``: f(t) = min(1, start * inc^floor(t / step_len)) (Hacohen & Weinshall 2019, §2,
  "fixed exponential pacing"; their defaults start = 0.04, inc = 1.9, step_len = 100).
  ``step_len = 0`` derives it from ``end``: the fewest jumps that reach 1, spread evenly
  over ``E`` updates.

The pool size is g(t) = ceil(N f(t)) (never 0, never more than N).
:func:`cyclic_fractions` is Kesgin & Amasyali's cyclical sequence of pool fractions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from steplab.errors import SpecError

PACINGS = ("linear", "root", "step", "exp")

#: a pacing function: update number -> pool size
Pacing = Callable[[int], int]


def pacing_fraction(kind: str, *, start: float, end_steps: float, inc: float = 1.9,
                    step_len: int = 0, stages: int = 4) -> Callable[[int], float]:
    """The pool *fraction* f(t) of pacing ``kind`` (formulas in the module docstring).

    Args:
        kind: one of ``linear``, ``root``, ``step``, ``exp``.
        start: f(0), in (0, 1].
        end_steps: ``E``, the update from which f = 1 (``linear``, ``root``, ``step``; and
            ``exp`` when ``step_len`` is 0).
        inc: ``exp``'s growth factor (> 1).
        step_len: ``exp``'s updates per jump; 0 = derived from ``end_steps``.
        stages: ``step``'s number of equal jumps.
    """
    if not 0 < start <= 1:
        raise SpecError(f"pacing start must be in (0, 1], got {start}")
    e = max(float(end_steps), 1e-12)
    if kind == "linear":
        return lambda t: min(1.0, start + (1.0 - start) * t / e)
    if kind == "root":
        return lambda t: min(1.0, math.sqrt(start**2 + (1.0 - start**2) * t / e))
    if kind == "step":
        if stages < 1:
            raise SpecError(f"step pacing needs stages >= 1, got {stages}")
        return lambda t: min(1.0, start + (1.0 - start) * math.floor(stages * t / e) / stages)
    if kind == "exp":
        if inc <= 1:
            raise SpecError(f"exp pacing needs inc > 1, got {inc}")
        if step_len <= 0:
            jumps = max(1, math.ceil(math.log(1.0 / start) / math.log(inc) - 1e-12))
            step_len = max(1, math.floor(e / jumps))
        length = int(step_len)
        return lambda t: min(1.0, start * inc ** (t // length))
    raise SpecError(f"unknown pacing {kind!r}; choose one of {', '.join(PACINGS)}")


def pacing_size(n: int, kind: str, **kwargs: float) -> Pacing:
    """g(t) = ceil(N f(t)) for :func:`pacing_fraction` ``kind`` (at least 1, at most N).

    >>> g = pacing_size(2500, "exp", start=0.04, end_steps=1, inc=1.9, step_len=100)
    >>> [g(t) for t in range(0, 700, 100)]
    [100, 190, 361, 686, 1304, 2477, 2500]
    """
    frac = pacing_fraction(kind, **kwargs)  # type: ignore[arg-type]

    def g(t: int) -> int:
        # round first: 2500 * 0.04 is 100.00000000000001 in floating point
        return max(1, min(n, math.ceil(round(n * frac(t), 9))))

    return g


def cyclic_fractions(start: float, end: float, alpha: float, epochs: float) -> list[float]:
    """Kesgin & Amasyali's cyclical pool fractions ("Cyclical Curriculum Learning", IEEE
    TNNLS 2023, arXiv 2202.05531, Algorithm 1; authors' ``get_cycle_sizes``): begin at
    ``start``; grow by ``1/alpha`` (capped at ``end``) while at ``start`` or while the last
    move grew and ``end`` is not reached, otherwise shrink by ``alpha`` (floored at
    ``start``); stop once the fractions sum to ``epochs`` full passes.

    >>> s = cyclic_fractions(0.25, 1.0, 0.5, 30)
    >>> len(s), sum(s), s[:5]
    (54, 30.0, [0.25, 0.5, 1.0, 0.5, 0.25])
    """
    if not 0 < start <= end <= 1:
        raise SpecError(f"cyclical fractions need 0 < start <= end <= 1, got start={start}, end={end}")
    if not 0 < alpha < 1:
        raise SpecError(f"cyclical alpha must be in (0, 1), got {alpha}")
    out = [start]
    growing = True
    total = start
    while total < epochs:
        n = out[-1]
        grow = n == start or (growing and n != end)
        nxt = min(n / alpha, end) if grow else max(n * alpha, start)
        growing = nxt > n
        out.append(nxt)
        total += nxt
    return out
