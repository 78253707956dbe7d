"""Learning-rate schedules as pure functions of the step (optax style).

A :data:`Schedule` maps the 0-based update number ``k`` to a *multiplier* of the peak
learning rate. Factories (``cosine_schedule``, ``wsd_schedule``...) take keyword-only,
unit-named arguments and return closures; ``warmup`` and ``join`` take schedules and return
schedules. Specs are JSON-able dicts (``{"name": "wsd", "decay": 0.2, "warmup": 0.05}``)
turned into functions by :func:`build`.

Conventions (see ``shared/references/schedules-and-prediction.md`` §14):

* Step ``k`` is the multiplier used for update number ``k = 0 .. T-1``; the value at
  ``k = T`` is the schedule's end value (torch's ``LinearLR``/``CosineAnnealingLR``
  convention, so decays to 0 leave the last update a small non-zero step). Steps past
  ``T`` hold the end value.
* Warm-up is a combinator: ``warmup(inner, warmup_steps)`` ramps linearly from ``start``
  (default 0) so that update ``k < W`` uses ``start + (inner(0) - start) * (k + 1) / W``
  (first update non-zero, as schedule-free does; HF starts at 0), then plays ``inner`` on
  its local step ``k - W``. In a spec, ``warmup`` is a fraction of the run and the main
  schedule is built for the remaining ``T - W`` steps, except where a schedule says
  otherwise (``wsd``'s ``decay`` and ``cooldown`` are fractions of the whole run).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steplab.errors import SpecError

Schedule = Callable[[int], float]


# ----------------------------------------------------------------------------------
# Factories: pure closures over unit-named arguments
# ----------------------------------------------------------------------------------
def _progress(k: int, total_steps: int) -> float:
    return min(max(k, 0), total_steps) / total_steps if total_steps > 0 else 1.0


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


def linear_schedule(*, total_steps: int, end: float = 0.0) -> Schedule:
    """Linear decay ``s(k) = 1 + (end - 1) * min(k, T) / T`` (torch ``LinearLR``)."""
    return lambda k: 1.0 + (end - 1.0) * _progress(k, total_steps)


def cosine_schedule(*, total_steps: int, end: float = 0.0) -> Schedule:
    """Cosine decay (Loshchilov & Hutter 2017, "SGDR", eq. 5 without restarts):
    ``s(k) = end + (1 - end) * (1 + cos(pi * min(k, T) / T)) / 2``."""
    return lambda k: end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * _progress(k, total_steps)))


def polynomial_schedule(*, total_steps: int, power: float = 1.0, end: float = 0.0) -> Schedule:
    """Polynomial decay ``s(k) = end + (1 - end) * (1 - min(k, T) / T) ** power``
    (torch ``PolynomialLR`` when ``end = 0``)."""
    return lambda k: end + (1.0 - end) * (1.0 - _progress(k, total_steps)) ** power


_DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    # x in [0, 1] is the progress through the decay; returns the fraction of the way from
    # the end value back up to 1 (Hägele et al. 2024, arXiv 2405.18392, §3 and App. B.1).
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: 0.5 * (1.0 + math.cos(math.pi * x)),
    "1-sqrt": lambda x: 1.0 - math.sqrt(x),
    "square": lambda x: 1.0 - x * x,
}


def wsd_schedule(
    *, total_steps: int, decay_steps: int, shape: str = "1-sqrt", end: float = 0.0
) -> Schedule:
    """Warmup-stable-decay without its warm-up (MiniCPM, Hu et al. 2024, arXiv 2404.06395,
    §4; cooldown shapes from Hägele et al. 2024, arXiv 2405.18392, eq. 1 and App. B.1):
    ``s(k) = 1`` until ``T - D``, then ``end + (1 - end) * f(x)`` with
    ``x = (k - (T - D)) / D`` and ``f`` one of ``linear: 1 - x``, ``cosine:
    (1 + cos(pi x)) / 2``, ``1-sqrt: 1 - sqrt(x)``, ``square: 1 - x^2``."""
    f = _DECAY_SHAPES[shape]
    start = total_steps - decay_steps

    def schedule(k: int) -> float:
        if k < start or decay_steps <= 0:
            return 1.0
        return end + (1.0 - end) * f(_progress(k - start, decay_steps))

    return schedule


def rex_schedule(*, total_steps: int, alpha: float = 0.5, end: float = 0.0) -> Schedule:
    """REX (Chen, Wolfe & Kyrillidis 2022, arXiv 2107.04197, eq. 3):
    ``s(z) = (1 - z) / (1 - alpha * z)`` with ``z = k / T``; ``alpha = 0.5`` is the paper's
    profile (``s(1/2) = 2/3``), ``alpha = 0`` is linear decay, some ports use 0.9. Rescaled
    to end at ``end``."""

    def schedule(k: int) -> float:
        z = _progress(k, total_steps)
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
    f = _DECAY_SHAPES[shape]

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
    total_steps: int,
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
            (float(pct_start * total_steps) - 1, initial, 1.0),
            (float(2 * pct_start * total_steps) - 2, 1.0, initial),
            (total_steps - 1.0, initial, final),
        ]
    else:
        phases = [
            (float(pct_start * total_steps) - 1, initial, 1.0),
            (total_steps - 1.0, 1.0, final),
        ]

    def interp(start: float, end: float, pct: float) -> float:
        if anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def schedule(k: int) -> float:
        k = min(max(k, 0), total_steps - 1)
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
    total_steps: int,
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
        p = _progress(k - anneal_start, total_steps - anneal_start)
        return const ** (1.0 - p) * final**p  # = const (final/const)^p; final/const overflows for tiny const

    return schedule


def piecewise_schedule(*, total_steps: int, points: Sequence[Sequence[float]]) -> Schedule:
    """Piecewise-linear through ``(x, value)`` points, ``x`` a fraction of the run in
    [0, 1]; flat outside the first and last point. Horizon-free, so a schedule learned at
    one length (e.g. refined from gradient norms, Defazio et al. 2023) replays at another."""
    xs = [float(p[0]) * total_steps for p in points]
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


# ----------------------------------------------------------------------------------
# Combinators
# ----------------------------------------------------------------------------------
def warmup(schedule: Schedule, warmup_steps: int, *, start: float = 0.0) -> Schedule:
    """Linear warm-up around any schedule (Goyal et al. 2017, "Accurate, Large Minibatch
    SGD", §2.2): update ``k < W`` uses ``start + (s(0) - start) * (k + 1) / W``, then
    ``s(k - W)``. ``W = 0`` returns ``schedule`` unchanged."""
    if warmup_steps <= 0:
        return schedule
    peak = schedule(0)

    def warmed(k: int) -> float:
        if k < warmup_steps:
            return start + (peak - start) * (max(k, 0) + 1) / warmup_steps
        return schedule(k - warmup_steps)

    return warmed


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Piecewise concatenation (``optax.join_schedules``): ``schedules[i]`` plays from
    ``boundaries[i-1]`` on, counting steps from its own boundary."""
    if len(schedules) != len(boundaries) + 1:
        raise SpecError(
            f"join needs one boundary fewer than schedules, got {len(schedules)} schedules "
            f"and {len(boundaries)} boundaries"
        )
    bounds = list(boundaries)

    def joined(k: int) -> float:
        i = bisect.bisect_right(bounds, k)
        offset = bounds[i - 1] if i > 0 else 0
        return schedules[i](k - offset)

    return joined


# ----------------------------------------------------------------------------------
# Specs: JSON-able dicts -> schedules
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a schedule spec: type, default, allowed range, meaning."""

    kind: type
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    low_open: bool = False

    def check(self, schedule: str, name: str, value: Any) -> Any:
        where = f"schedule {schedule!r}: parameter {name!r}"
        if value is None and self.default is None:
            return None
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(f"{where} must be a number, got {value!r}")
            if not abs(value) <= sys.float_info.max:  # NaN, inf, an int too large for a float
                raise SpecError(f"{where} must be finite, got {value!r}")
            value = float(value)
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= sys.float_info.max \
                    or value != int(value):
                raise SpecError(f"{where} must be an integer, got {value!r}")
            value = int(value)
        elif self.kind is bool:
            if not isinstance(value, bool):
                raise SpecError(f"{where} must be true or false, got {value!r}")
        elif self.kind is str:
            if not isinstance(value, str):
                raise SpecError(f"{where} must be a string, got {value!r}")
        elif self.kind is list:
            if not isinstance(value, (list, tuple)):
                raise SpecError(f"{where} must be a list, got {value!r}")
            value = [list(v) if isinstance(v, (list, tuple)) else v for v in value]
        if self.choices is not None and value not in self.choices:
            raise SpecError(f"{where} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            op = ">" if self.low_open else ">="
            raise SpecError(f"{where} must be {op} {self.low}, got {value!r}")
        if self.high is not None and value > self.high:
            raise SpecError(f"{where} must be <= {self.high}, got {value!r}")
        return value


#: parameters every schedule accepts
COMMON: dict[str, Param] = {
    "warmup": Param(float, 0.0, "linear warm-up length as a fraction of the run", 0.0, 0.999),
    "warmup_start": Param(float, 0.0, "multiplier the warm-up starts from", 0.0, 1.0),
}

Maker = Callable[[int, int, dict[str, Any]], Schedule]


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    """A registry entry: how to build a spec's schedule, its parameters, its source."""

    name: str
    summary: str
    params: dict[str, Param]
    make: Maker  # (steps after warm-up, warm-up steps, params) -> schedule without warm-up


_REGISTRY: dict[str, ScheduleInfo] = {}


def register(info: ScheduleInfo) -> ScheduleInfo:
    """Add a schedule to the registry (a user can register their own)."""
    _REGISTRY[info.name] = info
    return info


def _frac_steps(frac: float, total: int) -> int:
    return int(round(frac * total))


def _make_step(t: int, w: int, p: dict[str, Any]) -> Schedule:
    if p["milestones"] is not None and p["every"] is not None:
        raise SpecError("schedule 'step': give 'milestones' or 'every', not both")
    if p["every"] is not None:
        size = max(1, _frac_steps(p["every"], t))
        milestones = list(range(size, t + 1, size))
    else:
        fracs = p["milestones"] if p["milestones"] is not None else [0.5, 0.75]
        for f in fracs:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
                raise SpecError(f"schedule 'step': parameter 'milestones' entries must be fractions in (0, 1), got {f!r}")
        milestones = [_frac_steps(f, t) for f in fracs]
    return step_schedule(milestones=milestones, gamma=p["gamma"])


def _make_exponential(t: int, w: int, p: dict[str, Any]) -> Schedule:
    if p["gamma"] is not None and p["end"] is not None:
        raise SpecError("schedule 'exponential': give 'gamma' or 'end', not both")
    gamma = p["gamma"] if p["gamma"] is not None else (p["end"] if p["end"] is not None else 0.01) ** (1.0 / max(t, 1))
    return exponential_schedule(gamma=gamma)


def _make_wsd(t: int, w: int, p: dict[str, Any], *, decay_key: str = "decay", shape: str | None = None) -> Schedule:
    run = t + w  # the decay fraction is of the whole run
    decay_steps = min(t, _frac_steps(p[decay_key], run))
    return wsd_schedule(total_steps=t, decay_steps=decay_steps, shape=shape or p["shape"], end=p["end"])


def _make_cyclic(mode: str) -> Maker:
    def make(t: int, w: int, p: dict[str, Any]) -> Schedule:
        if not t / p["cycles"] < 2**62:  # 1 / cycles overflows to inf for subnormal cycles
            raise SpecError(f"schedule {mode!r}: parameter 'cycles' = {p['cycles']!r} makes one cycle longer "
                            "than 2**62 steps; use cycles >= 1e-12")
        size = max(2, _frac_steps(1.0 / p["cycles"], t))
        up = min(size - 1, max(1, _frac_steps(p["up"], size)))
        return cyclic_schedule(up_steps=up, down_steps=size - up, low=p["low"], mode=mode, gamma=p.get("gamma", 1.0))

    return make


def _make_power(t: int, w: int, p: dict[str, Any]) -> Schedule:
    knee = max(1.0, p["knee"] * (t + w))
    main = power_schedule(knee_steps=knee, exponent=p["exponent"], offset=w)
    decay_steps = min(t, _frac_steps(p["decay"], t + w))
    if decay_steps <= 0:
        return main
    start = t - decay_steps
    level = main(start)
    tail = exp_decay_tail(decay_steps=decay_steps)
    return lambda k: main(k) if k < start else level * tail(min(k - start, decay_steps))


def _make_infinite(t: int, w: int, p: dict[str, Any]) -> Schedule:
    run = t + w
    cooldown_end = max(0, _frac_steps(p["cooldown_end"], run) - w)
    anneal_start = max(cooldown_end, _frac_steps(p["anneal_start"], run) - w)
    if p["cooldown_end"] > p["anneal_start"]:
        raise SpecError("schedule 'infinite': 'cooldown_end' must be <= 'anneal_start' (both are cumulative fractions of the run)")
    return infinite_schedule(
        total_steps=t,
        cooldown_end=cooldown_end,
        anneal_start=anneal_start,
        const=p["const"],
        final=p["final"],
        cooldown_shape=p["cooldown_shape"],
        timescale=p["timescale"],
    )


def _make_piecewise(t: int, w: int, p: dict[str, Any]) -> Schedule:
    pts = p["points"]
    if pts is None or len(pts) < 1:
        raise SpecError("schedule 'piecewise': parameter 'points' needs at least one [x, value] pair")
    clean: list[tuple[float, float]] = []
    for pt in pts:
        if not isinstance(pt, (list, tuple)) or len(pt) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= sys.float_info.max for v in pt
        ):
            raise SpecError(f"schedule 'piecewise': parameter 'points' entries must be [x, value] number pairs, got {pt!r}")
        x, v = float(pt[0]), float(pt[1])
        if not 0.0 <= x <= 1.0 or v < 0.0:
            raise SpecError(f"schedule 'piecewise': parameter 'points' needs x in [0, 1] and value >= 0, got {pt!r}")
        clean.append((x, v))
    if any(b[0] <= a[0] for a, b in zip(clean, clean[1:])):
        raise SpecError("schedule 'piecewise': parameter 'points' must have strictly increasing x")
    return piecewise_schedule(total_steps=t, points=clean)


