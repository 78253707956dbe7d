"""Stage-schedule policies of a continual run (``steplab continual --stage-schedule``): the
short policy names, the spec of a policy with the stream's stages filled in, and the updates
at which ``stages_infinite`` anneals (the schedules themselves: :mod:`steplab.schedules.stages`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steplab.errors import SpecError
from steplab.schedules.spec import ScheduleSpec, spec_from
from steplab.schedules.stages import stage_boundaries, stage_warmup_steps

#: ``--stage-schedule`` name -> registered schedule name
POLICIES: dict[str, str] = {
    "rewarm": "stages_rewarm",
    "constant": "stages_constant",
    "infinite": "stages_infinite",
    "wsd": "stages_wsd",
}


def anneal_starts(spec: Mapping[str, Any] | ScheduleSpec | str, budget_steps: int) -> dict[int, int]:
    """For a ``stages_infinite`` spec: ``{updates done when stage j's anneal begins: B_j}``
    for every stage but the last whose anneal is not empty -- the non-annealed state the next
    stage continues from (Janson et al. 2025's code saves it at ``constant_ratio`` of each
    task and loads it when the next task starts). Empty for every other schedule."""
    spec = spec_from(spec)
    if spec.name != "stages_infinite":
        return {}
    p = spec.resolved()
    bounds = stage_boundaries(budget_steps, stages=p["stages"], ends=p["ends"])
    out = {}
    for j, (start, stop) in enumerate(zip([0, *bounds[:-1]], bounds[:-1])):
        length = stop - start
        a = int(round(p["anneal_start"] * length))
        if j == 0:
            a = max(a, stage_warmup_steps(length, p["stage_warmup"]), int(round(p["cooldown_end"] * length)))
        if start + a + 1 < stop:  # updates start+a+1 .. stop-1 anneal
            out[start + a + 1] = stop
    return out


def policy_spec(policy: str | Mapping[str, Any], *, stages: int = 1, ends: Sequence[float] | None = None) -> dict[str, Any]:
    """The registered spec of a ``--stage-schedule`` value (``rewarm``, ``infinite:const=0.3``,
    a full ``stages_*`` spec...) with the stream's stage structure filled in."""
    if isinstance(policy, str):
        name, sep, rest = policy.strip().partition(":")
        key = name.strip().replace("-", "_").lower()
        if key in POLICIES:
            policy = POLICIES[key] + (sep + rest if sep else "")
        elif not key.startswith("stages_"):
            raise SpecError(f"unknown stage schedule {name!r}; use one of {', '.join(POLICIES)} "
                            "(optionally with parameters, e.g. rewarm:shape=linear)")
    d = spec_from(policy).to_dict()
    if not d["name"].startswith("stages_"):
        raise SpecError(f"{d['name']!r} is not a stage schedule; use one of {', '.join(POLICIES)}")
    d.pop("stages", None)
    d.pop("ends", None)
    if ends is not None:
        d["ends"] = [float(e) for e in ends]
    elif stages != 1:
        d["stages"] = int(stages)
    return spec_from(d).to_dict()
