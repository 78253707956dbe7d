"""What a registered schedule is: its parameters (:class:`Param`, type, default, range,
meaning), the parameters every schedule shares (:data:`COMMON`), and the registry entry
(:class:`ScheduleInfo`) whose :class:`Maker` builds the schedule for a run.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from steplab.errors import SpecError
from steplab.schedules.compose import Schedule


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


class Maker(Protocol):
    """Builds a registered schedule from its resolved parameters, without the common
    warm-up: ``budget_steps`` is the whole run, ``warmup_steps`` the updates the common
    warm-up takes first; the schedule returned plays on the local step ``k - warmup_steps``
    for the remaining ``budget_steps - warmup_steps`` updates (:func:`steplab.schedules.build`
    wraps it in :func:`~steplab.schedules.warmup`)."""

    def __call__(self, *, budget_steps: int, warmup_steps: int, params: dict[str, Any]) -> Schedule: ...


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    """A registry entry: how to build a spec's schedule, its parameters, its source."""

    name: str
    summary: str
    params: dict[str, Param]
    make: Maker


def frac_steps(frac: float, budget_steps: int) -> int:
    """``round(frac * budget_steps)``: a fraction of the run in updates."""
    return int(round(frac * budget_steps))


def check_run_fractions(ends: Sequence[float], where: str) -> None:
    """Raise ``SpecError`` (naming ``where``) unless ``ends`` is a non-empty list of
    cumulative run fractions in (0, 1] that rises strictly to 1."""
    if not isinstance(ends, (list, tuple)) or not ends:
        raise SpecError(f"{where} must be a non-empty list of run fractions, got {ends!r}")
    for e in ends:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0.0 < e <= 1.0:
            raise SpecError(f"{where} entries must be fractions in (0, 1], got {e!r}")
    if any(b <= a for a, b in zip(ends, ends[1:])) or ends[-1] != 1:
        raise SpecError(f"{where} must increase strictly and end at 1, got {list(ends)}")
