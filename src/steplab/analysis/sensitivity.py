"""Learning-rate sensitivity (Wortsman et al. 2023, "Small-scale proxies for large-scale
Transformer training instabilities", arXiv 2309.14322, ICLR 2024).

A robust algorithm reaches a good loss over a wide range of peak learning rates. For a
grid ``eta_j = a * (b / a) ** (j / (J - 1))``, ``j = 0..J-1`` (log-spaced, the same number of
steps and the same warm-up fraction at every point), with ``L(eta)`` the final validation
loss of a run at peak lr ``eta`` and ``L_init`` the loss of the model at initialization::

    LR sensitivity = mean_j [ min(L(eta_j), L_init) - min_j' L(eta_j') ]

(the paper's expectation over a log-uniform lr, taken over the grid). Clamping at
``L_init`` counts a run that diverged (non-finite loss, or one the train loop marked
``diverged``) as "no progress" instead of infinity. Sensitivity alone rewards a uniformly
bad method, so the grid-best loss ``min_j L(eta_j)`` is reported beside it. Both are
computed per seed and then averaged; the seed spread is the noise floor.

Default grids per optimizer family (:func:`default_range`; ``J = 7``, half-decade steps as
in the paper's sweeps):

==============================  ===============  =============================================
optimizers                      ``[a, b]``       where it comes from
==============================  ===============  =============================================
Adam family (AdamW, NAdamW,     3e-4 .. 3e-1     Wortsman et al. 2023's range (the spec sheet,
RAdam, schedule-free AdamW,                      tagged unverified there); steplab's tuned
AdaBelief, Adan, SOAP, Shampoo                   AdamW lrs (3e-3 digits .. 2e-2 charlm) sit
grafted to RMSProp)                              inside it
SGD (momentum, Nesterov)        1e-3 .. 1        three decades around steplab's SGD default
                                                 0.1 (its search space is 3e-3 .. 3)
schedule-free SGD               1e-2 .. 10       ~10x SGD's lr (Defazio et al. 2024; steplab's
                                                 schedulefree-sgd space 1e-2 .. 10)
Lion                            3e-5 .. 3e-2     Adam's range / 10: Lion's lr is 3-10x smaller
                                                 than AdamW's (Chen et al. 2023, sec. 5)
Muon (its lr; ``adamw_lr``      1e-3 .. 1        three decades around Muon's 0.02-0.05
fixed)                                           (Jordan et al. 2024; modded-nanogpt)
parameter-free (Prodigy,        0.1 .. 10        lr multiplies the estimated step, default 1:
D-Adaptation, DoG)                               a decade either side (their search spaces)
Polyak caps (SPS, MoMo,         1e-2 .. 10       lr caps the Polyak step: from a cap that binds
ALR-SMAG)                                        always to one that never does (steplab's
                                                 search spaces 1e-2 .. 10)
==============================  ===============  =============================================

:func:`steplab.studies.sensitivity.sweep` runs the grid into a store (one study of kind
``"sensitivity"`` per workload, algorithm, grid and budget); this module only reads traces:
:func:`load` and :func:`results_in_store` read sweeps back (the HTML benchmark report shows
them beside the time-to-target tables).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from steplab.errors import SpecError

#: study kind of a sweep in the store
KIND = "sensitivity"
#: default number of grid points (half-decade steps over three decades)
DEFAULT_POINTS = 7
#: optimizer registry name -> (a, b): see the module docstring for the sources
_RANGES: dict[str, tuple[float, float]] = {
    "sgd": (1e-3, 1.0),
    "sgd-schedulefree": (1e-2, 10.0),
    "lion": (3e-5, 3e-2),
    "muon": (1e-3, 1.0),
    "prodigy": (0.1, 10.0), "dadapt-adam": (0.1, 10.0), "dog": (0.1, 10.0), "ldog": (0.1, 10.0),
    "sps": (1e-2, 10.0), "momo": (1e-2, 10.0), "alr-smag": (1e-2, 10.0),
}
ADAM_RANGE = (3e-4, 3e-1)
SGD_RANGE = (1e-3, 1.0)

# ----------------------------------------------------------------------------------
# the formula
# ----------------------------------------------------------------------------------


def lr_grid(low: float, high: float, points: int = DEFAULT_POINTS) -> list[float]:
    """``points`` learning rates ``low * (high / low) ** (j / (points - 1))``, log-spaced.

    >>> [round(x, 6) for x in lr_grid(1e-3, 1e-1, 3)]
    [0.001, 0.01, 0.1]
    """
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise SpecError(f"lr grid: {name} must be a positive finite number, got {v!r}")
    if not low < high:
        raise SpecError(f"lr grid: low must be below high, got {low:g}:{high:g}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise SpecError(f"lr grid: need at least 2 points, got {points!r}")
    return [low * (high / low) ** (j / (points - 1)) for j in range(points)]


def parse_grid(text: str) -> tuple[float, float, int]:
    """``"3e-4:3e-1:7"`` -> ``(3e-4, 0.3, 7)`` (the point count may be left out: 7)."""
    parts = [p.strip() for p in str(text).split(":")]
    if len(parts) not in (2, 3):
        raise SpecError(f"--grid expects LOW:HIGH or LOW:HIGH:POINTS like 3e-4:3e-1:7, got {text!r}")
    try:
        low, high = float(parts[0]), float(parts[1])
        points = int(parts[2]) if len(parts) == 3 else DEFAULT_POINTS
    except ValueError:
        raise SpecError(f"--grid expects numbers like 3e-4:3e-1:7, got {text!r}") from None
    lr_grid(low, high, points)  # validates
    return low, high, points


def clamped(losses: Sequence[float], init_loss: float) -> list[float]:
    """``min(L, L_init)`` per point, non-finite ``L`` (diverged) counted as ``L_init``."""
    if not math.isfinite(init_loss):
        raise SpecError(f"LR sensitivity needs a finite loss at initialization, got {init_loss!r}")
    return [min(float(x), init_loss) if math.isfinite(x) else init_loss for x in losses]


def lr_sensitivity(losses: Sequence[float], init_loss: float) -> float:
    """Wortsman et al. 2023's LR sensitivity over a grid: the mean over the points of
    ``min(L(eta), L_init) - min_eta L(eta)``; non-finite losses count as ``L_init``.

    >>> round(lr_sensitivity([3.0, 2.0, 2.5, float("nan")], init_loss=4.0), 6)
    0.875
    """
    if not len(losses):
        raise SpecError("LR sensitivity needs at least one loss")
    c = clamped(losses, init_loss)
    best = min(c)
    return sum(x - best for x in c) / len(c)


def grid_best(losses: Sequence[float], init_loss: float) -> float:
    """The lowest clamped loss of the grid (``L_init`` when every point diverged)."""
    return min(clamped(losses, init_loss))


# ----------------------------------------------------------------------------------
# grids per optimizer family
# ----------------------------------------------------------------------------------
def default_range(optimizer: str) -> tuple[float, float]:
    """The default ``[a, b]`` of the lr grid for an optimizer (registry name or
    ``module:Class``), by family: see the table in the module docstring."""
    from steplab.optim import optimizers  # torch: only where a grid is chosen, not to read sweeps

    entry = optimizers.info(optimizer)
    if entry.name in _RANGES:
        return _RANGES[entry.name]
    return ADAM_RANGE if entry.adam_family else SGD_RANGE


# ----------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Point:
    """One grid point, one seed: the final loss (``nan`` when the run diverged or failed),
    the loss at initialization, the trial's status."""

    lr: float
    seed: int
    loss: float
    init_loss: float
    status: str
    trial_id: int | None = None

    @property
    def diverged(self) -> bool:
        """The run diverged, failed or ended with a non-finite loss: counted as ``L_init``
        (so is a finite loss above ``L_init``, by the clamp, without being marked)."""
        return self.status in ("diverged", "failed") or not math.isfinite(self.loss)


