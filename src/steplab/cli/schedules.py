"""``steplab schedules list|plot``: the schedule library (:mod:`steplab.schedules`)."""

from __future__ import annotations

import typer
from rich.table import Table

from steplab.cli import common
from steplab.cli.common import NAME_COLUMN, console, friendly

schedules_app = typer.Typer(help="The schedule library: list and plot schedules.", no_args_is_help=True)


@schedules_app.command("list")
@friendly
def schedules_list(as_json: common.JsonOption = False, as_csv: common.CsvOption = False) -> None:
    """List the schedules with their parameters and defaults."""
    from steplab import schedules

    fmt = common.output_format(as_json, as_csv)
    entries = {name: schedules.info(name) for name in schedules.names()}
    if common.emit(fmt, [{"name": n, "parameters": {k: p.default for k, p in e.params.items()}, "summary": e.summary}
                  for n, e in entries.items()],
            [{"name": n, "parameters": ",".join(e.params), "summary": e.summary} for n, e in entries.items()]):
        return
    table = Table(title="schedules (every one also takes warmup=FRACTION, warmup_start=MULT)")
    table.add_column("name", style="bold cyan", **NAME_COLUMN)
    table.add_column("parameters (default)", **NAME_COLUMN)
    table.add_column("what it is")
    for name, entry in entries.items():
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
