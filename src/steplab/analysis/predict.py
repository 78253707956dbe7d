"""Predict before paying: loss-curve laws fitted on stored runs, the convex bound, horizon
transfer and cooldown planning, all reading traces from the store (steplab runs or a user's
runs recorded with :class:`steplab.training.recorder.Recorder`).

* Laws (:mod:`steplab.analysis.laws`): the annealing law of Tissue, Wang & Wang 2024 ("Scaling Law
  with Learning Rate Annealing", arXiv 2408.11029, Eq. 1) and the multi-power law of Luo et
  al. 2025 (arXiv 2503.12811, Eq. 5), and the convex bound of Schaipp et al. 2025 fitted as a
  law (their §7.4 fit, ``laws.BoundLaw``), fitted on the training-loss traces of one or more
  runs; a fitted law predicts the curve of any schedule at the same LR scale.
* The bound (:mod:`steplab.analysis.bound`): Schaipp et al. 2025 (arXiv 2501.18965, Thm 1) along a
  run for any schedule, its optimal base LR, the LR at another horizon; the power-law rule
  of Bjorck et al. 2024 ("Scaling Optimal LR Across Token Horizons", arXiv 2409.19913) fitted
  on LRs tuned at several horizons in the store.

Warm-up handling: the annealing law leaves warm-up updates out of its LR areas by default
(Tissue et al. §3 treat warm-up separately; ``include_warmup=True`` keeps them); the
multi-power law adds the warm-up area ``S_W``; the bound law sums every update. A fit needs
its runs to share the warm-up length; a prediction uses the predicted schedule's own warm-up.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steplab import schedules
from steplab.analysis import bound, laws
from steplab.analysis.law_curves import MIN_POINTS, Curve, prepare_curve
from steplab.analysis.law_fit import fit_annealing, fit_bound, fit_multipower
from steplab.errors import SpecError, read_text_file

#: the laws :func:`fit_runs` fits: ``bound-transient`` is the bound law with its exponent
#: fitted and an early transient (``laws.BoundLaw``'s ``C, tau``; our extension)
LAWS = ("annealing", "multipower", "bound", "bound-transient")
#: the share of each run a law leaves out at the start of its fit (``fit_runs(start=None)``):
#: none for the annealing and multi-power laws, as their papers fit; the first 10% for the
#: bound, which describes the convex-like later phase (chosen on charlm, ``benchmarks/predict.py``);
#: none for ``bound-transient``, whose transient term describes the early phase instead
DEFAULT_START = {"annealing": 0.0, "multipower": 0.0, "bound": 0.1, "bound-transient": 0.0}

#: schedule families ``predict best`` searches, each a list of specs
FAMILIES: dict[str, list[dict[str, Any]]] = {
    "wsd": [{"name": "wsd", "decay": d, "shape": s}
            for s in ("linear", "1-sqrt", "cosine") for d in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)],
    "cosine": [{"name": "cosine", "end": e} for e in (0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3)],
    "linear": [{"name": "linear", "end": e} for e in (0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3)],
    "polynomial": [{"name": "polynomial", "power": p} for p in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)],
    "rex": [{"name": "rex", "alpha": a} for a in (0.1, 0.25, 0.5, 0.75, 0.9)],
}


# ---------------------------------------------------------------------------------- traces
@dataclasses.dataclass(frozen=True)
class Run:
    """What a law needs from one stored trial: its absolute LRs, its losses, its warm-up.

    ``losses[i]`` is the loss after ``steps[i]`` updates: the per-step training loss of the
    trace (logged before update ``k``, so after ``k`` updates) or an evaluated metric such as
    ``train/loss`` (see :func:`load_run`)."""

    trial_id: int
    steps: np.ndarray  # update counts at which the losses were taken, increasing
    lrs: np.ndarray  # absolute LR of every update 0..T-1
    losses: np.ndarray
    warmup_steps: int
    #: moving-average width for :meth:`curve`: 21 for noisy per-step minibatch losses, 1 for
    #: evaluations (already averaged over a sample)
    smooth: int = 21

    @property
    def peak_lr(self) -> float:
        return float(np.nanmax(self.lrs))

    @property
    def updates(self) -> int:
        """The run's length T in updates."""
        return int(len(self.lrs))

    def curve(self, *, upto: int | None = None, max_points: int = 400, smooth: int | None = None) -> Curve:
        """The (smoothed, subsampled) curve of the losses taken after fewer than ``upto``
        updates (default all)."""
        n = len(self.steps) if upto is None else int(np.searchsorted(self.steps, int(upto)))
        if n < 1:
            raise SpecError(f"trial {self.trial_id} has no losses before update {upto}")
        last = int(self.steps[n - 1])
        # a loss taken after all T updates needs an lr entry T (never applied): repeat the last
        lrs = self.lrs if last < len(self.lrs) else np.concatenate([self.lrs, np.repeat(self.lrs[-1:], last + 1 - len(self.lrs))])
        return prepare_curve(self.steps[:n], lrs[: last + 1], self.losses[:n], max_points=max_points,
                                  smooth=self.smooth if smooth is None else smooth)


