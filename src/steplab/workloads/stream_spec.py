"""The continual streams' specs: the built-in streams, their options and the canonical text
``NAME[+key=value...]`` (``parse_stream("split-digits+replay=0.05")``). The streams
themselves are in :mod:`steplab.workloads.task_stream`; how a stream is trained and
measured in :mod:`steplab.studies.continual`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from steplab.errors import SpecError, WorkloadError

__all__ = ["STREAMS", "StreamInfo", "StreamSpec", "parse_stream", "stream_names"]


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """A built-in stream: its kind, description, and default options."""

    name: str
    kind: str  # "classification", "lm"; long streams (online metrics): "online" or "regression"
    description: str
    defaults: dict[str, Any]


_COMMON = {"steps": 100, "batch": 32, "replay": 0.0, "buffer": 200, "eval_every": 1, "eval_subset": 1000,
           "twin": False}
#: the long streams' options (:mod:`steplab.workloads.long_streams`): ``tasks`` x ``steps`` updates
#: of ``batch`` examples; an MLP of ``depth`` hidden layers of ``width`` ``act`` units; probe
#: metrics on ``probe`` examples of the new task every ``probe_every`` task starts; ``reset`` at
#: task starts
_LONG = {"steps": 100, "batch": 16, "tasks": 200, "data": "digits", "width": 100, "depth": 2, "act": "relu",
         "probe": 1000, "probe_every": 1, "reset": "none", "shrink": 0.4, "noise": 0.1}
STREAMS: dict[str, StreamInfo] = {
    s.name: s
    for s in (
        StreamInfo("split-digits", "classification",
                   "digits in 5 tasks of 2 classes, class-incremental (scenario=task: a head per task)",
                   {**_COMMON, "scenario": "class"}),
        StreamInfo("permuted-digits", "classification", "digits under N pixel permutations, domain-incremental",
                   {**_COMMON, "tasks": 5}),
        StreamInfo("rotated-digits", "classification",
                   "digits rotated by i*angle degrees per task, domain-incremental (tasks=2: dial the angle)",
                   {**_COMMON, "tasks": 5, "angle": None}),
        StreamInfo("charlm-shift", "lm", "char LM continued from Python source to English prose (CPT proxy)",
                   {**_COMMON, "steps": 400, "buffer": "all", "eval_every": 10, "eval_subset": 64}),
        # long streams (loss of plasticity; steplab.workloads.long_streams): online metrics per task
        StreamInfo("input-permuted", "online",
                   "long stream: a new random input permutation per task, online accuracy per task",
                   dict(_LONG)),
        StreamInfo("label-permuted", "online",
                   "long stream: a new random label permutation per task, online accuracy per task",
                   dict(_LONG)),
        StreamInfo("slowly-changing-regression", "regression",
                   "long stream: Dohare et al.'s slowly-changing regression, online MSE per period",
                   {**_LONG, "steps": 10000, "batch": 1, "tasks": 20, "width": 5, "depth": 1, "data": "bits",
                    "flip": "one"}),
    )
}
_KINDS = {"steps": int, "batch": int, "replay": float, "buffer": object, "eval_every": int, "eval_subset": int,
          "twin": bool, "scenario": str, "tasks": int, "angle": float, "width": int, "depth": int, "probe": int,
          "probe_every": int, "data": str, "act": str, "reset": str, "flip": str, "shrink": float, "noise": float}
#: the options of the long streams' data, nets and task-boundary resets
LONG_DATA, LONG_ACTS, LONG_RESETS, LONG_FLIPS = ("digits", "mnist1d"), ("relu", "tanh", "sigmoid", "leaky_relu", "elu"), \
    ("none", "shrink-perturb"), ("one", "all")


def stream_names() -> list[str]:
    """The built-in streams, sorted."""
    return sorted(STREAMS)


def _info(name: str) -> StreamInfo:
    if name not in STREAMS:
        raise WorkloadError(f"unknown stream {name!r}; known: {', '.join(stream_names())}")
    return STREAMS[name]


def _fmt(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else (f"{v:g}" if isinstance(v, float) else str(v))


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """A stream and its options (``parse_stream("split-digits+replay=0.05")``): ``steps``
    per task, ``batch`` size, ``replay`` fraction of each batch, replay ``buffer`` size
    (``"all"``: every earlier example), ``eval_every`` updates, ``eval_subset`` (examples, or
    windows for an LM stream, per task), ``twin``, and per stream ``scenario``, ``tasks``,
    ``angle``. :attr:`key` is the canonical text (options that differ from the defaults)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        info = _info(self.name)
        opts = dict(self.options)
        for key in opts:
            if key not in info.defaults:
                raise SpecError(f"stream {self.name!r} has no option {key!r}; it takes: {', '.join(sorted(info.defaults))}")
        full = {**info.defaults, **opts}
        _validate(self.name, full)
        clean = tuple(sorted((k, v) for k, v in opts.items() if v != info.defaults[k]))
        object.__setattr__(self, "options", clean)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of option ``key`` (the stream's default when not set; ``default`` for an
        option the stream does not have)."""
        return dict(self.options).get(key, STREAMS[self.name].defaults.get(key, default))

    @property
    def kind(self) -> str:
        return STREAMS[self.name].kind

    @property
    def long(self) -> bool:
        """A long stream (online metrics per task, no accuracy matrix)."""
        return self.kind in ("online", "regression")

    @property
    def key(self) -> str:
        return self.name + "".join(f"+{k}={_fmt(v)}" for k, v in self.options)

    @property
    def tasks(self) -> int:
        if self.name == "split-digits":
            return 5
        if self.name == "charlm-shift":
            return 2
        return int(self.get("tasks"))

    @property
    def steps_per_task(self) -> int:
        """The ``steps`` option, times ``STEPLAB_BUDGET_SCALE`` when that is set (rounded to a
        multiple of ``eval_every``, so every task end stays an evaluation)."""
        from steplab.workloads.scale import scaled_steps

        return scaled_steps(int(self.get("steps")), multiple_of=int(self.get("eval_every", 1)))

    @property
    def budget_steps(self) -> int:
        return self.tasks * self.steps_per_task

    def stage_ends(self) -> list[int]:
        """``[B_1, ..., B_T]``: the updates after which each task ends."""
        n = self.steps_per_task
        return [n * (j + 1) for j in range(self.tasks)]

    def with_options(self, **changes: Any) -> StreamSpec:
        """A copy with ``changes`` applied to the options (validated again)."""
        return StreamSpec(self.name, tuple({**dict(self.options), **changes}.items()))


def _validate(name: str, o: dict[str, Any]) -> None:
    where = f"stream {name!r}"
    for key in ("steps", "batch", "eval_every", "eval_subset", "tasks", "width", "depth", "probe", "probe_every"):
        if key in o and (isinstance(o[key], bool) or not isinstance(o[key], int) or o[key] < 1):
            raise SpecError(f"{where}: {key} must be a positive integer, got {o[key]!r}")
    if "tasks" in o and o["tasks"] < 2:
        raise SpecError(f"{where}: tasks must be >= 2 for a continual stream, got {o['tasks']}")
    if "probe" in o:  # a long stream
        _validate_long(name, where, o)
        return
    r = o["replay"]
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r < 1.0:
        raise SpecError(f"{where}: replay is the fraction of each batch from earlier tasks, in [0, 1); got {r!r}")
    b = o["buffer"]
    if b != "all" and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
        raise SpecError(f"{where}: buffer must be a positive number of examples or 'all', got {b!r}")
    if o["steps"] % o["eval_every"]:
        raise SpecError(f"{where}: eval_every ({o['eval_every']}) must divide the steps per task ({o['steps']}) "
                        "so that every task end is an evaluation")
    if not isinstance(o["twin"], bool):
        raise SpecError(f"{where}: twin must be true or false, got {o['twin']!r}")
    if o.get("scenario", "class") not in ("class", "task"):
        raise SpecError(f"{where}: scenario must be class or task, got {o['scenario']!r}")
    a = o.get("angle")
    if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a)):
        raise SpecError(f"{where}: angle must be a number of degrees, got {a!r}")


def _validate_long(name: str, where: str, o: dict[str, Any]) -> None:
    for key, allowed in (("act", LONG_ACTS), ("reset", LONG_RESETS), ("flip", LONG_FLIPS)):
        if o.get(key, allowed[0]) not in allowed:
            raise SpecError(f"{where}: {key} must be one of {', '.join(allowed)}, got {o[key]!r}")
    for key in ("shrink", "noise"):
        v = o[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise SpecError(f"{where}: {key} must be a number >= 0, got {v!r}")
    regression = STREAMS[name].kind == "regression"
    if (o["data"] != "bits") if regression else (o["data"] not in LONG_DATA):
        raise SpecError(f"{where}: data must be {'bits' if regression else ' or '.join(LONG_DATA)}, got {o['data']!r}")


def _value(key: str, text: str, stream: str) -> Any:
    kind = _KINDS.get(key)
    text = text.strip()
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if key == "buffer":
            return "all" if text.lower() == "all" else int(text)
    except ValueError:
        what = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a number or 'all'")
        raise SpecError(f"stream {stream!r}: option {key}={text!r} must be {what}") from None
    return text


def parse_stream(text: str | StreamSpec) -> StreamSpec:
    """``"NAME[+key=value...]"`` (``+twin`` alone means ``twin=true``) -> :class:`StreamSpec`.
    Raises ``WorkloadError`` for an unknown stream, ``SpecError`` for a bad option."""
    if isinstance(text, StreamSpec):
        return text
    name, *parts = [p.strip() for p in str(text).strip().split("+")]
    info = _info(name)
    opts: dict[str, Any] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq:
            if key != "twin":
                raise SpecError(f"stream {name!r}: expected +key=value, got {part!r}")
            value = "true"
        if key not in info.defaults:
            raise SpecError(f"stream {name!r} has no option {key!r}; it takes: {', '.join(sorted(info.defaults))}")
        opts[key] = _value(key, value, name)
    return StreamSpec(name, tuple(opts.items()))

