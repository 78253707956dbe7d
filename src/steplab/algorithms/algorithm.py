"""The Algorithm (optimizer + schedule + hyperparameters + search space) and its resolved form.

An :class:`Algorithm` is what AlgoPerf calls a submission with its
``tuning_search_space.json`` beside it (mlcommons/algorithmic-efficiency,
``algorithms/paper_baselines/``), as one frozen, JSON- and TOML-round-tripping dataclass
(STYLE.md, "What steplab should take from them", 3). Lengths are never stored: the
schedule is a spec (``{"name": "cosine", "warmup": 0.05}``, warm-up as a fraction of the
run) that :meth:`ResolvedAlgorithm.build` turns into a function for a run's ``budget_steps``.

Hyperparameter names: :mod:`steplab.algorithms.keys`.

Schedule-free algorithms keep their warm-up in the schedule spec too (``constant`` with
``warmup``), not in the optimizer's ``warmup_steps``: the schedule's linear warm-up
multiplies the group lr by ``(k + 1) / W`` for update ``k < W``, exactly what
``warmup_steps = W`` does inside ``schedulefree`` (its ``lr_max`` averaging weights follow
the scheduled lr either way; ``tests/test_algorithms.py`` checks the two agree). So
``warmup`` means the same thing in every algorithm's search space.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from typing import Any

from steplab import schedules
from steplab.algorithms import curriculum
from steplab.algorithms.keys import ALIASES, FIELD_HP, HYPERPARAMETERS, parse_key
from steplab.algorithms.space import Choice, SearchSpace, space_from_dict, space_to_dict
from steplab.algorithms.tomlfmt import toml_key, toml_value
from steplab.errors import SpecError


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def _float(who: str, key: str, v: Any, *, low: float = 0.0, low_open: bool = False,
           high: float | None = None, high_open: bool = False) -> float:
    # abs(v) <= max float: False for NaN, inf and ints too large for a float (math.isfinite raises)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= sys.float_info.max:
        raise SpecError(f"{who}: {key} must be a finite number, got {v!r}")
    bad_low = v < low or (low_open and v == low)
    bad_high = high is not None and (v > high or (high_open and v == high))
    if bad_low or bad_high:
        lo = f"{'>' if low_open else '>='} {low}"
        hi = f" and {'<' if high_open else '<='} {high}" if high is not None else ""
        raise SpecError(f"{who}: {key} must be {lo}{hi}, got {v!r}")
    return float(v)


def _normalize(obj: Any, who: str) -> None:
    """Validate and normalize the fields an Algorithm and a ResolvedAlgorithm share."""
    from steplab.optim import registry as optimizers  # torch-free: specs are checked without torch

    set_ = object.__setattr__
    if not isinstance(obj.optimizer, str) or not obj.optimizer.strip():
        raise SpecError(f"{who}: optimizer must be a registry name or 'module:Class', got {obj.optimizer!r}")
    if not isinstance(obj.optimizer_kwargs, Mapping):
        raise SpecError(f"{who}: optimizer_kwargs must be a table, got {obj.optimizer_kwargs!r}")
    try:
        kwargs = optimizers.resolve_kwargs(obj.optimizer, dict(obj.optimizer_kwargs))
    except SpecError as e:
        raise SpecError(f"{who}: {e}") from None
    set_(obj, "optimizer_kwargs", _jsonable(kwargs))
    set_(obj, "lr", _float(who, "lr", obj.lr, low_open=True))
    set_(obj, "weight_decay", _float(who, "weight_decay", obj.weight_decay))
    set_(obj, "label_smoothing", _float(who, "label_smoothing", obj.label_smoothing, high=1.0, high_open=True))
    if obj.grad_clip is not None:
        set_(obj, "grad_clip", _float(who, "grad_clip", obj.grad_clip, low_open=True))
    bs = obj.batch_size
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise SpecError(f"{who}: batch_size must be a positive integer or omitted, got {bs!r}")
    try:
        spec = schedules.spec_from(obj.schedule)
    except SpecError as e:
        raise SpecError(f"{who}: {e}") from None
    set_(obj, "schedule", _jsonable(spec.to_dict()))
    try:
        set_(obj, "curriculum", _jsonable(curriculum.normalize(obj.curriculum)))
    except SpecError as e:
        raise SpecError(f"{who}: {e}") from None


# ----------------------------------------------------------------------------------
# the resolved form: concrete settings of one trial
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ResolvedAlgorithm:
    """An algorithm with one hyperparameter point applied: everything a trial needs.

    Stored with every trial (``to_dict``); ``build(model, budget_steps)`` gives the optimizer
    and its ``LambdaLR``."""

    name: str
    optimizer: str
    optimizer_kwargs: dict[str, Any]
    lr: float
    weight_decay: float
    schedule: dict[str, Any]
    batch_size: int | None = None
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the data schedule (:mod:`steplab.algorithms.curriculum`)
    curriculum: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(curriculum.UNIFORM))

    def __post_init__(self) -> None:
        _normalize(self, f"algorithm {self.name!r}")
        object.__setattr__(self, "hyperparameters", _jsonable(dict(self.hyperparameters)))

    def build_optimizer(self, model: Any) -> Any:
        """``optimizers.build_optimizer`` with these settings (train mode where it has one)."""
        from steplab.optim import optimizers

        return optimizers.build_optimizer(self.optimizer, model, self.lr, weight_decay=self.weight_decay,
                                          **self.optimizer_kwargs)

    def build_schedule(self, budget_steps: int) -> schedules.Schedule:
        """The lr multiplier for a run of ``budget_steps`` updates (``schedules.build``)."""
        return schedules.build(self.schedule, budget_steps)

    def build(self, model: Any, budget_steps: int) -> tuple[Any, Any]:
        """``(optimizer, lr_scheduler)``; step the scheduler after each ``optimizer.step()``."""
        opt = self.build_optimizer(model)
        return opt, schedules.to_lr_scheduler(opt, self.build_schedule(budget_steps))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; a uniform ``curriculum`` is left out (records keep their form)."""
        d = _jsonable(dataclasses.asdict(self))
        if curriculum.is_uniform(d["curriculum"]):
            del d["curriculum"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResolvedAlgorithm:
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, "resolved algorithm")
        return cls(**d)


