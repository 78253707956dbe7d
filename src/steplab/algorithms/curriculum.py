"""The data schedule of an algorithm: its ``curriculum`` table (issue 25).

An algorithm is optimizer + LR schedule + *data schedule*: which training examples each
update sees. The table names a curriculum of :mod:`steplab.curricula` and its options,
``{"name": "easy-to-hard", "pacing": "root", "start": 0.2}`` (TOML ``[curriculum]`` or
``curriculum = "easy-to-hard:pacing=root"``), plus one option that belongs to the data side
and not to the sampler:

``score``
    where an example's difficulty comes from: ``task`` (default: the workload's task
    parameter, e.g. MNIST-1D's noise level or a label-noise grade) or ``reference`` (the
    per-example loss of a small reference model trained briefly on uniform batches, the
    "transfer teacher" / self-taught scoring of Hacohen & Weinshall 2019, §3.1, arXiv
    1904.03626).

The default, ``{"name": "uniform"}``, is left out of an algorithm's stored dict, so every
record made before curricula existed keeps its form and its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steplab.errors import SpecError

UNIFORM: dict[str, Any] = {"name": "uniform"}
#: the values of the ``score`` option; the first is the default
SCORES = ("task", "reference")


def split_score(table: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """(the sampler's spec dict, the ``score`` option) of a curriculum table."""
    d = dict(table)
    score = d.pop("score", SCORES[0])
    if score not in SCORES:
        raise SpecError(f"curriculum score must be one of {', '.join(SCORES)}, got {score!r}")
    return d, str(score)


def normalize(obj: Any) -> dict[str, Any]:
    """The canonical table of ``obj`` (a table, a spec text such as
    ``"easy-to-hard:pacing=root,score=reference"``, or None for uniform): the curriculum's
    name, its options as :func:`steplab.curricula.spec_from` resolves them, and ``score``
    when it is not the default. ``SpecError`` names an unknown curriculum or option."""
    from steplab import curricula

    if obj is None:
        return dict(UNIFORM)
    if isinstance(obj, str):
        name, _, rest = obj.partition(":")
        table: dict[str, Any] = {"name": name.strip()}
        if rest.strip():
            for item in rest.split(","):
                key, eq, text = item.partition("=")
                if not eq or not key.strip():
                    raise SpecError(f"curriculum {obj!r}: write options as key=value, e.g. 'easy-to-hard:pacing=root'")
                table[key.strip()] = _scalar(text.strip())
    elif isinstance(obj, Mapping):
        table = dict(obj)
    else:
        raise SpecError(f"curriculum must be a table or a text like 'easy-to-hard:pacing=root', got {obj!r}")
    sampler, score = split_score(table)
    out = dict(curricula.spec_from(sampler).to_dict())
    if score != SCORES[0]:
        out["score"] = score
    return out


def _scalar(text: str) -> Any:
    """A number where ``text`` is one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def is_uniform(table: Mapping[str, Any]) -> bool:
    """True for the default data schedule (iid uniform draws, the task score)."""
    return dict(table) == UNIFORM


def key(table: Mapping[str, Any]) -> str:
    """Short canonical text of a table for labels: ``uniform``, ``easy-to-hard:pacing=root``."""
    from steplab import curricula

    sampler, score = split_score(table)
    text = curricula.spec_from(sampler).key
    return text if score == SCORES[0] else f"{text}{',' if ':' in text else ':'}score={score}"


def option_default(table: Mapping[str, Any], option: str) -> Any:
    """The value of ``option`` in ``table``, else the curriculum's default (None if it has none)."""
    from steplab import curricula

    if option in table:
        return table[option]
    if option == "score":
        return SCORES[0]
    info = curricula.CURRICULA.get(str(table.get("name")))
    return None if info is None else dict(info.defaults).get(option)
