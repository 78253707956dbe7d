"""A workload's validation target (AlgoPerf, Dahl et al. 2023: each workload has a fixed
target on a validation metric). Plain data, no torch: studies that only score stored trials
import it without the training stack."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class Target:
    """A validation target: ``metric`` must reach ``value`` (>= for "max", <= for "min")."""

    metric: str
    value: float
    mode: Literal["max", "min"] = "max"

    def reached(self, value: float) -> bool:
        """Whether ``value`` meets the target (NaN never does)."""
        if value != value:  # NaN
            return False
        return value >= self.value if self.mode == "max" else value <= self.value
