"""Schedule specs: JSON-able dicts (``{"name": "wsd", "decay": 0.2, "warmup": 0.05}``),
strings (``"wsd:decay=0.2,warmup=0.05"``) or ``.json`` files, validated against the registry
(:func:`spec_from`) and turned into a schedule for a run of ``budget_steps`` (:func:`build`).

In a spec, ``warmup`` is a fraction of the run and the main schedule is built for the
remaining ``T - W`` updates, except where a schedule says otherwise (``wsd``'s ``decay`` and
``cooldown`` are fractions of the whole run).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steplab.errors import SpecError, read_text_file
from steplab.schedules.compose import Schedule, warmup
from steplab.schedules.params import COMMON, frac_steps
from steplab.schedules.registry import info


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


def spec_from(obj: ScheduleSpec | Mapping[str, Any] | str) -> ScheduleSpec:
    """Parse and validate a spec from a ``ScheduleSpec``, a dict, a JSON string, a ``.json``
    file holding one, or the CLI form ``name[:key=value,...]``. Raises ``SpecError`` naming the bad parameter."""
    if isinstance(obj, ScheduleSpec):
        return obj
    if isinstance(obj, str):
        text = obj.strip()
        if text.lower().endswith(".json") and not text.startswith("{"):
            text = read_text_file(Path(text).expanduser(), "schedule file", "give an existing .json file").strip()
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


def build(spec: ScheduleSpec | Mapping[str, Any] | str, budget_steps: int) -> Schedule:
    """The schedule of ``spec`` for a run of ``budget_steps`` updates (DESIGN.md, "Data model"):
    the common warm-up (``warmup``, a fraction of the run) around the registered maker's
    schedule for the remaining updates."""
    if isinstance(budget_steps, bool) or not isinstance(budget_steps, int) or budget_steps < 1:
        raise SpecError(f"budget_steps must be a positive integer, got {budget_steps!r}")
    spec = spec if isinstance(spec, ScheduleSpec) else spec_from(spec)
    entry = info(spec.name)
    p = spec.resolved()
    w = min(budget_steps - 1, frac_steps(p["warmup"], budget_steps))
    inner = entry.make(budget_steps=budget_steps, warmup_steps=w, params=p)
    return warmup(inner, w, start=p["warmup_start"])