#: Portes et al. 2022's doubling cycles: budgets 1/8, 1/4, 1/2 and all of the run
DOUBLING_ENDS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)


def cycle_end_steps(ends: Sequence[float], total_steps: int, *, warmup_steps: int = 0) -> list[int]:
    """The update counts at which cycles ending at run fractions ``ends`` end in a run of
    ``total_steps``: ``round(e * T)``. Raises ``SpecError`` unless ``ends`` rise strictly in
    (0, 1] to 1 and the steps stay distinct (and past the warm-up)."""
    where = "schedule 'budget_cycles': parameter 'ends'"
    if not isinstance(ends, (list, tuple)) or not ends:
        raise SpecError(f"{where} must be a non-empty list of run fractions, got {ends!r}")
    for e in ends:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0.0 < e <= 1.0:
            raise SpecError(f"{where} entries must be fractions in (0, 1], got {e!r}")
    if any(b <= a for a, b in zip(ends, ends[1:])) or ends[-1] != 1:
        raise SpecError(f"{where} must increase strictly and end at 1, got {list(ends)}")
    steps = [_frac_steps(e, total_steps) for e in ends[:-1]] + [total_steps]
    if steps[0] <= warmup_steps or any(b <= a for a, b in zip(steps, steps[1:])):
        raise SpecError(
            f"{where}: cycles ending at steps {steps} of a {total_steps}-step run (warm-up {warmup_steps}) "
            "collapse; use fewer cycles or a longer run"
        )
    return steps


