"""What the ``steplab`` commands share: the consoles, the one-line error exit, the progress
bar, the options several commands take (each declared once here) and the mapping of the
algorithm flags onto an :class:`steplab.algorithms.Algorithm`.

Light on purpose: ``steplab --help`` imports every command module, so nothing here (nor at
the top of a command module) imports torch, numpy, optuna, ray or matplotlib; a command
imports the library inside its function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from steplab.errors import SteplabError

if TYPE_CHECKING:
    from rich.progress import Progress

    from steplab.algorithms import Algorithm

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)

# ----------------------------------------------------------------- options shared by commands
DbOption = Annotated[str | None, typer.Option(
    "--db", help="Results database: a file path or SQLAlchemy URL (default ./steplab.db).")]
WorkloadArgument = Annotated[str, typer.Argument(
    help="Workload name (steplab workloads list), NAME:VARIANT allowed.")]
VariantOption = Annotated[str | None, typer.Option("--variant", help="Workload variant.")]
BudgetStepsOption = Annotated[int | None, typer.Option(
    "--steps", min=1, help="Budget in steps (default: the workload's).")]
AlgorithmOption = Annotated[str, typer.Option("--algorithm", "-a", help="Built-in algorithm or .toml file.")]
LrOption = Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")]
WeightDecayOption = Annotated[float | None, typer.Option("--weight-decay", "--wd", help="Weight decay.")]
SetsOption = Annotated[list[str] | None, typer.Option(
    "--set", help="Override an algorithm field: key=value (repeatable).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Training seed.")]
DeviceOption = Annotated[str | None, typer.Option(
    "--device", help="cpu, cuda, cuda:N (default: CUDA when available).")]
StopAtTargetOption = Annotated[bool, typer.Option(
    "--stop-at-target/--no-stop-at-target", help="Stop once the target is reached.")]


def fail(message: str, code: int = 2) -> None:
    """Print one error line on stderr and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly(fn: F) -> F:
    """Turn steplab's own errors into one line on stderr and a non-zero exit (DESIGN.md,
    "Errors": no traceback; what is stored stays stored)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SteplabError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted; finished results are kept in the store, re-run to resume", 130)

    return wrapper  # type: ignore[return-value]


def progress_bar(label: str) -> Progress:
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


def print_outcome(trial_id: int | None, status: str, target: Any, steps_to_target: float,
                  time_to_target_s: float) -> None:
    """The headline of a finished trial: its status against the workload's target and, when
    it reached the target, the time to target (steps and seconds of training)."""
    import math

    head = {"reached": "[green]reached the target[/]",
            "budget": "[yellow]used the budget without reaching the target[/]",
            "diverged": "[red]diverged[/]", "failed": "[red]failed[/]"}.get(status, status)
    op = ">=" if target.mode == "max" else "<="
    console.print(f"trial {trial_id}: {head} ({target.metric} {op} {target.value:g})")
    if math.isfinite(steps_to_target):
        console.print(f"  time to target: {steps_to_target:.0f} steps, {time_to_target_s:.2f} s of training")


def build_algorithm(
    algorithm: str | None, optimizer: str | None = None, lr: float | None = None,
    weight_decay: float | None = None, schedule: str | None = None, sets: Sequence[str] | None = None,
) -> Algorithm:
    """The algorithm the flags name: a built-in name or TOML file (``--algorithm``), or the
    default algorithm for ``--optimizer``/``--schedule``; then the single-field flags, then
    the ``--set key=value`` overrides (:func:`steplab.algorithms.apply_overrides`)."""
    import dataclasses

    from steplab import algorithms, schedules

    if algorithm is not None:
        algo = algorithms.get_algorithm(algorithm)
    else:
        opt = optimizer or algorithms.DEFAULT_OPTIMIZER
        sched = schedule or algorithms.DEFAULT_SCHEDULE
        algo = algorithms.Algorithm(name=f"{opt}-{schedules.spec_from(sched).name}", optimizer=opt,
                                    lr=algorithms.DEFAULT_LR, schedule=schedules.spec_from(sched).to_dict())
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
        algo = algorithms.apply_overrides(algo, list(sets))
    return algo
