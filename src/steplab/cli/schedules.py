"""``steplab schedules list|plot``: the schedule library (:mod:`steplab.schedules`)."""

from __future__ import annotations

import typer
from rich.table import Table

from steplab.cli.common import console, friendly

schedules_app = typer.Typer(help="The schedule library: list and plot schedules.", no_args_is_help=True)


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
    budget_steps: int = typer.Option(1000, "--steps", "-n", min=1, help="Run length in updates."),
    out: str = typer.Option("schedules.png", "--out", "-o", help="Image file to write (png, svg, pdf)."),
    lr: float | None = typer.Option(None, "--lr", help="Plot learning rates for this peak instead of multipliers."),
) -> None:
    """Plot several schedules on one figure."""
    from steplab.report.plots import plot_schedules

    path = plot_schedules(specs, budget_steps, out, peak_lr=lr)
    console.print(f"wrote {path} ({len(specs)} schedule{'s' if len(specs) != 1 else ''}, {budget_steps} steps)")