@dataclasses.dataclass
class SensitivityResult:
    """A finished (or partly finished) sweep: ``points`` per seed and grid point."""

    workload: str  # workload key, ``name`` or ``name:variant``
    algorithm: str
    grid: list[float]
    budget_steps: int
    metric: str
    points: list[Point]
    study_id: int | None = None

    @property
    def seeds(self) -> list[int]:
        return sorted({p.seed for p in self.points})

    def complete_seeds(self) -> list[int]:
        """Seeds with a finished run at every grid point (only these are scored)."""
        n = len(self.grid)
        return [s for s in self.seeds if len({_lr_key(p.lr) for p in self.points if p.seed == s}) == n]

    def losses(self, seed: int) -> list[float]:
        """The final losses of ``seed`` in grid order (``nan`` where diverged or missing)."""
        by = {_lr_key(p.lr): p for p in self.points if p.seed == seed}
        return [by[_lr_key(lr)].loss if _lr_key(lr) in by and not by[_lr_key(lr)].diverged else math.nan
                for lr in self.grid]

    def init_loss(self, seed: int) -> float:
        return next(p.init_loss for p in self.points if p.seed == seed)

    def per_seed(self) -> dict[int, tuple[float, float]]:
        """``seed -> (sensitivity, grid-best loss)`` for the complete seeds."""
        return {s: (lr_sensitivity(self.losses(s), self.init_loss(s)), grid_best(self.losses(s), self.init_loss(s)))
                for s in self.complete_seeds()}

    def _stat(self, i: int) -> tuple[float, float]:
        vals = [v[i] for v in self.per_seed().values()]
        if not vals:
            return math.nan, math.nan
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else math.nan)

    @property
    def sensitivity(self) -> float:
        """Mean over complete seeds of the per-seed LR sensitivity (``nan`` if none)."""
        return self._stat(0)[0]

    @property
    def sensitivity_sd(self) -> float:
        """Standard deviation over seeds of the sensitivity: the noise floor."""
        return self._stat(0)[1]

    @property
    def best_loss(self) -> float:
        """Mean over complete seeds of the grid-best loss."""
        return self._stat(1)[0]

    @property
    def best_loss_sd(self) -> float:
        return self._stat(1)[1]

    def mean_curve(self) -> tuple[list[float], list[float]]:
        """Per grid point, the mean over complete seeds of the clamped loss, and how many
        of those seeds diverged there."""
        seeds = self.complete_seeds()
        if not seeds:
            return [math.nan] * len(self.grid), [0.0] * len(self.grid)
        cols = [clamped(self.losses(s), self.init_loss(s)) for s in seeds]
        mean = [statistics.fmean(c[j] for c in cols) for j in range(len(self.grid))]
        div = [float(sum(not math.isfinite(self.losses(s)[j]) for s in seeds)) for j in range(len(self.grid))]
        return mean, div

    @property
    def mean_init_loss(self) -> float:
        seeds = self.seeds
        return statistics.fmean(self.init_loss(s) for s in seeds) if seeds else math.nan

    def best_lr(self) -> float:
        """The grid lr with the lowest seed-mean clamped loss."""
        mean, _ = self.mean_curve()
        finite = [(m, lr) for m, lr in zip(mean, self.grid, strict=True) if math.isfinite(m)]
        return min(finite)[1] if finite else math.nan


