"""``steplab workloads list``: the built-in workloads (:mod:`steplab.workloads`)."""

from __future__ import annotations

import typer
from rich.table import Table

from steplab.cli.common import console, friendly

workloads_app = typer.Typer(help="The built-in workloads.", no_args_is_help=True)


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
