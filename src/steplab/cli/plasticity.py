"""``steplab continual`` on a long stream (loss of plasticity): run one
(:func:`steplab.studies.plasticity.run_long`) and report stored ones: the online accuracy of
task ``k`` against ``k``, its first and last 10%, and the probe metrics (dead units,
effective rank, weight magnitude) at the end."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.table import Table

from steplab.cli.common import build_algorithm, console, progress_bar
from steplab.cli.signals import interruptible

if TYPE_CHECKING:
    from steplab.algorithms import ResolvedAlgorithm
    from steplab.training.config import TrainConfig
    from steplab.workloads.stream_spec import StreamSpec

#: the default of a long stream without --algorithm: SGD at a constant step size (the
#: best total online accuracy on input-permuted digits of {0.01, 0.03, 0.1}, benchmarks/plasticity.py)
LONG_OPTIMIZER, LONG_LR = "sgd", 0.03

#: (final-metric key, title, format) of the summary table
SUMMARY = [
    ("online/first", "first 10% of tasks", "{:.3f}"),
    ("online/last", "last 10% of tasks", "{:.3f}"),
    ("online/drop", "drop (first - last; loss: last - first)", "{:+.3f}"),
    ("online/mean", "mean over tasks (total online)", "{:.3f}"),
    ("plasticity/dead_fraction", "dead/saturated units at the end", "{:.3f}"),
    ("plasticity/erank", "effective rank at the end (mean of layers)", "{:.1f}"),
    ("plasticity/weight_magnitude", "mean |w| at the end", "{:.4f}"),
]


def long_algorithm(algorithm: str | None, lr: float | None, weight_decay: float | None, sets: list[str] | None,
                   stage_schedule: str | None) -> ResolvedAlgorithm:
    """``--algorithm`` (default plain SGD at lr 0.03, no weight decay) with a constant lr over
    the whole stream; ``--stage-schedule none`` keeps the algorithm's own schedule."""
    from steplab.errors import SpecError

    policy = (stage_schedule or "constant").strip().lower()
    if policy not in ("constant", "none"):
        raise SpecError(f"a long stream takes --stage-schedule constant (the default) or none, got {stage_schedule!r}")
    if algorithm is None:
        base = build_algorithm(None, optimizer=LONG_OPTIMIZER, lr=LONG_LR if lr is None else lr,
                               weight_decay=0.0 if weight_decay is None else weight_decay, schedule="constant",
                               sets=sets)
        base = dataclasses.replace(base, name=LONG_OPTIMIZER)
    else:
        base = build_algorithm(algorithm, lr=lr, weight_decay=weight_decay, sets=sets)
        if policy == "constant":
            base = dataclasses.replace(base, schedule={"name": "constant"})
    return base.resolved()


def run_long_cmd(spec: StreamSpec, algo: ResolvedAlgorithm, seed: int, train: TrainConfig, name: str | None,
                 plot: str | None, db: str | None) -> None:
    """Train the long stream as one stored trial; print the online curve and the summary."""
    from steplab.store import open_store
    from steplab.studies.plasticity import run_long
    from steplab.workloads.long_streams import LongStream

    stream = LongStream(spec)
    total = stream.budget_steps
    with interruptible("run the same command again to start a new run"), open_store(db) as store, \
            progress_bar("[bold]{task.description}") as bar:
        task = bar.add_task(f"{stream.key} · {algo.name}", total=total, info="")

        def progress(step: int, total: int, metrics: dict[str, float], train_s: float) -> None:
            v = metrics.get(f"online/{stream.metric}", math.nan)
            bar.update(task, completed=step, info=f"task {step // stream.steps_per_task}/{stream.tasks} · "
                                                  f"online {stream.metric} {v:.3f}")

        res = run_long(stream, algo, seed, store=store, config=train, progress=progress, name=name)
        bar.update(task, completed=res.trial.steps)
    t = res.trial
    console.print(f"trial {t.id}: {t.status} · {stream.key} · {t.spec.algorithm} · seed {seed}", highlight=False)
    _curve_table([(t, np.arange(len(res.curve)), np.array(res.curve))], stream.metric)
    _summary([t])
    us = 1e6 * t.train_time_s / max(t.steps, 1)
    console.print(f"cost: {t.steps} updates, {t.train_time_s:.2f} s training ({us:.0f} µs per update) + "
                  f"{t.eval_time_s:.2f} s evaluation and probes", highlight=False)
    if t.message:
        console.print(f"  {t.message}", highlight=False, markup=False)
    if plot and t.id is not None:
        with open_store(db) as store:
            console.print(f"wrote {_plot(store, [t], plot)}")
    if t.status in ("diverged", "failed"):
        raise typer.Exit(1)


