"""``steplab tune``: search an algorithm's hyperparameters on a workload under one compute
budget (:mod:`steplab.studies.tuning`); the flags fill a :class:`steplab.studies.tuning.TuneSpec`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from steplab.algorithms.defaults import DEFAULT_ALGORITHM
from steplab.cli.common import (
    AlgorithmOption,
    CsvOption,
    CurriculumOption,
    DbOption,
    JsonOption,
    SetsOption,
    WorkloadArgument,
    console,
    emit,
    err_console,
    friendly,
    hint,
    output_format,
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
    curriculum: CurriculumOption = None,
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler and of every trial's training."),
    seeds: int = typer.Option(0, "--seeds", min=0, max=100, help="Then train the best point on this many fresh seeds "
                              "and give its value with a 90% interval (outside the budget; 3 or more for an interval)."),
    variant: str = typer.Option("base", "--variant", help="Workload variant."),
    name: str | None = typer.Option(None, "--name", help="Name of the tune in the store (re-use it to resume)."),
    plot: str | None = typer.Option(None, "--plot", help="Plot every trial's curve (pruned ones faded) to this PNG."),
    db: DbOption = None,
    verbose: bool = typer.Option(False, "--verbose", help="asha, pbt: show Ray's own logs and warnings."),
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Tune hyperparameters under one compute budget; resumes a killed tune. --json: the
    spec, every trial, the compute used and the best point; --csv: the trials table."""
    from steplab.store import open_store, resolve_url
    from steplab.studies import tuning

    fmt = output_format(as_json, as_csv)

    from steplab import workloads
    from steplab.workloads.references import split

    workload, named_variant = split(workload)  # a reference's file made absolute, so a resume finds it
    variant = named_variant or variant
    workloads.get(workload, variant)  # an unknown or broken workload fails before the progress bar shows
    spec = tuning.TuneSpec(
        workload=workload, algorithm=algorithm, strategy=strategy, budget_steps=budget_steps, variant=variant,
        trial_steps=trial_steps, params=tuple(p.strip() for p in params.split(",") if p.strip()) if params else None,
        seed=seed, metric=metric, mode=mode, evals=evals, overrides=(*(sets or ()), *([f"curriculum={curriculum}"] if curriculum else [])), population=population, name=name, seeds=seeds)
    url = resolve_url(db)
    with open_store(url) as store:
        with progress_bar("[bold]compute (steps)", stderr=fmt is not None) as bar:
            task = bar.add_task("tune", total=budget_steps, info="")

            def on_trial(r: TrialResult, used: int) -> None:
                v = tuning.final_value(r, spec.metric)
                bar.update(task, completed=min(used, budget_steps),
                           info=f"trial {r.spec.index}: {r.status} at {r.steps} steps, {spec.metric} {v:.4g}")

            res = tuning.run_tune(spec, store, db_url=url, on_trial=on_trial, verbose=verbose)
        if not emit(fmt, _data(res), _data(res)["trials"]):
            _print(res)
        if plot:
            from steplab.report.tune_plots import plot_tune

            path = plot_tune(store, res, plot)
            (err_console if fmt else console).print(f"wrote {path}", highlight=False, markup=False)


def _data(res: TuneResult) -> dict[str, Any]:
    """The tune for programs: its spec, every trial (index, id, status, steps, its
    hyperparameters, the final metric, whether it is the best), the compute used and the
    best trial with the command that trains its point."""
    import dataclasses

    from steplab.studies import tuning

    spec = res.spec
    best_id = res.best.id if res.best is not None else None
    trials = [{"index": t.spec.index, "id": t.id, "status": t.status, "steps": t.steps,
               **t.spec.hyperparameters, spec.metric: tuning.final_value(t, spec.metric), "best": t.id == best_id}
              for t in sorted(res.trials, key=lambda t: t.spec.index)]
    check = res.seed_check
    seeds = None if check is None else {
        "seeds": list(check.seeds), "values": list(check.values), "trial_ids": [t.id for t in check.trials],
        "steps": check.steps, "mean": check.interval.point, "interval": check.interval.as_dict()}
    return {"spec": dataclasses.asdict(spec), "trials": trials, "steps_used": res.steps_used,
            "seconds_used": res.seconds_used, "best": None if res.best is None else {
                "index": res.best.spec.index, "id": best_id, "value": res.best_value,
                "hyperparameters": _best_point(res), "next": _next_command(res), "over_seeds": seeds}}


def _best_point(res: TuneResult) -> dict[str, Any]:
    """The searched hyperparameters of the best trial (empty without one)."""
    hp = res.best.spec.hyperparameters if res.best is not None else {}
    names = res.spec.params or sorted({k for t in res.trials for k in t.spec.hyperparameters})
    return {k: hp[k] for k in names if k in hp}


def _next_command(res: TuneResult) -> str:
    """``steplab run`` of the best point (one line, never wrapped)."""
    point = _best_point(res)
    data = "".join(f" --curriculum {o.partition('=')[2]}" for o in res.spec.overrides if o.startswith("curriculum="))
    return (f"steplab run {res.spec.workload} -a {res.spec.algorithm}{data} "
            + " ".join(f"--set {k}={v:.6g}" if isinstance(v, float) else f"--set {k}={v}" for k, v in point.items()))


def _print(res: TuneResult) -> None:
    """Every trial's hyperparameters and final metric, the compute used and the best point."""
    from steplab.studies import tuning

    spec = res.spec
    table = Table(title=f"{spec.strategy} on {spec.workload} ({spec.algorithm})", show_lines=False)
    for col in ("trial", "status", "steps", *(spec.params or ()), spec.metric):
        table.add_column(col, justify="right", overflow="fold")
    names = spec.params or sorted({k for t in res.trials for k in t.spec.hyperparameters})
    if not spec.params:
        table.columns = table.columns[:3]
        for n in names:
            table.add_column(n, justify="right", overflow="fold")
        table.add_column(spec.metric, justify="right", overflow="fold")
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
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in _best_point(res).items())
        console.print(f"best: trial {best.spec.index} (id {best.id}) {spec.metric} {res.best_value:.4f} at {shown}",
                      highlight=False, soft_wrap=True)
        _print_seeds(res)
        hint(f"  next: {_next_command(res)}")


def _print_seeds(res: TuneResult) -> None:
    """The best point's value over fresh seeds with its interval (``--seeds``)."""
    check, metric = res.seed_check, res.spec.metric
    if check is None:
        return
    iv = check.interval
    values = ", ".join(f"{v:.4f}" for v in check.values)
    if math.isfinite(iv.low):
        shown = f"{iv.point:.4f} [{iv.low:.4f}, {iv.high:.4f}] ({iv.level:.0%} t-interval)"
    else:
        shown = f"{iv.point:.4f} (no interval: {'a run without a value' if len(check.values) > 1 else 'one seed'})"
    console.print(f"  over {len(check.seeds)} fresh seeds: {metric} {shown}; runs {values} "
                  f"({check.steps} more steps, outside the budget)", highlight=False, soft_wrap=True)
