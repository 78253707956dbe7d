"""Learning-rate schedule shapes: pure functions of the step (optax style).

Each factory takes keyword-only, unit-named arguments and returns a :data:`Schedule`, a
closure mapping the 0-based update number ``k`` to a multiplier of the peak learning rate.
``budget_steps`` is the number of updates the schedule is built for: the value at
``k = budget_steps`` is its end value and later steps hold it (torch's ``LinearLR``/
``CosineAnnealingLR`` convention; ``shared/references/schedules-and-prediction.md`` §14).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from steplab.errors import SpecError
from steplab.schedules.compose import Schedule, join


def _progress(k: int, length_steps: int) -> float:
    """How far update ``k`` is through ``length_steps`` updates, clipped to [0, 1]."""
    return min(max(k, 0), length_steps) / length_steps if length_steps > 0 else 1.0


def constant_schedule(*, value: float = 1.0) -> Schedule:
    """``s(k) = value``."""
    return lambda k: value


def step_schedule(*, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """Piecewise-constant decay: ``s(k) = gamma ** #{m in milestones : m <= k}``.

    torch's ``MultiStepLR`` (and ``StepLR`` with evenly spaced milestones); the classic
    step schedule of He et al. 2016 ("Deep Residual Learning", §3.4: divide by 10).
    """
    ms = sorted(int(m) for m in milestones)
    return lambda k: gamma ** bisect.bisect_right(ms, k)


def exponential_schedule(*, gamma: float) -> Schedule:
    """``s(k) = gamma ** k`` (torch ``ExponentialLR``)."""
    return lambda k: gamma ** max(k, 0)


def linear_schedule(*, budget_steps: int, end: float = 0.0) -> Schedule:
    """Linear decay ``s(k) = 1 + (end - 1) * min(k, T) / T`` (torch ``LinearLR``)."""
    return lambda k: 1.0 + (end - 1.0) * _progress(k, budget_steps)


def cosine_schedule(*, budget_steps: int, end: float = 0.0) -> Schedule:
    """Cosine decay (Loshchilov & Hutter 2017, "SGDR", eq. 5 without restarts):
    ``s(k) = end + (1 - end) * (1 + cos(pi * min(k, T) / T)) / 2``."""
    return lambda k: end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * _progress(k, budget_steps)))


def polynomial_schedule(*, budget_steps: int, power: float = 1.0, end: float = 0.0) -> Schedule:
    """Polynomial decay ``s(k) = end + (1 - end) * (1 - min(k, T) / T) ** power``
    (torch ``PolynomialLR`` when ``end = 0``)."""
    return lambda k: end + (1.0 - end) * (1.0 - _progress(k, budget_steps)) ** power


DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    # x in [0, 1] is the progress through the decay; returns the fraction of the way from
    # the end value back up to 1 (Hägele et al. 2024, arXiv 2405.18392, §3 and App. B.1).
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: 0.5 * (1.0 + math.cos(math.pi * x)),
    "1-sqrt": lambda x: 1.0 - math.sqrt(x),
    "square": lambda x: 1.0 - x * x,
}


def wsd_schedule(
    *, budget_steps: int, decay_steps: int, shape: str = "1-sqrt", end: float = 0.0
) -> Schedule:
    """Warmup-stable-decay without its warm-up (MiniCPM, Hu et al. 2024, arXiv 2404.06395,
    §4; cooldown shapes from Hägele et al. 2024, arXiv 2405.18392, eq. 1 and App. B.1):
    ``s(k) = 1`` until ``T - D``, then ``end + (1 - end) * f(x)`` with
    ``x = (k - (T - D)) / D`` and ``f`` one of ``linear: 1 - x``, ``cosine:
    (1 + cos(pi x)) / 2``, ``1-sqrt: 1 - sqrt(x)``, ``square: 1 - x^2``."""
    f = DECAY_SHAPES[shape]
    start = budget_steps - decay_steps

    def schedule(k: int) -> float:
        if k < start or decay_steps <= 0:
            return 1.0
        return end + (1.0 - end) * f(_progress(k - start, decay_steps))

    return schedule


def rex_schedule(*, budget_steps: int, alpha: float = 0.5, end: float = 0.0) -> Schedule:
    """REX (Chen, Wolfe & Kyrillidis 2022, arXiv 2107.04197, eq. 3):
    ``s(z) = (1 - z) / (1 - alpha * z)`` with ``z = k / T``; ``alpha = 0.5`` is the paper's
    profile (``s(1/2) = 2/3``), ``alpha = 0`` is linear decay, some ports use 0.9. Rescaled
    to end at ``end``."""

    def schedule(k: int) -> float:
        z = _progress(k, budget_steps)
        return end + (1.0 - end) * (1.0 - z) / (1.0 - alpha * z)

    return schedule


def budget_cycles_schedule(
    *, cycle_steps: Sequence[int], shape: str = "cosine", end: float = 0.0
) -> Schedule:
    """Cycles that end at given budgets (Portes et al. 2022, "Fast Benchmarking of Accuracy
    vs. Training Time with Cyclic Learning Rates", arXiv 2206.00832, §3; SGDR restarts,
    Loshchilov & Hutter 2017, with cycle ends chosen as the budgets to read off). With
    cumulative cycle ends ``B_1 < ... < B_K`` (``B_0 = 0``, the run is ``T = B_K`` steps),
    update ``k`` in cycle ``i`` (``B_{i-1} <= k < B_i``) uses
    ``s(k) = end + (1 - end) * f((k - B_{i-1}) / (B_i - B_{i-1}))`` with ``f`` a decay shape
    (``cosine: (1 + cos(pi x)) / 2``, ``linear: 1 - x``...): every cycle restarts at 1 and
    decays towards ``end``, which its local step ``B_i - B_{i-1}`` reaches; ``s(k >= T) = end``.
    So cycle ``i`` ends like a run decayed over ``B_i`` steps, and evaluating after update
    ``B_i`` reads one point of the accuracy-vs-time curve. A ``join`` of one decay per cycle.

    >>> f = budget_cycles_schedule(cycle_steps=[2, 4], shape="linear")
    >>> [f(k) for k in range(5)]
    [1.0, 0.5, 1.0, 0.5, 0.0]
    """
    bounds = [int(b) for b in cycle_steps]
    if not bounds or bounds[0] < 1 or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise SpecError(f"budget_cycles: cycle end steps must be strictly increasing and >= 1, got {bounds}")
    f = DECAY_SHAPES[shape]

    def decay(length: int) -> Schedule:
        return lambda j: end + (1.0 - end) * f(_progress(j, length))

    lengths = [b - a for a, b in zip([0, *bounds], bounds)]
    return join([decay(n) for n in lengths], bounds[:-1])


def cyclic_schedule(
    *,
    up_steps: int,
    down_steps: int,
    low: float = 0.1,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> Schedule:
    """Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training Neural
    Networks", arXiv 1506.01186, §3.1), as torch's ``CyclicLR`` computes them, relative to
    ``max_lr``: ``s(k) = low + (1 - low) * h(k) * scale``, ``h`` a triangle rising over
    ``up_steps`` and falling over ``down_steps``; ``scale = 1`` (triangular),
    ``1 / 2^(cycle - 1)`` (triangular2) or ``gamma^k`` (exp_range)."""
    size = up_steps + down_steps
    ratio = up_steps / size

    def schedule(k: int) -> float:
        cycle = math.floor(1 + k / size)
        x = 1.0 + k / size - cycle
        h = x / ratio if x <= ratio else (x - 1.0) / (ratio - 1.0)
        if mode == "triangular":
            scale = 1.0
        elif mode == "triangular2":
            scale = 1.0 / (2.0 ** (cycle - 1))
        else:
            scale = gamma**k
        return low + (1.0 - low) * h * scale

    return schedule


def onecycle_schedule(
    *,
    budget_steps: int,
    pct_start: float = 0.3,
    anneal: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """One-cycle (Smith & Topin 2017, "Super-Convergence", arXiv 1708.07120), with the
    phase arithmetic of torch's ``OneCycleLR``, relative to ``max_lr``: from
    ``1/div_factor`` up to 1 by step ``pct_start * T - 1``, then down to
    ``1/(div_factor * final_div_factor)`` at step ``T - 1`` (three-phase: back to the
    initial value first, then down)."""
    initial = 1.0 / div_factor
    final = initial / final_div_factor
    if three_phase:
        phases = [
            (float(pct_start * budget_steps) - 1, initial, 1.0),
            (float(2 * pct_start * budget_steps) - 2, 1.0, initial),
            (budget_steps - 1.0, initial, final),
        ]
    else:
        phases = [
            (float(pct_start * budget_steps) - 1, initial, 1.0),
            (budget_steps - 1.0, 1.0, final),
        ]

    def interp(start: float, end: float, pct: float) -> float:
        if anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def schedule(k: int) -> float:
        k = min(max(k, 0), budget_steps - 1)
        phase_start = 0.0
        for i, (phase_end, lo, hi) in enumerate(phases):
            if k <= phase_end or i == len(phases) - 1:
                pct = (k - phase_start) / (phase_end - phase_start) if phase_end > phase_start else 1.0
                return interp(lo, hi, pct)
            phase_start = phase_end
        raise AssertionError("unreachable")

    return schedule


def inverse_sqrt_schedule(*, timescale: float, offset: int = 0) -> Schedule:
    """Inverse square root (Vaswani et al. 2017, "Attention Is All You Need", eq. 3;
    ``transformers.get_inverse_sqrt_schedule``), after warm-up:
    ``s(k) = 1 / sqrt(1 + (k + offset) / timescale)``; ``= 1`` at ``k + offset = 0``
    and ``~ k^(-1/2)`` later. Horizon-free: the "infinite" family of schedules."""
    return lambda k: 1.0 / math.sqrt(1.0 + max(k + offset, 0) / timescale)


def power_schedule(*, knee_steps: float, exponent: float = -0.51, offset: int = 0) -> Schedule:
    """Power scheduler (Shen et al. 2024, "Power Scheduler", arXiv 2408.13359, eq. 6; IBM
    dolomite-engine ``PowerScheduler``): ``lr = min(lr_max, a * n^b)`` with ``n`` tokens
    seen. Relative to ``lr_max``, with ``n = c * step``, this is
    ``s(k) = min(1, ((k + offset) / knee_steps) ** b)`` where ``knee_steps`` is the step at
    which ``a * n^b`` falls below ``lr_max``: ``knee = (lr_max / a)^(1/b) / c``."""

    def schedule(k: int) -> float:
        n = k + offset
        if n <= 0 or (n < knee_steps and exponent <= 0):  # (n / knee)^b >= 1 there; it overflows for b << 0
            return 1.0
        return min(1.0, (n / knee_steps) ** exponent)

    return schedule


def exp_decay_tail(*, decay_steps: int) -> Callable[[float], float]:
    """Dolomite's exponential decay shape to 0 over ``D`` steps:
    ``f(x) = A exp(-x/D) + B`` with ``A = e/(e-1)``, ``B = -1/(e-1)`` (so ``f(0) = 1`` and
    ``f(D) = 0``), used for the Power scheduler's final decay."""
    a = math.e / (math.e - 1.0)
    b = -1.0 / (math.e - 1.0)
    return lambda x: a * math.exp(-x / decay_steps) + b


