"""Schedule combinators: ``warmup`` and ``join`` take schedules and return schedules
(``optax.join_schedules``); ``to_lr_scheduler`` hands one to torch.

A :data:`Schedule` maps the 0-based update number ``k`` to a multiplier of the peak
learning rate. Warm-up update ``k < W`` uses ``start + (inner(0) - start) * (k + 1) / W``
(first update non-zero, as schedule-free does; HF starts at 0), then ``inner`` plays on its
local step ``k - W``; every piece of a ``join`` counts steps from its own boundary.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

from steplab.errors import SpecError

Schedule = Callable[[int], float]


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


def values(schedule: Schedule, budget_steps: int) -> list[float]:
    """``[schedule(k) for k in range(budget_steps)]``: the multipliers a run of that length uses."""
    return [schedule(k) for k in range(budget_steps)]


def to_lr_scheduler(optimizer: Any, schedule: Schedule, last_epoch: int = -1) -> Any:
    """A ``torch.optim.lr_scheduler.LambdaLR`` that sets each param group's lr to its own
    peak (``initial_lr``) times ``schedule(k)``; step it after each ``optimizer.step()``."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, schedule, last_epoch=last_epoch)