# ----------------------------------------------------------------------------------
# the Algorithm spec
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A training algorithm: optimizer + schedule + default hyperparameters + search space.

    Args:
        name: identifier (``adamw-cosine``).
        optimizer: an ``optimizers`` registry name or ``module:Class``.
        optimizer_kwargs: fixed kwargs (``betas``, ``momentum``, ``eps``...); ``beta1`` style
            keys are converted to ``betas``.
        lr: peak learning rate.
        weight_decay: default weight decay (weights only).
        schedule: schedule spec dict (or string ``"cosine:warmup=0.05"``); warm-up lives here.
        batch_size: ``None`` means the workload's default.
        label_smoothing: for classification workloads.
        grad_clip: global-norm clipping threshold, ``None`` for none.
        search_space: hyperparameter name -> ``LogUniform``/``Uniform``/``Choice``
            (or its JSON form); names as in the module docstring.
        description: one line for ``steplab algorithms list``.
        curriculum: the data schedule, a table or spec text (``"easy-to-hard:pacing=root"``;
            :mod:`steplab.algorithms.curriculum`); default uniform.
    """

    name: str
    optimizer: str
    optimizer_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "constant"})
    batch_size: int | None = None
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    search_space: SearchSpace = dataclasses.field(default_factory=dict)
    description: str = ""
    curriculum: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(curriculum.UNIFORM))

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError(f"an algorithm needs a non-empty name, got {self.name!r}")
        who = f"algorithm {self.name!r}"
        if not isinstance(self.description, str):
            raise SpecError(f"{who}: description must be a string")
        _normalize(self, who)
        if not isinstance(self.search_space, Mapping):
            raise SpecError(f"{who}: search_space must be a table, got {self.search_space!r}")
        try:
            space = space_from_dict({ALIASES.get(k, k): v for k, v in self.search_space.items()})
        except SpecError as e:
            raise SpecError(f"{who}: {e}") from None
        object.__setattr__(self, "search_space", space)
        for key, param in space.items():  # every corner of the space must build
            values = param.values if isinstance(param, Choice) else (param.low, param.high)
            for v in values:
                try:
                    self.with_hyperparameters({key: v})
                except SpecError as e:
                    msg = str(e).removeprefix(f"{who}: ")
                    raise SpecError(f"{who}: search space parameter {key!r} = {v!r} is invalid: {msg}") from None

    # -- hyperparameters ------------------------------------------------------------
    def with_hyperparameters(self, hp: Mapping[str, Any]) -> ResolvedAlgorithm:
        """The concrete settings for hyperparameter point ``hp`` (names as in the module
        docstring; AlgoPerf's ``learning_rate``/``warmup_factor`` accepted). Keys not given
        keep this algorithm's values. Raises ``SpecError`` on unknown keys or bad values."""
        who = f"algorithm {self.name!r}"
        fields: dict[str, Any] = {k: getattr(self, k) for k in FIELD_HP}
        sched = dict(self.schedule)
        okw = dict(self.optimizer_kwargs)
        cur = dict(self.curriculum)
        betas: dict[str, Any] = {}
        for raw, v in hp.items():
            key = parse_key(raw)
            if key.kind == "field":
                fields[key.name] = v
            elif key.kind == "warmup":
                sched["warmup"] = v
            elif key.kind == "beta":
                betas[key.name] = v
            elif key.kind == "momentum":
                okw["momentum"] = v
            elif key.table == "schedule" and key.name != "name":
                sched[key.name] = v
            elif key.table == "optimizer":
                okw[key.name] = v
            elif key.table == "curriculum":
                cur = {"name": v} if key.name == "name" else {**cur, key.name: v}
            else:
                raise SpecError(f"{who}: unknown hyperparameter {raw!r}; use one of "
                                f"{', '.join(HYPERPARAMETERS)}, schedule.<key>, optimizer.<key> or curriculum.<key>")
        try:
            from steplab.optim import registry as optimizers

            okw = optimizers.resolve_kwargs(self.optimizer, {**okw, **betas})
        except SpecError as e:
            raise SpecError(f"{who}: {e}") from None
        return ResolvedAlgorithm(self.name, self.optimizer, okw, schedule=sched,
                                 hyperparameters=dict(hp), curriculum=cur, **fields)

    def resolved(self) -> ResolvedAlgorithm:
        """This algorithm's own settings (no hyperparameter changes)."""
        return self.with_hyperparameters({})

    def defaults(self) -> dict[str, Any]:
        """The default hyperparameter point (used by self-tuning and as the tuning centre):
        ``lr``, ``weight_decay``, ``warmup``, ``label_smoothing``, the betas or momentum the
        optimizer has, and the current value of every search-space key. Applying it with
        :meth:`with_hyperparameters` reproduces this algorithm's settings."""
        from steplab.optim import registry as optimizers

        eff = {**optimizers.default_kwargs(self.optimizer), **self.optimizer_kwargs}
        sched = schedules.spec_from(self.schedule).resolved()
        out: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay,
                               "warmup": sched["warmup"], "label_smoothing": self.label_smoothing}
        if "betas" in eff:
            out["beta1"], out["beta2"] = float(eff["betas"][0]), float(eff["betas"][1])
        elif "momentum" in eff:
            out["momentum"] = eff["momentum"]
        beta = {"beta1": out.get("beta1", out.get("momentum")), "beta2": out.get("beta2")}
        keys = {raw: parse_key(raw) for raw in self.search_space}
        for raw, key in keys.items():
            if key.kind == "field":
                out[raw] = getattr(self, key.name)
            elif key.kind == "beta":
                b = beta[key.beta]
                out[raw] = (None if b is None else 1.0 - b) if key.one_minus else b
            elif key.table == "schedule":
                out[raw] = sched.get(key.name)
            elif key.table == "optimizer":
                out[raw] = eff.get(key.name)
            elif key.table == "curriculum":
                out[raw] = curriculum.option_default(self.curriculum, key.name)
            elif key.kind == "momentum":
                out[raw] = eff.get("momentum")
        for key in keys.values():  # the one_minus_ form replaces the plain one
            if key.one_minus:
                out.pop(key.beta, None)
        if "momentum" in out and ("beta1" in self.search_space or "one_minus_beta1" in self.search_space):
            out.pop("momentum")
        return out

    # -- serialization --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``Algorithm.from_dict`` inverts it exactly."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["search_space"] = space_to_dict(self.search_space)
        if curriculum.is_uniform(d["curriculum"]):
            del d["curriculum"]
        return _jsonable(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Algorithm:
        """Build from the dict/TOML form; unknown keys raise ``SpecError``."""
        if not isinstance(d, Mapping):
            raise SpecError(f"an algorithm spec must be a table, got {type(d).__name__}")
        check_keys(d, {f.name for f in dataclasses.fields(cls)}, f"algorithm {d.get('name', '?')!r}")
        for req in ("name", "optimizer"):
            if req not in d:
                raise SpecError(f"algorithm spec needs {req!r} (see examples/algorithms/adamw-cosine.toml)")
        return cls(**dict(d))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_toml(self) -> str:
        """TOML text that ``load_toml``/``from_toml`` (:mod:`steplab.algorithms.specfile`) read back
        to an equal Algorithm."""
        d = self.to_dict()
        lines = []
        for key in ("name", "description", "optimizer", "lr", "weight_decay", "batch_size",
                    "label_smoothing", "grad_clip"):
            if d[key] is not None:
                lines.append(f"{key} = {toml_value(d[key])}")
        for table in ("optimizer_kwargs", "schedule", "search_space", "curriculum"):
            if table not in d:
                continue
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in d[table].items())
        return "\n".join(lines) + "\n"


def check_keys(d: Mapping[str, Any], allowed: set[str], who: str) -> None:
    bad = sorted(set(d) - allowed, key=str)  # str: a Python caller's keys may be anything
    if bad:
        raise SpecError(f"{who}: unknown key {', '.join(map(repr, bad))}; known: {', '.join(sorted(allowed))}")
