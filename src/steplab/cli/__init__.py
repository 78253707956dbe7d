"""The ``steplab`` command (typer). Each command is a thin layer over a library function;
a ``SteplabError`` is printed as one line on stderr with exit code 2, no traceback."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from steplab import __version__
from steplab.errors import SteplabError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    help="Benchmark, refine and predict training algorithms (optimizer + learning-rate schedule).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
schedules_app = typer.Typer(help="The schedule library: list and plot schedules.", no_args_is_help=True)
workloads_app = typer.Typer(help="The built-in workloads.", no_args_is_help=True)
algorithms_app = typer.Typer(help="Training algorithms: optimizer + schedule + search space.", no_args_is_help=True)
runs_app = typer.Typer(help="Trials recorded in the store.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
app.add_typer(workloads_app, name="workloads")
app.add_typer(algorithms_app, name="algorithms")
app.add_typer(runs_app, name="runs")

DB_HELP = "Results database: a file path or SQLAlchemy URL (default ./steplab.db)."

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly(fn: F) -> F:
    """Turn steplab's own errors into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SteplabError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted; finished results are kept in the store, re-run to resume", 130)

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"steplab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """steplab: which optimizer and schedule, and what will it cost to reach the target?"""


# --------------------------------------------------------------------------- schedules
@schedules_app.command("list")
@friendly
def schedules_list() -> None:
    """List the schedules with their parameters and defaults."""
    from steplab import schedules

    table = Table(title="schedules (every one also takes warmup=FRACTION, warmup_start=MULT)")
    table.add_column("name", style="bold cyan")
    table.add_column("parameters (default)")
    table.add_column("what it is")
    for name in schedules.names():
        entry = schedules.info(name)
        params = ", ".join(f"{k}={p.default!r}" if p.default is not None else k for k, p in entry.params.items())
        table.add_row(name, params or "-", entry.summary)
    console.print(table)


@schedules_app.command("plot")
@friendly
def schedules_plot(
    specs: list[str] = typer.Argument(..., help="Schedules as NAME[:key=value,...], e.g. wsd:decay=0.1 cosine rex"),
    steps: int = typer.Option(1000, "--steps", "-n", min=1, help="Run length in updates."),
    out: str = typer.Option("schedules.png", "--out", "-o", help="Image file to write (png, svg, pdf)."),
    lr: float | None = typer.Option(None, "--lr", help="Plot learning rates for this peak instead of multipliers."),
) -> None:
    """Plot several schedules on one figure."""
    from steplab.report.plots import plot_schedules

    path = plot_schedules(specs, steps, out, peak_lr=lr)
    console.print(f"wrote {path} ({len(specs)} schedule{'s' if len(specs) != 1 else ''}, {steps} steps)")


# --------------------------------------------------------------------------- workloads
@workloads_app.command("list")
@friendly
def workloads_list() -> None:
    """List workloads with their variants, budgets and targets."""
    from steplab import workloads

    table = Table(title="workloads")
    for col in ("name", "variants", "budget (steps)", "eval every", "batch", "target", "what it is"):
        table.add_column(col, style="bold cyan" if col == "name" else None)
    for name in workloads.names():
        w = workloads.get(name)
        t = w.target
        op = ">=" if t.mode == "max" else "<="
        table.add_row(
            name, ", ".join(w.variants), str(w.budget_steps), str(w.eval_every), str(w.batch_size),
            f"{t.metric} {op} {t.value:g}", (w.description or (type(w).__doc__ or "").strip().splitlines()[0]),
        )
    console.print(table)


# --------------------------------------------------------------------------- algorithms
@algorithms_app.command("list")
@friendly
def algorithms_list() -> None:
    """List the built-in training algorithms."""
    from steplab import algorithms, schedules

    table = Table(title="training algorithms (steplab algorithms show NAME for the search space)")
    for col in ("name", "optimizer", "lr", "weight decay", "schedule", "tuned", "what it is"):
        table.add_column(col, style="bold cyan" if col == "name" else None)
    for name in algorithms.algorithm_names():
        a = algorithms.get_algorithm(name)
        table.add_row(name, a.optimizer, f"{a.lr:g}", f"{a.weight_decay:g}", str(schedules.spec_from(a.schedule)),
                      ", ".join(a.search_space), a.description)
    console.print(table)


@algorithms_app.command("show")
@friendly
def algorithms_show(name: str = typer.Argument(..., help="Built-in name or a .toml file.")) -> None:
    """Print an algorithm as TOML (save it, edit it, pass it to --algorithm)."""
    from steplab import algorithms

    console.print(algorithms.get_algorithm(name).to_toml(), highlight=False, markup=False)


@algorithms_app.command("optimizers")
@friendly
def algorithms_optimizers() -> None:
    """List the optimizers algorithms can use."""
    from steplab.optim import optimizers

    table = Table(title="optimizers (or any module:Class import path)")
    table.add_column("name", style="bold cyan")
    table.add_column("what it is")
    for name in optimizers.optimizer_names():
        table.add_row(name, optimizers.describe(name))
    console.print(table)


# --------------------------------------------------------------------------- run
def _build_algorithm(
    algorithm: str | None, optimizer: str | None, lr: float | None, weight_decay: float | None,
    schedule: str | None, sets: list[str],
) -> Any:
    import dataclasses

    from steplab import algorithms, schedules

    if algorithm is not None:
        algo = algorithms.get_algorithm(algorithm)
    else:
        opt = optimizer or "adamw"
        sched = schedule or "cosine:warmup=0.05"
        algo = algorithms.Algorithm(name=f"{opt}-{schedules.spec_from(sched).name}", optimizer=opt,
                                    lr=1e-3, schedule=schedules.spec_from(sched).to_dict())
    changes: dict[str, Any] = {}
    if optimizer is not None and algorithm is not None:
        changes["optimizer"] = optimizer
    if schedule is not None:
        changes["schedule"] = schedules.spec_from(schedule).to_dict()
    if lr is not None:
        changes["lr"] = lr
    if weight_decay is not None:
        changes["weight_decay"] = weight_decay
    if changes:
        algo = dataclasses.replace(algo, **changes)
    if sets:
        algo = algorithms.apply_overrides(algo, sets)
    return algo


def _progress(label: str) -> Any:
    """A rich progress bar: label, bar, done/total, the task's ``info`` field, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    )


