"""Bad input (issue 13): every parser either returns a valid object or raises its family's
one-line error (``SpecError``, ``WorkloadError``, ``StoreError``, ``SourceError``), never
another exception; a failed import leaves the store with exactly the trials it had.

Hypothesis drives each parser with random text and bytes, with text built from the parser's
own grammar and then mutated (characters deleted, duplicated, replaced, inserted, the text
truncated), with random JSON values (``st.recursive``), wrong types, nested structures,
huge / negative / NaN / infinite numbers, unicode, empty and binary files. Every property runs
with ``derandomize=True`` (a fixed seed), so CI sees the same examples on every run.

Where the one-line rule is checked, "one line" is ``str.splitlines``'s: no ``\\n``, ``\\r``,
``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``/``\\u2029``; messages quote what
the user typed with ``repr`` where it may hold such characters.

The last test scans the source: nothing under ``src/steplab`` calls ``eval``/``exec``,
imports ``pickle``/``marshal``/``shelve``, or calls ``torch.load`` without
``weights_only=True`` (DESIGN.md: no pickle or eval of anything read from a file or database).
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import json
import math
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from steplab import algorithms, schedules, workloads
from steplab.algorithms import space
from steplab.errors import SourceError, SpecError, SteplabError, StoreError, WorkloadError
from steplab.studies import bench

SRC = Path(__file__).resolve().parents[1] / "src" / "steplab"
# a falsifying example may be 50,000 nested brackets; hypothesis warns that its repr is large
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# ---------------------------------------------------------------------------------- settings
#: examples per property; derandomize fixes the seed (CI runs the same inputs every time)
N = 300
FEW = 150  # properties that touch files, the store or TensorBoard


def fuzz(n: int = N, **extra: Any) -> Any:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much], **extra)


def outcome(fn: Callable[..., Any], *args: Any, allowed: tuple[type[SteplabError], ...] = (SpecError,),
            **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or ``None`` when it raised one of ``allowed`` with a one-line
    message. Any other exception propagates and fails the property."""
    try:
        out = fn(*args, **kwargs)
    except allowed as e:
        msg = str(e)
        assert msg.strip(), f"{type(e).__name__} with an empty message"
        assert msg.splitlines() == [msg], f"{type(e).__name__} message is not one line: {msg!r}"
        if currently_in_test_context():  # --hypothesis-show-statistics: how often each outcome
            event(f"{fn.__name__}: {type(e).__name__}")
        return None
    if currently_in_test_context():
        event(f"{fn.__name__}: parsed")
    return out


# ---------------------------------------------------------------------------------- strategies
#: characters that matter to the grammars (separators, brackets, quotes, number syntax)
SYNTAX = st.sampled_from(list(",:=;{}[]()\"'.+-eE0123456789 \t\n\r#\\/_") + ["\x00", "\u2028", "é", "\U0001f600"])
CHARS = st.one_of(SYNTAX, st.characters())

#: numbers that break naive code: huge ints (beyond float and beyond 64 bits), NaN, +-inf,
#: negative zero, subnormals, the limits of floats and of 64-bit ints
NASTY_NUMBERS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64, 10**400, -(10**400),
                     0.0, -0.0, 0.5, 1.0, 1e-320, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan]),
    st.integers(),
    st.floats(),
)
#: words that break naive parsers; an integer longer than Python's 4300-digit str->int limit
NASTY_WORDS = st.integers(4301, 5000).map(lambda n: "1" * n) | st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "0x10", "1_000", "true", "True", "none",
    "null", "None", "[]", "{}", "é", "\x00", "\U0001f600", "a\nb", "\u2028", "\x1e", "\x0c", "cosine", "base",
    "1-sqrt"])
TEXT = st.one_of(st.text(max_size=40), st.text(SYNTAX, max_size=40), NASTY_WORDS)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), NASTY_NUMBERS, TEXT)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def deep(opener: str, closer: str) -> st.SearchStrategy[str]:
    """Text nested deeper than Python's recursion limit."""
    return st.sampled_from([10, 500, 1200, 5000, 50_000]).map(lambda n: opener * n + closer * n)


DEEP = st.one_of(deep("[", "]"), deep("{", "}"), deep('{"a":', "}"), deep("{a = ", "}"),
                 deep("[", "]").map(lambda s: "a = " + s), deep("{a = ", "}").map(lambda s: "a = " + s + "1"))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str], ops: int = 4) -> str:
    """``base`` with up to ``ops`` character edits: delete, duplicate a span, replace, insert,
    truncate."""
    s = draw(base)
    for _ in range(draw(st.one_of(st.just(0), st.integers(1, ops)))):  # half of them unchanged
        if not s:
            s = draw(st.text(CHARS, max_size=3))
            continue
        op = draw(st.sampled_from(["delete", "duplicate", "replace", "insert", "truncate"]))
        i = draw(st.integers(0, len(s) - 1))
        if op == "delete":
            s = s[:i] + s[i + 1:]
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(s), i + 12)))
            s = s[:j] + s[i:j] + s[j:]
        elif op == "replace":
            s = s[:i] + draw(CHARS) + s[i + 1:]
        elif op == "insert":
            s = s[:i] + draw(CHARS) + s[i:]
        else:
            s = s[:i]
    return s


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes, ops: int = 4) -> bytes:
    """``base`` with up to ``ops`` byte edits (flip, delete, duplicate, insert, truncate)."""
    b = bytearray(base)
    for _ in range(draw(st.one_of(st.just(0), st.integers(1, ops)))):
        if not b:
            b = bytearray(draw(st.binary(max_size=8)))
            continue
        op = draw(st.sampled_from(["flip", "delete", "duplicate", "insert", "truncate"]))
        i = draw(st.integers(0, len(b) - 1))
        if op == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del b[i:i + draw(st.integers(1, 16))]
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(b), i + 64)))
            b[j:j] = b[i:j]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            del b[i:]
    return bytes(b)


