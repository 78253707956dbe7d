"""The AutoLRS settings, stage plan and record (see :mod:`steplab.studies.autolr`): what a run
decided and measured, JSON round-tripping, and the emergent schedule built from it."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steplab.algorithms import Algorithm, ResolvedAlgorithm
from steplab.algorithms.space import LogUniform, Uniform
from steplab.errors import SpecError, read_text_file
from steplab.store import Store


@dataclasses.dataclass(frozen=True)
class AutoLRSConfig:
    """How AutoLRS searches (defaults: the paper's, scaled to steplab's short budgets)."""

    #: length of the first stage in steps; None: ``max(40, budget_steps // 15)`` (with doubling to
    #: ``8 tau`` that is 4-5 stages; the reference starts at 1000 of ~10^5 steps)
    tau: int | None = None
    #: the longest stage; None: ``8 * tau`` (reference: 1000 -> 8000)
    tau_max: int | None = None
    #: candidate LRs per stage (``k``, 10 in the paper)
    candidates: int = 10
    #: exploration length as a fraction of the stage length (``tau' = tau / 10``)
    explore_frac: float = 0.1
    #: at least this many exploration steps, so the 3-parameter model has points to fit
    min_explore_steps: int = 4
    #: validation evaluations per exploration (the reference: every ``tau' / 16`` steps)
    loss_points: int = 16
    #: BO range of the LR; None: from the algorithm's search space (:func:`default_lr_range`)
    lr_min: float | None = None
    lr_max: float | None = None
    #: random (independent) candidates before the GP takes over (Optuna ``n_startup_trials``;
    #: the reference uses 1)
    startup_candidates: int = 3

    def __post_init__(self) -> None:
        for key in ("tau", "tau_max"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise SpecError(f"autolrs: {key} must be a positive integer, got {v!r}")
        if self.tau is not None and self.tau_max is not None and self.tau_max < self.tau:
            raise SpecError(f"autolrs: tau_max ({self.tau_max}) must be >= tau ({self.tau})")
        for key in ("candidates", "min_explore_steps", "loss_points", "startup_candidates"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"autolrs: {key} must be an integer >= 1, got {v!r}")
        if self.min_explore_steps < 2:
            raise SpecError("autolrs: min_explore_steps must be >= 2 (the fit needs 3 points with the start)")
        if not (isinstance(self.explore_frac, (int, float)) and 0 < self.explore_frac <= 1):
            raise SpecError(f"autolrs: explore_frac must be in (0, 1], got {self.explore_frac!r}")
        for key in ("lr_min", "lr_max"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v) or v <= 0):
                raise SpecError(f"autolrs: {key} must be a finite number > 0, got {v!r}")
        if self.lr_min is not None and self.lr_max is not None and self.lr_min >= self.lr_max:
            raise SpecError(f"autolrs: lr_min ({self.lr_min:g}) must be below lr_max ({self.lr_max:g})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan_stages(budget_steps: int, tau: int, tau_max: int) -> list[int]:
    """Stage lengths: ``tau, 2 tau, 4 tau, ...`` capped at ``tau_max`` (the reference doubles
    ``tau`` after each stage while ``tau' < tau_max / 10``), cut to sum to ``budget_steps``; a
    last piece shorter than ``tau / 2`` joins the stage before it.

    >>> plan_stages(400, 25, 200)
    [25, 50, 100, 200, 25]
    >>> plan_stages(100, 40, 320)
    [40, 60]
    >>> plan_stages(500, 71, 568)
    [71, 142, 287]
    """
    if budget_steps < 1 or tau < 1 or tau_max < tau:
        raise SpecError(f"plan_stages needs budget_steps >= 1 and 1 <= tau <= tau_max, got {budget_steps}, {tau}, {tau_max}")
    out: list[int] = []
    length, left = tau, budget_steps
    while left > 0:
        n = min(length, left)
        out.append(n)
        left -= n
        length = min(2 * length, tau_max)
    if len(out) > 1 and out[-1] < tau / 2:
        last = out.pop()  # (``out[-2] += out.pop()`` would add to the wrong stage)
        out[-1] += last
    return out


@dataclasses.dataclass
class Candidate:
    """One LR tried at a stage start: its exploration curve, fit and BO objective."""

    lr: float
    multiplier: float
    #: (step within the stage, validation loss), starting with (0, the stage's start value)
    observed: list[tuple[int, float]]
    #: the model's loss after the stage's full length (NaN when not fitted)
    predicted: float
    #: what BO was told (the prediction, or the rules for rising and diverged curves)
    objective: float
    status: str = "ok"  # ok | rising | diverged
    fit: dict[str, float] | None = None


@dataclasses.dataclass
class Stage:
    """One stage: where it starts, how long it is, what was tried, what was kept."""

    start: int
    steps: int
    explore_steps: int
    start_value: float
    candidates: list[Candidate]
    chosen: int
    search_time_s: float

    @property
    def lr(self) -> float:
        return self.candidates[self.chosen].lr

    @property
    def multiplier(self) -> float:
        return self.candidates[self.chosen].multiplier


@dataclasses.dataclass
class AutoLRSResult:
    """Everything one AutoLRS run decided and measured; JSON round-trips
    (:meth:`to_dict`/:meth:`from_dict`, :meth:`save`/:meth:`load`)."""

    workload: str
    algorithm: dict[str, Any]
    seed: int
    budget_steps: int
    config: dict[str, Any]
    lr_range: tuple[float, float]
    stages: list[Stage]
    status: str
    steps: int
    steps_to_target: float
    time_to_target_s: float
    train_time_s: float
    eval_time_s: float
    search_steps: int
    search_time_s: float
    final_metrics: dict[str, float]
    message: str = ""
    trial_id: int | None = None
    #: the kept run's per-step training losses and LRs (for plots and the replay test)
    losses: list[float] = dataclasses.field(default_factory=list)
    lrs: list[float] = dataclasses.field(default_factory=list)

    @property
    def base_lr(self) -> float:
        return float(self.algorithm["lr"])

    def schedule_spec(self) -> dict[str, Any]:
        """The emergent schedule as a ``piecewise`` spec of multipliers of ``base_lr``.

        Stage ``i`` covering updates ``[s_i, e_i)`` with multiplier ``m_i`` gives the points
        ``[(s_i - 1/4) / T, m_i]`` and ``[(e_i - 3/4) / T, m_i]`` (the first stage starts at
        0): every update of the stage lies strictly between two equal points, so the
        schedule returns ``m_i`` exactly, and no update falls on a jump. ``T`` is the budget
        the stages were planned for; a stopped run holds its last multiplier to the end."""
        t = float(self.budget_steps)
        pts: list[list[float]] = []
        for i, st in enumerate(self.stages):
            begin = 0.0 if i == 0 else (st.start - 0.25) / t
            pts.append([begin, st.multiplier])
            pts.append([(st.start + st.steps - 0.75) / t, st.multiplier])
        return {"name": "piecewise", "points": pts}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lr_range"] = list(self.lr_range)
        return json.loads(json.dumps(d, default=float, allow_nan=True))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AutoLRSResult:
        try:
            stages = [Stage(**{**s, "candidates": [Candidate(**{**c, "observed": [tuple(p) for p in c["observed"]]})
                                                     for c in s["candidates"]]})
                      for s in d["stages"]]
            return cls(**{**d, "stages": stages, "lr_range": tuple(d["lr_range"])})
        except (KeyError, TypeError) as e:
            raise SpecError(f"not an AutoLRS record ({e})") from None

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON (creating the folder)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1))
        return p

    @classmethod
    def load(cls, path: str | Path) -> AutoLRSResult:
        text = read_text_file(path, "AutoLRS record", "give the file `steplab autolr --record` wrote")
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise SpecError(f"AutoLRS record {str(path)!r} is not JSON ({e.msg})") from None
        except (ValueError, RecursionError):  # a number too long, nesting too deep, a record that does not parse
            raise SpecError(f"{str(path)!r} is not an AutoLRS record; give the file `steplab autolr --record` wrote") from None


def default_lr_range(algorithm: Algorithm | ResolvedAlgorithm) -> tuple[float, float]:
    """The LR range BO searches: the algorithm's ``lr`` search-space bounds when it has them
    (an :class:`Algorithm`), else ``lr / 100 .. lr * 10`` around its peak lr."""
    space = getattr(algorithm, "search_space", {}) or {}
    param = space.get("lr")
    if isinstance(param, (LogUniform, Uniform)) and param.low > 0:
        return float(param.low), float(param.high)
    return algorithm.lr / 100.0, algorithm.lr * 10.0


def anneal_tail(spec: Mapping[str, Any], fraction: float = 0.2) -> dict[str, Any]:
    """A ``piecewise`` schedule spec whose last ``fraction`` of the run decays linearly from
    the schedule's value at ``1 - fraction`` to 0: the cooldown of WSD schedules (Hägele et
    al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations",
    §3) added to an emergent AutoLRS schedule, whose stages are constant and never anneal."""
    if spec.get("name") != "piecewise":
        raise SpecError(f"anneal_tail needs a 'piecewise' schedule spec, got {spec.get('name')!r}")
    if not 0.0 < fraction < 1.0:
        raise SpecError(f"anneal_tail: fraction must be in (0, 1), got {fraction!r}")
    pts = [(float(x), float(v)) for x, v in spec["points"]]
    start = 1.0 - fraction
    xs = [x for x, _ in pts]
    if start <= xs[0]:
        value = pts[0][1]
    elif start >= xs[-1]:
        value = pts[-1][1]
    else:
        i = next(j for j, x in enumerate(xs) if x > start)
        (x0, v0), (x1, v1) = pts[i - 1], pts[i]
        value = v0 + (v1 - v0) * (start - x0) / (x1 - x0)
    kept = [[x, v] for x, v in pts if x < start]
    return {"name": "piecewise", "points": [*kept, [start, value], [1.0, 0.0]]}


def replay_algorithm(result: AutoLRSResult, algorithm: ResolvedAlgorithm) -> ResolvedAlgorithm:
    """``algorithm`` with the emergent schedule of ``result`` (same peak lr): trains the kept
    trajectory again without the search."""
    if not math.isclose(algorithm.lr, result.base_lr, rel_tol=0, abs_tol=0):
        raise SpecError(f"the emergent schedule is relative to lr {result.base_lr:g}; "
                        f"the algorithm has lr {algorithm.lr:g}: replay it with the same lr")
    return dataclasses.replace(algorithm, name=f"{algorithm.name}+autolrs-replay",
                               schedule=result.schedule_spec())



def load_result(store: Store, trial_id: int) -> AutoLRSResult:
    """The AutoLRS record of a trial stored by :func:`run_autolrs`."""
    t = store.get_trial(trial_id)
    if t.spec.study_id is None or store.get_study(t.spec.study_id)["kind"] != "autolrs":
        raise SpecError(f"trial {trial_id} is not an AutoLRS run (run `steplab autolr` to make one)")
    result = AutoLRSResult.from_dict(store.get_study(t.spec.study_id)["spec"])
    result.trial_id = trial_id
    return result
