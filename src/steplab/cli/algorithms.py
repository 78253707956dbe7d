"""``steplab algorithms list|show|optimizers``: the built-in training algorithms
(:mod:`steplab.algorithms`) and the optimizers they can use (:mod:`steplab.optim`)."""

from __future__ import annotations

import typer
from rich.table import Table

from steplab.cli.common import console, friendly

algorithms_app = typer.Typer(help="Training algorithms: optimizer + schedule + search space.", no_args_is_help=True)


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
