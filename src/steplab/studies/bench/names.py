"""Algorithm names in a benchmark spec: a plain name (or ``.toml`` path) or
``refined(ALGO, tau=..., norm=...)``, whose schedule is refined from a first pass's gradient
norms (Defazio et al. 2023, ``steplab.analysis.refine``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from steplab import algorithms as algos
from steplab.errors import SpecError

#: options of ``refined(ALGO, ...)`` and their defaults (``steplab.analysis.refine.refine_trial``'s)
REFINE_DEFAULTS: dict[str, Any] = {"tau": 0.1, "norm": "auto"}
_REFINED = re.compile(r"^\s*refined\((.+)\)\s*$")


def parse_refined(name: str) -> tuple[str, dict[str, Any]] | None:
    """``"refined(adamw-linear, tau=0.05)"`` -> ``("adamw-linear", {"tau": 0.05, "norm": "auto"})``;
    ``None`` for a plain algorithm name."""
    m = _REFINED.match(name)
    if m is None:
        return None
    inner, *opts = [part.strip() for part in m.group(1).split(",")]
    options: dict[str, Any] = dict(REFINE_DEFAULTS)
    for opt in opts:
        key, eq, value = opt.partition("=")
        key = key.strip()
        if not eq or key not in options:
            raise SpecError(f"{name!r}: options of refined(...) are tau=FLOAT and norm=l1|l2|auto, got {opt!r}")
        if key == "tau":
            try:
                options["tau"] = float(value)
            except ValueError:
                raise SpecError(f"{name!r}: tau must be a number, got {value!r}") from None
            if not 0.0 <= options["tau"] <= 0.5:
                raise SpecError(f"{name!r}: tau must be in [0, 0.5], got {value}")
        else:
            if value.strip() not in ("l1", "l2", "auto"):
                raise SpecError(f"{name!r}: norm must be l1, l2 or auto, got {value!r}")
            options["norm"] = value.strip()
    if not inner:
        raise SpecError(f"{name!r}: name the algorithm to refine, e.g. refined(adamw-linear)")
    return inner, options


def refined_name(inner: str, options: Mapping[str, Any]) -> str:
    """The algorithm name trials of ``refined(inner)`` are stored and scored under."""
    extra = [f"{k}={options[k]}" for k, default in REFINE_DEFAULTS.items() if options[k] != default]
    return f"refined({', '.join([inner, *extra])})"


def algorithm_for(name: str, overrides: Sequence[str]) -> algos.Algorithm:
    """The algorithm ``name`` stands for in a spec, with the spec's ``--set`` overrides; a
    ``refined(...)`` name keeps the inner algorithm and is renamed (``refined_name``)."""
    refined = parse_refined(name)
    if refined is not None:
        algo = algorithm_for(refined[0], overrides)
        return dataclasses.replace(algo, name=refined_name(algo.name, refined[1]))
    algo = algos.get_algorithm(name)
    return algos.apply_overrides(algo, list(overrides)) if overrides else algo


def algorithm_list(text: str) -> tuple[str, ...]:
    """Algorithm names from a comma-separated list, ``refined(...)`` kept whole; each checked."""
    names, depth, cur = [], 0, ""
    for ch in text + ",":
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            if cur.strip():
                names.append(cur.strip())
            cur = ""
        else:
            cur += ch
    for n in names:
        algorithm_for(n, ())
    return tuple(names)