def warmup_steps_of(lrs: Sequence[float] | np.ndarray) -> int:
    """Updates before the LR first reaches its maximum when it rises to it from below
    (a warm-up), else 0; read off the trace so a user's run needs no schedule spec."""
    x = np.asarray(lrs, dtype=np.float64)
    if x.size < 2 or not np.isfinite(x).all():
        return 0
    top = x.max()
    first = int(np.argmax(x >= top * (1 - 1e-9)))
    return first if first > 0 and x[0] < top * (1 - 1e-9) else 0


def load_run(store: Any, trial_id: int, metric: str | None = None) -> Run:
    """A stored trial as a :class:`Run`; a clear error when it cannot be fitted.

    ``metric`` None takes the per-step training losses of the trace (noisy minibatch losses,
    smoothed when fitted); a metric name such as ``train/loss`` (``steplab run
    --train-eval-batches``) or ``validation/loss`` takes that metric's evaluations instead,
    which are averages over a whole sample and so far less noisy, though sparser."""
    trace = store.steps(trial_id)
    steps, lrs, losses = trace["step"], trace["lr"], trace["loss"]
    if len(steps) < 10:
        raise SpecError(f"trial {trial_id} has {len(steps)} recorded steps; a law needs a full training curve")
    if not np.isfinite(lrs).all():
        raise SpecError(f"trial {trial_id} has steps without a recorded lr; record it with the Recorder")
    if not np.array_equal(steps, np.arange(len(steps))):
        raise SpecError(f"trial {trial_id} did not record every update from 0; a law needs the lr of each update")
    lrs = lrs.astype(np.float64)
    if metric is None:
        return Run(int(trial_id), steps.astype(np.int64), lrs, losses.astype(np.float64), warmup_steps_of(lrs))
    rows = store.evals(trial_id)
    picked = sorted((r.step, r.value) for r in rows if r.metric == metric and 1 <= r.step <= len(steps))
    if len(picked) < MIN_POINTS:
        known = sorted({r.metric for r in rows})
        raise SpecError(f"trial {trial_id} has {len(picked)} evaluations of {metric!r} (a fit needs "
                        f"{MIN_POINTS}); its metrics: {', '.join(known) or 'none'}")
    at, values = zip(*picked, strict=True)
    return Run(int(trial_id), np.asarray(at, dtype=np.int64), lrs, np.asarray(values, dtype=np.float64),
               warmup_steps_of(lrs), smooth=1)


# ---------------------------------------------------------------------------------- fitting
@dataclasses.dataclass(frozen=True)
class FittedLaw:
    """A law fitted on stored runs, and what it was fitted on (saved as ``law.json``)."""

    law: laws.Law
    residual: float
    rmse_log: float
    n_points: int
    trial_ids: tuple[int, ...]
    peak_lr: float
    steps: tuple[int, ...]
    #: the share of each run left out at the start of the fit
    start: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law.to_dict(), "fit": {"residual": self.residual, "rmse_log": self.rmse_log,
                "n_points": self.n_points, "trial_ids": list(self.trial_ids), "peak_lr": self.peak_lr,
                "steps": list(self.steps), "start": self.start}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FittedLaw:
        try:
            fit = d["fit"]
            return cls(laws.law_from_dict(d["law"]), float(fit["residual"]), float(fit["rmse_log"]),
                       int(fit["n_points"]), tuple(int(i) for i in fit["trial_ids"]), float(fit["peak_lr"]),
                       tuple(int(s) for s in fit["steps"]), float(fit.get("start", 0.0)))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise SpecError(f"not a steplab law file (missing or bad {e}); write one with `steplab predict fit`") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return p


