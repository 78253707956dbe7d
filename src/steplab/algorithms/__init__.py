"""Training algorithms: optimizer + schedule + hyperparameters + search space.

An :class:`Algorithm` is what AlgoPerf calls a submission with its
``tuning_search_space.json`` beside it (mlcommons/algorithmic-efficiency,
``algorithms/paper_baselines/``), as one frozen, JSON- and TOML-round-tripping dataclass
(STYLE.md, "What steplab should take from them", 3). Lengths are never stored: the
schedule is a spec (``{"name": "cosine", "warmup": 0.05}``, warm-up as a fraction of the
run) that :meth:`ResolvedAlgorithm.build` turns into a function for a run's ``total_steps``.

Hyperparameter names (keys of a search space, of :meth:`Algorithm.defaults`, and of
:meth:`Algorithm.with_hyperparameters`):

==========================  =====================================================
``lr``                      peak learning rate (AlgoPerf ``learning_rate``)
``weight_decay``            on weights only (see ``optimizers.param_groups``)
``warmup``                  ``schedule.warmup``, fraction of the run (AlgoPerf ``warmup_factor``)
``beta1``, ``beta2``        ``betas[0]``/``betas[1]``; ``beta1`` is ``momentum`` for SGD-like optimizers
``one_minus_beta1/2``       ``1 - beta`` (log-uniform friendly, AlgoPerf style)
``momentum``                ``optimizer.momentum``
``label_smoothing``         classification workloads only (the train loop ignores it elsewhere)
``grad_clip``, ``batch_size``  the fields of the same name
``schedule.<key>``          any parameter of the schedule (``schedule.decay``)
``optimizer.<key>``         any optimizer kwarg (``optimizer.nesterov``)
==========================  =====================================================

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
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from steplab.optim import optimizers
from steplab import schedules
from steplab.errors import SpecError
from steplab.algorithms.space import Choice, LogUniform, SearchSpace, Uniform, space_from_dict, space_to_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_ALIASES = {"learning_rate": "lr", "warmup_factor": "warmup"}
_FIELD_HP = ("lr", "weight_decay", "label_smoothing", "grad_clip", "batch_size")
_BETA_HP = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2")
HYPERPARAMETERS = (*_FIELD_HP, "warmup", *_BETA_HP, "momentum")


# ----------------------------------------------------------------------------------
# shared validation
# ----------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------
# the resolved form: concrete settings of one trial
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ResolvedAlgorithm:
    """An algorithm with one hyperparameter point applied: everything a trial needs.

    Stored with every trial (``to_dict``); ``build(model, total_steps)`` gives the optimizer
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

    def __post_init__(self) -> None:
        _normalize(self, f"algorithm {self.name!r}")
        object.__setattr__(self, "hyperparameters", _jsonable(dict(self.hyperparameters)))

    def build_optimizer(self, model: Any) -> Any:
        """``optimizers.build_optimizer`` with these settings (train mode where it has one)."""
        return optimizers.build_optimizer(self.optimizer, model, self.lr, weight_decay=self.weight_decay,
                                          **self.optimizer_kwargs)

    def build_schedule(self, total_steps: int) -> schedules.Schedule:
        """The lr multiplier for a run of ``total_steps`` updates (``schedules.build``)."""
        return schedules.build(self.schedule, total_steps)

    def build(self, model: Any, total_steps: int) -> tuple[Any, Any]:
        """``(optimizer, lr_scheduler)``; step the scheduler after each ``optimizer.step()``."""
        opt = self.build_optimizer(model)
        return opt, schedules.to_lr_scheduler(opt, self.build_schedule(total_steps))

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResolvedAlgorithm:
        _check_keys(d, {f.name for f in dataclasses.fields(cls)}, "resolved algorithm")
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
            space = space_from_dict({_ALIASES.get(k, k): v for k, v in self.search_space.items()})
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
        fields: dict[str, Any] = {k: getattr(self, k) for k in _FIELD_HP}
        sched = dict(self.schedule)
        okw = dict(self.optimizer_kwargs)
        betas: dict[str, Any] = {}
        for raw, v in hp.items():
            key = _ALIASES.get(raw, raw)
            if key in _FIELD_HP:
                fields[key] = v
            elif key == "warmup":
                sched["warmup"] = v
            elif key in _BETA_HP:
                betas[key] = v
            elif key == "momentum":
                okw["momentum"] = v
            elif key.startswith("schedule.") and key != "schedule.name" and len(key) > 9:
                sched[key[9:]] = v
            elif key.startswith("optimizer.") and len(key) > 10:
                okw[key[10:]] = v
            else:
                raise SpecError(f"{who}: unknown hyperparameter {raw!r}; use one of "
                                f"{', '.join(HYPERPARAMETERS)}, schedule.<key> or optimizer.<key>")
        try:
            okw = optimizers.resolve_kwargs(self.optimizer, {**okw, **betas})
        except SpecError as e:
            raise SpecError(f"{who}: {e}") from None
        return ResolvedAlgorithm(self.name, self.optimizer, okw, schedule=sched,
                                 hyperparameters=dict(hp), **fields)

    def resolved(self) -> ResolvedAlgorithm:
        """This algorithm's own settings (no hyperparameter changes)."""
        return self.with_hyperparameters({})

    def defaults(self) -> dict[str, Any]:
        """The default hyperparameter point (used by self-tuning and as the tuning centre):
        ``lr``, ``weight_decay``, ``warmup``, ``label_smoothing``, the betas or momentum the
        optimizer has, and the current value of every search-space key. Applying it with
        :meth:`with_hyperparameters` reproduces this algorithm's settings."""
        eff = {**optimizers.default_kwargs(self.optimizer), **self.optimizer_kwargs}
        sched = schedules.spec_from(self.schedule).resolved()
        out: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay,
                               "warmup": sched["warmup"], "label_smoothing": self.label_smoothing}
        if "betas" in eff:
            out["beta1"], out["beta2"] = float(eff["betas"][0]), float(eff["betas"][1])
        elif "momentum" in eff:
            out["momentum"] = eff["momentum"]
        beta = {"beta1": out.get("beta1", out.get("momentum")), "beta2": out.get("beta2")}
        for key in self.search_space:
            if key in _FIELD_HP:
                out[key] = getattr(self, key)
            elif key in ("beta1", "beta2"):
                out[key] = beta[key]
            elif key.startswith("one_minus_"):
                b = beta[key[len("one_minus_"):]]
                out[key] = None if b is None else 1.0 - b
            elif key.startswith("schedule."):
                out[key] = sched.get(key[9:])
            elif key.startswith("optimizer."):
                out[key] = eff.get(key[10:])
            elif key == "momentum":
                out[key] = eff.get("momentum")
        for key in self.search_space:  # the one_minus_ form replaces the plain one
            if key.startswith("one_minus_"):
                out.pop(key[len("one_minus_"):], None)
        if "momentum" in out and ("beta1" in self.search_space or "one_minus_beta1" in self.search_space):
            out.pop("momentum")
        return out

    # -- serialization --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``Algorithm.from_dict`` inverts it exactly."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["search_space"] = space_to_dict(self.search_space)
        return _jsonable(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Algorithm:
        """Build from the dict/TOML form; unknown keys raise ``SpecError``."""
        if not isinstance(d, Mapping):
            raise SpecError(f"an algorithm spec must be a table, got {type(d).__name__}")
        _check_keys(d, {f.name for f in dataclasses.fields(cls)}, f"algorithm {d.get('name', '?')!r}")
        for req in ("name", "optimizer"):
            if req not in d:
                raise SpecError(f"algorithm spec needs {req!r} (see examples/algorithms/adamw-cosine.toml)")
        return cls(**dict(d))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_toml(self) -> str:
        """TOML text that :func:`load_toml`/:func:`from_toml` read back to an equal Algorithm."""
        d = self.to_dict()
        lines = []
        for key in ("name", "description", "optimizer", "lr", "weight_decay", "batch_size",
                    "label_smoothing", "grad_clip"):
            if d[key] is not None:
                lines.append(f"{key} = {_toml_value(d[key])}")
        for table in ("optimizer_kwargs", "schedule", "search_space"):
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d[table].items())
        return "\n".join(lines) + "\n"


