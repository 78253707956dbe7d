"""``STEPLAB_BUDGET_SCALE``: shrink every step budget at once, to try the commands quickly.

Set ``STEPLAB_BUDGET_SCALE=0.02`` and every workload's step budget (its default and
``--steps`` alike), every continual stream's updates per task and every ``steplab tune``
compute budget are multiplied by 0.02, and a scaled run evaluates :data:`SCALED_EVALS`
times instead of the workload's ``evals_per_budget``. The stored run records the budget it
really trained (``budget_steps``), so a scaled run is never mistaken for a full one; the
results of a scaled run answer "does it work", not "which algorithm is faster". Unset (or
1) changes nothing. The README's test runs every README command with it.
"""

from __future__ import annotations

import os

from steplab.errors import WorkloadError

BUDGET_SCALE_ENV = "STEPLAB_BUDGET_SCALE"
#: a scaled budget never goes below this many steps (or the caller's ``minimum``)
MIN_SCALED_STEPS = 16
#: evaluations per budget of a scaled run (instead of the workload's ``evals_per_budget``):
#: a run of a few steps that evaluated every step would spend most of its time evaluating
SCALED_EVALS = 4


def budget_scale() -> float:
    """The factor in ``STEPLAB_BUDGET_SCALE`` (1.0 when unset or empty)."""
    text = os.environ.get(BUDGET_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        factor = float("nan")
    if not 0.0 < factor <= 1.0:
        raise WorkloadError(f"{BUDGET_SCALE_ENV} must be a number in (0, 1], got {text!r}; unset it for full budgets")
    return factor


def scaled_steps(steps: int, *, multiple_of: int = 1, minimum: int = MIN_SCALED_STEPS) -> int:
    """``steps`` times :func:`budget_scale`, rounded to a multiple of ``multiple_of`` and at
    least ``min(steps, max(minimum, multiple_of))``; ``steps`` itself when the scale is 1."""
    factor = budget_scale()
    if factor == 1.0:
        return steps
    floor = min(steps, max(minimum, multiple_of))
    return max(floor, round(steps * factor / multiple_of) * multiple_of)
