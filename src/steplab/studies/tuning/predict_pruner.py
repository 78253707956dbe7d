"""The predict pruner: at checkpoints of a trial it fits the annealing law (Tissue et al.
2024, "Scaling Law with Learning Rate Annealing", Eq. 1; :mod:`steplab.analysis.laws`) to
the evaluations so far, *given the schedule the trial will follow to its end*, predicts the
final validation loss with its uncertainty (delta method on the fit), and prunes when the
prediction is worse than the incumbent by more than that uncertainty. A pruner in Optuna's
shape (``optuna/pruners/_base.py``: one method, ``prune(study, trial) -> bool``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from steplab.analysis import laws
from steplab.analysis.law_curves import Curve
from steplab.analysis.law_fit import fit_annealing
from steplab.errors import SpecError


def predict_final(steps: Sequence[int], values: Sequence[float], lrs: np.ndarray,
                  warmup_steps: int) -> tuple[float, float]:
    """Fit the annealing law ``L(s) = L0 + A S1^-alpha - C S2`` (Tissue et al. 2024, Eq. 1)
    to the losses ``values`` observed after ``steps`` updates of a run whose every LR
    ``lrs`` is known in advance, and predict the loss after all ``len(lrs)`` updates.

    Returns ``(prediction, sd)``: ``sd`` by the delta method, ``sd_log^2 = g' Cov g`` with
    ``Cov = s^2 (J'J)^-1`` from the Jacobian ``J`` of ``log L`` at the observed points, ``s^2``
    the mean squared log residual (n - 4 degrees of freedom) and ``g`` the gradient of
    ``log L(T)`` in the parameters; ``sd = L(T) * sd_log``. Where the data cannot identify a
    parameter (e.g. no annealing seen yet, so ``C`` is free) ``sd`` is ``inf``: no
    decision. Raises ``SpecError`` with fewer than ``law_curves.MIN_POINTS`` points after warm-up.
    """
    st = np.asarray(steps, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(y) & (y > 0) & (st >= 1) & (st <= lrs.size)
    curve = Curve(lrs, st[ok], y[ok])
    fit = fit_annealing(curve, warmup_steps=warmup_steps)
    law = fit.law
    s1, s2 = laws.annealing_areas(lrs, lam=law.lam, warmup_steps=warmup_steps)
    used = curve.steps[np.isfinite(s1[curve.steps - 1]) & (s1[curve.steps - 1] > 0)]
    obs = curve.losses[np.isin(curve.steps, used)]
    idx = np.concatenate([used - 1, [lrs.size - 1]])
    S1, S2 = s1[idx], s2[idx]
    pw = S1 ** (-law.alpha)
    pred = law.L0 + law.A * pw - law.C * S2
    jac = np.column_stack([np.ones_like(S1), pw, -law.A * pw * np.log(S1), -S2]) / pred[:, None]
    final = float(pred[-1])
    n = obs.size
    if not math.isfinite(final) or final <= 0 or n <= 4:
        return final, math.inf
    resid = np.log(obs) - np.log(pred[:-1])
    s2_hat = float(resid @ resid) / (n - 4)
    J, g = jac[:-1], jac[-1]
    scale = np.linalg.norm(J, axis=0)
    if np.any(scale == 0):
        return final, math.inf
    Js = J / scale
    sv = np.linalg.svd(Js, compute_uv=False)
    if sv[-1] < 1e-8 * sv[0]:  # a direction the data does not see: the fit cannot tell
        return final, math.inf
    cov = s2_hat * np.linalg.inv(Js.T @ Js)
    gs = g / scale
    return final, final * math.sqrt(max(float(gs @ cov @ gs), 0.0))


class PredictPruner:
    """An ``optuna.pruners.BasePruner`` that knows each trial's schedule in advance.

    At the first report at or past each checkpoint (fractions of ``budget_steps``), it fits
    :func:`predict_final` to the trial's intermediate values and prunes when ``prediction -
    z * sd`` is worse than the best final value of the study's complete trials (the
    incumbent), ``sd`` at least ``min_rel_sd`` of the prediction. No incumbent, too few points
    or an unidentifiable fit: no pruning. ``lrs_of(trial)`` gives ``(lrs, warmup_steps)`` of
    the trial's whole run (``Setup.lrs`` of its params).

    Composes with any Optuna sampler (``optuna.create_study(pruner=PredictPruner(...))``).
    ``decisions`` records every checkpoint: ``(trial number, step, prediction, sd,
    incumbent, pruned)``.
    """

    def __init__(self, lrs_of: Callable[[Any], tuple[np.ndarray, int]], budget_steps: int, *,
                 checkpoints: Sequence[float] = (0.1, 0.2, 0.4), z: float = 1.0, min_rel_sd: float = 0.0) -> None:
        self.lrs_of = lrs_of
        self.budget_steps = int(budget_steps)
        self.checkpoints = tuple(sorted(float(c) for c in checkpoints))
        self.z = float(z)
        self.min_rel_sd = float(min_rel_sd)
        self.decisions: list[tuple[int, int, float, float, float, bool]] = []
        self._seen: dict[int, int] = {}  # trial number -> checkpoints passed

    def prune(self, study: Any, trial: Any) -> bool:
        import optuna

        step = trial.last_step
        if step is None:
            return False
        passed = sum(step >= c * self.budget_steps for c in self.checkpoints)
        if passed <= self._seen.get(trial.number, 0):
            return False
        self._seen[trial.number] = passed
        complete = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.value is not None and math.isfinite(t.value)]
        if not complete:
            return False
        incumbent = min(complete) if study.direction == optuna.study.StudyDirection.MINIMIZE else max(complete)
        values = trial.intermediate_values
        steps = sorted(values)
        lrs, warmup = self.lrs_of(trial)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred, sd = predict_final(steps, [values[s] for s in steps], lrs, warmup)
        except SpecError:  # too few points after warm-up: wait for the next checkpoint
            return False
        sd = max(sd, self.min_rel_sd * abs(pred))
        pruned = bool(math.isfinite(pred) and math.isfinite(sd) and pred - self.z * sd > incumbent)
        self.decisions.append((trial.number, int(step), pred, sd, incumbent, pruned))
        return pruned


def optuna_pruner(p: PredictPruner) -> Any:
    """``p`` as a registered ``BasePruner`` subclass (Optuna checks the type)."""
    import optuna

    class _Pruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            return p.prune(study, trial)

    return _Pruner()