def _check_keys(d: Mapping[str, Any], allowed: set[str], who: str) -> None:
    bad = sorted(set(d) - allowed, key=str)  # str: a Python caller's keys may be anything
    if bad:
        raise SpecError(f"{who}: unknown key {', '.join(map(repr, bad))}; known: {', '.join(sorted(allowed))}")


# ----------------------------------------------------------------------------------
# TOML
# ----------------------------------------------------------------------------------
def _toml_string(s: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, but TOML takes non-ASCII characters as
    they are (JSON's surrogate pairs are not TOML) and needs DEL escaped."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else _toml_string(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise SpecError(f"cannot write {v!r} to TOML")


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
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SpecError(f"cannot read algorithm file {os.fspath(path)!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"algorithm file {os.fspath(path)!r} is not UTF-8 text ({e.reason}); save it as UTF-8 TOML") from None
    except ValueError as e:  # a NUL in the path
        raise SpecError(f"cannot open algorithm file {os.fspath(path)!r} ({e}); fix the path") from None
    try:
        return from_toml(text, source=os.fspath(path))
    except SpecError as e:
        msg = str(e)
        raise SpecError(msg if msg.startswith(os.fspath(path)) else f"{os.fspath(path)}: {msg}") from None


# ----------------------------------------------------------------------------------
# --set key=value overrides
# ----------------------------------------------------------------------------------
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
        key = _ALIASES.get(key, key)
        if key in _NULLABLE and isinstance(value, str) and value.lower() in ("none", "null"):
            value = None
        if key in fields:
            d[key] = value
        elif key == "warmup":
            d["schedule"] = {**table("schedule"), "warmup": value}
        elif key in (*_BETA_HP, "momentum"):
            d["optimizer_kwargs"] = {**table("optimizer_kwargs"), key: value}
        elif key.startswith("schedule.") and len(key) > 9:
            sub = key[9:]
            d["schedule"] = {"name": value} if sub == "name" else {**table("schedule"), sub: value}
        elif key.startswith("optimizer.") and len(key) > 10:
            d["optimizer_kwargs"] = {**table("optimizer_kwargs"), key[10:]: value}
        elif key.startswith("search_space.") and len(key) > 13:
            d["search_space"] = {**table("search_space"), key[13:]: value}
        else:
            raise SpecError(f"--set {key if key.isprintable() else repr(key)}: unknown setting; use one of {', '.join(fields)}, warmup, "
                            f"{', '.join(_BETA_HP)}, momentum, schedule.<key>, optimizer.<key>, search_space.<name>")
        if key == "schedule" and isinstance(value, str):
            try:
                d["schedule"] = schedules.spec_from(value).to_dict()
            except SpecError as e:
                raise SpecError(f"--set schedule: {e}") from None
    return Algorithm.from_dict(d)


# ----------------------------------------------------------------------------------
# built-in baselines
# ----------------------------------------------------------------------------------
def _adam_space(lr: tuple[float, float] = (1e-3, 3e-1), wd: tuple[float, float] = (1e-3, 1.0)) -> SearchSpace:
    """AlgoPerf paper-baseline style (``paper_baselines/adamw/tuning_search_space.json``):
    lr log-uniform over 2.5 decades, one_minus_beta1/2 log-uniform, weight decay
    log-uniform, warm-up fraction.

    The lr range is centred on steplab's small workloads, whose tuned AdamW peak lrs run
    from 3e-3 (digits) to 0.4 (teacher-student), see each workload's "How the target was
    set"; AlgoPerf's ranges (1e-4..1e-2) are made for large models. Label smoothing is
    not searched: the train loop does not apply it yet."""
    return {
        "lr": LogUniform(*lr),
        "one_minus_beta1": LogUniform(0.02, 0.3),
        "one_minus_beta2": LogUniform(1e-3, 0.1),
        "weight_decay": LogUniform(*wd),
        "warmup": Uniform(0.0, 0.1),
    }


def _sgd_space(lr: tuple[float, float] = (3e-3, 3.0)) -> SearchSpace:
    """AlgoPerf ``paper_baselines/nesterov`` style: lr over three decades, one_minus_beta1
    (the momentum), small L2 weight decay, warm-up fraction, label smoothing."""
    return {
        "lr": LogUniform(*lr),
        "one_minus_beta1": LogUniform(0.02, 0.5),
        "weight_decay": LogUniform(1e-6, 1e-3),
        "warmup": Uniform(0.0, 0.1),
    }


_ADAMW_KW = {"betas": [0.9, 0.999], "eps": 1e-8}
_COS = {"name": "cosine", "warmup": 0.05}


def _builtins() -> dict[str, Algorithm]:
    no_warmup = {k: v for k, v in _adam_space().items() if k != "warmup"}
    algos = [
        Algorithm("adamw-cosine", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, dict(_COS),
                  search_space=_adam_space(),
                  description="AdamW, 5% linear warm-up, cosine decay to 0 (Loshchilov & Hutter 2017/2019)"),
        Algorithm("adamw-linear", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "linear", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="AdamW, warm-up, linear decay to 0 (Defazio et al. 2023, 'When, why and how much?')"),
        Algorithm("adamw-wsd", "adamw", dict(_ADAMW_KW), 3e-3, 0.05,
                  {"name": "wsd", "warmup": 0.05, "decay": 0.2, "shape": "1-sqrt"},
                  search_space={**_adam_space(), "schedule.decay": Uniform(0.1, 0.4)},
                  description="AdamW, warmup-stable-decay, 1-sqrt cooldown over the last 20% (Hägele et al. 2024)"),
        Algorithm("nadamw-cosine", "nadamw", dict(_ADAMW_KW), 2e-3, 0.05, dict(_COS),
                  search_space={  # AlgoPerf paper_baselines/nadamw/tuning_search_space.json,
                      # with the lr range moved to the small workloads' optima (see _adam_space)
                      "lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(4e-3, 0.1),
                      "beta2": Choice((0.999,)),
                      "warmup": Choice((0.05,)),
                      "weight_decay": LogUniform(5e-3, 1.0),
                  },
                  description="NAdamW + warm-up + cosine, AlgoPerf's strong baseline (Dahl et al. 2023)"),
        Algorithm("sgd-nesterov-cosine", "sgd", {"momentum": 0.9, "nesterov": True}, 0.1, 5e-4, dict(_COS),
                  search_space=_sgd_space(),
                  description="SGD + Nesterov momentum 0.9, L2 5e-4, warm-up, cosine (AlgoPerf nesterov baseline)"),
        Algorithm("sgd-step", "sgd", {"momentum": 0.9}, 0.1, 5e-4,
                  {"name": "step", "milestones": [0.5, 0.75], "gamma": 0.1},
                  search_space={**_sgd_space(), "schedule.gamma": Choice((0.1, 0.2))},
                  description="SGD + momentum 0.9, /10 at 50% and 75% of the run (He et al. 2016)"),
        Algorithm("lion-cosine", "lion", {"betas": [0.9, 0.99]}, 3e-4, 0.5, dict(_COS),
                  search_space={**_adam_space(lr=(1e-4, 3e-2), wd=(1e-2, 3.0)),
                                "one_minus_beta2": LogUniform(3e-3, 0.1)},
                  description="Lion (lr ~10x below AdamW, weight decay ~10x above), warm-up, cosine (Chen et al. 2023)"),
        Algorithm("schedulefree-adamw", "adamw-schedulefree", {"betas": [0.9, 0.999]}, 3e-3, 0.05,
                  {"name": "constant", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="Schedule-Free AdamW, warm-up in the schedule spec, no decay (Defazio et al. 2024)"),
        Algorithm("schedulefree-sgd", "sgd-schedulefree", {"momentum": 0.9}, 0.5, 5e-4,
                  {"name": "constant", "warmup": 0.05},
                  search_space=_sgd_space(lr=(1e-2, 10.0)),
                  description="Schedule-Free SGD (lr ~10x classical SGD), warm-up, no decay (Defazio et al. 2024)"),
        Algorithm("prodigy", "prodigy", {"betas": [0.9, 0.999], "safeguard_warmup": True}, 1.0, 0.01, dict(_COS),
                  search_space={"lr": LogUniform(0.1, 10.0), "weight_decay": LogUniform(1e-3, 0.5),
                                "warmup": Uniform(0.0, 0.1)},
                  description="Prodigy (lr=1 scales its estimated step), warm-up, cosine (Mishchenko & Defazio 2024)"),
        Algorithm("dog", "dog", {}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.3, 3.0), "optimizer.reps_rel": LogUniform(1e-8, 1e-4)},
                  description="DoG parameter-free step size (lr=1), evaluated at the polynomial-decay average (Ivgi et al. 2023)"),
        Algorithm("adamw-rex", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "rex", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="AdamW, warm-up, REX decay (Chen et al. 2022)"),
        Algorithm("adamw-onecycle", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "onecycle", "pct_start": 0.3},
                  search_space={**no_warmup, "schedule.pct_start": Uniform(0.1, 0.5)},
                  description="AdamW, one-cycle lr (30% rise, cosine anneal; momentum not cycled) (Smith & Topin 2017)"),
        # Polyak-type steps (steplab.optim.polyak): lr is the cap of the adaptive step, the schedule
        # scales the cap; f* = 0 (a lower bound of every built-in loss)
        Algorithm("sps", "sps", {"c": 0.5, "f_star": 0.0}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.03, 10.0), "optimizer.c": Uniform(0.2, 1.0)},
                  description="SPS_max: stochastic Polyak step (f*=0, c=1/2) capped at lr (Loizou et al. 2021)"),
        Algorithm("momo", "momo", {"momentum": 0.9, "online_f_star": True}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.1, 10.0), "one_minus_beta1": LogUniform(0.02, 0.3)},
                  description="MoMo: momentum model + Polyak step, f* estimated online, capped at lr (Schaipp et al. 2023)"),
        Algorithm("polyak-momentum", "alr-smag", {"momentum": 0.9, "c": 1.0}, 0.3, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.01, 3.0), "one_minus_beta1": LogUniform(0.02, 0.3)},
                  description="ALR-SMAG: generalized Polyak step along heavy-ball momentum, capped at lr (Wang et al. 2023)"),
        # the strongest baselines (matrix preconditioners, pytorch-optimizer; see optimizers.py)
        Algorithm("shampoo-cosine", "shampoo", {"betas": [0.9, 0.99]}, 3e-3, 0.05, dict(_COS),
                  search_space={  # AlgoPerf paper_baselines/shampoo/tuning_search_space.json (lr
                      # 1e-4..1e-2, one_minus_beta1 1e-2..0.15, beta2 fixed, warm-up 5%, weight
                      # decay 5e-3..1), lr moved to the small workloads' optima (see _adam_space);
                      # beta2 0.99, not AlgoPerf's 0.999: pytorch-optimizer's RMSProp graft has no
                      # bias correction, so 0.999 inflates the first few hundred steps ~3-30x
                      "lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(1e-2, 0.15),
                      "beta2": Choice((0.99,)),
                      "warmup": Choice((0.05,)),
                      "weight_decay": LogUniform(5e-3, 1.0),
                  },
                  description="Shampoo (RMSProp-grafted, preconditioner every 5 steps), warm-up, cosine "
                              "(Gupta et al. 2018; AlgoPerf 2024 leader: Shi et al. 2023)"),
        Algorithm("soap-cosine", "soap", {"betas": [0.95, 0.95], "precondition_frequency": 10}, 3e-3, 0.01, dict(_COS),
                  # Vyas et al. 2024's defaults (betas 0.95/0.95, eigenbasis refreshed every 10
                  # steps, lr 3e-3, weight decay 0.01); the space is steplab's Adam space
                  search_space=_adam_space(),
                  description="SOAP (Adam in Shampoo's eigenbasis), warm-up, cosine (Vyas et al. 2024)"),
        Algorithm("muon-cosine", "muon", {"momentum": 0.95, "nesterov": True, "adamw_lr": 3e-3}, 0.02, 0.01, dict(_COS),
                  search_space={  # Muon's lr 0.02 (Jordan et al. 2024; modded-nanogpt uses 0.05)
                      # +- about a decade; momentum 0.8..0.98 (modded-nanogpt warms 0.85 -> 0.95);
                      # the AdamW part over steplab's Adam lr range (_adam_space)
                      "lr": LogUniform(3e-3, 0.3),
                      "optimizer.adamw_lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(0.02, 0.2),
                      "weight_decay": LogUniform(1e-3, 0.3),
                      "warmup": Uniform(0.0, 0.1),
                  },
                  description="Muon on hidden matrices + AdamW (adamw_lr) on the rest, warm-up, cosine "
                              "(Jordan et al. 2024)"),
    ]
    return {a.name: a for a in algos}


_BUILTINS: dict[str, Algorithm] | None = None


def builtins() -> dict[str, Algorithm]:
    """The built-in baselines by name (built once)."""
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = _builtins()
    return dict(_BUILTINS)


def algorithm_names() -> list[str]:
    """Built-in algorithm names, sorted."""
    return sorted(builtins())


def get_algorithm(name_or_path: str | os.PathLike[str]) -> Algorithm:
    """A built-in algorithm by name, or one read from a ``.toml`` file."""
    text = os.fspath(name_or_path)
    key = text.strip().lower().replace("_", "-")
    known = builtins()
    if key in known:
        return known[key]
    if text.endswith(".toml") or os.path.sep in text or os.path.exists(text):
        return load_toml(text)
    raise SpecError(f"unknown algorithm {text!r}; known: {', '.join(sorted(known))}, "
                    f"or a path to a .toml file (see `steplab algorithms list`)")


__all__ = [
    "HYPERPARAMETERS",
    "Algorithm",
    "ResolvedAlgorithm",
    "algorithm_names",
    "apply_overrides",
    "builtins",
    "from_toml",
    "get_algorithm",
    "load_toml",
    "space_from_dict",
    "space_to_dict",
]
