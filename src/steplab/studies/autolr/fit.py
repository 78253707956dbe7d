"""The exponential model of the loss over an AutoLRS stage, and the score of a candidate's
exploration curve (Jin et al. 2021, §4; see :mod:`steplab.studies.autolr`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from steplab.errors import SpecError

#: decay rates of the exponential model, per exploration window (see the package docstring)
_RATE_BOUNDS = (0.5, 1000.0)

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
    ``[0.5, 1000]`` (see the package docstring) and refined with scipy's bounded Brent
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



def eval_points(explore: int, points: int) -> list[int]:
    n = min(points, explore)
    return sorted({max(1, round(explore * j / n)) for j in range(1, n + 1)})


def score_curve(observed: list[tuple[int, float]], horizon: int, diverged: bool) -> tuple[float, float, str, ExpModel | None]:
    """``(predicted, objective, status, fit)`` of one exploration curve (see the package
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

