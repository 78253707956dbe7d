"""What the ``steplab`` commands share: the consoles, the one-line error exit, the progress
bar, the options several commands take (each declared once here) and the mapping of the
algorithm flags onto an :class:`steplab.algorithms.Algorithm`.

Light on purpose: ``steplab --help`` imports every command module, so nothing here (nor at
the top of a command module) imports torch, numpy, optuna, ray or matplotlib; a command
imports the library inside its function.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console, ConsoleDimensions

from steplab.errors import Interrupted, SpecError, SteplabError

if TYPE_CHECKING:
    from rich.progress import Progress

    from steplab.algorithms import Algorithm

F = TypeVar("F", bound=Callable[..., Any])

#: the line width when the output is not a terminal: wide enough that rich never wraps or
#: cuts a name, a command or a table row (tables stay as wide as their content)
PIPE_WIDTH = 10_000
#: ``--help`` width when piped (typer's help panels fill their width, so not PIPE_WIDTH)
PIPE_HELP_WIDTH = 200


def _is_tty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


class PipeSafeConsole(Console):
    """A rich console whose lines are never wrapped or cut when its file is not a terminal
    (a pipe, a file, a test runner): the width is then :data:`PIPE_WIDTH`, whatever
    ``COLUMNS`` says, so ``steplab runs list | cat`` shows every name whole. In a terminal
    it is rich's own console (the terminal's width)."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is None and not _is_tty(self.file):
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = PipeSafeConsole()
err_console = PipeSafeConsole(stderr=True)

if not _is_tty(sys.stdout):  # piped --help: option names whole (typer reads this when it prints help)
    import typer.rich_utils

    if typer.rich_utils.MAX_WIDTH is None:
        typer.rich_utils.MAX_WIDTH = PIPE_HELP_WIDTH

#: keyword arguments of a table column that holds names or commands: folded onto another
#: line in a narrow terminal, never cut with an ellipsis
NAME_COLUMN: dict[str, Any] = {"overflow": "fold"}

# ----------------------------------------------------------------- options shared by commands
DbOption = Annotated[str | None, typer.Option(
    "--db", help="Results database: a file path or SQLAlchemy URL (default ./steplab.db).")]
WorkloadArgument = Annotated[str, typer.Argument(
    help="Workload name (steplab workloads list), NAME:VARIANT allowed; or your own: path/file.py:Class[:VARIANT] "
         "or package.module:Class.")]
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
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print JSON for programs instead of the table (inf/NaN as null).")]
CsvOption = Annotated[bool, typer.Option(
    "--csv", help="Print CSV for programs instead of the table (a header row; inf/NaN as empty cells).")]


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
        except KeyboardInterrupt as e:
            if isinstance(e, Interrupted) and e.message:
                fail(f"interrupted: {e.message}", e.exit_code)
            fail("interrupted; finished results are kept in the store, re-run to resume", 130)

    return wrapper  # type: ignore[return-value]


def progress_bar(label: str, *, stderr: bool = False) -> Progress:
    """A rich progress bar: label, bar, done/total, the task's ``info`` field, elapsed, ETA;
    on stderr with ``stderr=True`` (when stdout carries ``--json``/``--csv``)."""
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
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console if stderr else console,
    )


def hint(text: str) -> None:
    """Print a suggested command (``  next: steplab ...``) on one line, never wrapped inside
    an argument, so it can be copied whole."""
    console.print(text, soft_wrap=True, highlight=False, markup=False)


# ----------------------------------------------------------------- output for programs
def output_format(json_: bool, csv_: bool = False) -> str | None:
    """``"json"``, ``"csv"`` or ``None`` (the table) from the ``--json``/``--csv`` flags."""
    if json_ and csv_:
        raise SpecError("--json and --csv do not go together: pass one of them")
    return "json" if json_ else "csv" if csv_ else None


def plain(obj: Any) -> Any:
    """``obj`` as JSON values: mappings with string keys, tuples as lists, ``inf``/NaN as
    ``None`` (JSON has no infinity; a missed target is null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


def emit_json(obj: Any) -> None:
    """Write ``obj`` to stdout as indented JSON (:func:`plain` values; anything else as its
    ``str``)."""
    import json

    sys.stdout.write(json.dumps(plain(obj), indent=2, default=str) + "\n")


def emit_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> None:
    """Write ``rows`` to stdout as CSV: a header of ``columns`` then every other key in order
    of first appearance; ``None``/``inf``/NaN as empty cells, tables and lists as JSON."""
    import csv
    import json

    names = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    writer = csv.DictWriter(sys.stdout, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        cells = {}
        for k, v in plain(dict(r)).items():
            cells[k] = "" if v is None else json.dumps(v, default=str) if isinstance(v, dict | list) else v
        writer.writerow(cells)


def emit(fmt: str | None, obj: Any, rows: Sequence[Mapping[str, Any]] | None = None) -> bool:
    """Print ``obj`` as JSON (``fmt == "json"``) or ``rows`` as CSV (``"csv"``) and return
    True; return False for ``None`` (the caller prints its table)."""
    if fmt == "json":
        emit_json(obj)
    elif fmt == "csv":
        emit_csv(obj if rows is None else rows)
    return fmt is not None


def print_outcome(trial_id: int | None, status: str, target: Any, steps_to_target: float,
                  time_to_target_s: float) -> None:
    """The headline of a finished trial: its status against the workload's target and, when
    it reached the target, the time to target (steps and seconds of training)."""
    head = {"reached": "[green]reached the target[/]",
            "budget": "[yellow]used the budget without reaching the target[/]",
            "diverged": "[red]diverged[/]", "failed": "[red]failed[/]"}.get(status, status)
    op = ">=" if target.mode == "max" else "<="
    console.print(f"trial {trial_id}: {head} ({target.metric} {op} {target.value:g})")
    if math.isfinite(steps_to_target):
        console.print(f"  time to target: {steps_to_target:.0f} steps, {time_to_target_s:.2f} s of training")


CurriculumOption = Annotated[str | None, typer.Option(
    "--curriculum", help="Data schedule: uniform (default), easy-to-hard, hard-to-easy, random-order, cyclical, "
    "self-paced, lp-bandit, alp-gmm, skill-it, with options as easy-to-hard:pacing=root,start=0.2 (score=reference: "
    "difficulty from a reference model's loss); needs a workload with tasks (see docs/tutorials/curricula.md).")]


def build_algorithm(
    algorithm: str | None, optimizer: str | None = None, lr: float | None = None,
    weight_decay: float | None = None, schedule: str | None = None, sets: Sequence[str] | None = None,
    curriculum: str | None = None,
) -> Algorithm:
    """The algorithm the flags name: a built-in name or TOML file (``--algorithm``), or the
    default algorithm for ``--optimizer``/``--schedule``; then the single-field flags, then
    the ``--set key=value`` overrides (:func:`steplab.algorithms.apply_overrides`);
    ``curriculum`` is a data schedule spec (``easy-to-hard:pacing=root``)."""
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
    if curriculum is not None:
        changes["curriculum"] = curriculum
    if changes:
        algo = dataclasses.replace(algo, **changes)
    if sets:
        algo = algorithms.apply_overrides(algo, list(sets))
    return algo
