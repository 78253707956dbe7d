"""The monitors of a stored run, read back from its trace (issue 23; ``steplab dynamics``).

Monitors (:mod:`steplab.monitors`) are recorded as evaluation metrics ``dynamics/...``.
:func:`dynamics_trace` lines them up by step with the learning rate the run used there and
the stability thresholds beside the sharpness: ``2/lr`` for gradient descent (Cohen et al.
2021, "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability") and,
for Adam's preconditioned sharpness, ``(2 + 2 beta1) / ((1 - beta1) lr)`` (38/lr for beta1 =
0.9; Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of Stability"). A threshold the
monitor recorded itself (it knows the optimizer: momentum, Nesterov) is kept; otherwise the
plain ``2/lr`` is derived from the lr. :func:`grokking_summary` reads the grokking delay the
``grokking`` monitor recorded (Power et al. 2022; Doshi et al. 2023).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PREFIX = "dynamics/"
#: per-monitor bookkeeping left out of the table (kept in ``--json``)
BOOKKEEPING = ("/cost_s", "/hvps", "/batch_size")


@dataclasses.dataclass
class DynamicsTrace:
    """The monitors of one run by measurement step."""

    steps: list[int]
    #: the learning rate of the update taken at each step (the last one's after the end)
    lr: list[float]
    #: metric without the ``dynamics/`` prefix -> values at :attr:`steps` (NaN: not measured)
    values: dict[str, list[float]]

    @property
    def empty(self) -> bool:
        return not self.steps

    def columns(self, *, bookkeeping: bool = False) -> list[str]:
        """The metrics in display order: each value followed by its ``/threshold``; the cost
        columns only with ``bookkeeping``."""
        names = [k for k in self.values if bookkeeping or not k.endswith(BOOKKEEPING)]
        if not bookkeeping:  # an alias (gns/critical_batch = gns/b_simple) once
            names = [k for i, k in enumerate(names)
                     if not any(_same(self.values[k], self.values[j]) for j in names[:i])]
        ordered: list[str] = []
        for name in names:
            if name.endswith("/threshold") and name[: -len("/threshold")] in names:
                continue
            ordered.append(name)
            if f"{name}/threshold" in names:
                ordered.append(f"{name}/threshold")
        return ordered

    def rows(self, *, bookkeeping: bool = True) -> list[dict[str, Any]]:
        """One mapping per measurement step: ``step``, ``lr`` and every column."""
        cols = self.columns(bookkeeping=bookkeeping)
        return [{"step": s, "lr": lr, **{c: self.values[c][i] for c in cols}}
                for i, (s, lr) in enumerate(zip(self.steps, self.lr, strict=True))]


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def lr_at(step_trace: Mapping[str, np.ndarray], steps: Sequence[int]) -> list[float]:
    """The learning rate of the update taken at each of ``steps`` (the rate the run was at when
    it was measured): the row with that step, else the nearest earlier row (a measurement
    after the last update takes the last rate); NaN without any."""
    have = np.asarray(step_trace.get("step", []), dtype=np.int64)
    lrs = np.asarray(step_trace.get("lr", []), dtype=np.float64)
    out = []
    for s in steps:
        i = int(np.searchsorted(have, s, side="right")) - 1
        out.append(float(lrs[i]) if len(have) and i >= 0 else (float(lrs[0]) if len(lrs) else math.nan))
    return out


def dynamics_trace(evals: Sequence[Any], step_trace: Mapping[str, np.ndarray]) -> DynamicsTrace:
    """The ``dynamics/...`` evaluation rows of a run (``EvalRow``s), by step, with the lr and
    a ``sharpness/threshold`` of ``2/lr`` where the monitor recorded none."""
    rows = [e for e in evals if e.metric.startswith(PREFIX)]
    steps = sorted({int(e.step) for e in rows})
    index = {s: i for i, s in enumerate(steps)}
    values: dict[str, list[float]] = {}
    for e in rows:
        name = e.metric[len(PREFIX):]
        values.setdefault(name, [math.nan] * len(steps))[index[int(e.step)]] = float(e.value)
    lr = lr_at(step_trace, steps)
    if "sharpness" in values:
        derived = [2.0 / x if x and math.isfinite(x) and x > 0 else math.nan for x in lr]
        recorded = values.get("sharpness/threshold", [math.nan] * len(steps))
        values["sharpness/threshold"] = [r if math.isfinite(r) else d for r, d in zip(recorded, derived, strict=True)]
    return DynamicsTrace(steps, lr, values)


def edge_ratio(trace: DynamicsTrace, *, metric: str = "sharpness", after: float = 0.5) -> float:
    """The median of ``metric / metric/threshold`` over the measurements past the fraction
    ``after`` of the run (Cohen et al. 2021: at the edge of stability ~1); NaN without them."""
    value, limit = trace.values.get(metric), trace.values.get(f"{metric}/threshold")
    if not value or not limit or not trace.steps:
        return math.nan
    start = trace.steps[0] + after * (trace.steps[-1] - trace.steps[0])
    ratios = [v / t for s, v, t in zip(trace.steps, value, limit, strict=True)
              if s >= start and math.isfinite(v) and math.isfinite(t) and t > 0]
    return float(np.median(ratios)) if ratios else math.nan


def last_value(values: Sequence[float]) -> float:
    """The last finite value of ``values``; ``inf`` when there is none."""
    finite = [v for v in values if math.isfinite(v)]
    return finite[-1] if finite else math.inf


def grokking_summary(trace: DynamicsTrace) -> dict[str, float] | None:
    """``{"fit_step", "generalize_step", "delay"}`` as the ``grokking`` monitor recorded them
    (the first measured steps at which the training and the validation accuracy reached its
    threshold, and their difference; Power et al. 2022), ``inf`` for one not reached; None
    when the run did not record training accuracy."""
    if "grokking/train_accuracy" not in trace.values:
        return None
    return {k: last_value(trace.values.get(f"grokking/{k}", [])) for k in ("fit_step", "generalize_step", "delay")}
