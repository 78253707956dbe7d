"""``steplab autolr``: find a schedule during the run with AutoLRS (Jin et al. 2021).

A thin command over :func:`steplab.studies.autolr.run_autolrs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from steplab.algorithms.defaults import DEFAULT_ALGORITHM
from steplab.cli.common import (
    BudgetStepsOption,
    DbOption,
    DeviceOption,
    SeedOption,
    SetsOption,
    StopAtTargetOption,
    VariantOption,
    WorkloadArgument,
    build_algorithm,
    console,
    friendly,
    print_outcome,
    progress_bar,
)
from steplab.cli.signals import interruptible


@friendly
def autolr_cmd(
    workload: WorkloadArgument,
    algorithm: str = typer.Option(DEFAULT_ALGORITHM, "--algorithm", "-a",
                                  help="Built-in algorithm or .toml file; AutoLRS replaces its schedule."),
    tau: int | None = typer.Option(None, "--tau", min=1, help="First stage length in steps (default max(40, budget/15)); doubles up to --tau-max."),
    tau_max: int | None = typer.Option(None, "--tau-max", min=1, help="Longest stage (default 8 x tau)."),
    candidates: int = typer.Option(10, "--candidates", "-k", min=1, help="Candidate LRs per stage (Bayesian optimization)."),
    lr_min: float | None = typer.Option(None, "--lr-min", help="Lowest LR to search (default: the algorithm's lr search space)."),
    lr_max: float | None = typer.Option(None, "--lr-max", help="Highest LR to search."),
    lr: float | None = typer.Option(None, "--lr", help="Peak LR the schedule's multipliers refer to (default: the algorithm's)."),
    sets: SetsOption = None,
    seed: SeedOption = 0,
    variant: VariantOption = None,
    budget_steps: BudgetStepsOption = None,
    stop_at_target: StopAtTargetOption = True,
    device: DeviceOption = None,
    name: str | None = typer.Option(None, "--name", help="A label for the stored run."),
    out: str | None = typer.Option(None, "--out", "-o", help="Write the emergent schedule spec (JSON; any --schedule takes it) here."),
    record: str | None = typer.Option(None, "--record", help="Write the full record (stages, candidates, predictions) as JSON here."),
    plot: str | None = typer.Option(None, "--plot", help="Plot the emergent schedule against the algorithm's own to this PNG."),
    db: DbOption = None,
) -> None:
    """Search a constant LR per stage by Bayesian optimization with loss prediction (AutoLRS)."""
    from steplab import schedules, workloads
    from steplab.store import open_store
    from steplab.studies import autolr
    from steplab.training.config import TrainConfig
    from steplab.training.device import pick_device

    wl = workloads.get(workload, variant, budget_steps=budget_steps)
    spec = build_algorithm(algorithm, lr=lr, sets=sets)
    algo = spec.resolved()
    lo, hi = autolr.default_lr_range(spec)
    cfg = autolr.AutoLRSConfig(tau=tau, tau_max=tau_max, candidates=candidates,
                               lr_min=lr_min if lr_min is not None else lo, lr_max=lr_max if lr_max is not None else hi)
    train = TrainConfig(device=str(pick_device(device)), stop_at_target=stop_at_target)
    target = wl.target
    with interruptible("run the same command again to start a new run"), open_store(db) as store, \
            progress_bar("[bold]{task.description}") as bar:
        tasks: dict[int, Any] = {}
        totals: dict[int, int] = {}

        def progress(ev: autolr.StageEvent) -> None:
            # one bar per stage, in steps: the candidates' exploration steps, then the kept ones
            search = candidates * ev.explore_steps
            if ev.stage not in tasks:
                totals[ev.stage] = search + ev.steps
                tasks[ev.stage] = bar.add_task(f"stage {ev.stage + 1}/{ev.stages}", total=totals[ev.stage], info="")
            task = tasks[ev.stage]
            if ev.phase == "search":
                bar.update(task, completed=ev.done * ev.explore_steps, info=f"search {ev.done}/{ev.total}: {ev.info}")
            else:
                bar.update(task, completed=search + ev.done, info=f"train: {ev.info}")

        result = autolr.run_autolrs(wl, algo, seed, config=cfg, train=train, store=store, name=name,
                                    progress=progress)
        for stage, task in tasks.items():
            bar.update(task, completed=totals[stage])

    table = Table(title=f"AutoLRS on {wl.key} · {algo.name} (LR range {result.lr_range[0]:.3g} .. {result.lr_range[1]:.3g})")
    for col in ("stage", "steps", "explored", "candidates (lr -> predicted loss)", "chosen lr", "search s"):
        table.add_column(col, justify="left" if col.startswith("candidates") else "right")
    for i, st in enumerate(result.stages):
        ranked = sorted(st.candidates, key=lambda c: c.objective)[:4]
        shown = ", ".join(f"{c.lr:.3g}->{c.objective:.4g}" + ("" if c.status == "ok" else f" ({c.status})")
                          for c in ranked)
        table.add_row(str(i + 1), f"{st.start}..{st.start + st.steps}", f"{len(st.candidates)} x {st.explore_steps}",
                      shown + (" ..." if len(st.candidates) > 4 else ""), f"{st.lr:.4g}", f"{st.search_time_s:.1f}")
    console.print(table)
    print_outcome(result.trial_id, result.status, target, result.steps_to_target, result.time_to_target_s)
    console.print(f"  trained {result.steps} steps in {result.train_time_s:.2f} s (+{result.eval_time_s:.2f} s evaluation)")
    console.print(f"  search cost (not counted above): {result.search_steps} steps, {result.search_time_s:.2f} s")
    shown_metrics = {k: v for k, v in result.final_metrics.items() if k.startswith("validation/")}
    if shown_metrics:
        console.print("  final: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown_metrics.items())))
    if result.message:
        console.print(f"  {result.message}", highlight=False, markup=False)
    if result.stages:
        sched = result.schedule_spec()
        if out:
            path = Path(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sched, indent=1) + "\n")
            extra = "".join(f" --set {s}" for s in sets or ())
            console.print(f"wrote {path} (multipliers of lr {algo.lr:g}; replay: steplab run {wl.key} -a {algorithm}"
                          f"{extra} --lr {algo.lr:g} --steps {wl.budget_steps} --seed {seed} --schedule {path})",
                          highlight=False, markup=False)
        if record:
            console.print(f"wrote {result.save(record)}")
        if plot:
            from steplab.report.plots import plot_autolrs

            own = [algo.lr * v for v in schedules.values(algo.build_schedule(wl.budget_steps), wl.budget_steps)]
            console.print(f"wrote {plot_autolrs(result, plot, own_lrs=own, own_label=f'{algo.name} ({schedules.spec_from(algo.schedule)})')}")
    if result.status in ("diverged", "failed"):
        raise typer.Exit(1)
