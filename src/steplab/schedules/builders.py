"""How the registry turns a spec's resolved parameters into a schedule: one :class:`Maker`
per registered shape, reading fractions of the run as update counts.

Each maker gets the whole run (``budget_steps``), the common warm-up (``warmup_steps``) and
the parameters, and returns the schedule that plays after the warm-up, for
``budget_steps - warmup_steps`` updates. Fractions are of the remaining updates unless a
parameter says "of the whole run" (``wsd``'s ``decay``, ``budget_cycles``' ``ends``...).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from steplab.errors import SpecError
from steplab.schedules import shapes
from steplab.schedules.compose import Schedule
from steplab.schedules.params import Maker, check_run_fractions, frac_steps

#: Portes et al. 2022's doubling cycles: budgets 1/8, 1/4, 1/2 and all of the run
DOUBLING_ENDS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)


def make_constant(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``shapes.constant_schedule()``."""
    return shapes.constant_schedule()


def make_step(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``step_schedule`` with milestones at fractions of the updates after warm-up."""
    t, p = budget_steps - warmup_steps, params
    if p["milestones"] is not None and p["every"] is not None:
        raise SpecError("schedule 'step': give 'milestones' or 'every', not both")
    if p["every"] is not None:
        size = max(1, frac_steps(p["every"], t))
        milestones = list(range(size, t + 1, size))
    else:
        fracs = p["milestones"] if p["milestones"] is not None else [0.5, 0.75]
        for f in fracs:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
                raise SpecError(f"schedule 'step': parameter 'milestones' entries must be fractions in (0, 1), got {f!r}")
        milestones = [frac_steps(f, t) for f in fracs]
    return shapes.step_schedule(milestones=milestones, gamma=p["gamma"])


def make_exponential(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``exponential_schedule``; ``end`` sets ``gamma = end^(1 / updates after warm-up)``."""
    t, p = budget_steps - warmup_steps, params
    if p["gamma"] is not None and p["end"] is not None:
        raise SpecError("schedule 'exponential': give 'gamma' or 'end', not both")
    gamma = p["gamma"] if p["gamma"] is not None else (p["end"] if p["end"] is not None else 0.01) ** (1.0 / max(t, 1))
    return shapes.exponential_schedule(gamma=gamma)


def make_linear(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``linear_schedule`` over the updates after warm-up."""
    return shapes.linear_schedule(budget_steps=budget_steps - warmup_steps, end=params["end"])


def make_cosine(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``cosine_schedule`` over the updates after warm-up."""
    return shapes.cosine_schedule(budget_steps=budget_steps - warmup_steps, end=params["end"])


def make_polynomial(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``polynomial_schedule`` over the updates after warm-up."""
    return shapes.polynomial_schedule(budget_steps=budget_steps - warmup_steps, power=params["power"],
                                      end=params["end"])


def make_rex(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``rex_schedule`` over the updates after warm-up."""
    return shapes.rex_schedule(budget_steps=budget_steps - warmup_steps, alpha=params["alpha"], end=params["end"])


def make_onecycle(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``onecycle_schedule`` over the updates after warm-up."""
    p = params
    return shapes.onecycle_schedule(budget_steps=budget_steps - warmup_steps, pct_start=p["pct_start"],
                                    anneal=p["anneal"], div_factor=p["div_factor"],
                                    final_div_factor=p["final_div_factor"], three_phase=p["three_phase"])


def make_inverse_sqrt(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``inverse_sqrt_schedule``; the timescale is a fraction of the whole run, by default
    the warm-up length (else 1% of the run)."""
    scale = params["timescale"]
    if scale is not None:
        return shapes.inverse_sqrt_schedule(timescale=max(1.0, scale * budget_steps))
    return shapes.inverse_sqrt_schedule(
        timescale=float(warmup_steps if warmup_steps > 0 else max(1, frac_steps(0.01, budget_steps))))


def make_wsd(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``wsd_schedule`` whose ``decay`` is a fraction of the whole run."""
    t = budget_steps - warmup_steps
    decay_steps = min(t, frac_steps(params["decay"], budget_steps))
    return shapes.wsd_schedule(budget_steps=t, decay_steps=decay_steps, shape=params["shape"], end=params["end"])


def make_cooldown(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """A linear ``wsd_schedule`` whose ``cooldown`` is a fraction of the whole run."""
    return make_wsd(budget_steps=budget_steps, warmup_steps=warmup_steps,
                    params={"decay": params["cooldown"], "shape": "linear", "end": params["end"]})


def cyclic_maker(mode: str) -> Maker:
    """The maker of ``cyclic_schedule`` in ``mode``: ``cycles`` cycles over the updates after warm-up."""
    def make(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
        t, p = budget_steps - warmup_steps, params
        if not t / p["cycles"] < 2**62:  # 1 / cycles overflows to inf for subnormal cycles
            raise SpecError(f"schedule {mode!r}: parameter 'cycles' = {p['cycles']!r} makes one cycle longer "
                            "than 2**62 steps; use cycles >= 1e-12")
        size = max(2, frac_steps(1.0 / p["cycles"], t))
        up = min(size - 1, max(1, frac_steps(p["up"], size)))
        return shapes.cyclic_schedule(up_steps=up, down_steps=size - up, low=p["low"], mode=mode, gamma=p.get("gamma", 1.0))

    return make


def make_power(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``power_schedule`` counting from the start of the run, with an optional exponential
    tail (``exp_decay_tail``) over a fraction of the whole run."""
    t, w, p = budget_steps - warmup_steps, warmup_steps, params
    knee = max(1.0, p["knee"] * budget_steps)
    main = shapes.power_schedule(knee_steps=knee, exponent=p["exponent"], offset=w)
    decay_steps = min(t, frac_steps(p["decay"], budget_steps))
    if decay_steps <= 0:
        return main
    start = t - decay_steps
    level = main(start)
    tail = shapes.exp_decay_tail(decay_steps=decay_steps)
    return lambda k: main(k) if k < start else level * tail(min(k - start, decay_steps))


def make_infinite(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``infinite_schedule`` with phase ends as cumulative fractions of the whole run."""
    w, p = warmup_steps, params
    cooldown_end = max(0, frac_steps(p["cooldown_end"], budget_steps) - w)
    anneal_start = max(cooldown_end, frac_steps(p["anneal_start"], budget_steps) - w)
    if p["cooldown_end"] > p["anneal_start"]:
        raise SpecError("schedule 'infinite': 'cooldown_end' must be <= 'anneal_start' (both are cumulative fractions of the run)")
    return shapes.infinite_schedule(
        budget_steps=budget_steps - w,
        cooldown_end=cooldown_end,
        anneal_start=anneal_start,
        const=p["const"],
        final=p["final"],
        cooldown_shape=p["cooldown_shape"],
        timescale=p["timescale"],
    )


def make_piecewise(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``piecewise_schedule`` through validated ``[x, value]`` points."""
    pts = params["points"]
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
    return shapes.piecewise_schedule(budget_steps=budget_steps - warmup_steps, points=clean)


def cycle_end_steps(ends: Sequence[float], budget_steps: int, *, warmup_steps: int = 0) -> list[int]:
    """The update counts at which cycles ending at run fractions ``ends`` end in a run of
    ``budget_steps``: ``round(e * T)``. Raises ``SpecError`` unless ``ends`` rise strictly in
    (0, 1] to 1 and the steps stay distinct (and past the warm-up)."""
    where = "schedule 'budget_cycles': parameter 'ends'"
    check_run_fractions(ends, where)
    steps = [frac_steps(e, budget_steps) for e in ends[:-1]] + [budget_steps]
    if steps[0] <= warmup_steps or any(b <= a for a, b in zip(steps, steps[1:])):
        raise SpecError(
            f"{where}: cycles ending at steps {steps} of a {budget_steps}-step run (warm-up {warmup_steps}) "
            "collapse; use fewer cycles or a longer run"
        )
    return steps


def make_budget_cycles(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
    """``budget_cycles_schedule`` with cycle ends as cumulative fractions of the whole run."""
    p = params
    ends = p["ends"] if p["ends"] is not None else list(DOUBLING_ENDS)
    steps = cycle_end_steps(ends, budget_steps, warmup_steps=warmup_steps)
    return shapes.budget_cycles_schedule(cycle_steps=[b - warmup_steps for b in steps], shape=p["shape"], end=p["end"])
