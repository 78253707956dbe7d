"""``steplab algorithms list|show|optimizers``: the built-in training algorithms
(:mod:`steplab.algorithms`) and the optimizers they can use (:mod:`steplab.optim`)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from steplab.cli import common
from steplab.cli.common import NAME_COLUMN, console, friendly

algorithms_app = typer.Typer(help="Training algorithms: optimizer + schedule + search space.", no_args_is_help=True)


@algorithms_app.command("list")
@friendly
def algorithms_list(as_json: common.JsonOption = False, as_csv: common.CsvOption = False) -> None:
    """List the built-in training algorithms."""
    from steplab import algorithms, schedules

    fmt = common.output_format(as_json, as_csv)
    algos = [algorithms.get_algorithm(name) for name in algorithms.algorithm_names()]
    rows = [{"name": a.name, "optimizer": a.optimizer, "lr": a.lr, "weight_decay": a.weight_decay,
             "schedule": str(schedules.spec_from(a.schedule)), "tuned": ",".join(a.search_space),
             "description": a.description} for a in algos]
    if common.emit(fmt, [a.to_dict() for a in algos], rows):
        return
    table = Table(title="training algorithms (steplab algorithms show NAME for the search space)")
    for col in ("name", "optimizer", "lr", "weight decay", "schedule", "tuned", "what it is"):
        table.add_column(col, style="bold cyan" if col == "name" else None, **NAME_COLUMN)
    for r in rows:
        table.add_row(r["name"], r["optimizer"], f"{r['lr']:g}", f"{r['weight_decay']:g}", r["schedule"],
                      r["tuned"].replace(",", ", "), r["description"])
    console.print(table)


@algorithms_app.command("show")
@friendly
def algorithms_show(name: str = typer.Argument(..., help="Built-in name or a .toml file."),
                    as_json: common.JsonOption = False) -> None:
    """Print an algorithm as TOML (save it, edit it, pass it to --algorithm), or as JSON."""
    from steplab import algorithms

    algo = algorithms.get_algorithm(name)
    if not common.emit(common.output_format(as_json), algo.to_dict()):
        sys.stdout.write(algo.to_toml())  # plain text: never wrapped, whatever the width


@algorithms_app.command("optimizers")
@friendly
def algorithms_optimizers() -> None:
    """List the optimizers algorithms can use."""
    from steplab.optim import optimizers

    table = Table(title="optimizers (or any module:Class import path)")
    table.add_column("name", style="bold cyan", **NAME_COLUMN)
    table.add_column("what it is")
    for name in optimizers.optimizer_names():
        table.add_row(name, optimizers.describe(name))
    console.print(table)
