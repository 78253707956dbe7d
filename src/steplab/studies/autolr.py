"""AutoLRS: a learning-rate schedule found during the run, stage by stage.

Jin, Zhou, Zhao, Zhu, Guo, Canini, Krishnamurthy, "AutoLRS: Automatic Learning-Rate
Schedule by Bayesian Optimization on the Fly", ICLR 2021 (arXiv 2105.10762); reference code
YuchenJin/autolrs (``autolrs_server.py``, ``autolrs_callback.py``), read for the details
below, not copied. The run is cut into stages of ``tau`` steps and each stage gets one
constant LR:

1. At the stage start, checkpoint the model, the optimizer, the RNG states and the position
   in the data stream.
2. For ``k`` candidate LRs (``k = 10`` in the paper) proposed by Bayesian optimization over
   log-LR (Optuna's ``GPSampler``, a Gaussian process with log expected improvement; the
   reference uses scikit-optimize's GP with a lower-confidence bound): restore the
   checkpoint, train ``tau' = tau / 10`` steps, measure the validation loss at up to 16
   points (the reference evaluates every ``tau'/16`` steps), fit the exponential model
   ``L(t) = a exp(b t) + c`` with ``b < 0`` (:func:`fit_exponential`) and predict the loss
   after ``tau`` steps: that prediction is the BO objective.
3. Restore, train the full ``tau`` steps with the candidate of lowest predicted loss, and
   go on. ``tau`` doubles after every stage up to ``tau_max = 8 tau`` (reference: 1000 ->
   8000 steps, ``EXPLOITATION_STEP``/``TAU_MAX``).

The stages' LRs form the *emergent schedule*, kept as a ``piecewise`` schedule spec
(:meth:`AutoLRSResult.schedule_spec`, JSON; ``steplab run --schedule FILE.json`` and every
other command take it) whose multipliers are relative to the algorithm's own peak ``lr``.

Where steplab differs from the reference, on purpose:

* Every candidate and the kept stage see the *same* minibatches (the stage's stream is
  cached and rewound with the checkpoint); the reference lets the data loader run on. The
  candidates are compared on common data, and the kept trajectory is exactly what a plain
  ``run_trial`` with the emergent schedule and the same seed trains (``tests/test_autolr.py``
  checks the two traces are equal), so "replay the schedule without the search" is exact.
  (Bit for bit for optimizers without train/eval modes: a schedule-free optimizer's switch
  to eval mode for the extra stage-start evaluation and back rounds its parameters.)
* Candidates train a scratch copy of the model and optimizer loaded from the checkpoint, so
  the recorder of the kept run never sees a candidate's step; the RNG states are restored
  before the kept stage.
* The exponential model is fitted to the raw validation points (the reference first runs
  scipy's ``UnivariateSpline`` with its default smoothing ``s = m``, which for losses of
  order 1 and unit weights reduces to a global quadratic). The decay rate is bounded to
  ``[0.5, 1000] / tau'``: predicting ``tau = 10 tau'`` ahead then extends the drop seen in
  the window at most 2.5-fold ((1 - e^-5) / (1 - e^-0.5)); with a looser bound the short
  windows of steplab's budgets (4-30 steps) extrapolated near-linear trends to negative
  losses. Predictions are floored at 0 (every built-in loss is non-negative) and ties go to
  the candidate with the lower last observed loss.
* A candidate whose validation loss rises above the stage's starting value is scored by
  its last value instead of an extrapolation (the reference does this in its validation
  stage); a diverged candidate scores ``max(2 L_0, worst value seen)``.
* The validation loss is always the signal (the reference uses the training loss until
  ``tau`` reaches ``tau_max``); steplab's workloads evaluate in milliseconds.
* There is no warm-up phase before the first stage (the reference can warm up linearly to a
  given LR); the first stage's search covers the whole LR range instead.

Costs are kept apart (DESIGN.md, "Time-to-result counts training time only"): the kept
run's training time excludes the search, whose steps and seconds are reported as
``search_steps``/``search_time_s`` and stored with the trial's final metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import random
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steplab.optim import optimizers
from steplab.algorithms import Algorithm, ResolvedAlgorithm
from steplab.errors import SpecError, WorkloadError
from steplab.training.recorder import Recorder, package_versions
from steplab.results import TrialResult, TrialSpec
from steplab.algorithms.space import LogUniform, Uniform
from steplab.store import Store
from steplab.training.loop import TrainConfig, pick_device, seed_everything
from steplab.workloads.base import Workload

__all__ = [
    "AutoLRSConfig",
    "AutoLRSResult",
    "Candidate",
    "ExpModel",
    "Stage",
    "StageEvent",
    "default_lr_range",
    "fit_exponential",
    "load_result",
    "plan_stages",
    "replay_algorithm",
    "run_autolrs",
]

#: decay rates of the exponential model, per exploration window (see the module docstring)
_RATE_BOUNDS = (0.5, 1000.0)
_METRIC = "validation/loss"


# ----------------------------------------------------------------------------------
# the exponential model of the loss over a stage
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ExpModel:
    """``L(t) = a * exp(b * t) + c`` with ``b <= 0`` (Jin et al. 2021, §4: the exponential
    model of the validation loss over a stage; reference ``autolrs_server.py::exp_forecast``
    fits the same form, ``b = -exp(b')``)."""

    a: float
    b: float
    c: float
    #: sum of squared residuals of the fit
    sse: float = 0.0

    def predict(self, t: float | np.ndarray) -> Any:
        """The modelled loss after ``t`` steps of the stage."""
        return self.a * np.exp(self.b * np.asarray(t, dtype=float)) + self.c


def fit_exponential(steps: Sequence[float], values: Sequence[float]) -> ExpModel:
    """Least-squares fit of ``L(t) = a exp(b t) + c``, ``b < 0``, to ``(steps, values)``.

    Variable projection, as the reference does (``autolrs_server.py``: a 1-D search over the
    rate with ``a, c`` from linear least squares at each rate): on the time rescaled to
    ``s = (t - t_0) / (t_max - t_0)`` the rate ``r`` is searched on a log grid over
    ``[0.5, 1000]`` (see the module docstring) and refined with scipy's bounded Brent
    search; then
    ``b = -r / (t_max - t_0)``.

    Raises:
        SpecError: fewer than 3 finite points, or all at one step.
    """
    from scipy.optimize import minimize_scalar

    t = np.asarray(steps, dtype=float)
    y = np.asarray(values, dtype=float)
    if t.shape != y.shape:
        raise SpecError(f"fit_exponential needs as many steps as values, got {t.shape} and {y.shape}")
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    if len(t) < 3:
        raise SpecError(f"fit_exponential needs at least 3 finite points, got {len(t)}")
    t0, span = float(t.min()), float(t.max() - t.min())
    if span <= 0:
        raise SpecError("fit_exponential needs points at more than one step")
    s = (t - t0) / span

    def solve(u: float) -> tuple[float, np.ndarray]:
        design = np.stack([np.exp(-math.exp(u) * s), np.ones_like(s)], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ coef
        return float(resid @ resid), coef

    lo, hi = math.log(_RATE_BOUNDS[0]), math.log(_RATE_BOUNDS[1])
    grid = np.linspace(lo, hi, 61)
    errs = [solve(float(u))[0] for u in grid]
    i = int(np.argmin(errs))
    a_, b_ = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
    best = minimize_scalar(lambda u: solve(u)[0], bounds=(a_, b_), method="bounded",
                           options={"xatol": 1e-6})
    u = float(best.x) if best.fun <= errs[i] else float(grid[i])
    sse, (a, c) = solve(u)
    rate = math.exp(u) / span
    return ExpModel(a=float(a) * math.exp(rate * t0), b=-rate, c=float(c), sse=sse)


# ----------------------------------------------------------------------------------
# settings, stages, records
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AutoLRSConfig:
    """How AutoLRS searches (defaults: the paper's, scaled to steplab's short budgets)."""

    #: length of the first stage in steps; None: ``max(40, budget // 15)`` (with doubling to
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


def plan_stages(budget: int, tau: int, tau_max: int) -> list[int]:
    """Stage lengths: ``tau, 2 tau, 4 tau, ...`` capped at ``tau_max`` (the reference doubles
    ``tau`` after each stage while ``tau' < tau_max / 10``), cut to sum to ``budget``; a
    last piece shorter than ``tau / 2`` joins the stage before it.

    >>> plan_stages(400, 25, 200)
    [25, 50, 100, 200, 25]
    >>> plan_stages(100, 40, 320)
    [40, 60]
    >>> plan_stages(500, 71, 568)
    [71, 142, 287]
    """
    if budget < 1 or tau < 1 or tau_max < tau:
        raise SpecError(f"plan_stages needs budget >= 1 and 1 <= tau <= tau_max, got {budget}, {tau}, {tau_max}")
    out: list[int] = []
    length, left = tau, budget
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
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as e:
            raise SpecError(f"cannot read AutoLRS record {str(path)!r}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise SpecError(f"AutoLRS record {str(path)!r} is not JSON ({e.msg})") from None
        except (ValueError, RecursionError):  # not UTF-8, a NUL in the path, a number too long, nesting too deep
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


# ----------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StageEvent:
    """Progress of one stage: ``phase`` is ``search`` (``done`` candidates of ``total``) or
    ``train`` (``done`` steps of ``total``); ``info`` is a short text for a progress bar;
    ``explore_steps`` and ``steps`` are the stage's exploration and kept lengths."""

    stage: int
    stages: int
    phase: str
    done: int
    total: int
    info: str
    explore_steps: int = 0
    steps: int = 0


StageProgress = Callable[[StageEvent], None]


class _StageBatches:
    """The stage's minibatches, drawn once from the run's stream and replayed for every
    candidate and for the kept stage (the data-stream part of the checkpoint)."""

    def __init__(self, stream: Iterator[Any]) -> None:
        self.stream = stream
        self.cache: list[Any] = []

    def __getitem__(self, i: int) -> Any:
        while len(self.cache) <= i:
            self.cache.append(next(self.stream))
        return self.cache[i]


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


class _Net:
    """A model, its optimizer with the LR set by multiplier, and one training step exactly as
    ``train.run_trial`` takes it (loss, zero_grad, backward, clip, step)."""

    def __init__(self, workload: Workload, algorithm: ResolvedAlgorithm, seed: int, device: torch.device) -> None:
        self.workload, self.algorithm, self.device = workload, algorithm, device
        self.model = workload.init_model(seed).to(device)
        self.model.train()
        self.opt = algorithm.build_optimizer(self.model)
        optimizers.train_mode(self.opt)
        # the group lrs a LambdaLR would take as base_lrs: lr = base * multiplier, bit for bit
        self.base = [g["lr"] for g in self.opt.param_groups]
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.needs_loss = optimizers.needs_loss(self.opt)

    def step(self, batch: Any, multiplier: float) -> torch.Tensor:
        for g, base in zip(self.opt.param_groups, self.base, strict=True):
            g["lr"] = base * multiplier
        loss = self.workload.loss(self.model, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.algorithm.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.algorithm.grad_clip)
        if self.needs_loss:
            self.opt.step(lambda: loss)
        else:
            self.opt.step()
        return loss

    def evaluate(self, train_eval_batches: int = 0) -> dict[str, float]:
        with optimizers.eval_mode(self.opt):
            self.model.eval()
            metrics = self.workload.evaluate(self.model, self.device)
            if train_eval_batches:
                metrics["train/loss"] = self.workload.train_loss(self.model, self.device, train_eval_batches)
            self.model.train()
        return metrics

    def checkpoint(self) -> dict[str, Any]:
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "opt": copy.deepcopy(self.opt.state_dict())}

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        # torch's load_state_dict copies the state it loads; the copy here keeps the
        # checkpoint intact for optimizers that override it
        self.opt.load_state_dict(copy.deepcopy(ckpt["opt"]))
        optimizers.train_mode(self.opt)


def _eval_points(explore: int, points: int) -> list[int]:
    n = min(points, explore)
    return sorted({max(1, round(explore * j / n)) for j in range(1, n + 1)})


def _score(observed: list[tuple[int, float]], horizon: int, diverged: bool) -> tuple[float, float, str, ExpModel | None]:
    """``(predicted, objective, status, fit)`` of one exploration curve (see the module
    docstring for the rules)."""
    values = [v for _, v in observed]
    start = values[0]
    finite = [v for v in values if math.isfinite(v)]
    penalty = max([2.0 * start, *finite])
    if diverged or len(finite) < len(values):
        return math.nan, penalty, "diverged", None
    try:
        model = fit_exponential([t for t, _ in observed], values)
    except SpecError:
        return math.nan, values[-1], "rising", None
    predicted = float(model.predict(horizon))
    if max(values[1:]) > start:
        return predicted, values[-1], "rising", model
    if not math.isfinite(predicted):
        return predicted, values[-1], "ok", model
    return predicted, min(max(predicted, 0.0), penalty), "ok", model


def run_autolrs(
    workload: Workload,
    algorithm: ResolvedAlgorithm,
    seed: int,
    *,
    config: AutoLRSConfig | None = None,
    train: TrainConfig | None = None,
    store: Store | None = None,
    name: str | None = None,
    progress: StageProgress | None = None,
) -> AutoLRSResult:
    """Train ``algorithm`` on ``workload`` with AutoLRS choosing a constant LR per stage (see
    the module docstring); the algorithm's own schedule is replaced, its optimizer, peak lr
    (the reference for the schedule's multipliers), weight decay and clipping are kept.

    The kept run follows ``train.run_trial``'s rules (evaluation cadence, stop at target,
    divergence, a failure is a recorded outcome); with ``store`` it is stored as one trial
    (algorithm ``<name>+autolrs``, the emergent schedule in its algorithm spec, the search
    cost in its final metrics as ``autolrs/search_steps`` and ``autolrs/search_time_s``) in
    a study of kind ``autolrs`` whose spec is the full record (:func:`load_result`).

    Raises:
        SpecError: bad settings, or an optimizer whose state lives outside ``state_dict``
            (``dog``/``ldog``: their iterate averager cannot be checkpointed).
    """
    import optuna
    from optuna.samplers import GPSampler

    cfg = config or AutoLRSConfig()
    tcfg = train or TrainConfig()
    if optimizers.info(algorithm.optimizer).averaged:
        raise SpecError(f"autolrs cannot checkpoint optimizer {algorithm.optimizer!r} (its iterate averager "
                        "lives outside state_dict); pick another algorithm")
    if algorithm.label_smoothing:
        raise SpecError(f"algorithm {algorithm.name!r} sets label_smoothing={algorithm.label_smoothing}, which the "
                        "train loop does not apply yet; set it to 0")
    lr_min, lr_max = default_lr_range(algorithm)
    lr_min = cfg.lr_min if cfg.lr_min is not None else lr_min
    lr_max = cfg.lr_max if cfg.lr_max is not None else lr_max
    if lr_min >= lr_max:
        raise SpecError(f"autolrs: the LR range is empty ({lr_min:g} .. {lr_max:g}); set lr_min below lr_max")
    budget = workload.budget_steps
    tau = cfg.tau if cfg.tau is not None else max(40, budget // 15)
    tau = min(tau, budget)
    tau_max = cfg.tau_max if cfg.tau_max is not None else 8 * tau
    plan = plan_stages(budget, tau, max(tau_max, tau))
    device = pick_device(tcfg.device)
    if tcfg.threads is not None:
        torch.set_num_threads(tcfg.threads)
    target = workload.target

    seed_everything(seed)
    main = _Net(workload, algorithm, seed, device)
    scratch = _Net(workload, algorithm, seed, device)
    stream = workload.batches(seed, device)
    stream = itertools.chain([next(stream)], stream)  # build the data before the clock starts
    rec = Recorder(main.opt, grad_norm=tcfg.record_norms, l1=tcfg.record_norms, update_norm=tcfg.record_norms)
    check_every = 1 if device.type == "cpu" else workload.eval_every
    extra_evals = {int(k) for k in tcfg.eval_steps}

    stages: list[Stage] = []
    status, message = "budget", ""
    steps_done, search_steps, search_time = 0, 0, 0.0
    first_loss = math.nan
    time_to_target, steps_to_target = math.inf, math.inf
    metrics: dict[str, float] = {}
    best = math.nan
    stop = False
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        for index, length in enumerate(plan):
            nominal = min(tau * 2**index, max(tau_max, tau))
            explore = min(length, max(cfg.min_explore_steps, round(cfg.explore_frac * nominal)))
            evals_at = _eval_points(explore, cfg.loss_points)
            data = _StageBatches(stream)
            t_search = time.perf_counter()
            with rec.evaluating():  # the search is not training time of the kept run
                ckpt = main.checkpoint()
                rng = _rng_state(device)
                start_value = main.evaluate().get(_METRIC, math.nan)
                if not math.isfinite(start_value):
                    raise WorkloadError(f"workload {workload.name!r} reports no finite {_METRIC} at step "
                                        f"{steps_done}; autolrs needs it")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sampler = GPSampler(seed=seed * 7919 + index, n_startup_trials=cfg.startup_candidates)
                    study = optuna.create_study(sampler=sampler, direction="minimize")
                cands: list[Candidate] = []
                for j in range(cfg.candidates):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        trial = study.ask()
                        lr = trial.suggest_float("lr", lr_min, lr_max, log=True)
                    mult = lr / algorithm.lr
                    scratch.restore(ckpt)
                    _set_rng_state(rng, device)
                    observed: list[tuple[int, float]] = [(0, start_value)]
                    diverged = False
                    for t in range(explore):
                        loss = float(scratch.step(data[t], mult).detach())
                        search_steps += 1
                        if not math.isfinite(loss):
                            diverged = True
                            break
                        if t + 1 in evals_at:
                            v = scratch.evaluate().get(_METRIC, math.nan)
                            observed.append((t + 1, v))
                            if not math.isfinite(v) or v > tcfg.divergence_factor * start_value:
                                diverged = True
                                break
                    predicted, objective, cstatus, fit = _score(observed, length, diverged)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        study.tell(trial, objective)
                    cands.append(Candidate(lr=algorithm.lr * mult, multiplier=mult, observed=observed,
                                           predicted=predicted, objective=objective, status=cstatus,
                                           fit=None if fit is None else {"a": fit.a, "b": fit.b, "c": fit.c}))
                    if progress is not None:
                        bestc = min(cands, key=lambda c: c.objective)
                        progress(StageEvent(index, len(plan), "search", j + 1, cfg.candidates,
                                            f"best lr {bestc.lr:.3g} -> {bestc.objective:.4g}", explore, length))
                chosen = min(range(len(cands)), key=lambda i: (cands[i].objective, cands[i].observed[-1][1]))
                _set_rng_state(rng, device)
            elapsed = time.perf_counter() - t_search
            search_time += elapsed
            stage = Stage(start=steps_done, steps=length, explore_steps=explore, start_value=start_value,
                          candidates=cands, chosen=chosen, search_time_s=elapsed)
            stages.append(stage)

            # the kept stage: run_trial's loop with the chosen constant LR
            mult = stage.multiplier
            for t in range(length):
                loss = main.step(data[t], mult)
                rec.log(loss)
                step = steps_done
                steps_done += 1
                if step % check_every == 0 or steps_done == budget:
                    value = float(loss.detach())
                    if step == 0:
                        first_loss = value
                    if not math.isfinite(value) or value > tcfg.divergence_factor * max(first_loss, 1e-8):
                        status = "diverged"
                        message = f"loss {value:.4g} at step {step} (first loss {first_loss:.4g})"
                        stop = True
                        break
                if steps_done % workload.eval_every == 0 or steps_done == budget or steps_done in extra_evals:
                    with rec.evaluating():
                        metrics = main.evaluate(tcfg.train_eval_batches)
                    rec.eval(**metrics)
                    value = metrics.get(target.metric, math.nan)
                    if not math.isfinite(value) and target.metric.endswith("loss"):
                        status, message = "diverged", f"{target.metric} is {value} at step {steps_done}"
                        stop = True
                        break
                    if math.isfinite(value):
                        better = max if target.mode == "max" else min
                        best = value if math.isnan(best) else better(best, value)
                    if progress is not None:
                        progress(StageEvent(index, len(plan), "train", t + 1, length,
                                            f"lr {stage.lr:.3g}, {target.metric.split('/')[-1]} {value:.4g}",
                                            explore, length))
                    if target.reached(value) and math.isinf(time_to_target):
                        time_to_target, steps_to_target = rec.train_time_s, float(steps_done)
                        if tcfg.stop_at_target:
                            stop = True
                            break
            if stop:
                break
    except (KeyboardInterrupt, SystemExit):
        rec.close()
        raise
    except Exception as e:  # a broken run is a recorded outcome, not a crash
        if isinstance(e, (SpecError, WorkloadError)) and not stages:
            rec.close()
            raise
        status = "failed"
        message = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
    finally:
        optuna.logging.set_verbosity(verbosity)

    train_time = rec.train_time_s
    eval_time = rec.eval_time_s - search_time
    rec.close()
    rows, eval_rows = rec.rows, rec.eval_rows
    if math.isfinite(time_to_target) and status != "diverged":
        status = "reached"
    elif status == "diverged":
        time_to_target, steps_to_target = math.inf, math.inf
    final = dict(metrics)
    final[f"best/{target.metric}"] = best
    final["autolrs/search_steps"] = float(search_steps)
    final["autolrs/search_time_s"] = search_time
    final["autolrs/stages"] = float(len(stages))
    result = AutoLRSResult(
        workload=workload.key, algorithm=algorithm.to_dict(), seed=seed, budget_steps=budget,
        config=cfg.to_dict(), lr_range=(lr_min, lr_max), stages=stages, status=status, steps=steps_done,
        steps_to_target=steps_to_target, time_to_target_s=time_to_target, train_time_s=train_time,
        eval_time_s=eval_time, search_steps=search_steps, search_time_s=search_time, final_metrics=final,
        message=message, losses=[float("nan") if r.loss is None else r.loss for r in rows],
        lrs=[float("nan") if r.lr is None else r.lr for r in rows],
    )
    if store is not None:
        _store(store, workload, algorithm, result, rows, eval_rows, device, name)
    return result


def _store(store: Store, workload: Workload, algorithm: ResolvedAlgorithm, result: AutoLRSResult,
           rows: list[Any], eval_rows: list[Any], device: torch.device, name: str | None) -> None:
    """Write the record (a study of kind ``autolrs``) and the kept run (one trial in it)."""
    algo = dataclasses.replace(algorithm, name=f"{algorithm.name}+autolrs",
                               schedule=result.schedule_spec() if result.stages else {"name": "constant"})
    study_id = store.create_study(f"autolrs {name or workload.key} {uuid.uuid4().hex[:10]}", "autolrs",
                                  result.to_dict())
    spec = TrialSpec(workload=workload.name, variant=workload.variant, algorithm=algo.name,
                     algorithm_spec=algo.to_dict(),
                     hyperparameters={**algorithm.hyperparameters, "autolrs": result.config},
                     seed=result.seed, budget_steps=result.budget_steps, study_id=study_id)
    trial_id = store.start_trial(spec, name=name, host=socket.gethostname(), versions=package_versions(),
                                 device=str(device))
    store.append_steps(trial_id, rows)
    store.append_evals(trial_id, eval_rows)
    result.trial_id = trial_id
    store.finish_trial(trial_id, TrialResult(
        spec=spec, status=result.status,  # type: ignore[arg-type]
        steps=result.steps, train_time_s=result.train_time_s, eval_time_s=result.eval_time_s,
        time_to_target_s=result.time_to_target_s, steps_to_target=result.steps_to_target,
        final_metrics=result.final_metrics, message=result.message, device=str(device),
        host=socket.gethostname(), versions=package_versions(), id=trial_id))


def load_result(store: Store, trial_id: int) -> AutoLRSResult:
    """The AutoLRS record of a trial stored by :func:`run_autolrs`."""
    t = store.get_trial(trial_id)
    if t.spec.study_id is None or store.get_study(t.spec.study_id)["kind"] != "autolrs":
        raise SpecError(f"trial {trial_id} is not an AutoLRS run (run `steplab autolr` to make one)")
    result = AutoLRSResult.from_dict(store.get_study(t.spec.study_id)["spec"])
    result.trial_id = trial_id
    return result
