"""``steplab tune``: search an algorithm's hyperparameters on a workload under one compute
budget (:mod:`steplab.studies.tuning`); the flags fill a :class:`steplab.studies.tuning.TuneSpec`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from steplab.algorithms.defaults import DEFAULT_ALGORITHM
from steplab.cli.common import (
    AlgorithmOption,
    DbOption,
    SetsOption,
    WorkloadArgument,
    console,
    friendly,
    progress_bar,
)

if TYPE_CHECKING:
    from steplab.results import TrialResult
    from steplab.studies.tuning import TuneResult


@friendly
def tune_cmd(
    workload: WorkloadArgument,
    algorithm: AlgorithmOption = DEFAULT_ALGORITHM,
    strategy: str = typer.Option("predict", "--strategy", "-s",
                                 help="qmc, tpe, median, hyperband, predict (steplab's pruner), asha, pbt (Ray Tune)."),
    budget_steps: int = typer.Option(..., "--budget", min=1, help="Compute budget: training steps summed over all trials."),
    trial_steps: int | None = typer.Option(None, "--trial-steps", min=2, help="Steps per trial (default: the workload's budget)."),
    params: str | None = typer.Option(None, "--params", help="Comma-separated hyperparameters to search (default: the whole search space)."),
    evals: int = typer.Option(50, "--evals", min=1, help="Evaluations per trial: the cadence every strategy reports at."),
    metric: str = typer.Option("validation/loss", "--metric", help="The metric to optimize (its final value)."),
    mode: str = typer.Option("min", "--mode", help="min or max."),
    population: int | None = typer.Option(None, "--population", min=2, help="pbt: members (default: full trials the budget buys)."),
    sets: SetsOption = None,
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler and of every trial's training."),
    variant: str = typer.Option("base", "--variant", help="Workload variant."),
    name: str | None = typer.Option(None, "--name", help="Name of the tune in the store (re-use it to resume)."),
    plot: str | None = typer.Option(None, "--plot", help="Plot every trial's curve (pruned ones faded) to this PNG."),
    db: DbOption = None,
) -> None:
    """Tune hyperparameters under one compute budget; resumes a killed tune."""
    from steplab.store import open_store, resolve_url
    from steplab.studies import tuning

    if ":" in workload:
        workload, variant = workload.split(":", 1)
    spec = tuning.TuneSpec(
        workload=workload, algorithm=algorithm, strategy=strategy, budget_steps=budget_steps, variant=variant,
        trial_steps=trial_steps, params=tuple(p.strip() for p in params.split(",") if p.strip()) if params else None,
        seed=seed, metric=metric, mode=mode, evals=evals, overrides=tuple(sets or ()), population=population, name=name)
    url = resolve_url(db)
    with open_store(url) as store:
        with progress_bar("[bold]compute (steps)") as bar:
            task = bar.add_task("tune", total=budget_steps, info="")

            def on_trial(r: TrialResult, used: int) -> None:
                v = tuning.final_value(r, spec.metric)
                bar.update(task, completed=min(used, budget_steps),
                           info=f"trial {r.spec.index}: {r.status} at {r.steps} steps, {spec.metric} {v:.4g}")

            res = tuning.run_tune(spec, store, db_url=url, on_trial=on_trial)
        _print(res)
        if plot:
            from steplab.report.tune_plots import plot_tune

            path = plot_tune(store, res, plot)
            console.print(f"wrote {path}")


def _print(res: TuneResult) -> None:
    """Every trial's hyperparameters and final metric, the compute used and the best point."""
    from steplab.studies import tuning

    spec = res.spec
    table = Table(title=f"{spec.strategy} on {spec.workload} ({spec.algorithm})", show_lines=False)
    for col in ("trial", "status", "steps", *(spec.params or ()), spec.metric):
        table.add_column(col, justify="right")
    names = spec.params or sorted({k for t in res.trials for k in t.spec.hyperparameters})
    if not spec.params:
        table.columns = table.columns[:3]
        for n in names:
            table.add_column(n, justify="right")
        table.add_column(spec.metric, justify="right")
    for t in sorted(res.trials, key=lambda t: t.spec.index):
        hp = t.spec.hyperparameters
        cells = [f"{hp[n]:.4g}" if isinstance(hp.get(n), float) else str(hp.get(n, "")) for n in names]
        v = tuning.final_value(t, spec.metric)
        mark = " *" if res.best is not None and t.id == res.best.id else ""
        table.add_row(str(t.spec.index), t.status, str(t.steps), *cells, f"{v:.4f}{mark}" if math.isfinite(v) else "-")
    console.print(table)
    used, secs = res.steps_used, res.seconds_used
    pruned = sum(t.status == "pruned" for t in res.trials)
    console.print(f"compute: {used} of {spec.budget_steps} steps ({used / spec.budget_steps:.0%}), "
                  f"{secs:.1f} s of training; {len(res.trials)} trials, {pruned} stopped early",
                  highlight=False)
    if res.best is None:
        console.print("no trial trained its whole length: raise --budget", highlight=False)
    else:
        best = res.best
        point = {k: best.spec.hyperparameters[k] for k in names if k in best.spec.hyperparameters}
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items())
        console.print(f"best: trial {best.spec.index} (id {best.id}) {spec.metric} {res.best_value:.4f} at {shown}",
                      highlight=False)
        console.print(f"  next: steplab run {spec.workload} -a {spec.algorithm} "
                      + " ".join(f"--set {k}={v:.6g}" if isinstance(v, float) else f"--set {k}={v}" for k, v in point.items()),
                      highlight=False)
