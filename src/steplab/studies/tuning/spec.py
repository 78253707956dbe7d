"""What a tune runs (:class:`TuneSpec`), what it found (:class:`TuneResult`), and the
:class:`Setup` every strategy shares: the workload, the algorithm and the searched space
(AlgoPerf's external tuning, Dahl et al. 2023, arXiv 2306.07179, §4.2.1)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steplab import algorithms as algos
from steplab import workloads
from steplab.algorithms import space
from steplab.analysis import predict
from steplab.analysis.intervals import Interval
from steplab.errors import SpecError
from steplab.results import TrialResult, spec_digest
from steplab.training.config import TrainConfig
from steplab.workloads.scale import scaled_steps

OPTUNA_STRATEGIES = ("qmc", "tpe", "median", "hyperband", "predict")
RAY_STRATEGIES = ("asha", "pbt")
STRATEGIES = OPTUNA_STRATEGIES + RAY_STRATEGIES
#: the message of a trial stopped because the compute budget ran out
BUDGET_MESSAGE = "compute budget exhausted"


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """What a tune runs. ``budget_steps`` is the total compute (training steps summed over
    trials); ``trial_steps`` each trial's length (default: the workload's budget);
    ``params`` the hyperparameters searched (default: the algorithm's whole search space;
    the rest stay at the algorithm's and workload's defaults); ``evals`` evaluations per
    trial, the cadence every strategy reports at; ``name`` identifies the study (default: a
    hash of the rest), so running the same spec again resumes it."""

    workload: str
    algorithm: str
    strategy: str
    budget_steps: int
    variant: str = "base"
    trial_steps: int | None = None
    params: tuple[str, ...] | None = None
    seed: int = 0
    metric: str = "validation/loss"
    mode: str = "min"
    evals: int = 50
    checkpoints: tuple[float, ...] = (0.1, 0.2, 0.4)
    overrides: tuple[str, ...] = ()
    population: int | None = None  # pbt: members (default: as many full trials as the budget buys)
    name: str | None = None
    #: after the search, train the best point again on this many fresh seeds and report its
    #: value as a mean with a Student-t interval (``studies.tuning.seeds``); not part of the
    #: search, so not of its name either
    seeds: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SpecError(f"unknown tuning strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        for what, v in (("budget_steps", self.budget_steps), ("evals", self.evals)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"tune: {what} must be a positive integer, got {v!r}")
        if self.trial_steps is not None and (not isinstance(self.trial_steps, int) or self.trial_steps < 2):
            raise SpecError(f"tune: trial_steps must be an integer >= 2, got {self.trial_steps!r}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 0 <= self.seeds <= 100:
            raise SpecError(f"tune: seeds must be an integer from 0 to 100 (fresh seeds for the best point), "
                            f"got {self.seeds!r}")
        if self.mode not in ("min", "max"):
            raise SpecError(f"tune: mode must be min or max, got {self.mode!r}")
        if not self.checkpoints or any(not 0 < c < 1 for c in self.checkpoints):
            raise SpecError(f"tune: checkpoints must be fractions in (0, 1), got {self.checkpoints!r}")
        if self.strategy == "predict" and not (self.metric.endswith("loss") and self.mode == "min"):
            raise SpecError(f"the predict pruner fits a loss curve: use a loss metric with mode min, "
                            f"not {self.metric!r} ({self.mode})")

    def to_dict(self) -> dict[str, Any]:
        """The search's spec as stored (``seeds`` left out: re-running the best point on more
        seeds resumes the same search)."""
        d = dataclasses.asdict(self)
        del d["seeds"]
        for k in ("params", "checkpoints", "overrides"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d

    def study_name(self) -> str:
        if self.name:
            return self.name
        digest = spec_digest(self.to_dict())
        return f"tune-{self.workload}-{self.algorithm}-{self.strategy}-{digest}"


@dataclasses.dataclass
class SeedCheck:
    """The best point trained again on fresh ``seeds``: each run's final ``values`` (NaN for
    a run without one) and their mean with its Student-t ``interval``
    (``analysis.seeds.seed_interval``). The search's own value is the best of many draws and
    so optimistic (the winner's curse); these runs are not."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    interval: Interval
    trials: list[TrialResult]

    @property
    def steps(self) -> int:
        return sum(t.steps for t in self.trials)


@dataclasses.dataclass
class TuneResult:
    """A tune's outcome: its study, every trial, the best complete trial (``None`` when no
    trial trained its whole length), the compute used, and the best point's value over fresh
    seeds (``seed_check``, when ``spec.seeds`` asks for it)."""

    spec: TuneSpec
    study_id: int
    trials: list[TrialResult]
    best: TrialResult | None
    steps_used: int
    seconds_used: float
    seed_check: SeedCheck | None = None

    @property
    def best_value(self) -> float:
        return math.nan if self.best is None else final_value(self.best, self.spec.metric)


# ---------------------------------------------------------------------------- the setup
def final_value(trial: TrialResult, metric: str) -> float:
    """The trial's last evaluated ``metric`` (NaN when absent or non-finite)."""
    v = trial.final_metrics.get(metric, math.nan)
    return float(v) if v is not None and math.isfinite(v) else math.nan


def is_complete(trial: TrialResult, trial_steps: int) -> bool:
    """Trained its whole length without diverging (eligible as the result)."""
    return trial.status in ("reached", "budget") and trial.steps >= trial_steps


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a strategy needs, built once from a :class:`TuneSpec`."""

    spec: TuneSpec
    workload: workloads.Workload
    algorithm: algos.Algorithm
    space: dict[str, space.Param]
    base: dict[str, Any]  # the defaults the searched point is laid over
    trial_steps: int

    def resolve(self, point: Mapping[str, Any]) -> algos.ResolvedAlgorithm:
        return self.algorithm.with_hyperparameters({**self.base, **point})

    def config(self, cap: int | None = None) -> TrainConfig:
        """``evals`` evaluations per trial, plus one at ``cap`` (where the budget ends)."""
        every = max(1, self.trial_steps // self.spec.evals)
        at = set(range(every, self.trial_steps + 1, every)) | ({cap} if cap else set())
        return TrainConfig(stop_at_target=False, threads=1, eval_steps=tuple(sorted(at)))

    def lrs(self, point: Mapping[str, Any]) -> tuple[np.ndarray, int]:
        """Absolute LRs of every update of a trial at ``point``, and its warm-up steps."""
        algo = self.resolve(point)
        return predict.schedule_lrs(algo.schedule, self.trial_steps, algo.lr)


def curriculum_space(algo: algos.Algorithm, names: Sequence[str]) -> dict[str, space.Param]:
    """The ranges of the ``curriculum.<option>`` keys among ``names`` that the algorithm's
    curriculum lists as tunable (``steplab.curricula.CURRICULA[name].tunable``), so
    ``--params lr,curriculum.start`` searches both without a ``[search_space]`` entry."""
    from steplab import curricula

    info = curricula.CURRICULA.get(str(algo.curriculum.get("name")))
    tunable = dict(info.tunable) if info is not None else {}
    wanted = {n: n.removeprefix("curriculum.") for n in names if n.startswith("curriculum.")}
    return space.space_from_dict({n: dict(tunable[o]) for n, o in wanted.items() if o in tunable})


def setup(spec: TuneSpec) -> Setup:
    """Resolve the workload, the algorithm (with ``--set`` overrides) and the space."""
    wl = workloads.get(spec.workload, spec.variant, budget_steps=spec.trial_steps)
    algo = algos.apply_overrides(algos.get_algorithm(spec.algorithm), spec.overrides)
    full = {**curriculum_space(algo, spec.params or ()), **algo.search_space}
    if not full:
        raise SpecError(f"algorithm {algo.name!r} has no search space to tune; add [search_space] or pick another")
    names = list(spec.params) if spec.params is not None else list(full)
    unknown = [n for n in names if n not in full]
    if unknown:
        raise SpecError(f"tune: {', '.join(unknown)} not in the search space of {algo.name!r} "
                        f"({', '.join(full)}); pass --params from those")
    hp = {k: v for k, v in wl.default_hyperparameters.items() if k not in names}
    defaults = {k: v for k, v in algo.defaults().items()
                if k not in names and not (k.startswith("one_minus_") and k.removeprefix("one_minus_") in hp)}
    # STEPLAB_BUDGET_SCALE shrinks the compute budget with the trials (the same trial count)
    spec = dataclasses.replace(spec, budget_steps=scaled_steps(spec.budget_steps, minimum=wl.budget_steps))
    if spec.budget_steps < wl.budget_steps:
        raise SpecError(f"tune: the budget ({spec.budget_steps} steps) is less than one trial "
                        f"({wl.budget_steps} steps): raise --budget")
    return Setup(spec, wl, algo, {n: full[n] for n in names}, {**defaults, **hp}, wl.budget_steps)
