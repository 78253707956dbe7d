"""The ``steplab`` command (typer). Each command is a thin layer over a library function;
a ``SteplabError`` is printed as one line on stderr with exit code 2, no traceback."""

from __future__ import annotations

import functools
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
app.add_typer(schedules_app, name="schedules")

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
    from steplab.plots import plot_schedules

    path = plot_schedules(specs, steps, out, peak_lr=lr)
    console.print(f"wrote {path} ({len(specs)} schedule{'s' if len(specs) != 1 else ''}, {steps} steps)")


def run() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
