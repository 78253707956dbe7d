"""The schedule registry: every named schedule a spec can use, with its parameters and
source, and a :func:`register` for a user's own. Built explicitly from the shape makers
(:mod:`steplab.schedules.builders`) and the continual stage schedules
(:mod:`steplab.schedules.stages`); nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from steplab.errors import SpecError
from steplab.schedules.builders import (
    cyclic_maker,
    make_budget_cycles,
    make_constant,
    make_cooldown,
    make_cosine,
    make_exponential,
    make_infinite,
    make_inverse_sqrt,
    make_linear,
    make_onecycle,
    make_piecewise,
    make_polynomial,
    make_power,
    make_rex,
    make_step,
    make_wsd,
)
from steplab.schedules.compose import Schedule
from steplab.schedules.params import Maker, Param, ScheduleInfo
from steplab.schedules.shapes import DECAY_SHAPES
from steplab.schedules.stages import (
    STAGE_DECAYS,
    constant_stage_schedule,
    infinite_stage_schedule,
    rewarm_stage_schedule,
    stage_boundaries,
    wsd_stage_schedule,
)


def _end(doc: str = "final multiplier (fraction of the peak)") -> Param:
    return Param(float, 0.0, doc, 0.0, 1.0)


_SHAPES = tuple(DECAY_SHAPES)
_CYCLIC_PARAMS = {
    "cycles": Param(float, 4.0, "number of cycles over the run", 0.0, None, low_open=True),
    "up": Param(float, 0.5, "fraction of each cycle spent rising", 0.0, 1.0, low_open=True),
    "low": Param(float, 0.1, "base_lr / max_lr, the bottom of each cycle", 0.0, 1.0),
}

_BUILTIN = [
    ScheduleInfo("constant", "constant learning rate", {}, make_constant),
    ScheduleInfo(
        "step",
        "multiply by gamma at milestones (He et al. 2016; torch MultiStepLR)",
        {
            "milestones": Param(list, None, "fractions of the run at which to decay (default [0.5, 0.75])"),
            "every": Param(float, None, "decay every this fraction of the run (torch StepLR)", 0.0, 1.0, low_open=True),
            "gamma": Param(float, 0.1, "factor applied at each milestone", 0.0, 1.0, low_open=True),
        },
        make_step,
    ),
    ScheduleInfo(
        "exponential",
        "s(k) = gamma^k (torch ExponentialLR)",
        {
            "gamma": Param(float, None, "per-step factor", 0.0, 1.0, low_open=True),
            "end": Param(float, None, "final multiplier instead of gamma (default 0.01)", 0.0, 1.0, low_open=True),
        },
        make_exponential,
    ),
    ScheduleInfo("linear", "linear decay to `end` (torch LinearLR)", {"end": _end()}, make_linear),
    ScheduleInfo("cosine", "cosine decay to `end` (Loshchilov & Hutter 2017)", {"end": _end()}, make_cosine),
    ScheduleInfo(
        "polynomial",
        "(1 - k/T)^power decay to `end` (torch PolynomialLR)",
        {"power": Param(float, 2.0, "exponent of the decay", 0.0, None, low_open=True), "end": _end()},
        make_polynomial,
    ),
    ScheduleInfo(
        "wsd",
        "warmup-stable-decay (MiniCPM; Hägele et al. 2024 cooldown shapes)",
        {
            "decay": Param(float, 0.2, "cooldown length as a fraction of the whole run", 0.0, 1.0),
            "shape": Param(str, "1-sqrt", "cooldown shape", choices=_SHAPES),
            "end": _end(),
        },
        make_wsd,
    ),
    ScheduleInfo(
        "cooldown",
        "constant, then a linear cooldown (Hägele et al. 2024)",
        {"cooldown": Param(float, 0.2, "cooldown length as a fraction of the whole run", 0.0, 1.0), "end": _end()},
        make_cooldown,
    ),
    ScheduleInfo(
        "rex",
        "REX profile (1-z)/(1-alpha z) (Chen et al. 2022)",
        {"alpha": Param(float, 0.5, "0.5 in the paper, 0 is linear, 0.9 in some ports", 0.0, 0.999), "end": _end()},
        make_rex,
    ),
    ScheduleInfo("triangular", "triangular cycles (Smith 2017; torch CyclicLR)", dict(_CYCLIC_PARAMS), cyclic_maker("triangular")),
    ScheduleInfo("triangular2", "triangular cycles halving each cycle (Smith 2017)", dict(_CYCLIC_PARAMS), cyclic_maker("triangular2")),
    ScheduleInfo(
        "exp_range",
        "triangular cycles scaled by gamma^k (Smith 2017)",
        {**_CYCLIC_PARAMS, "gamma": Param(float, 0.9999, "per-step amplitude factor", 0.0, 1.0, low_open=True)},
        cyclic_maker("exp_range"),
    ),
    ScheduleInfo(
        "budget_cycles",
        "cycles restarting at the peak, ending at given budgets (Portes et al. 2022)",
        {
            "ends": Param(list, None, "cumulative fractions of the run where cycles end (default [0.125, 0.25, 0.5, 1])"),
            "shape": Param(str, "cosine", "decay shape of each cycle", choices=_SHAPES),
            "end": _end("multiplier each cycle decays to"),
        },
        make_budget_cycles,
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
        make_onecycle,
    ),
    ScheduleInfo(
        "inverse_sqrt",
        "1/sqrt(1 + k/timescale) after warm-up (Vaswani et al. 2017)",
        {"timescale": Param(float, None, "steps per unit of decay as a fraction of the run (default: the warm-up length, else 0.01)", 0.0, None, low_open=True)},
        make_inverse_sqrt,
    ),
    ScheduleInfo(
        "power",
        "min(1, (k/knee)^b), batch-size agnostic (Shen et al. 2024)",
        {
            "knee": Param(float, 0.05, "fraction of the run where the power law falls below the peak", 0.0, 1.0, low_open=True),
            "exponent": Param(float, -0.51, "power-law exponent b", None, 0.0),
            "decay": Param(float, 0.0, "final exponential decay to 0 as a fraction of the run", 0.0, 1.0),
        },
        make_power,
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
        make_infinite,
    ),
    ScheduleInfo(
        "piecewise",
        "piecewise-linear through [x, value] points, x a fraction of the run",
        {"points": Param(list, None, "[[x, value], ...] with x in [0, 1] increasing")},
        make_piecewise,
    ),
]


_STRUCTURE = {
    "stages": Param(int, 1, "number of equal stages", 1.0, None),
    "ends": Param(list, None, "cumulative run fractions where stages end, last 1 (instead of stages)"),
}


def _stage_maker(factory: Callable[..., Schedule], keys: Sequence[str]) -> Maker:
    """The maker of a stage schedule: stages laid out over the whole run."""

    def make(*, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule:
        p = params
        if p["ends"] is not None and p["stages"] != 1:
            raise SpecError("stage schedules take 'stages' or 'ends', not both")
        # the stages are laid out over the whole run; the registry's common warm-up
        # (warmup_steps updates, a fraction of the run) then ramps up to the value at update
        # warmup_steps, the stage schedule playing on from there (build wraps this in warmup)
        bounds = stage_boundaries(budget_steps, stages=p["stages"], ends=p["ends"])
        full = factory(boundaries=bounds, **{k: p[k] for k in keys})
        return full if warmup_steps == 0 else (lambda k: full(k + warmup_steps))

    return make


def _stage_end(default: float) -> Param:
    return Param(float, default, "multiplier each decay ends at", 0.0, 1.0)


def _warmup(default: float, where: str) -> Param:
    return Param(float, default, f"warm-up as a fraction of {where}", 0.0, 0.999)


def _decay_params(warmup_where: str) -> dict[str, Param]:
    """The parameters of a stage schedule that warms up and decays: structure, warm-up, shape, end."""
    return {**_STRUCTURE, "stage_warmup": _warmup(0.05, warmup_where),
            "shape": Param(str, "cosine", "decay shape", choices=tuple(STAGE_DECAYS)), "end": _stage_end(0.1)}


_STAGES = [
    ScheduleInfo(
        "stages_rewarm",
        "re-warm and re-decay in every stage of a continual run (Gupta et al. 2023; Ibrahim et al. 2024)",
        _decay_params("each stage"),
        _stage_maker(rewarm_stage_schedule, ("stage_warmup", "shape", "end")),
    ),
    ScheduleInfo(
        "stages_constant",
        "warm up and decay in stage 1, then keep the last lr: no re-warm (Ibrahim et al. 2024)",
        _decay_params("stage 1"),
        _stage_maker(constant_stage_schedule, ("stage_warmup", "shape", "end")),
    ),
    ScheduleInfo(
        "stages_infinite",
        "infinite schedule: cooldown to a constant once, anneal at each stage end (Ibrahim et al. 2024; Janson et al. 2025)",
        {**_STRUCTURE, "stage_warmup": _warmup(0.05, "stage 1"),
         "cooldown_end": Param(float, 0.15, "end of the cooldown, cumulative fraction of stage 1", 0.0, 1.0),
         "anneal_start": Param(float, 0.8, "end of the constant phase, cumulative fraction of each stage", 0.0, 1.0),
         "const": Param(float, 0.25, "constant-phase multiplier", 0.0, 1.0, low_open=True),
         "final": Param(float, 0.01, "multiplier the anneal ends at", 0.0, 1.0, low_open=True),
         "cooldown_shape": Param(str, "cosine", "cooldown shape", choices=("cosine", "linear", "inverse_sqrt")),
         "timescale": Param(float, 10.0, "inverse-sqrt cooldown timescale", 0.0, None, low_open=True)},
        _stage_maker(infinite_stage_schedule, ("stage_warmup", "cooldown_end", "anneal_start", "const", "final",
                                               "cooldown_shape", "timescale")),
    ),
    ScheduleInfo(
        "stages_wsd",
        "warmup-stable-decay in every stage of a continual run (MiniCPM; Hägele et al. 2024)",
        {**_STRUCTURE, "stage_warmup": _warmup(0.05, "each stage"),
         "decay": Param(float, 0.2, "cooldown length as a fraction of each stage", 0.0, 1.0),
         "shape": Param(str, "1-sqrt", "cooldown shape", choices=("linear", "cosine", "1-sqrt", "square")),
         "end": _stage_end(0.0)},
        _stage_maker(wsd_stage_schedule, ("stage_warmup", "decay", "shape", "end")),
    ),
]

_REGISTRY: dict[str, ScheduleInfo] = {entry.name: entry for entry in [*_BUILTIN, *_STAGES]}


def register(info: ScheduleInfo) -> ScheduleInfo:
    """Add a schedule to the registry (a user can register their own)."""
    _REGISTRY[info.name] = info
    return info


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
