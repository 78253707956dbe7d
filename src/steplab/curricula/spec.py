"""Curriculum specs: ``"easy-to-hard:pacing=root,start=0.2"``, ``{"name": "easy-to-hard",
"pacing": "root"}`` or None (uniform), validated against the registry (:func:`spec_from`)
and turned into a sampler for one run (:func:`build`). The JSON-able ``to_dict()`` form is
what a trial stores; it keeps only the options that differ from the defaults, so
``{"name": "uniform"}`` is the default data schedule.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from steplab.curricula.base import Sampler, TaskPool
from steplab.curricula.registry import CURRICULA, info
from steplab.errors import SpecError


@dataclasses.dataclass(frozen=True)
class CurriculumSpec:
    """A validated curriculum: ``name`` and the options that differ from its defaults,
    sorted by name."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., option: value, ...}``: JSON-able; :func:`spec_from` reads it back."""
        return {"name": self.name, **dict(self.options)}

    @property
    def key(self) -> str:
        """Canonical text: ``uniform``, ``easy-to-hard:pacing=root,start=0.1``."""
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_text(v)}" for k, v in self.options)

    def resolved(self) -> dict[str, Any]:
        """Every option, defaults filled in."""
        return {**info(self.name).defaults, **dict(self.options)}

    def with_options(self, **kw: Any) -> CurriculumSpec:
        """This spec with some options changed (e.g. a tuned numeric option), re-validated."""
        return spec_from({**self.to_dict(), **kw})

    def __str__(self) -> str:
        return self.key


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _parse_value(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check(name: str, key: str, value: Any, default: Any, choices: tuple[str, ...] | None) -> Any:
    """``value`` in the type of ``default`` (int, float or one of ``choices``), or SpecError."""
    if choices is not None:
        if value not in choices:
            raise SpecError(f"curriculum {name!r}: {key} must be one of {', '.join(choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"curriculum {name!r}: {key} must be a finite number, got {value!r}")
    if isinstance(default, int):
        if float(value) != int(value):
            raise SpecError(f"curriculum {name!r}: {key} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def spec_from(obj: CurriculumSpec | Mapping[str, Any] | str | None) -> CurriculumSpec:
    """Parse and validate a curriculum: a :class:`CurriculumSpec`, a dict with ``name``, the
    text form ``name[:key=value,...]`` (or a JSON object as text), or None for ``uniform``.
    ``SpecError`` names an unknown curriculum, option or bad value.

    >>> spec_from("easy-to-hard:pacing=root,start=0.2").key
    'easy-to-hard:pacing=root'
    >>> spec_from(None).to_dict()
    {'name': 'uniform'}
    """
    if obj is None:
        return CurriculumSpec("uniform")
    if isinstance(obj, CurriculumSpec):
        return obj
    if isinstance(obj, str):
        text = obj.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError as e:
                raise SpecError(f"curriculum spec is not valid JSON ({e}): {text[:60]!r}") from None
        else:
            name, _, rest = text.partition(":")
            d: dict[str, Any] = {"name": name.strip()}
            for part in (p for p in rest.split(",") if p.strip()):
                key, eq, value = part.partition("=")
                if not eq or not key.strip():
                    raise SpecError(f"curriculum {name.strip()!r}: write options as key=value "
                                    f"(e.g. 'easy-to-hard:pacing=root'), got {part!r}")
                d[key.strip()] = _parse_value(value)
            obj = d
    if not isinstance(obj, Mapping):
        raise SpecError(f"a curriculum must be a name, a text or a table, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"a curriculum table needs a 'name'; one of {', '.join(CURRICULA)}")
    entry = info(name)
    options = []
    for key in sorted((k for k in obj if k != "name"), key=str):
        if key not in entry.defaults:
            allowed = ", ".join(entry.defaults) or "no options"
            raise SpecError(f"curriculum {name!r} has no option {key!r}; it takes: {allowed}")
        default = entry.defaults[key]
        value = _check(name, key, obj[key], default, entry.choices.get(key))
        if value != default:
            options.append((key, value))
    return CurriculumSpec(name, tuple(options))


def build(spec: CurriculumSpec | Mapping[str, Any] | str | None, pool: TaskPool, budget_steps: int,
          batch_size: int, seed: int) -> Sampler:
    """The sampler of ``spec`` for one run of ``budget_steps`` updates of ``batch_size``
    examples from ``pool``, seeded by ``seed`` (its own ``np.random.Generator``)."""
    for what, v in (("budget_steps", budget_steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(f"{what} must be a positive integer, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"the curriculum seed must be a non-negative integer, got {seed!r}")
    if not isinstance(pool, TaskPool):
        raise SpecError(f"build needs a TaskPool, got {type(pool).__name__}")
    spec = spec_from(spec)
    return info(spec.name).make(pool, spec.resolved(), budget_steps, batch_size, seed)