def load_law(path: str | Path) -> FittedLaw:
    """A law file written by :meth:`FittedLaw.save` / ``steplab predict fit --out``."""
    p = Path(path)
    text = read_text_file(p, "law file", "give the file `steplab predict fit --out` wrote")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"law file {str(p)!r} is not JSON ({e.msg}); write one with `steplab predict fit`") from None
    except (ValueError, RecursionError):  # a number too long, nesting too deep
        raise SpecError(f"law file {str(p)!r} is not a steplab law file; write one with `steplab predict fit`") from None
    return FittedLaw.from_dict(data)


#: the decay factors ``lam="fit"`` chooses from (Tissue et al. 2024 recommend 0.99 .. 0.999
#: for runs of tens of thousands of steps; a run of a few hundred needs a shorter memory)
LAMBDA_GRID = (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)



def shared_warmup(runs: Sequence[Run]) -> int:
    """The warm-up steps every run shares (a law is fitted with one warm-up); one line naming
    the different warm-ups otherwise."""
    warm = {r.warmup_steps for r in runs}
    if len(warm) > 1:
        raise SpecError(f"the runs warm up for different numbers of steps ({sorted(warm)}); fit runs that share one warm-up")
    return warm.pop()


def start_of(law: str, start: float | None) -> float:
    """The share of each run left out at the start of a fit: ``start``, or the law's
    :data:`DEFAULT_START`; one line naming the fix when it is not in ``[0, 0.9]``."""
    if start is None:
        return DEFAULT_START.get(law, 0.0)
    if isinstance(start, bool) or not isinstance(start, (int, float)) or not 0.0 <= start <= 0.9:
        raise SpecError(f"start must be a share of the run in [0, 0.9] (0.1 leaves out the first 10%), got {start!r}")
    return float(start)


def fit_curves(runs: Sequence[Run], start: float = 0.0, *, upto: int | None = None,
               max_points: int = 400) -> list[Curve]:
    """Each run's curve (up to ``upto`` updates) without the points of its first ``start``
    share of updates."""
    return [r.curve(upto=upto, max_points=max_points).since(math.ceil(start * r.updates)) for r in runs]


def fit_runs(runs: Sequence[Run], law: str = "annealing", *, lam: float | str = 0.999,
             include_warmup: bool = False, upto: int | None = None, start: float | None = None,
             max_points: int = 400) -> FittedLaw:
    """Fit ``law`` jointly on ``runs`` (one or more, e.g. constant + cosine) by Huber loss on
    log loss (Tissue et al. 2024 §4; Luo et al. 2025 §4; Schaipp et al. 2025 §7.4 for the
    bound). ``upto`` fits only the first updates of each run; ``start`` leaves out the points
    of the first share of each run (default: :data:`DEFAULT_START` of the law), whose LR
    areas still count; ``max_points`` caps each run's curve (:meth:`Run.curve`).

    ``lam`` is the annealing law's momentum decay (the paper fixes 0.999, a memory of ~1,000
    updates); ``lam="fit"`` fits the law at every value of :data:`LAMBDA_GRID` and keeps the
    one with the lowest fit residual, for runs whose length is far from the paper's."""
    if isinstance(lam, str):
        if lam != "fit":
            raise SpecError(f"lambda must be a number in [0, 1) or 'fit', got {lam!r}")
        if law != "annealing":
            raise SpecError("lambda='fit' applies to the annealing law only")
        fits, refused = [], None
        for g in LAMBDA_GRID:
            try:
                fits.append(fit_runs(runs, law, lam=g, include_warmup=include_warmup, upto=upto, start=start,
                                     max_points=max_points))
            except SpecError as exc:  # e.g. no parameters with positive losses at this lambda
                refused = exc
        if not fits:
            raise refused  # type: ignore[misc]
        return min(fits, key=lambda f: f.residual)
    if law not in LAWS:
        raise SpecError(f"unknown law {law!r}; use one of {', '.join(LAWS)}")
    if not runs:
        raise SpecError("fit needs at least one run")
    first = start_of(law, start)
    w = shared_warmup(runs)
    curves = fit_curves(runs, first, upto=upto, max_points=max_points)
    if law == "annealing":
        res = fit_annealing(curves, lam=lam, warmup_steps=w, include_warmup=include_warmup)
    elif law == "bound":
        res = fit_bound(curves, warmup_steps=w)
    elif law == "bound-transient":
        res = fit_bound(curves, warmup_steps=w, alpha=None, transient=True)
    else:
        res = fit_multipower(curves, warmup_steps=w)
    return FittedLaw(res.law, res.residual, res.rmse_log, res.n_points, tuple(r.trial_id for r in runs),
                     max(r.peak_lr for r in runs), tuple(r.updates for r in runs), first)


