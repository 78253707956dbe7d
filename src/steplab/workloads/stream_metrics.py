"""Continual-evaluation metrics, written out (issue 10; no Avalanche dependency).

Notation (``shared/references/continual-and-dynamics.md`` §1-2). Tasks ``i = 1..T`` are
trained one after the other; task ``i`` trains updates ``B_{i-1} <= k < B_i`` (``B_0 = 0``),
so an evaluation *after* ``t`` updates with ``B_{i-1} < t <= B_i`` happens while task ``i``
trains (``k(t) = i``). ``a_i(t)`` is the value on task ``i``'s fixed evaluation subset after
``t`` updates: the accuracy, or the *negative* loss for language-model streams, so that
higher is always better. ``R[j, i] = a_i(B_j)`` for ``j = 1..T``, and row 0 holds
``b_i = a_i(0)``, the evaluation before any training. In code tasks are 0-based
(``task0`` is task 1) and ``R`` is a ``(T + 1) x T`` array whose row ``j`` is ``R[j, .]``.

* ACC, BWT, FWT -- Lopez-Paz & Ranzato 2017 ("Gradient Episodic Memory for Continual
  Learning", NeurIPS, §5): ``ACC = (1/T) sum_i R[T, i]``,
  ``BWT = (1/(T-1)) sum_{i<T} (R[T, i] - R[i, i])``,
  ``FWT = (1/(T-1)) sum_{i>1} (R[i-1, i] - b_i)``.
* forgetting -- Chaudhry et al. 2018 ("Riemannian Walk for Incremental Learning", ECCV,
  §4.1, eq. 1-2): ``f_j = max_{l in 1..T-1} R[l, j] - R[T, j]``, averaged over ``j < T``.
  The variant measured from the accuracy right after learning,
  ``mean_{j<T} (R[j, j] - R[T, j]) = -BWT`` (what Avalanche's ``StreamForgetting`` reports),
  is :func:`forgetting_since_learned`, a different number whenever a task improves later.
* min-ACC, WC-ACC, WF^w, WP^w -- De Lange, van de Ven & Tuytelaars 2023 ("Continual
  evaluation for lifelong learning: Identifying the stability gap", ICLR, §3 and eq. 1-4;
  semantics checked against their ``src/eval/continual_eval_metrics.py``):
  ``min-ACC_k = (1/(k-1)) sum_{i<k} min_{B_i < t <= B_k} a_i(t)`` (the worst value of each
  earlier task while later tasks train; evaluations during task ``i`` itself excluded),
  ``WC-ACC(t) = (1/k) a_k(t) + (1 - 1/k) min-ACC_k(t)`` while task ``k`` trains (``a_1(t)``
  for ``k = 1``); ``WF^w_i = max_t max_{t1 < t2 in the last w evaluations} (a_i(t1) - a_i(t2))``
  (0 when it never drops), ``WP^w_i`` the same with the rise ``a_i(t2) - a_i(t1)``, each
  averaged over tasks, over the evaluations where the task was seen (``t > B_{i-1}``).
  ``w`` counts *evaluations*, not updates: with ``eval_every > 1`` a window spans more
  updates, and sparser evaluation can only miss dips (min-ACC biased up, WF down), so these
  numbers are comparable only at the same ``eval_every`` and subset size.
* stability gap after a stage switch (the transient of continual pre-training; Guo et al.
  2024, "Efficient Continual Pre-training by Mitigating the Stability Gap", arXiv
  2406.14833): for every switch ``s = B_{j-1}`` and earlier task ``i < j``, the height
  ``h = a_i(s) - min_{s < t <= B_j} a_i(t)`` (for an LM stream: the rise of the old domain's
  loss) and the duration, the updates from the switch until ``a_i`` is back above
  ``a_i(s) - h/2`` after its minimum (censored at the stage end when it never is; see
  :class:`Gap`).

They live with the workloads, below the analyses, because the ``stream`` workload reports
them at its last evaluation (its target is ``continual/acc``); the analyses read them from
the traces like any other metric.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "Gap",
    "History",
    "accuracy_matrix",
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forgetting_since_learned",
    "forward_transfer",
    "min_accuracy",
    "stability_gaps",
    "summarize",
    "windowed_forgetting",
    "windowed_plasticity",
    "worst_case_accuracy",
]

#: the window sizes (in evaluations) of the stability-gap paper's released code
WINDOWS = (10, 100)


@dataclasses.dataclass
class History:
    """The curves ``a_i(t)`` of one continual run: ``stage_ends = [B_1, ..., B_T]`` and,
    per 0-based task, ``(t, value)`` for every evaluation of that task in step order
    (evaluations of a task not yet seen included: the row-0 ``b_i`` and the ``R[i-1, i]`` of
    forward transfer). Higher values are better (accuracy, or negative loss)."""

    stage_ends: list[int]
    curves: dict[int, list[tuple[int, float]]] = dataclasses.field(default_factory=dict)

    @property
    def tasks(self) -> int:
        return len(self.stage_ends)

    def add(self, step: int, values: Mapping[int, float]) -> None:
        """Record ``a_i(step) = values[i]`` for the tasks evaluated after ``step`` updates."""
        for task, value in values.items():
            self.curves.setdefault(int(task), []).append((int(step), float(value)))

    def stage_of(self, step: int) -> int:
        """0-based task trained by update ``step - 1``, i.e. ``k(t) - 1`` for an evaluation
        after ``step`` updates; -1 for ``step = 0``."""
        if step <= 0:
            return -1
        for j, end in enumerate(self.stage_ends):
            if step <= end:
                return j
        return self.tasks - 1

    def start(self, task: int) -> int:
        """``B_{i-1}``: updates done when 0-based ``task`` starts training."""
        return 0 if task == 0 else self.stage_ends[task - 1]

    def value(self, task: int, step: int) -> float:
        """``a_task(step)``, NaN when that evaluation was not made (the last one wins)."""
        found = [v for t, v in self.curves.get(task, []) if t == step]
        return found[-1] if found else math.nan

    def seen(self, task: int, until: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Steps and values of ``task``'s evaluations after it started training
        (``B_{i-1} < t``, and ``t <= until`` when given)."""
        pts = [(t, v) for t, v in self.curves.get(task, [])
               if t > self.start(task) and (until is None or t <= until)]
        return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)

    @property
    def last_step(self) -> int:
        return max((t for c in self.curves.values() for t, _ in c), default=0)


