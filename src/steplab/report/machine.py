"""The reports as data for programs: what ``steplab report --json`` and ``--csv`` print
(DESIGN.md, "Output": tables for people, ``--json`` for programs).

* :func:`scores_data` - a benchmark's ranking, per-workload times to target (steps and
  seconds, ratio to the fastest, with bootstrap intervals), performance profile, variant
  agreement, verdict (tie groups, wins) and pairwise probabilities of improvement;
* :func:`scores_rows` - the per-workload table, one row per (workload, algorithm): the CSV;
* :func:`runs_data` - the run report of single trials, one record per run.

Values are the numbers themselves (not the text the tables show); a target that was not
reached is ``inf`` here and becomes ``null`` in JSON and an empty cell in CSV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from steplab.algorithms.labels import run_label
from steplab.report import benchmark_data as bd
from steplab.report.run_report import Run, summarize

if TYPE_CHECKING:
    from steplab.studies.bench import Scores

__all__ = ["runs_data", "scores_data", "scores_rows"]


def scores_rows(scores: Scores) -> list[dict[str, Any]]:
    """One row per workload and algorithm (ranking order): ``steps``, ``time_s``, their
    ratios to the fastest algorithm on that workload, and the ends of their bootstrap
    intervals (``benchmark_data.cell_interval_fields``)."""
    r_time, r_steps = bd.ratio_table(scores.time_s), bd.ratio_table(scores.steps)
    order = [a for a, _ in bd.ranking_of(scores)]
    return [{"workload": w, "algorithm": a, "steps": bd.time_of(scores.steps, a, w),
             "ratio_steps": r_steps.get(a, {}).get(w, math.inf), "time_s": bd.time_of(scores.time_s, a, w),
             "ratio_time": r_time.get(a, {}).get(w, math.inf), **bd.cell_interval_fields(scores, a, w)}
            for w in bd.workload_keys(scores) for a in order]


def scores_data(scores: Scores, *, study_id: int | None = None, title: str = "") -> dict[str, Any]:
    """The whole benchmark report: ``ranking`` (rank, algorithm, score by time and by
    steps with their intervals, tie group, wins, targets reached), ``per_workload``
    (:func:`scores_rows`), ``profile`` (tau values, rho and its band per algorithm),
    ``variants``, ``verdict`` (level, tie groups, separated pairs, Holm-adjusted p-values,
    no-signal workloads) and ``pairs`` (P(A faster than B) with intervals)."""
    keys = bd.workload_keys(scores)
    ranking = [{"rank": i, "algorithm": a, "score_time": s, "score_steps": scores.score_steps.get(a, math.nan),
                "targets_reached": bd.targets_reached(scores, a), "workloads": len(keys),
                **bd.score_interval_fields(scores, a)}
               for i, (a, s) in enumerate(bd.ranking_of(scores), 1)]
    return {"study_id": study_id, "name": title, "studies": bd.n_studies(scores), "ranking": ranking,
            "per_workload": scores_rows(scores),
            "profile": {"tau": list(scores.profiles_tau), "rho": dict(scores.profiles),
                        "band": {a: {"low": lo, "high": hi} for a, (lo, hi) in scores.profile_bands.items()}},
            "variants": dict(scores.variants), "verdict": bd.verdict_data(scores), "pairs": bd.pair_rows(scores)}


def runs_data(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One record per run of the run report: id, label, name, source, workload, algorithm,
    status, steps, training time, final and min loss, the final and best value of every
    evaluation metric, the lr and gradient-norm ranges."""
    out = []
    for r in runs:
        s = summarize(r)
        rec: dict[str, Any] = {
            "id": r.trial.id, "label": run_label(r.trial.spec, r.name), "name": r.name, "source": r.source,
            "workload": r.trial.spec.workload, "algorithm": r.trial.spec.algorithm, "status": r.trial.status,
            "steps": s.steps, "train_time_s": s.train_time_s, "final_loss": s.final_loss, "min_loss": s.min_loss,
            "lr_min": s.lr_range[0], "lr_max": s.lr_range[1], "grad_norm_kind": s.grad_norm_kind,
            "grad_norm_min": s.grad_norm_range[0], "grad_norm_max": s.grad_norm_range[1],
        }
        for metric, (final, best) in s.evals.items():
            rec[f"{metric} final"], rec[f"{metric} best"] = final, best
        out.append(rec)
    return out
