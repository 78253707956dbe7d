"""Learning-rate schedules as pure functions of the step (optax style).

A :data:`Schedule` maps the 0-based update number ``k`` to a *multiplier* of the peak
learning rate. Factories (``cosine_schedule``, ``wsd_schedule``...) take keyword-only,
unit-named arguments and return closures; ``warmup`` and ``join`` take schedules and return
schedules. Specs are JSON-able dicts (``{"name": "wsd", "decay": 0.2, "warmup": 0.05}``)
turned into functions by :func:`build` for a run of ``budget_steps`` updates.

Conventions (see ``shared/references/schedules-and-prediction.md`` §14):

* Step ``k`` is the multiplier used for update number ``k = 0 .. T-1`` (``T = budget_steps``); the value at
  ``k = T`` is the schedule's end value (torch's ``LinearLR``/``CosineAnnealingLR``
  convention, so decays to 0 leave the last update a small non-zero step). Steps past
  ``T`` hold the end value.
* Warm-up is a combinator: ``warmup(inner, warmup_steps)`` ramps linearly from ``start``
  (default 0) so that update ``k < W`` uses ``start + (inner(0) - start) * (k + 1) / W``
  (first update non-zero, as schedule-free does; HF starts at 0), then plays ``inner`` on
  its local step ``k - W``. In a spec, ``warmup`` is a fraction of the run and the main
  schedule is built for the remaining ``T - W`` steps, except where a schedule says
  otherwise (``wsd``'s ``decay`` and ``cooldown`` are fractions of the whole run).

Modules (this one only re-exports them): ``shapes`` (the pure factories), ``compose``
(``warmup``, ``join``, the torch adapter), ``stages`` (continual stage schedules),
``params`` and ``builders`` (what a registered schedule is, how a spec becomes one),
``registry``, ``spec`` (parsing, :func:`build`), ``policies`` (``--stage-schedule``).
"""

from __future__ import annotations

from steplab.schedules.builders import (
    DOUBLING_ENDS,
    cycle_end_steps,
)
from steplab.schedules.compose import (
    Schedule,
    join,
    to_lr_scheduler,
    values,
    warmup,
)
from steplab.schedules.params import (
    COMMON,
    Maker,
    Param,
    ScheduleInfo,
)
from steplab.schedules.policies import (
    POLICIES,
    anneal_starts,
    policy_spec,
)
from steplab.schedules.registry import (
    info,
    names,
    register,
)
from steplab.schedules.shapes import (
    budget_cycles_schedule,
    constant_schedule,
    cosine_schedule,
    cyclic_schedule,
    exp_decay_tail,
    exponential_schedule,
    infinite_schedule,
    inverse_sqrt_schedule,
    linear_schedule,
    onecycle_schedule,
    piecewise_schedule,
    polynomial_schedule,
    power_schedule,
    rex_schedule,
    step_schedule,
    wsd_schedule,
)
from steplab.schedules.spec import (
    ScheduleSpec,
    build,
    spec_from,
)
from steplab.schedules.stages import (
    constant_stage_schedule,
    infinite_stage_schedule,
    rewarm_stage_schedule,
    stage_boundaries,
    wsd_stage_schedule,
)

__all__ = [
    "COMMON",
    "DOUBLING_ENDS",
    "Maker",
    "POLICIES",
    "Param",
    "Schedule",
    "ScheduleInfo",
    "ScheduleSpec",
    "anneal_starts",
    "budget_cycles_schedule",
    "build",
    "constant_schedule",
    "constant_stage_schedule",
    "cosine_schedule",
    "cycle_end_steps",
    "cyclic_schedule",
    "exp_decay_tail",
    "exponential_schedule",
    "infinite_schedule",
    "infinite_stage_schedule",
    "info",
    "inverse_sqrt_schedule",
    "join",
    "linear_schedule",
    "names",
    "onecycle_schedule",
    "piecewise_schedule",
    "policy_spec",
    "polynomial_schedule",
    "power_schedule",
    "register",
    "rewarm_stage_schedule",
    "rex_schedule",
    "spec_from",
    "stage_boundaries",
    "step_schedule",
    "to_lr_scheduler",
    "values",
    "warmup",
    "wsd_schedule",
    "wsd_stage_schedule",
]