def _make_budget_cycles(t: int, w: int, p: dict[str, Any]) -> Schedule:
    ends = p["ends"] if p["ends"] is not None else list(DOUBLING_ENDS)
    steps = cycle_end_steps(ends, t + w, warmup_steps=w)  # ends are fractions of the whole run
    return budget_cycles_schedule(cycle_steps=[b - w for b in steps], shape=p["shape"], end=p["end"])


def _end(doc: str = "final multiplier (fraction of the peak)") -> Param:
    return Param(float, 0.0, doc, 0.0, 1.0)


_SHAPES = tuple(_DECAY_SHAPES)
_CYCLIC_PARAMS = {
    "cycles": Param(float, 4.0, "number of cycles over the run", 0.0, None, low_open=True),
    "up": Param(float, 0.5, "fraction of each cycle spent rising", 0.0, 1.0, low_open=True),
    "low": Param(float, 0.1, "base_lr / max_lr, the bottom of each cycle", 0.0, 1.0),
}

for _info in [
    ScheduleInfo("constant", "constant learning rate", {}, lambda t, w, p: constant_schedule()),
    ScheduleInfo(
        "step",
        "multiply by gamma at milestones (He et al. 2016; torch MultiStepLR)",
        {
            "milestones": Param(list, None, "fractions of the run at which to decay (default [0.5, 0.75])"),
            "every": Param(float, None, "decay every this fraction of the run (torch StepLR)", 0.0, 1.0, low_open=True),
            "gamma": Param(float, 0.1, "factor applied at each milestone", 0.0, 1.0, low_open=True),
        },
        _make_step,
    ),
    ScheduleInfo(
        "exponential",
        "s(k) = gamma^k (torch ExponentialLR)",
        {
            "gamma": Param(float, None, "per-step factor", 0.0, 1.0, low_open=True),
            "end": Param(float, None, "final multiplier instead of gamma (default 0.01)", 0.0, 1.0, low_open=True),
        },
        _make_exponential,
    ),
    ScheduleInfo("linear", "linear decay to `end` (torch LinearLR)", {"end": _end()},
                 lambda t, w, p: linear_schedule(total_steps=t, end=p["end"])),
    ScheduleInfo("cosine", "cosine decay to `end` (Loshchilov & Hutter 2017)", {"end": _end()},
                 lambda t, w, p: cosine_schedule(total_steps=t, end=p["end"])),
    ScheduleInfo(
        "polynomial",
        "(1 - k/T)^power decay to `end` (torch PolynomialLR)",
        {"power": Param(float, 2.0, "exponent of the decay", 0.0, None, low_open=True), "end": _end()},
        lambda t, w, p: polynomial_schedule(total_steps=t, power=p["power"], end=p["end"]),
    ),
    ScheduleInfo(
        "wsd",
        "warmup-stable-decay (MiniCPM; Hägele et al. 2024 cooldown shapes)",
        {
            "decay": Param(float, 0.2, "cooldown length as a fraction of the whole run", 0.0, 1.0),
            "shape": Param(str, "1-sqrt", "cooldown shape", choices=_SHAPES),
            "end": _end(),
        },
        _make_wsd,
    ),
    ScheduleInfo(
        "cooldown",
        "constant, then a linear cooldown (Hägele et al. 2024)",
        {"cooldown": Param(float, 0.2, "cooldown length as a fraction of the whole run", 0.0, 1.0), "end": _end()},
        lambda t, w, p: _make_wsd(t, w, p, decay_key="cooldown", shape="linear"),
    ),
    ScheduleInfo(
        "rex",
        "REX profile (1-z)/(1-alpha z) (Chen et al. 2022)",
        {"alpha": Param(float, 0.5, "0.5 in the paper, 0 is linear, 0.9 in some ports", 0.0, 0.999), "end": _end()},
        lambda t, w, p: rex_schedule(total_steps=t, alpha=p["alpha"], end=p["end"]),
    ),
    ScheduleInfo("triangular", "triangular cycles (Smith 2017; torch CyclicLR)", dict(_CYCLIC_PARAMS), _make_cyclic("triangular")),
    ScheduleInfo("triangular2", "triangular cycles halving each cycle (Smith 2017)", dict(_CYCLIC_PARAMS), _make_cyclic("triangular2")),
    ScheduleInfo(
        "exp_range",
        "triangular cycles scaled by gamma^k (Smith 2017)",
        {**_CYCLIC_PARAMS, "gamma": Param(float, 0.9999, "per-step amplitude factor", 0.0, 1.0, low_open=True)},
        _make_cyclic("exp_range"),
    ),
    ScheduleInfo(
        "budget_cycles",
        "cycles restarting at the peak, ending at given budgets (Portes et al. 2022)",
        {
            "ends": Param(list, None, "cumulative fractions of the run where cycles end (default [0.125, 0.25, 0.5, 1])"),
            "shape": Param(str, "cosine", "decay shape of each cycle", choices=_SHAPES),
            "end": _end("multiplier each cycle decays to"),
        },
        _make_budget_cycles,
    ),
    ScheduleInfo(
        "onecycle",
        "one-cycle policy (Smith & Topin 2017; torch OneCycleLR)",
        {
            "pct_start": Param(float, 0.3, "fraction of the run spent rising", 0.0, 1.0, low_open=True),
            "anneal": Param(str, "cos", "annealing shape", choices=("cos", "linear")),
            "div_factor": Param(float, 25.0, "max_lr / initial_lr", 1.0, None),
            "final_div_factor": Param(float, 1e4, "initial_lr / min_lr", 1.0, None),
            "three_phase": Param(bool, False, "torch's three-phase variant"),
        },
        lambda t, w, p: onecycle_schedule(total_steps=t, pct_start=p["pct_start"], anneal=p["anneal"],
                                          div_factor=p["div_factor"], final_div_factor=p["final_div_factor"],
                                          three_phase=p["three_phase"]),
    ),
    ScheduleInfo(
        "inverse_sqrt",
        "1/sqrt(1 + k/timescale) after warm-up (Vaswani et al. 2017)",
        {"timescale": Param(float, None, "steps per unit of decay as a fraction of the run (default: the warm-up length, else 0.01)", 0.0, None, low_open=True)},
        lambda t, w, p: inverse_sqrt_schedule(
            timescale=max(1.0, p["timescale"] * (t + w)) if p["timescale"] is not None else float(w if w > 0 else max(1, _frac_steps(0.01, t + w)))
        ),
    ),
    ScheduleInfo(
        "power",
        "min(1, (k/knee)^b), batch-size agnostic (Shen et al. 2024)",
        {
            "knee": Param(float, 0.05, "fraction of the run where the power law falls below the peak", 0.0, 1.0, low_open=True),
            "exponent": Param(float, -0.51, "power-law exponent b", None, 0.0),
            "decay": Param(float, 0.0, "final exponential decay to 0 as a fraction of the run", 0.0, 1.0),
        },
        _make_power,
    ),
    ScheduleInfo(
        "infinite",
        "cooldown to a constant, then anneal at the end (Ibrahim et al. 2024)",
        {
            "cooldown_end": Param(float, 0.15, "end of the cooldown, cumulative fraction of the run", 0.0, 1.0),
            "anneal_start": Param(float, 0.8, "end of the constant phase, cumulative fraction of the run", 0.0, 1.0),
            "const": Param(float, 0.25, "constant-phase multiplier", 0.0, 1.0, low_open=True),
            "final": Param(float, 0.01, "multiplier after the exponential anneal", 0.0, 1.0, low_open=True),
            "cooldown_shape": Param(str, "cosine", "cooldown shape", choices=("cosine", "linear", "inverse_sqrt")),
            "timescale": Param(float, 10.0, "inverse-sqrt cooldown timescale", 0.0, None, low_open=True),
        },
        _make_infinite,
    ),
    ScheduleInfo(
        "piecewise",
        "piecewise-linear through [x, value] points, x a fraction of the run",
        {"points": Param(list, None, "[[x, value], ...] with x in [0, 1] increasing")},
        _make_piecewise,
    ),
]:
    register(_info)