def infinite_schedule(
    *,
    budget_steps: int,
    cooldown_end: int,
    anneal_start: int,
    const: float = 0.25,
    final: float = 0.01,
    cooldown_shape: str = "cosine",
    timescale: float = 10.0,
) -> Schedule:
    """Infinite schedule without its warm-up (Ibrahim et al. 2024, arXiv 2403.08763, §7.2;
    Janson et al. 2025, "Beyond Cosine Decay", ``infinite_lr``): cool down from 1 to
    ``const`` by step ``cooldown_end`` (cosine, linear, or inverse-sqrt
    ``h(p) = 1/sqrt(1 + timescale p) - 1``, ``s = 1 + (const - 1) h(p)/h(1)``), stay at
    ``const`` until ``anneal_start``, then anneal exponentially
    ``const * (final/const)^p`` to ``final`` at ``T``."""

    def schedule(k: int) -> float:
        if k <= cooldown_end:
            p = _progress(k, cooldown_end)
            if cooldown_shape == "cosine":
                return const + (1.0 - const) * 0.5 * (1.0 + math.cos(math.pi * p))
            if cooldown_shape == "linear":
                return 1.0 - (1.0 - const) * p
            h1 = 1.0 / math.sqrt(1.0 + timescale) - 1.0
            hp = 1.0 / math.sqrt(1.0 + timescale * p) - 1.0
            return 1.0 + (const - 1.0) * (hp / h1 if h1 else p)  # h(p)/h(1) -> p as timescale -> 0
        if k <= anneal_start:
            return const
        p = _progress(k - anneal_start, budget_steps - anneal_start)
        return const ** (1.0 - p) * final**p  # = const (final/const)^p; final/const overflows for tiny const

    return schedule


def piecewise_schedule(*, budget_steps: int, points: Sequence[Sequence[float]]) -> Schedule:
    """Piecewise-linear through ``(x, value)`` points, ``x`` a fraction of the run in
    [0, 1]; flat outside the first and last point. Horizon-free, so a schedule learned at
    one length (e.g. refined from gradient norms, Defazio et al. 2023) replays at another."""
    xs = [float(p[0]) * budget_steps for p in points]
    vs = [float(p[1]) for p in points]

    def schedule(k: int) -> float:
        if k <= xs[0]:
            return vs[0]
        if k >= xs[-1]:
            return vs[-1]
        i = bisect.bisect_right(xs, k)
        x0, x1 = xs[i - 1], xs[i]
        return vs[i - 1] + (vs[i] - vs[i - 1]) * (k - x0) / (x1 - x0)

    return schedule
