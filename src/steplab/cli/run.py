"""``steplab run``: train one algorithm on one workload and record it
(:func:`steplab.training.loop.run_trial`)."""

from __future__ import annotations

import typer

from steplab.cli.common import (
    BudgetStepsOption,
    CurriculumOption,
    DbOption,
    DeviceOption,
    LrOption,
    SeedOption,
    SetsOption,
    StopAtTargetOption,
    VariantOption,
    WeightDecayOption,
    WorkloadArgument,
    build_algorithm,
    console,
    friendly,
    hint,
    print_outcome,
    progress_bar,
)
from steplab.cli.signals import interruptible


def _eval_text(metrics: dict[str, float], metric: str) -> str:
    v = metrics.get(metric)
    return f"{metric.split('/')[-1]} {v:.4g}" if v is not None else ""


@friendly
def run_cmd(
    workload: WorkloadArgument,
    algorithm: str | None = typer.Option(None, "--algorithm", "-a", help="Built-in algorithm or .toml file."),
    optimizer: str | None = typer.Option(None, "--optimizer", help="Optimizer name (default adamw)."),
    lr: LrOption = None,
    weight_decay: WeightDecayOption = None,
    schedule: str | None = typer.Option(None, "--schedule", "-s", help="Schedule spec, e.g. cosine:end=0.0,warmup=0.05"),
    sets: SetsOption = None,
    curriculum: CurriculumOption = None,
    seed: SeedOption = 0,
    variant: VariantOption = None,
    budget_steps: BudgetStepsOption = None,
    stop_at_target: StopAtTargetOption = True,
    device: DeviceOption = None,
    name: str | None = typer.Option(None, "--name", help="A label for this run."),
    train_eval_batches: int = typer.Option(0, "--train-eval-batches", min=0,
                                           help="Also evaluate train/loss on this many fixed training batches at each evaluation."),
    monitor: list[str] | None = typer.Option(
        None, "--monitor", help="Record training-dynamics monitors as dynamics/... metrics: sharpness, gns, laziness, "
        "logits, grokking (comma-separated or repeated; options as sharpness:iters=30). See steplab dynamics."),
    monitor_every: int | None = typer.Option(None, "--monitor-every", min=1,
                                             help="Measure the monitors every N steps (default: at each evaluation)."),
    norm_every: int = typer.Option(1, "--norm-every", min=1,
                                   help="Record gradient and update norms every N steps (NaN on the others; 1 keeps "
                                        "steplab refine exact, more saves their cost on tiny steps)."),
    db: DbOption = None,
) -> None:
    """Train one algorithm on one workload, record it, print the outcome."""
    from steplab import workloads
    from steplab.store import open_store
    from steplab.training.config import TrainConfig
    from steplab.training.curriculum import check
    from steplab.training.device import pick_device
    from steplab.training.loop import run_trial
    from steplab.training.monitoring import monitor_list

    wl = workloads.get(workload, variant, budget_steps=budget_steps)
    algo = build_algorithm(algorithm, optimizer, lr, weight_decay, schedule, sets, curriculum).resolved()
    cfg = TrainConfig(device=str(pick_device(device)), stop_at_target=stop_at_target,
                      train_eval_batches=train_eval_batches, monitors=tuple(monitor or ()), monitor_every=monitor_every,
                      norm_every=norm_every)
    monitor_list(cfg.monitors)  # an unknown monitor fails here, before the store is opened
    check(wl, algo)  # so does a curriculum on a workload without tasks
    target = wl.target
    with interruptible("run the same command again to start a new run"), open_store(db) as store, \
            progress_bar("[bold]{task.description}") as bar:
        task = bar.add_task(f"{wl.key} · {algo.name}", total=wl.budget_steps, info="")

        def progress(step: int, budget: int, metrics: dict[str, float], train_s: float) -> None:
            bar.update(task, completed=step, info=_eval_text(metrics, target.metric))

        result = run_trial(wl, algo, seed, store=store, config=cfg, progress=progress, name=name)
        bar.update(task, completed=result.steps)
    print_outcome(result.id, result.status, target, result.steps_to_target, result.time_to_target_s)
    console.print(f"  trained {result.steps} steps in {result.train_time_s:.2f} s (+{result.eval_time_s:.2f} s evaluation) on {result.device}")
    shown = {k: v for k, v in result.final_metrics.items() if not k.startswith("best/")}
    if shown:
        console.print("  final: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))
    if result.message:
        console.print(f"  {result.message}", highlight=False, markup=False)
    if monitor and result.id is not None:
        hint(f"  next: steplab dynamics {result.id}{f' --db {db}' if db else ''} --plot dynamics.png")
    if result.status in ("diverged", "failed"):
        raise typer.Exit(1)