def fit_trials(store: Any, trial_ids: Sequence[int], law: str = "annealing", *, metric: str | None = None,
               **kwargs: Any) -> FittedLaw:
    """:func:`fit_runs` on stored trials (``metric``: see :func:`load_run`)."""
    return fit_runs([load_run(store, t, metric) for t in trial_ids], law, **kwargs)


# ---------------------------------------------------------------------------------- predicting
def schedule_lrs(spec: Any, budget_steps: int, peak_lr: float) -> tuple[np.ndarray, int]:
    """Absolute LRs of a ``budget_steps``-update run of ``spec`` at ``peak_lr``, and its
    warm-up steps."""
    mult = bound.schedule_multipliers(spec, budget_steps)
    return peak_lr * mult, warmup_steps_of(mult)


def predict_curve(law: laws.Law, spec: Any, budget_steps: int, peak_lr: float) -> np.ndarray:
    """Predicted training loss after ``s = 1..budget_steps`` updates of ``spec`` at ``peak_lr``."""
    if isinstance(law, laws.PowerLawBaseline):
        return law.predict(np.arange(1, budget_steps + 1))
    lrs, w = schedule_lrs(spec, budget_steps, peak_lr)
    return dataclasses.replace(law, warmup_steps=w).predict(lrs)


def final_loss(law: laws.Law, spec: Any, budget_steps: int, peak_lr: float) -> float:
    """The predicted loss at the end of the run (the law evaluated at that step alone: the
    bound law's cost grows with the steps asked for)."""
    if isinstance(law, laws.PowerLawBaseline):
        return float(law.predict([budget_steps])[0])
    lrs, w = schedule_lrs(spec, budget_steps, peak_lr)
    return float(dataclasses.replace(law, warmup_steps=w).predict(lrs, [budget_steps])[0])


def best_in_family(law: laws.Law, family: str, budget_steps: int, peak_lr: float, *,
                   warmup: float = 0.0) -> list[tuple[schedules.ScheduleSpec, float]]:
    """Every spec of ``family`` (:data:`FAMILIES`, with a ``warmup`` fraction added) with
    its predicted final loss, best first."""
    if family not in FAMILIES:
        raise SpecError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    out = []
    for d in FAMILIES[family]:
        spec = schedules.spec_from({**d, "warmup": warmup} if warmup else d)
        loss = final_loss(law, spec, budget_steps, peak_lr)
        out.append((spec, loss if math.isfinite(loss) else math.inf))
    return sorted(out, key=lambda x: x[1])


# ---------------------------------------------------------------------------------- bound
def trial_norms(store: Any, trial_id: int) -> np.ndarray:
    """A stored run's l2 gradient norms (the bound's ``G_t``), non-finite values dropped."""
    g = store.steps(trial_id)["grad_norm"]
    g = g[np.isfinite(g)]
    if len(g) < 2:
        raise SpecError(f"trial {trial_id} recorded no gradient norms; use the default G = 1")
    return g


def tuned_horizons(store: Any, workload: str, algorithm: str, metric: str | None = None) -> dict[int, float]:
    """``{budget_steps: best lr}`` of a workload + algorithm over the store's finished trials,
    best by the final ``metric`` (default: the workload's target metric): the data the
    horizon power law is fitted on."""
    from steplab import workloads as wl_mod
    from steplab.workloads import references

    name, variant = references.split(workload)
    target = wl_mod.get(name, variant or None).target
    metric = metric or target.metric
    sign = 1.0 if target.mode == "min" else -1.0
    best: dict[int, tuple[float, float]] = {}
    for t in store.list_trials(workload=name, status=("reached", "budget")):
        if t.spec.algorithm != algorithm or t.spec.variant != (variant or "base"):
            continue
        v = t.final_metrics.get(metric)
        lr = t.spec.algorithm_spec.get("lr") if isinstance(t.spec.algorithm_spec, dict) else None
        if v is None or lr is None or not math.isfinite(v):
            continue
        b = int(t.spec.budget_steps)
        if b not in best or sign * v < sign * best[b][0]:
            best[b] = (v, float(lr))
    return {b: lr for b, (_, lr) in sorted(best.items())}


__all__ = [
    "FAMILIES",
    "FittedLaw",
    "Run",
    "best_in_family",
    "final_loss",
    "fit_runs",
    "fit_trials",
    "load_law",
    "load_run",
    "predict_curve",
    "schedule_lrs",
    "trial_norms",
    "tuned_horizons",
    "warmup_steps_of",
]
