"""``steplab workloads list``: the built-in workloads (:mod:`steplab.workloads`)."""

from __future__ import annotations

import typer
from rich.table import Table

from steplab.cli import common
from steplab.cli.common import NAME_COLUMN, console, friendly

workloads_app = typer.Typer(help="The built-in workloads.", no_args_is_help=True)


@workloads_app.command("list")
@friendly
def workloads_list(as_json: common.JsonOption = False, as_csv: common.CsvOption = False) -> None:
    """List workloads with their variants, budgets and targets."""
    from steplab import workloads

    fmt = common.output_format(as_json, as_csv)
    rows = []
    for name in workloads.names():
        w = workloads.get(name)
        t = w.target
        rows.append({"name": name, "variants": list(w.variants), "budget_steps": w.budget_steps,
                     "eval_every": w.eval_every, "batch_size": w.batch_size, "target_metric": t.metric,
                     "target_value": t.value, "target_mode": t.mode,
                     "description": w.description or (type(w).__doc__ or "").strip().splitlines()[0]})
    if common.emit(fmt, rows, [{**r, "variants": ",".join(r["variants"])} for r in rows]):
        return
    table = Table(title="workloads")
    for col in ("name", "variants", "budget (steps)", "eval every", "batch", "target", "what it is"):
        table.add_column(col, style="bold cyan" if col == "name" else None, **NAME_COLUMN)
    for r in rows:
        op = ">=" if r["target_mode"] == "max" else "<="
        table.add_row(r["name"], ", ".join(r["variants"]), str(r["budget_steps"]), str(r["eval_every"]),
                      str(r["batch_size"]), f"{r['target_metric']} {op} {r['target_value']:g}", r["description"])
    console.print(table)
