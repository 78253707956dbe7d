"""``steplab runs list|show``: the trials recorded in the store; ``show`` prints a trial's
whole stored config (every field of its :class:`steplab.results.TrialSpec`, nanoGPT keeps
its config beside each checkpoint the same way)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import typer
from rich.table import Table

from steplab.cli.common import DbOption, console, friendly

runs_app = typer.Typer(help="Trials recorded in the store.", no_args_is_help=True)


def config_lines(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key = value`` lines of a stored config, sorted, nested mappings flattened to dotted
    keys (``hyperparameters.lr = 0.03``); values other than strings are written as JSON."""
    lines: list[str] = []
    for key in sorted(config):
        value = config[key]
        if isinstance(value, Mapping) and value:
            lines += config_lines(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            lines.append(f"{prefix}{key} = {text}")
    return lines


@runs_app.command("list")
@friendly
def runs_list(
    db: DbOption = None,
    study: int | None = typer.Option(None, "--study", help="Only trials of this study."),
    workload: str | None = typer.Option(None, "--workload", help="Only trials of this workload."),
    limit: int = typer.Option(50, "--limit", help="Show the newest N trials."),
) -> None:
    """List recorded trials, newest last."""
    import math

    from steplab.store import open_store

    with open_store(db) as store:
        trials = store.list_trials(study_id=study, workload=workload)
    trials = sorted(trials, key=lambda t: t.id or 0)[-limit:]
    table = Table(title=f"{len(trials)} trial(s)")
    for col in ("id", "workload", "algorithm", "seed", "status", "steps", "steps to target", "train s", "final"):
        table.add_column(col, justify="right" if col in ("id", "seed", "steps", "steps to target", "train s") else "left")
    for t in trials:
        final = ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in sorted(t.final_metrics.items()) if k.startswith("validation/"))
        wk = t.spec.workload if t.spec.variant == "base" else f"{t.spec.workload}:{t.spec.variant}"
        table.add_row(str(t.id), wk, t.spec.algorithm, str(t.spec.seed), t.status, str(t.steps),
                      f"{t.steps_to_target:.0f}" if math.isfinite(t.steps_to_target) else "—",
                      f"{t.train_time_s:.2f}", final)
    console.print(table)


@runs_app.command("show")
@friendly
def runs_show(
    trial_id: int = typer.Argument(..., help="Trial id (steplab runs list)."),
    db: DbOption = None,
    plot: str | None = typer.Option(None, "--plot", help="Write loss / lr / grad-norm / eval curves to this PNG."),
) -> None:
    """Summarize one trial and print its whole stored config; optionally plot its curves."""
    import dataclasses

    from steplab.store import open_store

    with open_store(db) as store:
        t = store.get_trial(trial_id)
        steps = store.steps(trial_id)
        evals = store.evals(trial_id)
    console.print(f"[bold]trial {t.id}[/]: {t.spec.workload}:{t.spec.variant} · {t.spec.algorithm} · seed {t.spec.seed}")
    console.print(f"  status {t.status}; {t.steps} steps; train {t.train_time_s:.2f} s; eval {t.eval_time_s:.2f} s; device {t.device}")
    console.print(f"  time to target: {t.steps_to_target} steps, {t.time_to_target_s:.3g} s")
    for k, v in sorted(t.final_metrics.items()):
        console.print(f"  {k}: {v:.5g}")
    if t.message:
        console.print(f"  message: {t.message}", highlight=False, markup=False)
    console.print(f"  trace: {len(steps['step'])} step rows, {len(evals)} evaluations")
    console.print("config", style="bold")
    for line in config_lines(dataclasses.asdict(t.spec)):
        console.print(f"  {line}", highlight=False, markup=False)
    if plot:
        from steplab.report.plots import plot_trace

        path = plot_trace(steps, evals, plot, title=f"trial {t.id}: {t.spec.workload} · {t.spec.algorithm}")
        console.print(f"wrote {path}")
