"""The monitors by name, and :func:`parse_monitors` for ``--monitor sharpness,gns:batches=8``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from steplab.errors import SpecError
from steplab.monitors.base import Monitor
from steplab.monitors.grokking import Grokking
from steplab.monitors.laziness import Laziness
from steplab.monitors.logits import Logits
from steplab.monitors.noise_scale import NoiseScale
from steplab.monitors.plasticity import Plasticity
from steplab.monitors.sharpness import Sharpness

#: every built-in monitor, by name
MONITORS: dict[str, type[Monitor]] = {cls.name: cls for cls in (Sharpness, NoiseScale, Laziness, Logits, Grokking,
                                                                 Plasticity)}

_FORMAT = "write monitors as 'sharpness,gns' or with options 'sharpness:iters=30:method=power,gns:batches=8'"


def _value(text: str, default: Any, where: str) -> Any:
    """``text`` as the type of the option's ``default``."""
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise SpecError(f"{where} must be a {kind.__name__}, got {text!r}") from None


def _options(cls: type[Monitor]) -> dict[str, Any]:
    """The options of ``cls`` (its init fields) and their defaults."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]


def _build(name: str, settings: list[str]) -> Monitor:
    if name not in MONITORS:
        raise SpecError(f"unknown monitor {name!r}; known: {', '.join(MONITORS)} ({_FORMAT})")
    cls = MONITORS[name]
    known = _options(cls)
    kwargs: dict[str, Any] = {}
    for setting in settings:
        key, eq, text = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in known:
            options = ", ".join(known) or "none"
            raise SpecError(f"monitor {name!r} has no option {setting.strip()!r}; its options: {options} ({_FORMAT})")
        kwargs[key] = _value(text.strip(), known[key], f"option {key} of monitor {name!r}")
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise SpecError(f"monitor {name!r}: {e}") from None


def parse_monitors(text: str | Sequence[str]) -> list[Monitor]:
    """Fresh monitor instances (one per run) from ``"sharpness,gns"``, with options after
    the name (``"sharpness:iters=30:method=power"``; a comma-separated ``key=value`` after a
    monitor also belongs to it: ``"sharpness:iters=30,method=power,gns"``), or from a list
    of such strings. Unknown names and options raise one :class:`~steplab.errors.SpecError`
    line listing the known ones; a monitor named twice is an error."""
    items = [text] if isinstance(text, str) else list(text)
    specs: list[tuple[str, list[str]]] = []
    for item in items:
        if not isinstance(item, str):
            raise SpecError(f"a monitor must be a string like 'sharpness:iters=30', got {item!r}")
        for token in (t.strip() for t in item.split(",")):
            if not token:
                continue
            head, *rest = token.split(":")
            if "=" in head and not rest and specs:
                specs[-1][1].append(head)
            else:
                specs.append((head.strip().lower(), rest))
    names = [name for name, _ in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"monitor {twice[0]!r} is named twice; give its options once ({_FORMAT})")
    return [_build(name, settings) for name, settings in specs]