def render_value(v: Any) -> str:
    """A value as it may be typed after ``key=`` (JSON for numbers and lists, bare strings)."""
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v)
    except (ValueError, TypeError):
        return repr(v)


def sometimes(strategy: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], p_bad: int = 3) -> Any:
    """``strategy`` most of the time, ``bad`` about ``p_bad`` times in 10."""
    return st.integers(0, 9).flatmap(lambda i: bad if i < p_bad else strategy)


def valid_param(p: schedules.Param) -> st.SearchStrategy[Any]:
    """Values inside ``p``'s documented range (cross-parameter rules may still reject them)."""
    if p.choices:
        return st.sampled_from(p.choices)
    if p.kind is bool:
        return st.booleans()
    if p.kind is list:  # milestones, ends, points: increasing fractions of the run
        fracs = st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4, unique=True).map(sorted)
        return st.one_of(fracs, fracs.map(lambda f: [*f, 1.0]),
                         fracs.flatmap(lambda f: st.lists(st.floats(0, 2), min_size=len(f), max_size=len(f))
                                       .map(lambda v: [list(t) for t in zip(f, v)])))
    low = p.low if p.low is not None else -5.0
    high = p.high if p.high is not None else low + 100.0
    return st.floats(low, high, exclude_min=p.low_open) | st.sampled_from([low, high]).filter(
        lambda v: not (p.low_open and v == p.low))


@st.composite
def param_values(draw: st.DrawFn, p: schedules.Param | None) -> Any:
    """A value for schedule parameter ``p``: mostly plausible, sometimes nasty or mistyped."""
    good = valid_param(p) if p is not None else st.floats(0, 1)
    return draw(sometimes(good, st.one_of(NASTY_NUMBERS, JSON)))


@st.composite
def schedule_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A spec dict with a registered name (sometimes not) and some of its parameters."""
    name = draw(sometimes(st.sampled_from(schedules.names()), st.one_of(TEXT, JSON), 1))
    entry = schedules.info(name) if isinstance(name, str) and name in schedules.names() else None
    params = {**schedules.COMMON, **(entry.params if entry else {})}
    keys = draw(st.lists(sometimes(st.sampled_from(sorted(params)), st.text(max_size=6), 1), max_size=3, unique=True))
    d: dict[str, Any] = {"name": name}
    for k in keys:
        d[k] = draw(param_values(params.get(k)))
    if draw(st.integers(0, 9)) == 0:
        del d["name"]
    return d


@st.composite
def schedule_strings(draw: st.DrawFn) -> str:
    """The CLI form ``name:key=value,...`` from the registry's names and parameters."""
    d = draw(schedule_dicts())
    name = d.pop("name", "")
    head = name if isinstance(name, str) else render_value(name)
    if not d:
        return head
    return head + ":" + ",".join(f"{k}={render_value(v)}" for k, v in d.items())


def check_schedule(spec: schedules.ScheduleSpec) -> None:
    """A parsed spec is valid: it round-trips (dict, JSON, CLI string) and builds schedules
    whose multipliers are finite and >= 0 for runs of any length."""
    assert isinstance(spec, schedules.ScheduleSpec)
    assert schedules.spec_from(spec.to_dict()) == spec
    assert schedules.spec_from(spec.to_json()) == spec
    assert schedules.spec_from(str(spec)) == spec
    for total in (100, 1, 2, 3, 10, 97):
        # a spec may need a longer run than 1..10 steps (cycles that collapse): a one-line SpecError
        schedule = schedules.build(spec, total) if total == 100 else outcome(schedules.build, spec, total)
        if schedule is None:
            continue
        for k, m in enumerate(schedules.values(schedule, total + 2)):
            assert isinstance(m, float | int) and math.isfinite(m) and m >= 0, (str(spec), total, k, m)


# ---------------------------------------------------------------------------------- schedules
@fuzz()
@given(sometimes(mutated(schedule_strings()), st.one_of(TEXT, DEEP, DEEP.map(lambda s: "cosine:end=" + s))))
def test_schedule_strings(text: str) -> None:
    spec = outcome(schedules.spec_from, text)
    if spec is not None:
        check_schedule(spec)


@fuzz()
@given(st.one_of(schedule_dicts(), JSON, schedule_dicts().flatmap(  # keys that are not strings (Python callers)
    lambda d: st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers())), JSON, min_size=1)
    .map(lambda extra: {**d, **extra}))))
def test_schedule_dicts(d: Any) -> None:
    spec = outcome(schedules.spec_from, d)
    if spec is not None:
        check_schedule(spec)


@fuzz()
@given(st.one_of(schedule_dicts().map(json.dumps), mutated(schedule_dicts().map(json.dumps)), JSON.map(json.dumps),
                 DEEP.map(lambda s: "{" + s)))
def test_schedule_json(text: str) -> None:
    spec = outcome(schedules.spec_from, text)
    if spec is not None:
        check_schedule(spec)


@fuzz(FEW)
@given(st.one_of(st.binary(max_size=64), schedule_dicts().map(lambda d: json.dumps(d).encode()),
                 mutated_bytes(b'{"name": "wsd", "warmup": 0.05, "decay": 0.2}'),
                 st.text(max_size=30).map(lambda s: s.encode("utf-16"))))
def test_schedule_json_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "schedule.json"
    path.write_bytes(data)
    spec = outcome(schedules.spec_from, str(path))
    if spec is not None:
        check_schedule(spec)


def extreme_param(p: schedules.Param) -> st.SearchStrategy[Any]:
    """Values at the edges of ``p``'s documented range: the bounds, the smallest step inside an
    open bound, subnormals, the largest floats where there is no upper bound."""
    if p.kind is not float:
        return valid_param(p)
    low = p.low if p.low is not None else -sys.float_info.max
    high = p.high if p.high is not None else sys.float_info.max
    edges = [low, high, math.nextafter(low, math.inf), math.nextafter(high, -math.inf), 5e-324, 1e-300, 1e300]
    return st.one_of(st.sampled_from([v for v in edges if low <= v <= high and not (p.low_open and v == p.low)]),
                     st.floats(low, high, exclude_min=p.low_open))


