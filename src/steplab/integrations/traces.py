"""From outside logs to steplab trials: the part every importer shares.

An importer (TensorBoard, MLflow, CSV) reads named series of ``(step, value, wall time)``
points and hands them to :func:`build_trial`, which checks them (steps strictly increasing,
values numeric, something to import at all) and turns them into one finished trial with its
:class:`~steplab.results.StepRow` and :class:`~steplab.results.EvalRow` rows.
:func:`save_trial` writes it with :meth:`steplab.store.Store.import_trial`, one transaction:
a malformed input raises :class:`~steplab.errors.SourceError` before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from steplab.errors import SourceError
from steplab.results import EvalRow, StepRow, TrialResult, TrialSpec
from steplab.store import Store

__all__ = [
    "TRACE_KEYS",
    "DEFAULT_TAGS",
    "Series",
    "parse_tags",
    "resolve_tags",
    "eval_metric",
    "build_trial",
    "save_trial",
    "param_value",
]

#: trace columns an imported series can fill
TRACE_KEYS: tuple[str, ...] = ("loss", "lr", "grad_norm", "grad_norm_l1", "update_norm")

#: names tried, in order, for a trace column when ``--tags`` does not name it: steplab's own
#: export, the Hugging Face Trainer (``train/loss``, ``train/learning_rate``), Lightning's
#: ``LearningRateMonitor`` (``lr-AdamW``) and common hand-written names
DEFAULT_TAGS: dict[str, tuple[str, ...]] = {
    "loss": ("loss", "train/loss", "train_loss", "training_loss", "train/loss_step", "train_loss_step"),
    "lr": ("lr", "learning_rate", "train/learning_rate", "train/lr", "lr-AdamW", "lr-SGD", "lr-Adam"),
    "grad_norm": ("grad_norm", "train/grad_norm", "grad_norm_l2"),
    "grad_norm_l1": ("grad_norm_l1", "train/grad_norm_l1"),
    "update_norm": ("update_norm", "train/update_norm"),
}

#: the largest step the store's 64-bit integer columns hold
_MAX_STEP = 2**63 - 1

_EVAL_PREFIXES = {"validation": "validation", "val": "validation", "eval": "validation",
                  "valid": "validation", "test": "test"}
_BOOKKEEPING = ("runtime", "samples_per_second", "steps_per_second", "epoch")


@dataclasses.dataclass
class Series:
    """One named series of an outside log, in the order it was logged. ``times`` are wall
    times in seconds (any origin) or ``None`` when the source has none."""

    name: str
    steps: list[int]
    values: list[float]
    times: list[float] | None = None


def parse_tags(text: str | None) -> dict[str, str]:
    """``"loss=train/loss,lr=lr"`` -> ``{"loss": "train/loss", "lr": "lr"}`` (keys from
    :data:`TRACE_KEYS`); ``None`` or ``""`` -> ``{}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, tag = part.partition("=")
        key, tag = key.strip(), tag.strip()
        if not sep or not tag:
            raise SourceError(f"--tags entry {part.strip()!r} is not KEY=TAG: write e.g. loss=train/loss,lr=lr")
        if key not in TRACE_KEYS:
            raise SourceError(f"--tags key {key!r} is unknown: use {', '.join(TRACE_KEYS)}")
        out[key] = tag
    return out


def resolve_tags(available: Sequence[str], tags: Mapping[str, str], where: str) -> dict[str, str]:
    """Which series fills which trace column: every tag named in ``tags`` must exist; the
    other columns take the first of :data:`DEFAULT_TAGS` present. A loss is required."""
    have = set(available)
    shown = ", ".join(t if t.isprintable() else repr(t) for t in sorted(have)[:12]) + (", ..." if len(have) > 12 else "") or "none"
    out: dict[str, str] = {}
    for key in TRACE_KEYS:
        if key in tags:
            if tags[key] not in have:
                raise SourceError(f"{where} has no {tags[key]!r} for {key} (it has: {shown}); fix --tags")
            out[key] = tags[key]
        else:
            found = next((t for t in DEFAULT_TAGS[key] if t in have), None)
            if found is not None:
                out[key] = found
    if "loss" not in out:
        raise SourceError(f"{where} has no training loss series (it has: {shown}); name it with --tags loss=TAG")
    return out


def eval_metric(name: str) -> tuple[str, str] | None:
    """``("validation", "validation/loss")`` for an evaluation series such as ``val_loss``,
    ``eval/loss`` or ``validation/accuracy``; ``None`` for anything else, and for the
    bookkeeping the HF Trainer logs beside its metrics (``eval_runtime``, ...)."""
    for sep in ("/", "_"):
        head, found, rest = name.partition(sep)
        if found and rest and head.lower() in _EVAL_PREFIXES and rest not in _BOOKKEEPING:
            split = _EVAL_PREFIXES[head.lower()]
            return split, f"{split}/{rest}"
    return None