def _curve_table(rows: list[tuple[Any, np.ndarray, np.ndarray]], metric: str, blocks: int = 10) -> None:
    """The online curve in ``blocks`` blocks of tasks (mean of each block), one column per trial."""
    table = Table(title=f"online {metric} per task, mean over blocks of tasks")
    table.add_column("tasks")
    for t, _, _ in rows:
        table.add_column(f"trial {t.id}", justify="right")
    n = max(len(v) for _, _, v in rows) if rows else 0
    edges = np.linspace(0, n, min(blocks, n) + 1).round().astype(int) if n else []
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        cells = [f"{np.mean(v[(k >= a) & (k < b)]):.3f}" if np.any((k >= a) & (k < b)) else "—" for _, k, v in rows]
        table.add_row(f"{a}-{b - 1}", *cells)
    console.print(table)


def _summary(trials: list[Any]) -> None:
    table = Table(title="loss of plasticity (Dohare et al. 2024)")
    table.add_column("")
    for t in trials:
        table.add_column(f"trial {t.id}", justify="right")
    table.add_row("stream", *[t.spec.variant for t in trials])
    table.add_row("algorithm", *[t.spec.algorithm for t in trials])
    table.add_row("seed", *[str(t.spec.seed) for t in trials])
    for key, title, fmt in SUMMARY:
        vals = [t.final_metrics.get(key) for t in trials]
        table.add_row(title, *["—" if v is None or math.isnan(v) else fmt.format(v) for v in vals])
    table.add_row("µs per update", *[f"{1e6 * t.train_time_s / max(t.steps, 1):.0f}" for t in trials])
    console.print(table)


def _plot(store: Any, trials: list[Any], out: str) -> Any:
    from steplab.analysis.plasticity import probe_curve, task_curve
    from steplab.report.plasticity_plots import plot_long

    curves = {f"trial {t.id} {t.spec.algorithm}": task_curve(store, t.id) for t in trials}
    metric = "online/accuracy" if any("online/accuracy" in t.final_metrics for t in trials) else "online/loss"
    panels: list[dict[str, Any]] = [{"title": "online accuracy of task k (Dohare et al. 2024)", "ylabel": metric,
                                     "lines": {k: (x, v, None, None) for k, (x, v) in curves.items()}}]
    for m, label in (("plasticity/dead_fraction", "dead/saturated units"), ("plasticity/erank", "effective rank"),
                     ("plasticity/weight_magnitude", "mean |w|")):
        lines = {f"trial {t.id} {t.spec.algorithm}": (*probe_curve(store, t.id, m), None, None) for t in trials}
        panels.append({"title": f"{label} at task starts", "ylabel": label, "lines": lines})
    n = max(len(x) for x, _ in curves.values()) if curves else 0
    return plot_long(panels, out, window=max(1, n // 50))


def report_long(refs: list[str], db: str | None, plot: str | None) -> bool:
    """Report stored long-stream trials; False (nothing printed) when none of ``refs`` is one."""
    from steplab.analysis.plasticity import task_curve
    from steplab.cli.refs import trial_ids
    from steplab.errors import SpecError
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        trials = [store.get_trial(i) for i in trial_ids(store, refs)]
        long = ["online/tasks" in t.final_metrics or "online/mean" in t.final_metrics for t in trials]
        if not any(long):
            return False
        if not all(long):
            raise SpecError("report long streams and short continual runs separately "
                            "(a long stream has no accuracy matrix)")
        rows = [(t, *task_curve(store, t.id)) for t in trials]
        metric = "accuracy" if "online/accuracy" in trials[0].final_metrics else "loss"
        _curve_table(rows, metric)
        _summary(trials)
        if plot:
            console.print(f"wrote {_plot(store, trials, plot)}")
    return True
