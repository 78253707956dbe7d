"""``steplab sensitivity``: how much worse does an algorithm get away from its best peak LR?

A thin command over :func:`steplab.studies.sensitivity.sweep` (Wortsman et al. 2023's LR
sensitivity)."""

from __future__ import annotations

import math

import typer
from rich.table import Table

from steplab.algorithms.defaults import DEFAULT_ALGORITHM
from steplab.cli.common import (
    AlgorithmOption,
    BudgetStepsOption,
    DbOption,
    DeviceOption,
    SetsOption,
    WorkloadArgument,
    build_algorithm,
    console,
    friendly,
    progress_bar,
)
from steplab.cli.signals import interruptible


def _fmt(mean: float, sd: float, digits: int = 4) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if math.isfinite(sd) else f"{mean:.{digits}f}"


@friendly
def sensitivity_cmd(
    workload: WorkloadArgument,
    algorithm: AlgorithmOption = DEFAULT_ALGORITHM,
    grid: str | None = typer.Option(None, "--grid", help="LOW:HIGH:POINTS log grid of peak LRs (default: the "
                                                         "optimizer family's range, 7 points; see steplab.analysis.sensitivity)."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Seeds per grid point (0..N-1)."),
    budget_steps: BudgetStepsOption = None,
    metric: str = typer.Option("validation/loss", "--metric", help="The loss compared across the grid."),
    sets: SetsOption = None,
    device: DeviceOption = None,
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads per run."),
    plot: str | None = typer.Option(None, "--plot", help="Write final loss vs LR (log x) to this PNG."),
    db: DbOption = None,
) -> None:
    """Sweep the peak LR over a log grid and report the LR sensitivity (Wortsman et al. 2023):
    the mean over the grid of min(L(lr), L_init) - min L, with the grid-best loss beside it."""
    from steplab import workloads
    from steplab.analysis import sensitivity
    from steplab.store import open_store
    from steplab.studies.sensitivity import base_point, sweep
    from steplab.training.config import TrainConfig
    from steplab.training.device import pick_device

    wl = workloads.get(workload, budget_steps=budget_steps)
    algo = build_algorithm(algorithm, sets=sets)
    low, high, points = (sensitivity.parse_grid(grid) if grid is not None
                         else (*sensitivity.default_range(algo.optimizer), sensitivity.DEFAULT_POINTS))
    lrs = sensitivity.lr_grid(low, high, points)
    cfg = TrainConfig(device=str(pick_device(device)), threads=threads, record_norms=False)
    rerun = "run the same command again to resume the sweep (finished points are kept, this one runs again)"
    with interruptible(rerun), open_store(db) as store, progress_bar("[bold]{task.description}") as bar:
        task = bar.add_task(f"{wl.key} · {algo.name}", total=points * seeds, info="")

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, total=total, completed=done, info=label)

        result = sweep(wl, base_point(algo, wl), lrs, list(range(seeds)), store=store,
                       config=cfg, metric=metric, progress=progress)
    mean, div = result.mean_curve()
    n = len(result.complete_seeds())
    table = Table(title=f"LR sensitivity of {algo.name} on {wl.key} ({wl.budget_steps} steps, {metric}, "
                        f"{n} seed{'s' if n != 1 else ''}; L_init {result.mean_init_loss:.4f})")
    table.add_column("peak lr", justify="right")
    table.add_column("final loss (seed mean, min with L_init)", justify="right")
    table.add_column("diverged", justify="right")
    for lr, m, d in zip(result.grid, mean, div, strict=True):
        table.add_row(f"{lr:.3g}", f"{m:.4f}" if math.isfinite(m) else "—", f"{int(d)}/{n}")
    console.print(table)
    console.print(f"LR sensitivity {_fmt(result.sensitivity, result.sensitivity_sd)} (mean ± sd over seeds); "
                  f"grid-best loss {_fmt(result.best_loss, result.best_loss_sd)} at lr {result.best_lr():.3g}",
                  highlight=False)
    if plot:
        from steplab.report.plots import plot_lr_sensitivity

        path = plot_lr_sensitivity({f"{algo.name} on {wl.key}": result}, plot,
                                   title=f"{algo.name} on {wl.key}: final {metric} vs peak lr ({wl.budget_steps} steps)")
        console.print(f"wrote {path}")