def _lr_key(lr: float) -> str:
    return f"{lr:.6g}"


def load(store: Any, study_id: int) -> SensitivityResult:
    """A sweep read back from ``store`` (finished trials only)."""
    study = store.get_study(study_id)
    if study["kind"] != KIND:
        raise SpecError(f"study {study_id} is a {study['kind']!r} study, not an LR-sensitivity sweep")
    s = study["spec"]
    grid = [float(x) for x in s["grid"]]
    metric = s["metric"]
    points = []
    for t in store.list_trials(study_id=study_id):
        if t.status in ("running", "interrupted") or not 0 <= t.spec.index < len(grid):
            continue
        m = t.final_metrics
        loss = float(m.get(metric, math.nan)) if t.status in ("budget", "reached") else math.nan
        points.append(Point(grid[t.spec.index], t.spec.seed, loss, float(m.get("sensitivity/init_loss", math.nan)),
                            t.status, t.id))
    key = s["workload"] if s["variant"] == "base" else f"{s['workload']}:{s['variant']}"
    return SensitivityResult(key, s["algorithm"], grid, int(s["budget_steps"]), metric, points, study_id)


def results_in_store(store: Any) -> dict[tuple[str, str], SensitivityResult]:
    """Every sweep in ``store`` with at least one complete seed, by ``(algorithm, workload
    key)``; the newest sweep wins where several exist (read-only)."""
    out: dict[tuple[str, str], SensitivityResult] = {}
    for study in store.list_studies():
        if study["kind"] != KIND:
            continue
        r = load(store, int(study["id"]))
        if r.complete_seeds():
            out[(r.algorithm, r.workload)] = r
    return out


def summary_rows(results: Mapping[str, SensitivityResult]) -> list[dict[str, Any]]:
    """One row per labelled result: sensitivity (mean, sd over seeds), grid-best loss (mean,
    sd), best lr, seeds, diverged points, L_init (for tables)."""
    rows = []
    for label, r in results.items():
        _, div = r.mean_curve()
        rows.append({"label": label, "sensitivity": r.sensitivity, "sensitivity_sd": r.sensitivity_sd,
                     "best_loss": r.best_loss, "best_loss_sd": r.best_loss_sd, "best_lr": r.best_lr(),
                     "seeds": len(r.complete_seeds()), "diverged": int(sum(div)), "init_loss": r.mean_init_loss})
    return rows


__all__ = [
    "ADAM_RANGE",
    "DEFAULT_POINTS",
    "KIND",
    "Point",
    "SensitivityResult",
    "clamped",
    "default_range",
    "grid_best",
    "load",
    "lr_grid",
    "lr_sensitivity",
    "parse_grid",
    "results_in_store",
    "summary_rows",
]