def names() -> list[str]:
    """Registered schedule names, sorted."""
    return sorted(_REGISTRY)


def info(name: str) -> ScheduleInfo:
    """The registry entry for ``name`` (``-`` and ``_`` interchangeable)."""
    key = name.strip().replace("-", "_").lower()
    if key not in _REGISTRY:
        raise SpecError(
            f"unknown schedule {name!r}; known: {', '.join(names())} (see `steplab schedules list`)"
        )
    return _REGISTRY[key]


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """A validated schedule spec: ``name`` plus the parameters that differ from defaults.

    ``to_dict()`` gives the JSON-able form stored with every trial; ``spec_from`` parses it
    back (and strings like ``"wsd:decay=0.1,shape=cosine"``)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: _thaw(v) for k, v in self.params}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        def fmt(v: Any) -> str:
            return v if isinstance(v, str) else json.dumps(_thaw(v))

        return self.name + ":" + ",".join(f"{k}={fmt(v)}" for k, v in self.params)

    def resolved(self) -> dict[str, Any]:
        """All parameters, defaults filled in."""
        entry = info(self.name)
        given = dict(self.params)
        out = {k: p.default for k, p in {**COMMON, **entry.params}.items()}
        out.update({k: _thaw(v) for k, v in given.items()})
        return out


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


def _parse_value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, an integer of > 4300 digits, nested too deeply
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        return text


def _split_params(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def _read_spec_file(path: str) -> str:
    """The text of a schedule spec saved as JSON (e.g. by ``steplab refine --out``)."""
    from pathlib import Path

    try:
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as e:
        raise SpecError(f"schedule file {path!r} cannot be read ({e.strerror}); give an existing .json file") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"schedule file {path!r} is not UTF-8 text ({e.reason}); save it as UTF-8 JSON") from None
    except ValueError as e:  # a NUL in the path
        raise SpecError(f"schedule file {path!r} cannot be opened ({e}); fix the path") from None


def spec_from(obj: ScheduleSpec | Mapping[str, Any] | str) -> ScheduleSpec:
    """Parse and validate a spec from a ``ScheduleSpec``, a dict, a JSON string, a ``.json``
    file holding one, or the CLI form ``name[:key=value,...]``. Raises ``SpecError`` naming the bad parameter."""
    if isinstance(obj, ScheduleSpec):
        return obj
    if isinstance(obj, str):
        text = obj.strip()
        if text.lower().endswith(".json") and not text.startswith("{"):
            text = _read_spec_file(text)
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise SpecError(f"schedule spec is not valid JSON ({e.msg} at char {e.pos}): {text[:60]!r}") from None
            except (ValueError, RecursionError):  # an integer of > 4300 digits, nested too deeply
                raise SpecError(f"schedule spec JSON has a number too long or nesting too deep: {text[:60]!r}; "
                                "give a plain {\"name\": ..., \"key\": value} object") from None
        else:
            name, _, rest = text.partition(":")
            d: dict[str, Any] = {"name": name}
            for part in _split_params(rest):
                key, eq, value = part.partition("=")
                if not eq or not key.strip():
                    raise SpecError(f"schedule {name!r}: expected key=value, got {part!r}")
                d[key.strip()] = _parse_value(value)
            obj = d
    if not isinstance(obj, Mapping):
        raise SpecError(f"a schedule spec must be a name, a string or a dict, got {type(obj).__name__}")
    if not isinstance(obj.get("name"), str) or not obj.get("name"):
        raise SpecError("a schedule spec needs a 'name' (see `steplab schedules list`)")
    entry = info(obj["name"])
    allowed = {**COMMON, **entry.params}
    params = []
    for key in sorted((k for k in obj if k != "name"), key=str):  # str: a Python caller's keys may be anything
        if key not in allowed:
            raise SpecError(
                f"schedule {entry.name!r} has no parameter {key!r}; it takes: {', '.join(sorted(allowed))}"
            )
        params.append((key, _freeze(allowed[key].check(entry.name, key, obj[key]))))
    spec = ScheduleSpec(entry.name, tuple(params))
    build(spec, 100)  # surface cross-parameter errors now, not at training time
    return spec


def build(spec: ScheduleSpec | Mapping[str, Any] | str, total_steps: int) -> Schedule:
    """The schedule of ``spec`` for a run of ``total_steps`` updates (DESIGN.md)."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise SpecError(f"total_steps must be a positive integer, got {total_steps!r}")
    spec = spec if isinstance(spec, ScheduleSpec) else spec_from(spec)
    entry = info(spec.name)
    p = spec.resolved()
    w = min(total_steps - 1, _frac_steps(p["warmup"], total_steps))
    inner = entry.make(total_steps - w, w, p)
    return warmup(inner, w, start=p["warmup_start"])