# ----------------------------------------------------------------------------------
# the accuracy matrix and the end-of-task metrics
# ----------------------------------------------------------------------------------
def accuracy_matrix(history: History) -> np.ndarray:
    """``R`` as a ``(T + 1) x T`` array: row 0 = ``b_i = a_i(0)``, row ``j`` = ``a_i(B_j)``;
    NaN where that evaluation is missing."""
    rows = [0, *history.stage_ends]
    return np.array([[history.value(i, t) for i in range(history.tasks)] for t in rows], dtype=np.float64)


def _check(r: np.ndarray) -> tuple[np.ndarray, int]:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] + 1:
        raise ValueError(f"R must be (T + 1) x T (row 0 = before training), got shape {r.shape}")
    return r, r.shape[1]


def average_accuracy(r: np.ndarray) -> float:
    """ACC ``= (1/T) sum_i R[T, i]`` (Lopez-Paz & Ranzato 2017, §5)."""
    r, t = _check(r)
    return float(np.mean(r[t]))


def backward_transfer(r: np.ndarray) -> float:
    """BWT ``= (1/(T-1)) sum_{i<T} (R[T, i] - R[i, i])`` (Lopez-Paz & Ranzato 2017, §5);
    negative means forgetting, NaN for one task."""
    r, t = _check(r)
    if t < 2:
        return math.nan
    return float(np.mean([r[t, i] - r[i + 1, i] for i in range(t - 1)]))


def forward_transfer(r: np.ndarray) -> float:
    """FWT ``= (1/(T-1)) sum_{i>1} (R[i-1, i] - b_i)`` (Lopez-Paz & Ranzato 2017, §5): the
    value on a task just before training it, over the untrained model's ``b_i`` (row 0).
    About 0 by construction in class-incremental streams (unseen classes)."""
    r, t = _check(r)
    if t < 2:
        return math.nan
    return float(np.mean([r[i, i] - r[0, i] for i in range(1, t)]))


def forgetting(r: np.ndarray) -> float:
    """Average forgetting (Chaudhry et al. 2018, eq. 1-2):
    ``f_j = max_{l in 1..T-1} R[l, j] - R[T, j]``, averaged over ``j < T``; NaN for one task."""
    r, t = _check(r)
    if t < 2:
        return math.nan
    return float(np.mean([np.max(r[1:t, j]) - r[t, j] for j in range(t - 1)]))


def forgetting_since_learned(r: np.ndarray) -> float:
    """``mean_{j<T} (R[j, j] - R[T, j])``: the drop from the value right after learning each
    task (Avalanche's ``StreamForgetting``; equals ``-BWT``). Unlike :func:`forgetting`, a
    task that improved after it was learned and then fell back shows less forgetting."""
    r, t = _check(r)
    if t < 2:
        return math.nan
    return float(np.mean([r[j + 1, j] - r[t, j] for j in range(t - 1)]))


# ----------------------------------------------------------------------------------
# continual evaluation (De Lange et al. 2023)
# ----------------------------------------------------------------------------------
def min_accuracy(history: History, at: int | None = None) -> float:
    """min-ACC after ``at`` updates (default: the last evaluation): the mean over tasks
    ``i < k(at)`` of ``min_{B_i < t <= at} a_i(t)``; NaN while the first task trains."""
    at = history.last_step if at is None else at
    k = history.stage_of(at)
    mins = []
    for i in range(k):
        steps, values = history.seen(i, until=at)
        later = values[steps > history.stage_ends[i]]
        if len(later):
            mins.append(float(np.min(later)))
    return float(np.mean(mins)) if mins else math.nan


