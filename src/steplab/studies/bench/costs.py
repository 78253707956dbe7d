"""The per-step costs of a benchmark's cells: from each trial's own seconds per step kept
at its end, else measured from the stored traces (``steplab.analysis.timing``), for the
robust time axis (``measure="cost_s"``) and the timing-noise table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from steplab.analysis import scoring
from steplab.analysis.timing import cells, summarized, trace_step_costs
from steplab.results import TrialResult
from steplab.store import Store


def study_traces(store: Store, trials: Sequence[TrialResult], *, all_trials: bool = True) -> dict[int, np.ndarray]:
    """``{trial id: training time after each update}`` (``Store.steps``) of ``trials``; with
    ``all_trials=False`` only of the cells in which some trial lacks its own seconds per step
    (``analysis.timing.summarized``), which are the only traces ``trace_step_costs`` reads."""
    if not all_trials:
        trials = [t for ts in cells(trials).values() if not summarized(ts) for t in ts]
    ids = sorted({t.id for t in trials if t.id is not None})
    return {i: store.steps(i)["time_s"] for i in ids}


def costed_trials(store: Store, trials: Sequence[TrialResult]) -> list[TrialResult]:
    """``trials`` carrying their cell's per-step cost (``timing.trace_step_costs``: the median
    of the trials' own seconds per step, else measured from the traces; a cell with neither
    falls back to ``train_time_s / steps``, ``scoring.with_step_costs``), ready for
    ``measure="cost_s"``."""
    return scoring.with_step_costs(trials, trace_step_costs(trials, study_traces(store, trials, all_trials=False)))


__all__ = ["costed_trials", "study_traces"]