def values(schedule: Schedule, total_steps: int) -> list[float]:
    """``[schedule(k) for k in range(total_steps)]``: the multipliers a run of that length uses."""
    return [schedule(k) for k in range(total_steps)]


# ----------------------------------------------------------------------------------
# torch adapter
# ----------------------------------------------------------------------------------
def to_lr_scheduler(optimizer: Any, schedule: Schedule, last_epoch: int = -1) -> Any:
    """A ``torch.optim.lr_scheduler.LambdaLR`` that sets each param group's lr to its own
    peak (``initial_lr``) times ``schedule(k)``; step it after each ``optimizer.step()``."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, schedule, last_epoch=last_epoch)


__all__ = [
    "COMMON",
    "Param",
    "Schedule",
    "ScheduleInfo",
    "ScheduleSpec",
    "DOUBLING_ENDS",
    "budget_cycles_schedule",
    "build",
    "constant_schedule",
    "cycle_end_steps",
    "cosine_schedule",
    "cyclic_schedule",
    "exponential_schedule",
    "info",
    "infinite_schedule",
    "inverse_sqrt_schedule",
    "join",
    "linear_schedule",
    "names",
    "onecycle_schedule",
    "piecewise_schedule",
    "polynomial_schedule",
    "power_schedule",
    "register",
    "rex_schedule",
    "spec_from",
    "step_schedule",
    "to_lr_scheduler",
    "values",
    "warmup",
    "wsd_schedule",
]

# the stage schedules of continual runs (stages_rewarm, stages_constant, stages_infinite,
# stages_wsd) live in their own module and register themselves; imported last, it finds the
# registry built
import steplab.schedules.stages  # noqa: E402,F401