def worst_case_accuracy(history: History, at: int | None = None) -> float:
    """WC-ACC ``= (1/k) a_k(at) + (1 - 1/k) min-ACC_k(at)`` while task ``k`` trains
    (``a_1(at)`` for ``k = 1``), De Lange et al. 2023, eq. 4."""
    at = history.last_step if at is None else at
    k = history.stage_of(at) + 1
    current = history.value(k - 1, at)
    if k <= 1:
        return current
    return current / k + (1.0 - 1.0 / k) * min_accuracy(history, at)


def _window_extreme(values: np.ndarray, window: int, *, drop: bool) -> float:
    v = np.asarray(values, dtype=np.float64)
    if window < 2 or len(v) < 2:
        return 0.0
    fill = -np.inf if drop else np.inf
    padded = np.concatenate([np.full(window - 1, fill), v])
    wins = np.lib.stride_tricks.sliding_window_view(padded, window)[:, :-1]  # up to w-1 earlier values
    if drop:
        change = np.max(wins, axis=1) - v
    else:
        change = v - np.min(wins, axis=1)
    change = change[np.isfinite(change)]
    return float(max(0.0, np.max(change))) if len(change) else 0.0


def windowed_forgetting(values: Sequence[float] | np.ndarray, window: int) -> float:
    """``WF^w`` of one task's series of evaluations: the largest drop
    ``a(t1) - a(t2)``, ``t1 < t2``, within any ``window`` consecutive evaluations; 0 when
    it never drops (De Lange et al. 2023, eq. 3).

    >>> windowed_forgetting([0.9, 0.5, 0.8, 0.2], 2)
    0.6000000000000001
    """
    return _window_extreme(np.asarray(values), window, drop=True)


def windowed_plasticity(values: Sequence[float] | np.ndarray, window: int) -> float:
    """``WP^w``: the largest rise ``a(t2) - a(t1)``, ``t1 < t2``, within any ``window``
    consecutive evaluations (De Lange et al. 2023, the plasticity twin of WF)."""
    return _window_extreme(np.asarray(values), window, drop=False)


@dataclasses.dataclass(frozen=True)
class Gap:
    """The dip of ``task`` after the switch to 0-based stage ``stage`` at update ``switch``:
    ``height = a(switch) - min a`` over the stage (>= 0); ``steps`` = updates from the switch
    until ``a`` is back at or above ``a(switch) - height / 2`` after the minimum, or to the
    stage end when it never is (``recovered`` False): a lasting loss, not a transient."""

    stage: int
    task: int
    switch: int
    height: float
    steps: int
    recovered: bool


def stability_gaps(history: History) -> list[Gap]:
    """One :class:`Gap` per stage switch and earlier task (needs the evaluation at each
    switch, which :func:`steplab.studies.continual.run_continual` always makes)."""
    out = []
    for j in range(1, history.tasks):
        switch, end = history.stage_ends[j - 1], history.stage_ends[j]
        for i in range(j):
            pre = history.value(i, switch)
            pts = [(t, v) for t, v in history.curves.get(i, []) if switch < t <= end]
            if not pts or not math.isfinite(pre):
                continue
            values = np.array([v for _, v in pts])
            m = int(np.argmin(values))
            height = max(0.0, pre - float(values[m]))
            if height == 0.0:
                out.append(Gap(j, i, switch, 0.0, 0, True))
                continue
            half = pre - height / 2.0
            back = next((t for t, v in pts[m:] if v >= half), None)
            steps = (back if back is not None else end) - switch
            out.append(Gap(j, i, switch, height, int(steps), back is not None))
    return out


def summarize(history: History) -> dict[str, float]:
    """Every metric of the module, named ``continual/...`` (stored in a trial's final
    metrics): ``acc``, ``bwt``, ``fwt``, ``forgetting`` (Chaudhry), ``forgetting_since_learned``,
    ``min_acc``, ``wc_acc``, ``wf10``/``wf100``, ``wp10``/``wp100``, ``gap_height`` (mean
    over every switch and earlier task, 0 where nothing was lost), ``gap_steps`` and
    ``gap_recovered`` (the share that came back half-way), both over the dips (height > 0)."""
    r = accuracy_matrix(history)
    out = {
        "continual/acc": average_accuracy(r),
        "continual/bwt": backward_transfer(r),
        "continual/fwt": forward_transfer(r),
        "continual/forgetting": forgetting(r),
        "continual/forgetting_since_learned": forgetting_since_learned(r),
        "continual/min_acc": min_accuracy(history),
        "continual/wc_acc": worst_case_accuracy(history),
    }
    series = [history.seen(i)[1] for i in range(history.tasks)]
    for w in WINDOWS:
        out[f"continual/wf{w}"] = _mean(windowed_forgetting(s, w) for s in series if len(s))
        out[f"continual/wp{w}"] = _mean(windowed_plasticity(s, w) for s in series if len(s))
    gaps = stability_gaps(history)
    dips = [g for g in gaps if g.height > 0]
    out["continual/gap_height"] = _mean(g.height for g in gaps)
    out["continual/gap_steps"] = _mean(float(g.steps) for g in dips)
    out["continual/gap_recovered"] = _mean(float(g.recovered) for g in dips)
    return out


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan
