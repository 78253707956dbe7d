"""Tests for steplab.algorithms.space: JSON forms, validation, quasi-random draws."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steplab.algorithms.space import (
    Choice,
    LogUniform,
    Uniform,
    contains,
    sample,
    space_from_dict,
    space_to_dict,
)
from steplab.errors import SpecError

SPACE = {
    "lr": {"log_uniform": [1e-4, 1e-1]},
    "warmup": {"uniform": [0.0, 0.1]},
    "nesterov": {"choice": [True, False]},
}


# ----------------------------------------------------------------------------------
# hypothesis: random valid spaces
# ----------------------------------------------------------------------------------
@st.composite
def params(draw: st.DrawFn) -> LogUniform | Uniform | Choice:
    kind = draw(st.sampled_from(["log", "uniform", "choice"]))
    if kind == "log":
        low = draw(st.floats(1e-8, 1e3))
        return LogUniform(low, low * draw(st.floats(1.001, 1e6)))
    if kind == "uniform":
        low = draw(st.floats(-1e3, 1e3))
        return Uniform(low, low + draw(st.floats(1e-3, 1e3)))
    values = draw(st.lists(st.one_of(st.booleans(), st.integers(-5, 5), st.text("abc", min_size=1, max_size=3),
                                     st.floats(-10, 10)), min_size=1, max_size=5,
                           unique_by=lambda v: (type(v), v)))
    return Choice(tuple(values))


spaces = st.dictionaries(st.from_regex(r"[a-z][a-z_.]{0,8}", fullmatch=True), params(), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces, n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_draws_lie_inside_and_are_reproducible(space: dict, n: int, seed: int) -> None:
    points = sample(space, n, seed)
    assert len(points) == n
    for p in points:
        assert contains(space, p), p
    assert sample(space, n, seed) == points


@settings(max_examples=15, deadline=None)
@given(space=spaces)
def test_json_round_trip(space: dict) -> None:
    assert space_from_dict(space_to_dict(space)) == space


def test_different_seeds_differ() -> None:
    a, b = sample(SPACE, 8, 0), sample(SPACE, 8, 1)
    assert a != b
    assert all(x["lr"] != y["lr"] for x, y in zip(a, b, strict=True))


def test_prefix_property() -> None:
    assert sample(SPACE, 3, 7) == sample(SPACE, 10, 7)[:3]


def test_points_are_sobol_not_random() -> None:
    """A scrambled Sobol sequence puts exactly one of its first 16 points in each
    1/16-interval of every coordinate, including the first point (steplab discards
    Optuna's independent first trial)."""
    space = {"a": Uniform(0.0, 1.0), "b": LogUniform(1.0, math.e**16)}
    for seed in (0, 1, 2):
        pts = sample(space, 16, seed)
        assert sorted(int(p["a"] * 16) for p in pts) == list(range(16))
        assert sorted(int(math.log(p["b"])) for p in pts) == list(range(16))


def test_choices_are_balanced() -> None:
    pts = sample({"c": Choice(("x", "y", "z", "w"))}, 16, 3)
    assert sorted(p["c"] for p in pts) == sorted(["x", "y", "z", "w"] * 4)


def test_empty_space_and_zero_draws() -> None:
    assert sample({}, 3, 0) == [{}, {}, {}]
    assert sample(SPACE, 0, 0) == []
    with pytest.raises(SpecError):
        sample(SPACE, -1, 0)


def test_optuna_logging_is_restored() -> None:
    before = optuna.logging.get_verbosity()
    sample(SPACE, 2, 0)
    assert optuna.logging.get_verbosity() == before


# ----------------------------------------------------------------------------------
# forms and validation
# ----------------------------------------------------------------------------------
def test_algoperf_forms() -> None:
    space = space_from_dict({
        "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "log"},
        "warmup_factor": {"feasible_points": [0.05]},
        "dropout": {"min": 0.0, "max": 0.1, "scaling": "linear"},
        "x": {"min": 1, "max": 2},
    })
    assert space == {
        "learning_rate": LogUniform(1e-4, 1e-2),
        "warmup_factor": Choice((0.05,)),
        "dropout": Uniform(0.0, 0.1),
        "x": Uniform(1.0, 2.0),
    }
    assert space_to_dict(space)["warmup_factor"] == {"choice": [0.05]}


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"lr": {"log_uniform": [0.0, 1.0]}}, "low > 0"),
        ({"lr": {"log_uniform": [-1.0, 1.0]}}, "low > 0"),
        ({"lr": {"uniform": [1.0, 1.0]}}, "low < high"),
        ({"lr": {"log_uniform": [1e-1, 1e-4]}}, "low < high"),
        ({"lr": {"uniform": [0.0, float("inf")]}}, "finite"),
        ({"lr": {"uniform": [0.0]}}, r"\[low, high\]"),
        ({"lr": {"uniform": ["a", 1.0]}}, "number"),
        ({"lr": {"choice": []}}, "at least one"),
        ({"lr": {"choice": [1, 1]}}, "distinct"),
        ({"lr": {"choice": [[1]]}}, "numbers, strings or booleans"),
        ({"lr": {"feasible_points": "abc"}}, "needs a list"),
        ({"lr": {"min": 1.0, "max": 2.0, "scaling": "exp"}}, "scaling"),
        ({"lr": {"normal": [0, 1]}}, "unknown form"),
        ({"lr": 0.1}, "expected a table"),
        ({"lr": {}}, "expected a table"),
    ],
)
def test_invalid_spaces_name_the_parameter(d: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match) as e:
        space_from_dict(d)
    assert "'lr'" in str(e.value) and "\n" not in str(e.value)


def test_not_a_table() -> None:
    with pytest.raises(SpecError):
        space_from_dict([1, 2])  # type: ignore[arg-type]


def test_contains() -> None:
    space = space_from_dict(SPACE)
    assert contains(space, {"lr": 1e-3, "warmup": 0.05, "nesterov": True})
    assert not contains(space, {"lr": 1.0, "warmup": 0.05, "nesterov": True})
    assert not contains(space, {"lr": 1e-3, "warmup": 0.05, "nesterov": 1})
    assert not contains(space, {"lr": 1e-3})
