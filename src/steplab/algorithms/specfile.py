"""Algorithm spec files and overrides: TOML in (:func:`from_toml`, :func:`load_toml`; format:
``examples/algorithms/adamw-cosine.toml``) and ``--set key=value`` overrides
(:func:`apply_overrides`; keys parsed by :func:`steplab.algorithms.keys.parse_key`).
TOML out is :meth:`Algorithm.to_toml <steplab.algorithms.algorithm.Algorithm.to_toml>`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from steplab import schedules
from steplab.algorithms import curriculum
from steplab.algorithms.algorithm import Algorithm
from steplab.algorithms.keys import ALIASES, BETA_HP, parse_key
from steplab.errors import SpecError, read_text_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def from_toml(text: str, *, source: str = "<string>") -> Algorithm:
    """An Algorithm from TOML text (format: ``examples/algorithms/adamw-cosine.toml``)."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{source}: not valid TOML: {e}") from None
    except (ValueError, RecursionError):  # an integer of > 4300 digits, nesting deeper than Python's stack
        raise SpecError(f"{source}: a TOML integer is too long or arrays/tables nest too deeply; fix the value") from None
    return Algorithm.from_dict(d)


def load_toml(path: str | os.PathLike[str]) -> Algorithm:
    """Read an Algorithm from a ``.toml`` file; errors name the file."""
    text = read_text_file(path, "algorithm file", "give a .toml file (see examples/algorithms/)")
    try:
        return from_toml(text, source=os.fspath(path))
    except SpecError as e:
        msg = str(e)
        raise SpecError(msg if msg.startswith(os.fspath(path)) else f"{os.fspath(path)}: {msg}") from None


_NULLABLE = ("batch_size", "grad_clip")


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except ValueError:  # not TOML (TOMLDecodeError), or an integer of > 4300 digits
        return text.strip()
    except RecursionError:
        raise SpecError(f"--set value {text[:40]!r}... is nested too deeply; give a TOML scalar, array or inline table") from None


def apply_overrides(algo: Algorithm, overrides: Sequence[str]) -> Algorithm:
    """A copy of ``algo`` with ``--set key=value`` overrides applied in order.

    Keys: the Algorithm's fields (``lr``, ``optimizer``, ``schedule`` as a spec string like
    ``cosine:end=0.1``, ``optimizer_kwargs``/``search_space`` as inline tables...),
    ``warmup``, ``beta1``-style keys, ``momentum``, ``schedule.<key>``, ``optimizer.<key>``,
    ``curriculum`` (a spec text like ``easy-to-hard:pacing=root``), ``curriculum.<key>``,
    ``search_space.<name>``. Values are TOML scalars (``3e-3``, ``true``, ``[0.9, 0.95]``,
    ``{log_uniform = [1e-4, 1e-2]}``); a value that is not TOML is taken as a string;
    ``none`` clears ``batch_size``/``grad_clip``. Unknown keys raise ``SpecError``.
    """
    d = algo.to_dict()
    fields = [f.name for f in dataclasses.fields(Algorithm)]

    def table(name: str) -> dict[str, Any]:  # a table an earlier --set may have replaced
        if not isinstance(d[name], Mapping):
            raise SpecError(f"--set {key}: {name} is {d[name]!r}, not a table; set {name} to a table first")
        return dict(d[name])

    for item in overrides:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise SpecError(f"--set expects key=value, got {item!r}")
        value = _parse_scalar(text)
        key = ALIASES.get(key, key)
        if key in _NULLABLE and isinstance(value, str) and value.lower() in ("none", "null"):
            value = None
        parsed = parse_key(key)
        if key in fields:
            d[key] = value
        elif parsed.kind == "warmup":
            d["schedule"] = {**table("schedule"), "warmup": value}
        elif parsed.kind in ("beta", "momentum"):
            d["optimizer_kwargs"] = {**table("optimizer_kwargs"), key: value}
        elif parsed.table == "schedule":
            sub = parsed.name
            d["schedule"] = {"name": value} if sub == "name" else {**table("schedule"), sub: value}
        elif parsed.table == "optimizer":
            d["optimizer_kwargs"] = {**table("optimizer_kwargs"), parsed.name: value}
        elif parsed.table == "search_space":
            d["search_space"] = {**table("search_space"), parsed.name: value}
        elif parsed.table == "curriculum":
            if isinstance(d.get("curriculum"), str):
                d["curriculum"] = curriculum.normalize(d["curriculum"])
            d.setdefault("curriculum", dict(curriculum.UNIFORM))
            sub = parsed.name
            d["curriculum"] = {"name": value} if sub == "name" else {**table("curriculum"), sub: value}
        else:
            raise SpecError(f"--set {key if key.isprintable() else repr(key)}: unknown setting; use one of {', '.join(fields)}, warmup, "
                            f"{', '.join(BETA_HP)}, momentum, schedule.<key>, optimizer.<key>, curriculum.<key>, search_space.<name>")
        if key == "schedule" and isinstance(value, str):
            try:
                d["schedule"] = schedules.spec_from(value).to_dict()
            except SpecError as e:
                raise SpecError(f"--set schedule: {e}") from None
    return Algorithm.from_dict(d)