def param_value(text: str) -> Any:
    """A logged parameter string as the number, bool or JSON value it spells, else the string
    (MLflow stores every parameter as text)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):  # not JSON, a number too long, nesting too deep
        return text


def _check(series: Series, source: str, offset: int) -> None:
    if len(series.steps) != len(series.values):
        raise SourceError(f"{source}: {series.name!r} has {len(series.steps)} steps but {len(series.values)} values")
    for i, v in enumerate(series.values):
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise SourceError(f"{source}: {series.name!r} value {v!r} at step {series.steps[i]} is not a number")
    for prev, cur in zip(series.steps, series.steps[1:]):
        if cur <= prev:
            what = "appears twice" if cur == prev else f"comes after step {prev}"
            raise SourceError(
                f"{source}: steps of {series.name!r} are not increasing (step {cur} {what}); "
                "the log holds a restarted or merged run: import one run at a time"
            )
    if series.steps and series.steps[0] + offset < 0:
        raise SourceError(f"{source}: {series.name!r} starts at step {series.steps[0]}; with offset {offset} "
                          "that is negative: pass a larger --offset")
    if series.steps and series.steps[-1] + offset > _MAX_STEP:
        raise SourceError(f"{source}: {series.name!r} reaches step {series.steps[-1]}; with offset {offset} that "
                          "is past 2**63 - 1, the largest step a store holds: fix the steps or --offset")


def build_trial(
    *,
    source: str,
    variant: str,
    columns: Mapping[str, Series],
    evals: Sequence[Series] = (),
    params: Mapping[str, Any] | None = None,
    optimizer: str | None = None,
    origin: dict[str, Any] | None = None,
    offset: int = 0,
    start_time: float | None = None,
) -> tuple[TrialResult, list[StepRow], list[EvalRow]]:
    """Check outside series and turn them into a finished trial with its rows.

    Args:
        source: how the log is named in messages (``"tensorboard log runs/a"``).
        variant: the trial's variant, i.e. where it came from (``tensorboard``, ``mlflow``,
            ``csv``); the workload is ``"user"`` like a :class:`~steplab.training.recorder.Recorder` run.
        columns: trace column (:data:`TRACE_KEYS`) -> series; ``"loss"`` is required.
        evals: evaluation series, named ``split/metric`` (see :func:`eval_metric`).
        params: the run's hyperparameters.
        optimizer: the optimizer's name or class path, so ``steplab refine --norm auto``
            can pick l1 or l2 (without it pass ``--norm``).
        origin: stored in the algorithm spec (path, run id, ...).
        offset: added to every step (e.g. ``-1`` for logs written after the update, as the
            Hugging Face Trainer's ``global_step``).
        start_time: wall time of the run's start; default the earliest time logged.

    Raises:
        SourceError: no loss, an empty log, a non-numeric value, steps not increasing.
    """
    if "loss" not in columns:
        raise SourceError(f"{source}: no training loss series to import")
    unknown = set(columns) - set(TRACE_KEYS)
    if unknown:
        raise SourceError(f"{source}: cannot import {sorted(unknown)}: trace columns are {', '.join(TRACE_KEYS)}")
    everything = [*columns.values(), *evals]
    for s in everything:
        _check(s, source, offset)
    if not columns["loss"].steps:
        raise SourceError(f"{source}: the loss series {columns['loss'].name!r} is empty: nothing to import")
    times = [t for s in everything if s.times for t in s.times]
    t0 = start_time if start_time is not None else (min(times) if times else None)

    def rel(s: Series, i: int) -> float:
        if s.times is None or t0 is None:
            return math.nan
        return float(s.times[i]) - t0

    by_step: dict[int, dict[str, Any]] = {}
    for key, s in columns.items():
        for i, (step, value) in enumerate(zip(s.steps, s.values)):
            row = by_step.setdefault(int(step) + offset, {"time_s": math.nan})
            row[key] = float(value)
            t = rel(s, i)
            if math.isnan(row["time_s"]) or t > row["time_s"]:
                row["time_s"] = t
    rows = [StepRow(step=step, time_s=v["time_s"], lr=v.get("lr"), loss=v.get("loss"),
                    grad_norm=v.get("grad_norm"), grad_norm_l1=v.get("grad_norm_l1"),
                    update_norm=v.get("update_norm"))
            for step, v in sorted(by_step.items())]
    eval_rows: list[EvalRow] = []
    final: dict[str, float] = {}
    for s in evals:
        split, metric = s.name.split("/", 1)[0], s.name
        for i, (step, value) in enumerate(zip(s.steps, s.values)):
            t = rel(s, i)
            eval_rows.append(EvalRow(step=int(step) + offset, time_s=0.0 if math.isnan(t) else t,
                                     split=split, metric=metric, value=float(value)))
        if s.values:
            final[metric] = float(s.values[-1])
    eval_rows.sort(key=lambda r: r.step)
    last_time = max((r.time_s for r in rows if not math.isnan(r.time_s)), default=0.0)
    hp = {str(k): v for k, v in (params or {}).items()}
    algorithm_spec: dict[str, Any] = {"source": variant, **(origin or {})}
    if optimizer:
        algorithm_spec["optimizer"] = optimizer
    spec = TrialSpec(
        workload="user",
        variant=variant,
        algorithm=(optimizer.rsplit(".", 1)[-1].rsplit(":", 1)[-1] if optimizer else "unknown"),
        algorithm_spec=algorithm_spec,
        hyperparameters=hp,
        seed=int(hp["seed"]) if isinstance(hp.get("seed"), int) else 0,
        budget_steps=len(rows),
        stop_at_target=False,
    )
    result = TrialResult(spec=spec, status="budget", steps=len(rows), train_time_s=float(last_time),
                         eval_time_s=0.0, final_metrics=final, message=f"imported from {source}",
                         device="unknown", host=socket.gethostname())
    return result, rows, eval_rows


def save_trial(store: Store, built: tuple[TrialResult, list[StepRow], list[EvalRow]], *,
               name: str | None = None) -> int:
    """Write a :func:`build_trial` result in one transaction and return the trial id."""
    result, rows, evals = built
    return store.import_trial(result, rows, evals, name=name)
