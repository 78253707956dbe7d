"""Hyperparameter search spaces and quasi-random draws (AlgoPerf external tuning).

A search space maps a hyperparameter name to one of :class:`LogUniform`, :class:`Uniform`
or :class:`Choice`. Its JSON form (stored with every study)::

    {"lr": {"log_uniform": [1e-4, 1e-1]},
     "warmup": {"uniform": [0.0, 0.1]},
     "nesterov": {"choice": [true, false]}}

AlgoPerf's ``tuning_search_space.json`` form is read too (mlcommons/algorithmic-efficiency,
``algorithms/paper_baselines/*/tuning_search_space.json``): ``{"min": a, "max": b,
"scaling": "log" | "linear"}`` and ``{"feasible_points": [...]}``.

:func:`sample` draws ``n`` points from Optuna's scrambled Sobol ``QMCSampler``, the
quasi-random search that AlgoPerf's external-tuning ruleset prescribes.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steplab.errors import SpecError


def _number(name: str, what: str, v: Any) -> float:
    # abs(v) <= max float: False for NaN, inf and ints too large for a float (math.isfinite raises)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= sys.float_info.max:
        raise SpecError(f"search space parameter {name!r}: {what} must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class LogUniform:
    """``exp(U(log low, log high))``: for scale parameters (lr, weight decay, 1 - beta)."""

    low: float
    high: float

    def check(self, name: str) -> LogUniform:
        low, high = _number(name, "low", self.low), _number(name, "high", self.high)
        if low <= 0:
            raise SpecError(f"search space parameter {name!r}: log_uniform needs low > 0, got {self.low!r}")
        if not low < high:
            raise SpecError(f"search space parameter {name!r}: needs low < high, got [{self.low!r}, {self.high!r}]")
        return LogUniform(low, high)

    def contains(self, value: Any) -> bool:
        return isinstance(value, float) and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class Uniform:
    """``U(low, high)``: for fractions and offsets (warmup, label smoothing)."""

    low: float
    high: float

    def check(self, name: str) -> Uniform:
        low, high = _number(name, "low", self.low), _number(name, "high", self.high)
        if not low < high:
            raise SpecError(f"search space parameter {name!r}: needs low < high, got [{self.low!r}, {self.high!r}]")
        return Uniform(low, high)

    def contains(self, value: Any) -> bool:
        return isinstance(value, float) and self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (numbers, strings, booleans), each equally likely."""

    values: tuple[Any, ...]

    def check(self, name: str) -> Choice:
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Sequence):
            raise SpecError(f"search space parameter {name!r}: choice needs a list, got {self.values!r}")
        values = tuple(self.values)
        if not values:
            raise SpecError(f"search space parameter {name!r}: choice needs at least one value")
        for v in values:
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise SpecError(f"search space parameter {name!r}: choice values must be numbers, "
                                f"strings or booleans, got {v!r}")
        if len(set(map(repr, values))) != len(values):
            raise SpecError(f"search space parameter {name!r}: choice values must be distinct, got {list(values)!r}")
        return Choice(values)

    def contains(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


Param = LogUniform | Uniform | Choice
SearchSpace = dict[str, Param]


def _pair(name: str, kind: str, v: Any) -> tuple[Any, Any]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) != 2:
        raise SpecError(f"search space parameter {name!r}: {kind} needs [low, high], got {v!r}")
    return v[0], v[1]


def param_from(name: str, d: Any) -> Param:
    """One parameter from its JSON form (steplab's or AlgoPerf's); validated."""
    if isinstance(d, (LogUniform, Uniform, Choice)):
        return d.check(name)
    if not isinstance(d, Mapping) or not d:
        raise SpecError(f"search space parameter {name!r}: expected a table like "
                        f"{{log_uniform = [1e-4, 1e-1]}}, {{uniform = [0, 1]}} or {{choice = [...]}}, got {d!r}")
    keys = set(d)
    if keys == {"log_uniform"}:
        return LogUniform(*_pair(name, "log_uniform", d["log_uniform"])).check(name)
    if keys == {"uniform"}:
        return Uniform(*_pair(name, "uniform", d["uniform"])).check(name)
    if keys == {"choice"} or keys == {"feasible_points"}:
        return Choice(d.get("choice", d.get("feasible_points"))).check(name)
    if {"min", "max"} <= keys <= {"min", "max", "scaling"}:
        scaling = d.get("scaling", "linear")
        if scaling == "log":
            return LogUniform(d["min"], d["max"]).check(name)
        if scaling == "linear":
            return Uniform(d["min"], d["max"]).check(name)
        raise SpecError(f"search space parameter {name!r}: scaling must be 'log' or 'linear', got {scaling!r}")
    raise SpecError(f"search space parameter {name!r}: unknown form {sorted(keys)}; use log_uniform, "
                    f"uniform, choice (or AlgoPerf's min/max/scaling, feasible_points)")


def space_from_dict(d: Mapping[str, Any]) -> SearchSpace:
    """A validated :data:`SearchSpace` from its JSON form; raises ``SpecError`` naming the
    bad parameter."""
    if not isinstance(d, Mapping):
        raise SpecError(f"a search space must be a table of parameters, got {type(d).__name__}")
    out: SearchSpace = {}
    for name, v in d.items():
        if not isinstance(name, str) or not name:
            raise SpecError(f"search space parameter names must be non-empty strings, got {name!r}")
        out[name] = param_from(name, v)
    return out


def space_to_dict(space: Mapping[str, Param]) -> dict[str, Any]:
    """The JSON form of ``space`` (steplab's keys; :func:`space_from_dict` inverts it)."""
    return {name: p.to_dict() for name, p in space.items()}


def contains(space: Mapping[str, Param], point: Mapping[str, Any]) -> bool:
    """True if ``point`` has exactly the space's names and every value lies inside."""
    return set(point) == set(space) and all(space[k].contains(point[k]) for k in space)


def _distributions(space: Mapping[str, Param]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    out: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, LogUniform):
            out[name] = FloatDistribution(p.low, p.high, log=True)
        elif isinstance(p, Uniform):
            out[name] = FloatDistribution(p.low, p.high)
        else:
            out[name] = CategoricalDistribution(list(p.values))
    return out


def sample(space: Mapping[str, Param], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` quasi-random points of ``space``: scrambled Sobol via Optuna's
    ``QMCSampler(qmc_type="sobol", scramble=True, seed=seed)``, asked through an in-memory
    study. The same ``(space, n, seed)`` gives the same points; the first ``m`` points of a
    larger ``n`` are the same as for ``n = m``.

    Optuna's sampler draws the first trial of a study from its independent (random) sampler
    and only then infers the QMC search space; steplab asks one discarded trial first so
    that all ``n`` returned points are Sobol points ``0 .. n-1``.
    """
    import optuna
    from optuna.samplers import QMCSampler

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SpecError(f"number of draws must be an integer >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"seed must be an integer, got {seed!r}")
    space = space_from_dict(space)
    if not space or n == 0:
        return [{} for _ in range(n)]
    dists = _distributions(space)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                 warn_independent_sampling=False)
            study = optuna.create_study(sampler=sampler, storage=None)
            study.tell(study.ask(dists), 0.0)  # fixes the QMC search space (see docstring)
            points = []
            for _ in range(n):
                trial = study.ask(dists)
                points.append({name: trial.params[name] for name in space})
                study.tell(trial, 0.0)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return points


__all__ = [
    "Choice",
    "LogUniform",
    "Param",
    "SearchSpace",
    "Uniform",
    "contains",
    "param_from",
    "sample",
    "space_from_dict",
    "space_to_dict",
]