def _eval_text(metrics: dict[str, float], metric: str) -> str:
    v = metrics.get(metric)
    return f"{metric.split('/')[-1]} {v:.4g}" if v is not None else ""


@app.command("run")
@friendly
def run_cmd(
    workload: str = typer.Argument(..., help="Workload name (steplab workloads list), NAME:VARIANT allowed."),
    algorithm: str | None = typer.Option(None, "--algorithm", "-a", help="Built-in algorithm or .toml file."),
    optimizer: str | None = typer.Option(None, "--optimizer", help="Optimizer name (default adamw)."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    weight_decay: float | None = typer.Option(None, "--weight-decay", "--wd", help="Weight decay."),
    schedule: str | None = typer.Option(None, "--schedule", "-s", help="Schedule spec, e.g. cosine:end=0.0,warmup=0.05"),
    sets: list[str] = typer.Option([], "--set", help="Override an algorithm field: key=value (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Training seed."),
    variant: str | None = typer.Option(None, "--variant", help="Workload variant."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Budget in steps (default: the workload's)."),
    stop_at_target: bool = typer.Option(True, "--stop-at-target/--no-stop-at-target", help="Stop once the target is reached."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: CUDA when available)."),
    name: str | None = typer.Option(None, "--name", help="A label for this run."),
    train_eval_batches: int = typer.Option(0, "--train-eval-batches", min=0,
                                           help="Also evaluate train/loss on this many fixed training batches at each evaluation."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Train one algorithm on one workload, record it, print the outcome."""
    import math

    from steplab import workloads
    from steplab.store import open_store
    from steplab.training.loop import TrainConfig, pick_device, run_trial

    wl = workloads.get(workload, variant, budget_steps=steps)
    algo = _build_algorithm(algorithm, optimizer, lr, weight_decay, schedule, sets).resolved()
    cfg = TrainConfig(device=str(pick_device(device)), stop_at_target=stop_at_target,
                      train_eval_batches=train_eval_batches)
    target = wl.target
    with open_store(db) as store, _progress("[bold]{task.description}") as bar:
        task = bar.add_task(f"{wl.key} · {algo.name}", total=wl.budget_steps, info="")

        def progress(step: int, budget: int, metrics: dict[str, float], train_s: float) -> None:
            bar.update(task, completed=step, info=_eval_text(metrics, target.metric))

        result = run_trial(wl, algo, seed, store=store, config=cfg, progress=progress, name=name)
        bar.update(task, completed=result.steps)
    op = ">=" if target.mode == "max" else "<="
    head = {"reached": "[green]reached the target[/]", "budget": "[yellow]used the budget without reaching the target[/]",
            "diverged": "[red]diverged[/]", "failed": "[red]failed[/]"}.get(result.status, result.status)
    console.print(f"trial {result.id}: {head} ({target.metric} {op} {target.value:g})")
    if math.isfinite(result.steps_to_target):
        console.print(f"  time to target: {result.steps_to_target:.0f} steps, {result.time_to_target_s:.2f} s of training")
    console.print(f"  trained {result.steps} steps in {result.train_time_s:.2f} s (+{result.eval_time_s:.2f} s evaluation) on {result.device}")
    shown = {k: v for k, v in result.final_metrics.items() if not k.startswith("best/")}
    if shown:
        console.print("  final: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))
    if result.message:
        console.print(f"  {result.message}", highlight=False, markup=False)
    if result.status in ("diverged", "failed"):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- runs
@runs_app.command("list")
@friendly
def runs_list(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
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
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    plot: str | None = typer.Option(None, "--plot", help="Write loss / lr / grad-norm / eval curves to this PNG."),
) -> None:
    """Summarize one trial; optionally plot its curves."""
    import json

    from steplab.store import open_store

    with open_store(db) as store:
        t = store.get_trial(trial_id)
        steps = store.steps(trial_id)
        evals = store.evals(trial_id)
    console.print(f"[bold]trial {t.id}[/]: {t.spec.workload}:{t.spec.variant} · {t.spec.algorithm} · seed {t.spec.seed}")
    console.print(f"  status {t.status}; {t.steps} steps; train {t.train_time_s:.2f} s; eval {t.eval_time_s:.2f} s; device {t.device}")
    console.print(f"  time to target: {t.steps_to_target} steps, {t.time_to_target_s:.3g} s")
    console.print("  hyperparameters: " + json.dumps(t.spec.hyperparameters, sort_keys=True), highlight=False, markup=False)
    console.print("  algorithm: " + json.dumps(t.spec.algorithm_spec, sort_keys=True), highlight=False, markup=False)
    for k, v in sorted(t.final_metrics.items()):
        console.print(f"  {k}: {v:.5g}")
    if t.message:
        console.print(f"  message: {t.message}", highlight=False, markup=False)
    console.print(f"  trace: {len(steps['step'])} step rows, {len(evals)} evaluations")
    if plot:
        from steplab.report.plots import plot_trace

        path = plot_trace(steps, evals, plot, title=f"trial {t.id}: {t.spec.workload} · {t.spec.algorithm}")
        console.print(f"wrote {path}")


# --------------------------------------------------------------------------- refine
@app.command("refine")
@friendly
def refine_cmd(
    trial_id: int = typer.Argument(..., help="Trial id of the recorded run (steplab runs list)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    tau: float = typer.Option(0.1, "--tau", help="Median-filter width as a fraction of the run (0: no smoothing)."),
    norm: str = typer.Option("auto", "--norm", help="Gradient norm: l2 (SGD-like), l1 (Adam-like) or auto (from the optimizer)."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Length T' of the run to refine for (default: the recorded run's)."),
    warmup: int = typer.Option(0, "--warmup", min=0, help="Multiply by a linear warm-up of this many steps."),
    exact: bool = typer.Option(False, "--exact", help="Minimize the last-iterate bound numerically instead of the closed form."),
    out: str | None = typer.Option(None, "--out", "-o", help="Write the refined schedule spec (JSON) here."),
    plot: str | None = typer.Option(None, "--plot", help="Plot norms, refined and original schedules to this PNG."),
) -> None:
    """Refine a schedule from a recorded run's gradient norms (Defazio et al. 2023)."""
    import json
    from pathlib import Path

    import numpy as np

    from steplab.analysis import refine
    from steplab.store import open_store

    with open_store(db) as store:
        trial = store.get_trial(trial_id)
        r = refine.refine_trial(store, trial_id, tau=tau, norm=norm, steps=steps, warmup_steps=warmup, exact_bound=exact)
        original = store.steps(trial_id)["lr"]
    v = r.values()
    peak = int(np.argmax(v))
    half = np.flatnonzero(v >= 0.5)
    console.print(
        f"refined trial {trial.id} ({trial.spec.workload} · {trial.spec.algorithm}) from its {r.norm} gradient norms, "
        f"tau {r.tau:g}, {r.method}, for {r.steps} steps"
    )
    console.print(
        f"  peak at step {peak} ({peak / r.steps:.0%} of the run); above half the peak from step "
        f"{half[0] if len(half) else 0} to {half[-1] if len(half) else 0}; multiplier at 50% {v[len(v) // 2]:.3f}, "
        f"at 90% {v[int(0.9 * len(v))]:.3f}"
    )
    ours, theirs = refine.bound_comparison(r, original)
    console.print(f"  convex last-iterate bound with these norms (best base lr, lower is better): refined "
                  f"{ours:.4g} vs the run's schedule {theirs:.4g} ({ours / theirs:.2f}x)")
    like, gap = refine.closest_standard(r)
    console.print(f"  closest warm-up + polynomial decay: {like} (largest gap {gap:.3f})", highlight=False)
    text = json.dumps(r.spec.to_dict())
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        console.print(f"wrote {out}: use it as --schedule {out}")
    else:
        console.print(f"  spec ({len(r.spec.to_dict()['points'])} points): pass --out FILE to save it for --schedule")
    if plot:
        from steplab.report.plots import plot_refinement

        path = plot_refinement(r, plot, original=original,
                               title=f"trial {trial.id}: {trial.spec.workload} · {trial.spec.algorithm}")
        console.print(f"wrote {path}")


# --------------------------------------------------------------------------- bench
def _db_url(db: str | None) -> str:
    from steplab.store import resolve_url

    return resolve_url(db)


@app.command("bench")
@friendly
def bench_cmd(
    spec_file: str | None = typer.Argument(None, help="Benchmark spec (TOML); flags below override it."),
    suite: str | None = typer.Option(None, "--suite", help="Suite: quick or full."),
    algorithms: str | None = typer.Option(None, "--algorithms", help="Comma-separated algorithm names or .toml files."),
    workloads: str | None = typer.Option(None, "--workloads", help="Comma-separated workloads (overrides the suite's)."),
    ruleset: str | None = typer.Option(None, "--ruleset", help="external (N quasi-random trials) or self (defaults, 3x budget)."),
    trials: int | None = typer.Option(None, "--trials", help="Tuning trials per study (external ruleset)."),
    studies: int | None = typer.Option(None, "--studies", help="Independent studies (the median over them is scored)."),
    seed: int | None = typer.Option(None, "--seed", help="Base seed of the QMC draws and the training runs."),
    sets: list[str] = typer.Option([], "--set", help="Override a field of every algorithm: key=value."),
    name: str | None = typer.Option(None, "--name", help="Name of the benchmark in the store (re-use it to resume)."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Parallel workers (default 1; with --ray, every CPU)."),
    ray: bool = typer.Option(False, "--ray", help="Run trials as Ray tasks (local Ray unless --ray-address)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Address of a running Ray cluster."),
    html: str | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    tradeoff: str | None = typer.Option(None, "--tradeoff", help="Also measure accuracy-vs-time curves: cyclic "
                                        "(one run with cycles ending at 1/8..1 of the budget vs separate runs)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Benchmark algorithms on a suite by time-to-target; resumes a killed run."""
    import dataclasses
    import time

    from steplab.studies import bench
    from steplab import report
    from steplab.training.executors import make_executor
    from steplab.store import open_store

    spec = bench.load_spec(spec_file) if spec_file else bench.BenchSpec()
    changes: dict[str, Any] = {}
    for key, value in (("suite", suite), ("ruleset", ruleset), ("trials", trials), ("studies", studies),
                       ("seed", seed), ("name", name), ("tradeoff", tradeoff)):
        if value is not None:
            changes[key] = value
    if algorithms is not None:
        changes["algorithms"] = bench.algorithm_list(algorithms)
    if workloads is not None:
        changes["workloads"] = bench.parse_workload_list(workloads)
    if sets:
        changes["overrides"] = tuple(sets)
    spec = dataclasses.replace(spec, **changes) if changes else spec
    url = _db_url(db)
    t0 = time.perf_counter()
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        todo = b.todo
        console.print(
            f"benchmark [bold]{spec.study_name()}[/] (study {b.study_id}): {len(spec.algorithms)} algorithms x "
            f"{len(spec.entries())} workloads, {spec.ruleset} tuning, {spec.trials if spec.ruleset == 'external' else 1} "
            f"trial(s) x {spec.studies} stud{'y' if spec.studies == 1 else 'ies'}"
            f"{' + ' + spec.tradeoff + ' tradeoff runs' if spec.tradeoff else ''} = {len(b.jobs)} trials; "
            f"{len(b.jobs) - len(todo)} already done, {len(todo)} to run"
        )
        if todo:
            use_ray = ray_address if ray_address else ray
            n = workers if workers is not None else ((os.cpu_count() or 1) if use_ray else 1)
            executor = make_executor(workers=n, ray=use_ray)
            with executor, _progress("[bold]trials") as bar:
                task = bar.add_task("trials", total=len(todo), info="")
                def waiting(n: int) -> None:
                    bar.update(task, info=f"waiting for {n} trial(s) running in other processes")

                for r in bench.run(b, executor, url, on_wait=waiting):
                    wk = r.spec.workload if r.spec.variant == "base" else f"{r.spec.workload}:{r.spec.variant}"
                    bar.update(task, advance=1, info=f"{r.spec.algorithm} on {wk}: {r.status}")
        scores = bench.score(store, b.study_id)
        report.print_summary(scores, console, title=spec.study_name())
        if spec.tradeoff:
            report.print_tradeoff(report.tradeoff_curves(store, b.study_id), console)
        if html:
            path = report.write_html(store, b.study_id, html)
            console.print(f"wrote {path}")
    console.print(f"benchmark wall time {time.perf_counter() - t0:.1f} s; results in {url}")


@app.command("report")
@friendly
def report_cmd(
    study: int | None = typer.Option(None, "--study", help="Benchmark study id (default: the newest)."),
    trials: list[int] = typer.Option([], "--trial", help="Report these trials instead of a benchmark: any "
                                     "run, recorded or imported (repeatable; steplab runs list)."),
    html: str | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Print a benchmark's scores, or with --trial a report of single runs; optionally write
    the HTML report."""
    from steplab.studies import bench
    from steplab import report
    from steplab.errors import SpecError, StoreError
    from steplab.store import open_store

    if trials:
        if study is not None:
            raise SpecError("--trial and --study do not go together: --study reports a benchmark, "
                            "--trial single runs; pass one of them")
        from steplab.report import run_report

        with open_store(db) as store:
            runs = run_report.load_runs(store, trials)
        run_report.print_report(runs, console)
        if html:
            console.print(f"wrote {run_report.write_html(runs, html)}")
        return
    with open_store(db) as store:
        study_id = study if study is not None else report.latest_benchmark(store)
        if study_id is None:
            raise StoreError("no benchmark in this database yet; run `steplab bench` first, "
                             "or report single runs with `steplab report --trial ID`")
        scores = bench.score(store, study_id)
        report.print_summary(scores, console, title=store.get_study(study_id)["name"])
        if html:
            console.print(f"wrote {report.write_html(store, study_id, html)}")


# `steplab predict ...` lives in its own module; imported last, it finds the app built
from steplab.cli.predict import predict_app  # noqa: E402

app.add_typer(predict_app, name="predict")
import steplab.cli.autolr  # noqa: E402,F401  (registers `steplab autolr`)
import steplab.cli.continual  # noqa: E402,F401  (registers `steplab continual`)
import steplab.cli.db  # noqa: E402,F401  (registers `steplab db info|upgrade`)
import steplab.cli.io  # noqa: E402,F401  (registers `steplab import` and `steplab export`)
import steplab.cli.sensitivity  # noqa: E402,F401  (registers `steplab sensitivity`)
import steplab.cli.tune  # noqa: E402,F401  (registers `steplab tune`)


def run() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