@st.composite
def extreme_schedule_dicts(draw: st.DrawFn) -> dict[str, Any]:
    entry = schedules.info(draw(st.sampled_from(schedules.names())))  # every registered schedule
    params = {**schedules.COMMON, **entry.params}
    keys = draw(st.lists(st.sampled_from(sorted(params)), min_size=1, max_size=3, unique=True))
    return {"name": entry.name, **{k: draw(extreme_param(params[k])) for k in keys}}


@fuzz()
@given(extreme_schedule_dicts())
def test_schedule_extremes(d: dict[str, Any]) -> None:
    """Every value a schedule's parameters document as allowed parses to a schedule whose
    multipliers are finite, or is refused with a one-line SpecError."""
    spec = outcome(schedules.spec_from, d)
    if spec is not None:
        check_schedule(spec)


def test_schedule_file_that_is_a_folder_or_missing(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    for p in (tmp_path / "d.json", tmp_path / "missing.json", "bad\x00name.json"):
        assert outcome(schedules.spec_from, str(p)) is None


# ---------------------------------------------------------------------------------- search spaces
VALID_PARAMS = st.one_of(
    st.tuples(st.floats(1e-8, 1.0), st.floats(1.01, 100)).map(lambda t: {"log_uniform": [t[0], t[0] * t[1]]}),
    st.tuples(st.floats(-10, 10), st.floats(0.01, 10)).map(lambda t: {"uniform": [t[0], t[0] + t[1]]}),
    st.lists(st.one_of(st.floats(0, 1), st.booleans(), st.text(max_size=4)), min_size=1, max_size=4, unique_by=repr)
    .map(lambda v: {"choice": v}),
    st.tuples(st.floats(1e-6, 1.0), st.sampled_from(["log", "linear"])).map(
        lambda t: {"min": t[0], "max": t[0] * 10, "scaling": t[1]}),
    st.lists(st.floats(0, 1), min_size=1, max_size=3, unique=True).map(lambda v: {"feasible_points": v}),
)


@fuzz()
@given(st.one_of(st.dictionaries(st.text(max_size=6), VALID_PARAMS, max_size=3),
                 st.dictionaries(st.text(max_size=6), sometimes(VALID_PARAMS, JSON, 2), max_size=3),
                 JSON, st.dictionaries(st.text(max_size=6), st.one_of(
    st.fixed_dictionaries({"log_uniform": st.lists(NASTY_NUMBERS | JSON, max_size=3)}),
    st.fixed_dictionaries({"uniform": st.lists(NASTY_NUMBERS | JSON, max_size=3)}),
    st.fixed_dictionaries({"choice": st.lists(JSON, max_size=4)}),
    st.fixed_dictionaries({"min": NASTY_NUMBERS | JSON, "max": NASTY_NUMBERS | JSON,
                           "scaling": st.sampled_from(["log", "linear", "x"]) | JSON}),
    JSON), max_size=3)))
def test_search_spaces(d: Any) -> None:
    sp = outcome(space.space_from_dict, d)
    if sp is not None:
        assert space.space_from_dict(space.space_to_dict(sp)) == sp
        stored = json.loads(json.dumps(space.space_to_dict(sp), allow_nan=False))  # finite JSON
        assert space.space_from_dict(stored) == sp


# ---------------------------------------------------------------------------------- algorithms
BUILTINS = algorithms.builtins()
BUILTIN_DICTS = [a.to_dict() for a in BUILTINS.values()]
BUILTIN_TOML = [a.to_toml() for a in BUILTINS.values()]


def toml_str(s: str) -> str:
    """A TOML basic string (JSON's escapes, but astral characters as they are and DEL escaped)."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(k: str) -> str:
    return k if k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k) else toml_str(k)


def toml_value(v: Any) -> str | None:
    """TOML text of a JSON value (``None`` where TOML has no spelling: null)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        items = [toml_value(x) for x in v]
        return "[" + ", ".join(x for x in items if x is not None) + "]"
    if isinstance(v, dict):
        items = [(toml_key(k), toml_value(x)) for k, x in v.items()]
        return "{ " + ", ".join(f"{k} = {x}" for k, x in items if x is not None) + " }"
    return None


def toml_doc(d: dict[str, Any]) -> str:
    lines = []
    for k, v in d.items():
        text = toml_value(v)
        if text is not None:
            lines.append(f"{toml_key(k)} = {text}")
    return "\n".join(lines) + "\n"


@st.composite
def algorithm_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A built-in algorithm's dict with values replaced by wrong types, nasty numbers, random
    JSON, keys dropped or added, nested one level down too (schedule, kwargs, search space)."""
    d = json.loads(json.dumps(draw(st.sampled_from(BUILTIN_DICTS))))
    for _ in range(draw(st.integers(0, 3))):
        target = d
        if draw(st.booleans()):
            sub = draw(st.sampled_from(["optimizer_kwargs", "schedule", "search_space"]))
            if isinstance(d.get(sub), dict):
                target = d[sub]
                if sub == "search_space" and target and draw(st.booleans()):
                    inner = target[draw(st.sampled_from(sorted(target)))]
                    target = inner if isinstance(inner, dict) else target
        op = draw(st.sampled_from(["replace", "drop", "add"]))
        if op == "add" or not target:
            target[draw(st.one_of(st.text(max_size=8), st.sampled_from(["beta1", "momentum", "betas", "warmup",
                                                                        "lr", "schedule.decay", "optimizer.eps"])))] = draw(JSON)
        else:
            key = draw(st.sampled_from(sorted(target)))
            if op == "drop":
                del target[key]
            else:
                plausible = st.floats(0, 1) if isinstance(target[key], float) else st.just(target[key])
                target[key] = draw(sometimes(plausible, st.one_of(NASTY_NUMBERS, JSON), 6))
    return d


def check_algorithm(a: algorithms.Algorithm) -> None:
    """A parsed algorithm is valid: it round-trips through dict, JSON and TOML, its defaults
    resolve, and its schedule builds."""
    assert isinstance(a, algorithms.Algorithm)
    assert algorithms.Algorithm.from_dict(a.to_dict()) == a
    assert algorithms.Algorithm.from_dict(json.loads(a.to_json())) == a
    assert algorithms.from_toml(a.to_toml()) == a
    r = a.with_hyperparameters(a.defaults())
    assert algorithms.ResolvedAlgorithm.from_dict(r.to_dict()) == r
    assert math.isfinite(r.build_schedule(10)(3))
    # optimizer kwargs are checked by the class itself when it is built: a one-line SpecError
    outcome(r.build_optimizer, TINY_MODEL)


TINY_MODEL = torch.nn.Linear(2, 1)


@fuzz()
@given(st.one_of(st.text(max_size=200), mutated(st.sampled_from(BUILTIN_TOML), ops=6),
                 algorithm_dicts().map(toml_doc), DEEP))
def test_algorithm_toml(text: str) -> None:
    a = outcome(algorithms.from_toml, text)
    if a is not None:
        check_algorithm(a)


def with_odd_keys(d: dict[str, Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """``d`` with keys that are not strings added, at the top or in a nested table (Python callers)."""
    odd = st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers())), JSON, min_size=1)
    tables = [k for k, v in d.items() if isinstance(v, dict)]
    where = st.sampled_from([None, *tables])
    return st.tuples(where, odd).map(lambda t: {**d, **t[1]} if t[0] is None else {**d, t[0]: {**d[t[0]], **t[1]}})


@fuzz()
@given(st.one_of(algorithm_dicts(), JSON, algorithm_dicts().flatmap(with_odd_keys)))
def test_algorithm_dicts(d: Any) -> None:
    a = outcome(algorithms.Algorithm.from_dict, d)
    if a is not None:
        check_algorithm(a)


@fuzz(FEW)
@given(st.one_of(st.binary(max_size=64), mutated_bytes(BUILTIN_TOML[0].encode()),
                 st.sampled_from(BUILTIN_TOML).map(lambda t: t.encode("utf-16"))))
def test_algorithm_toml_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "algo.toml"
    path.write_bytes(data)
    a = outcome(algorithms.load_toml, path)
    if a is not None:
        check_algorithm(a)
    a = outcome(algorithms.get_algorithm, str(path))
    if a is not None:
        check_algorithm(a)


@fuzz()
@given(st.one_of(TEXT, st.sampled_from(sorted(BUILTINS)).map(lambda s: s.upper()),
                 TEXT.map(lambda s: s + ".toml"), st.text(max_size=8).map(lambda s: "x\x00" + s + ".toml")))
def test_algorithm_names(text: str) -> None:
    a = outcome(algorithms.get_algorithm, text)
    if a is not None:
        check_algorithm(a)


# ---------------------------------------------------------------------------------- --set
SET_KEYS = [f.name for f in dataclasses.fields(algorithms.Algorithm)] + [
    "learning_rate", "warmup", "warmup_factor", "beta1", "beta2", "one_minus_beta1", "one_minus_beta2",
    "momentum", "schedule.decay", "schedule.name", "schedule.end", "schedule.", "optimizer.eps",
    "optimizer.nesterov", "optimizer.betas", "search_space.lr", "search_space.warmup", "search_space.", "nope"]


#: plausible values per --set key (TOML text), so that most overrides apply
SET_VALUES: dict[str, st.SearchStrategy[str]] = {
    "lr": st.floats(1e-5, 1.0).map(repr), "learning_rate": st.floats(1e-5, 1.0).map(repr),
    "weight_decay": st.floats(0, 1).map(repr), "warmup": st.floats(0, 0.5).map(repr),
    "warmup_factor": st.floats(0, 0.5).map(repr), "label_smoothing": st.floats(0, 0.5).map(repr),
    "grad_clip": st.sampled_from(["1.0", "none", "0.5"]), "batch_size": st.sampled_from(["32", "none", "1"]),
    "beta1": st.floats(0, 0.99).map(repr), "beta2": st.floats(0.9, 0.999).map(repr),
    "one_minus_beta1": st.floats(0.01, 0.5).map(repr), "one_minus_beta2": st.floats(0.001, 0.1).map(repr),
    "momentum": st.floats(0, 0.99).map(repr), "schedule": schedule_strings(),
    "schedule.decay": st.floats(0, 1).map(repr), "schedule.end": st.floats(0, 1).map(repr),
    "schedule.name": st.sampled_from(["constant", "cosine", "linear", "wsd"]),
    "optimizer.eps": st.sampled_from(["1e-8", "1e-6"]), "name": TEXT.filter(str.isprintable),
    "description": st.text(max_size=20).map(json.dumps), "optimizer": st.sampled_from(["adamw", "sgd", "lion"]),
    "search_space.lr": st.sampled_from(["{log_uniform = [1e-4, 1e-2]}", "{uniform = [0.001, 0.01]}"]),
    "search_space.warmup": st.sampled_from(["{uniform = [0.0, 0.1]}", "{choice = [0.0, 0.05]}"]),
}


@st.composite
def set_items(draw: st.DrawFn) -> str:
    """``key=value``: mostly a known key with a plausible value, else a TOML scalar, a spec
    string, an inline table or junk; then maybe mutated."""
    key = draw(sometimes(st.sampled_from(SET_KEYS), st.text(max_size=8), 1))
    junk = st.one_of(
        NASTY_NUMBERS.map(render_value), TEXT, schedule_strings(), JSON.map(toml_value).filter(lambda v: v is not None),
        st.sampled_from(["{log_uniform = [1e-4, 1e-2]}", "{uniform = [1, 0]}", "{choice = []}", "[0.9, 0.95]",
                         "[0.9]", "none", "null", "true", "\"adamw\"", "sgd", "cosine:end=0.1", "1e999"]),
        DEEP)
    value = draw(sometimes(SET_VALUES[key], junk) if key in SET_VALUES else junk)
    return draw(mutated(st.just(f"{key}={value}"), ops=2))


@fuzz()
@given(st.sampled_from(sorted(BUILTINS)), st.lists(sometimes(set_items(), TEXT, 1), min_size=1, max_size=3))
def test_set_overrides(name: str, items: list[str]) -> None:
    a = outcome(algorithms.apply_overrides, BUILTINS[name], items)
    if a is not None:
        check_algorithm(a)


# ---------------------------------------------------------------------------------- benchmarks
WORKLOAD_NAMES = workloads.names()
VARIANTS = sorted({v for n in WORKLOAD_NAMES for v in workloads.workload_class(n).variants})
ALGO_WORDS = sometimes(
    st.one_of(st.sampled_from(sorted(BUILTINS)),
              st.sampled_from(["refined(adamw-linear)", "refined(adamw-linear, tau=0.05, norm=l1)"])),
    st.one_of(TEXT, TEXT.map(lambda s: s + ".toml"),
              st.sampled_from(["refined()", "refined(adamw-linear, tau=1\n)", "refined(refined(sgd-step))",
                               "refined(adamw-linear, tau=nan)", "refined(x, norm=)", "refined(adamw-linear"])),
    4)
VALID_WORKLOADS = sorted({f"{n}:{v}" for n in WORKLOAD_NAMES for v in workloads.workload_class(n).variants}
                         | {n for n in WORKLOAD_NAMES if "base" in workloads.workload_class(n).variants})
WORKLOAD_WORDS = sometimes(st.sampled_from(VALID_WORKLOADS), st.one_of(
    st.tuples(st.sampled_from(WORKLOAD_NAMES), st.sampled_from(VARIANTS)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.sampled_from(WORKLOAD_NAMES), TEXT), 3)


@st.composite
def bench_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A benchmark spec table: plausible values for known keys, wrong types, unknown keys."""
    plausible = {
        "suite": st.sampled_from(["quick", "full"]),
        "algorithms": st.lists(ALGO_WORDS, max_size=3),
        "ruleset": st.sampled_from(["external", "self"]),
        "trials": st.integers(-2, 5),
        "studies": st.integers(-2, 5),
        "seed": st.integers(-5, 5),
        "workloads": st.one_of(st.lists(WORKLOAD_WORDS, max_size=3), WORKLOAD_WORDS),
        "set": sometimes(st.dictionaries(st.sampled_from(["lr", "grad_clip", "warmup", "schedule.decay"]),
                                         st.floats(0.001, 0.5), max_size=2),
                         st.dictionaries(st.sampled_from(SET_KEYS), NASTY_NUMBERS | JSON, max_size=2)),
        "name": TEXT,
        "tradeoff": st.sampled_from(["cyclic", "linear"]),
    }
    keys = draw(st.lists(sometimes(st.sampled_from(sorted(plausible)), st.text(max_size=6), 1), max_size=5,
                         unique=True))
    d: dict[str, Any] = {}
    for k in keys:
        d[k] = draw(plausible[k] if k in plausible and draw(st.integers(0, 3)) else st.one_of(NASTY_NUMBERS, JSON))
    return d


def check_bench(spec: bench.BenchSpec, *, resolve: bool = True) -> None:
    """A parsed benchmark spec is valid: it round-trips through its stored (JSON) form, names a
    study, its workloads build, and (for a spec file) every algorithm it names builds with its
    overrides. A stored spec's algorithms are not resolved when read back: a report must still
    open after an algorithm file moved."""
    assert isinstance(spec, bench.BenchSpec)
    stored = json.loads(json.dumps(spec.to_dict(), allow_nan=False))
    assert bench.mapping_to_spec(stored) == spec
    assert isinstance(spec.study_name(), str) and spec.study_name()
    assert spec.entries() and all(isinstance(e.build(), workloads.Workload) for e in spec.entries())
    assert all(isinstance(name, str) and name.strip() for name in (*spec.algorithms, *spec.overrides))
    if resolve:
        for name in spec.algorithms:
            assert isinstance(bench.algorithm_for(name, spec.overrides), algorithms.Algorithm)


@fuzz()
@given(st.one_of(bench_dicts().map(toml_doc), mutated(bench_dicts().map(toml_doc)), st.text(max_size=100), DEEP,
                 st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_bench_toml(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.getbasetemp() / "bench.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    spec = outcome(bench.load_spec, path, allowed=(SpecError, WorkloadError))
    if spec is not None:
        check_bench(spec)


def test_bench_spec_unreadable(tmp_path: Path) -> None:
    (tmp_path / "d.toml").mkdir()
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00suite")
    for p in (tmp_path / "d.toml", tmp_path / "missing.toml", tmp_path / "bin.toml"):
        assert outcome(bench.load_spec, p) is None


SUITE_ENTRIES = st.sampled_from([n for n in WORKLOAD_NAMES if workloads.workload_class(n).variants]).flatmap(lambda n: st.builds(
    bench.SuiteEntry, st.just(n), st.sampled_from(sorted(workloads.workload_class(n).variants)),
    st.none() | st.integers(1, 1000),
    st.none() | st.builds(lambda m, v, mode: {"metric": m, "value": v, "mode": mode},
                          st.sampled_from(["validation/loss", "validation/accuracy"]), st.floats(0, 10),
                          st.sampled_from(["min", "max"]))))
BENCH_SPECS = st.builds(
    bench.BenchSpec, suite=st.sampled_from(["quick", "full"]),
    algorithms=st.lists(st.sampled_from(sorted(BUILTINS)), min_size=1, max_size=3, unique=True).map(tuple),
    ruleset=st.sampled_from(bench.RULESETS), trials=st.integers(1, 5), studies=st.integers(1, 3),
    seed=st.integers(0, 10**6), workloads=st.none() | st.lists(SUITE_ENTRIES, min_size=1, max_size=3).map(tuple),
    overrides=st.lists(st.sampled_from(["lr=0.01", "grad_clip=1.0", "warmup=0.1"]), max_size=2).map(tuple),
    name=st.none() | st.text(max_size=10), tradeoff=st.sampled_from([None, "cyclic"]))


@st.composite
def stored_bench_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A stored benchmark spec (``BenchSpec.to_dict``), sometimes with one value replaced."""
    d = json.loads(json.dumps(draw(BENCH_SPECS).to_dict()))
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(d)) | st.text(max_size=5))
        if key == "workloads" and d[key] and draw(st.booleans()):
            entry = d[key][0]
            entry[draw(st.sampled_from(sorted(entry)) | st.text(max_size=5))] = draw(st.one_of(NASTY_NUMBERS, JSON))
        else:
            d[key] = draw(st.one_of(NASTY_NUMBERS, JSON))
    return d


@fuzz()
@given(st.one_of(stored_bench_dicts(), bench_dicts(), JSON))
def test_bench_mapping(d: Any) -> None:
    spec = outcome(bench.mapping_to_spec, d, allowed=(SpecError, WorkloadError))
    if spec is not None:
        check_bench(spec, resolve=False)


@fuzz()
@given(st.one_of(st.lists(WORKLOAD_WORDS, max_size=4).map(",".join), mutated(st.lists(WORKLOAD_WORDS, max_size=3)
                                                                             .map(",".join)), TEXT))
def test_workload_lists(text: str) -> None:
    entries = outcome(bench.parse_workload_list, text, allowed=(SpecError, WorkloadError))
    if entries is not None:
        assert entries and all(isinstance(e.build(), workloads.Workload) for e in entries)


@fuzz()
@given(st.one_of(st.lists(ALGO_WORDS, max_size=3).map(",".join), mutated(st.lists(ALGO_WORDS, max_size=3)
                                                                         .map(",".join)), TEXT, DEEP))
def test_algorithm_lists(text: str) -> None:
    names = outcome(bench.algorithm_list, text)
    if names is not None:
        assert all(isinstance(n, str) and n for n in names)
        r = outcome(bench.parse_refined, text)
        assert r is None or isinstance(r[0], str)


@fuzz()
@given(st.one_of(ALGO_WORDS, mutated(ALGO_WORDS), st.tuples(TEXT, TEXT).map(lambda t: f"refined({t[0]}, tau={t[1]})"),
                 st.tuples(TEXT, NASTY_NUMBERS).map(lambda t: f"refined(adamw-linear, {t[0]}={t[1]})")))
def test_refined_names(text: str) -> None:
    r = outcome(bench.parse_refined, text)
    if r is not None:
        inner, options = r
        assert isinstance(inner, str) and inner.strip()
        assert 0.0 <= options["tau"] <= 0.5 and options["norm"] in ("l1", "l2", "auto")


# ---------------------------------------------------------------------------------- workloads
@fuzz()
@given(sometimes(st.sampled_from(WORKLOAD_NAMES), st.one_of(TEXT, WORKLOAD_WORDS)),
       st.one_of(st.none(), st.sampled_from(VARIANTS), TEXT),
       sometimes(st.none() | st.integers(1, 10**6), st.one_of(NASTY_NUMBERS, JSON)),
       sometimes(st.none(), JSON))
def test_workload_names(name: str, variant: str | None, budget: Any, target: Any) -> None:
    overrides = {k: v for k, v in (("budget_steps", budget), ("target", target)) if v is not None}
    w = outcome(workloads.get, name, variant, allowed=(WorkloadError,), **overrides)
    if w is not None:
        assert isinstance(w, workloads.Workload)
        assert isinstance(w.budget_steps, int) and w.budget_steps >= 1
        assert w.key in (w.name, f"{w.name}:{w.variant}")


# ---------------------------------------------------------------------------------- imports
@pytest.fixture(scope="module")
def store_db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from steplab.store import open_store

    folder = tmp_path_factory.mktemp("imports")
    db = folder / "s.db"
    with open_store(db) as store:
        yield store, db, folder


def counts(db: Path) -> tuple[int, int, int]:
    """(trials, step rows, eval rows) straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("trials", "steps", "evals"))


def imported_or_unchanged(db: Path, before: tuple[int, int, int], tid: int | None, store: Any) -> None:
    after = counts(db)
    if tid is None:
        assert after == before, "a failed import changed the store"
    else:
        assert after[0] == before[0] + 1
        steps = store.steps(tid)["step"].tolist()
        assert steps and all(b > a for a, b in zip(steps, steps[1:]))


CSV_COLUMNS = ["step", "loss", "lr", "grad_norm", "val_loss", "time", "_step", "é"]
CSV_CELLS = st.one_of(st.integers(-3, 50).map(str), st.floats(allow_nan=True).map(repr), NASTY_NUMBERS.map(str),
                      st.just(""), TEXT, st.sampled_from(['"1,5"', '"', "1e300", "-1", "0.5", "  7  "]))


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """A CSV export: mostly a well-formed one (increasing steps, numbers, empty cells), else
    random headers and cells."""
    if draw(st.integers(0, 9)) < 6:
        extra = draw(st.lists(st.sampled_from(["lr", "val_loss", "time", "grad_norm"]), unique=True))
        header = draw(st.permutations(["step", "loss", *extra]))
        steps = sorted(draw(st.sets(st.integers(0, 10**6), min_size=1, max_size=6)))
        cell = st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-5, 5).map(str), st.just(""),
                         st.sampled_from(["nan", "inf", "1e-300"]))
        rows = [[str(t) if c == "step" else draw(cell) for c in header] for t in steps]
    else:
        header = draw(st.lists(st.sampled_from(CSV_COLUMNS) | st.text(max_size=4), min_size=0, max_size=5))
        rows = draw(st.lists(st.lists(CSV_CELLS, min_size=len(header), max_size=len(header) + 1), max_size=6))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n"]))


@fuzz(FEW)
@given(sometimes(csv_texts().map(str.encode), st.one_of(
           mutated(csv_texts()).map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=64),
           csv_texts().map(lambda s: s.encode("utf-16")),
           st.just(b"step,loss\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(3)) + b"x" * 200_000))),
       st.sampled_from([None, "lr"]), st.sampled_from([(), ("val_loss",)]), st.sampled_from([None, "time"]),
       sometimes(st.just(0), st.one_of(st.integers(), NASTY_NUMBERS.filter(lambda v: isinstance(v, int)))))
def test_csv_import(store_db: Any, data: bytes, lr: str | None, evals: tuple[str, ...], time: str | None,
                    offset: int) -> None:
    from steplab.integrations import csvfile

    store, db, folder = store_db
    path = folder / "run.csv"
    path.write_bytes(data)
    before = counts(db)
    tid = outcome(csvfile.import_csv, store, path, step="step", loss="loss", lr=lr, evals=evals, time=time,
                  offset=offset, allowed=(SourceError, StoreError))
    imported_or_unchanged(db, before, tid, store)


@fuzz()
@given(st.one_of(TEXT, mutated(st.just("loss=train/loss,lr=lr,grad_norm=grad_norm"))))
def test_tags(text: str) -> None:
    from steplab.integrations import traces

    tags = outcome(traces.parse_tags, text, allowed=(SourceError,))
    if tags is not None:
        assert set(tags) <= set(traces.TRACE_KEYS) and all(isinstance(v, str) and v for v in tags.values())


@fuzz()
@given(st.one_of(TEXT, JSON.map(json.dumps), DEEP, mutated(JSON.map(json.dumps))))
def test_logged_params(text: str) -> None:
    """MLflow logs every parameter as text; ``param_value`` reads it back as a value or the text."""
    from steplab.integrations import traces

    value = traces.param_value(text)
    try:
        spelled = json.loads(text)
    except (ValueError, RecursionError):  # not JSON: the text itself
        assert value == text
    else:  # the value it spells (compared as JSON text: NaN != NaN)
        assert json.dumps(value, allow_nan=True) == json.dumps(spelled, allow_nan=True)


@pytest.fixture(scope="module")
def event_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pytest.importorskip("tensorboard", reason="needs the [tensorboard] extra: pip install 'steplab[tensorboard]'")
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path_factory.mktemp("tb-good")
    with SummaryWriter(str(logdir)) as w:
        for s in range(6):
            w.add_scalar("train/loss", 1.0 / (s + 1), s)
            w.add_scalar("lr", 0.1, s)
        w.add_scalar("val/loss", 0.5, 5)
    (f,) = logdir.glob("*tfevents*")
    return f.read_bytes()


_tb_runs = itertools.count()


@fuzz(FEW)
@given(st.data())
def test_tensorboard_import(store_db: Any, event_file: bytes, data: st.DataObject) -> None:
    from steplab.integrations import tensorboard

    blob = data.draw(st.one_of(mutated_bytes(event_file, ops=3), st.binary(max_size=64), st.just(b"")))
    tags = data.draw(st.sampled_from([None, {"loss": "train/loss"}, {"loss": "lr"}, {"lr": "nope"},
                                      {"grad_norm": "val/loss"}]))
    store, db, folder = store_db
    run = folder / f"tb-{next(_tb_runs)}"
    run.mkdir()
    (run / "events.out.tfevents.1.host").write_bytes(blob)
    before = counts(db)
    tid = outcome(tensorboard.import_logdir, store, run, tags=tags, allowed=(SourceError, StoreError))
    imported_or_unchanged(db, before, tid, store)


# ---------------------------------------------------------------------------------- the store
# a corrupt file or a bad URL is refused with one line (StoreError), never another exception
@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from steplab.store import open_store

    db = tmp_path_factory.mktemp("store-good") / "s.db"
    with open_store(db):
        pass
    return db.read_bytes()


_stores = itertools.count()


@fuzz(100)
@given(st.data())
def test_corrupt_store_files(tmp_path_factory: pytest.TempPathFactory, store_file: bytes, data: st.DataObject) -> None:
    from steplab.store import open_store

    head = 4096  # page 1: the header and sqlite_master, where the schema text lives

    def non_utf8(positions: list[int]) -> bytes:  # bytes of the schema's text made invalid UTF-8
        b = bytearray(store_file)
        for i in positions:
            b[i] = 0xFF
        return bytes(b)

    blob = data.draw(st.one_of(mutated_bytes(store_file[:head], ops=6).map(lambda b: b + store_file[head:]),
                               st.lists(st.integers(100, head - 1), min_size=1, max_size=4).map(non_utf8),
                               mutated_bytes(store_file, ops=6), st.binary(max_size=200),
                               st.just(b"SQLite format 3\x00" + b"\x00" * 200)))
    path = tmp_path_factory.getbasetemp() / f"corrupt-{next(_stores)}.db"
    path.write_bytes(blob)
    store = outcome(open_store, path, allowed=(StoreError,))
    if store is not None:
        with store:
            outcome(store.list_trials, allowed=(StoreError,))


@pytest.mark.parametrize("url", [
    "sqlite:///bad\x00name.db", "x" * 5000 + ".db",
    "nope://", "postgresql+nodriver://u@h/db", "", "sqlite:////no/such/folder/x.db",
    "postgresql://u:pw@h:99x/db", "://u:pw@h/db",
])
def test_bad_db_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from steplab.store import open_store

    monkeypatch.chdir(tmp_path)
    store = outcome(open_store, url, allowed=(StoreError,))
    if store is not None:
        store.close()


# ---------------------------------------------------------------------------------- saved results
@fuzz(FEW)
@given(sometimes(mutated(st.just(json.dumps({"law": {"law": "power", "a": 1.0, "b": 2.0, "c": 0.5},
                                             "fit": {"residual": 0.1, "rmse_log": 0.01, "n_points": 9,
                                                     "trial_ids": [1], "peak_lr": 0.1, "steps": [100]}})))
                 .map(lambda s: s.encode("utf-8", "surrogatepass")),
                 st.one_of(st.binary(max_size=64), JSON.map(lambda v: json.dumps(v).encode()), DEEP.map(str.encode))))
def test_law_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from steplab.analysis import predict

    path = tmp_path_factory.getbasetemp() / "law.json"
    path.write_bytes(data)
    law = outcome(predict.load_law, path)
    if law is not None:
        assert predict.FittedLaw.from_dict(json.loads(json.dumps(law.to_dict()))) == law


#: a small AutoLRS record as ``AutoLRSResult.save`` writes it
AUTOLRS_RECORD = {
    "workload": "logreg", "algorithm": {"name": "adamw-cosine", "lr": 0.003}, "seed": 0, "budget_steps": 100,
    "config": {}, "lr_range": [1e-4, 0.1], "status": "budget", "steps": 100, "steps_to_target": 100.0,
    "time_to_target_s": 1.0, "train_time_s": 1.0, "eval_time_s": 0.1, "search_steps": 10, "search_time_s": 0.1,
    "final_metrics": {"validation/loss": 0.4}, "message": "", "trial_id": None, "losses": [1.0], "lrs": [0.003],
    "stages": [{"start": 0, "steps": 100, "explore_steps": 10, "start_value": 1.0, "chosen": 0, "search_time_s": 0.1,
                "candidates": [{"lr": 0.003, "multiplier": 1.0, "observed": [[0, 1.0], [5, 0.9]], "predicted": 0.8,
                                "objective": 0.8, "status": "ok", "fit": None}]}],
}


@st.composite
def autolrs_records(draw: st.DrawFn) -> dict[str, Any]:
    """The record with one value (top level, in a stage or in a candidate) replaced."""
    d = json.loads(json.dumps(AUTOLRS_RECORD))
    target = draw(st.sampled_from([d, d["stages"][0], d["stages"][0]["candidates"][0]]))
    target[draw(st.sampled_from(sorted(target)) | st.text(max_size=5))] = draw(st.one_of(NASTY_NUMBERS, JSON))
    return d


@fuzz(FEW)
@given(st.one_of(st.just(AUTOLRS_RECORD).map(json.dumps), autolrs_records().map(json.dumps),
                 mutated(st.just(json.dumps(AUTOLRS_RECORD)), ops=3), JSON.map(json.dumps), DEEP,
                 st.binary(max_size=64).map(lambda b: b.decode("latin-1"))))
def test_autolrs_records(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    from steplab.studies import autolr

    path = tmp_path_factory.getbasetemp() / "autolrs.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    record = outcome(autolr.AutoLRSResult.load, path)
    if record is not None:
        assert isinstance(record, autolr.AutoLRSResult)
        saved = json.dumps(record.to_dict())  # compared as JSON text: NaN != NaN
        assert json.dumps(autolr.AutoLRSResult.from_dict(json.loads(saved)).to_dict()) == saved


# ---------------------------------------------------------------------------------- source scan
_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
_UNSAFE_CALLS = {"eval", "exec"}


def _unsafe(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    torch_load_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in _UNSAFE_MODULES:
                found.append((node.lineno, f"from {node.module} import ..."))
            if node.module == "torch":
                torch_load_names |= {a.asname or a.name for a in node.names if a.name == "load"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in _UNSAFE_CALLS:
            found.append((node.lineno, f"{f.id}(...)"))
        if isinstance(f, ast.Attribute) and f.attr in _UNSAFE_CALLS and isinstance(f.value, ast.Name) \
                and f.value.id in ("builtins", "__builtins__"):
            found.append((node.lineno, f"builtins.{f.attr}(...)"))
        is_torch_load = (isinstance(f, ast.Attribute) and f.attr == "load" and isinstance(f.value, ast.Name)
                         and f.value.id == "torch") or (isinstance(f, ast.Name) and f.id in torch_load_names)
        if is_torch_load:
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                found.append((node.lineno, "torch.load without weights_only=True"))
        if isinstance(f, ast.Attribute) and f.attr in ("read_pickle", "loads") and isinstance(f.value, ast.Name) \
                and f.value.id in ("pd", "pandas", "pickle"):
            found.append((node.lineno, f"{f.value.id}.{f.attr}(...)"))
        if isinstance(f, ast.Attribute) and f.attr == "load" and isinstance(f.value, ast.Name) \
                and f.value.id in ("np", "numpy"):
            if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in node.keywords):
                found.append((node.lineno, "numpy.load with allow_pickle"))
    return found


def test_scanner_catches_the_unsafe_forms() -> None:
    bad = ("import pickle\nfrom marshal import loads\nimport shelve\neval('1')\nexec('x = 1')\n"
           "import torch\ntorch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\n"
           "from torch import load\nload('m.pt')\nimport numpy as np\nnp.load('a.npy', allow_pickle=True)\n")
    assert len(_unsafe(ast.parse(bad))) == 9
    ok = "import torch\ntorch.load('m.pt', weights_only=True)\nmodel.eval()\nrec.eval(loss=1.0)\n"
    assert _unsafe(ast.parse(ok)) == []


def test_no_pickle_or_eval_in_the_source() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    found = [f"{p.relative_to(SRC.parent)}:{line}: {what}" for p in files
             for line, what in _unsafe(ast.parse(p.read_text(encoding="utf-8"), filename=str(p)))]
    assert found == [], "no pickle or eval of anything read from a file or database:\n" + "\n".join(found)

