"""The ``steplab`` command (typer): builds :data:`app` from one module per command group.

Each command module defines plain command functions or its own ``typer.Typer`` sub-app and
imports only :mod:`steplab.cli.common` and the library (inside its functions, so that
``steplab --help`` starts without torch); nothing imports this module back. A
``SteplabError`` is printed as one line on stderr with exit code 2, no traceback.
"""

from __future__ import annotations

import typer

from steplab.cli import (
    algorithms,
    autolr,
    bench,
    continual,
    db,
    dynamics,
    io,
    predict,
    refine,
    report,
    run,
    runs,
    schedules,
    sensitivity,
    tune,
    workloads,
)
from steplab.cli.common import console

app = typer.Typer(
    help="Benchmark, refine and predict training algorithms (optimizer + learning-rate schedule).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from steplab.version import __version__

        console.print(f"steplab {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """steplab: which optimizer and schedule, and what will it cost to reach the target?"""


app.command("run")(run.run_cmd)
app.command("refine")(refine.refine_cmd)
app.command("bench")(bench.bench_cmd)
app.command("report")(report.report_cmd)
app.command("autolr")(autolr.autolr_cmd)
app.command("continual")(continual.continual_cmd)
app.command("sensitivity")(sensitivity.sensitivity_cmd)
app.command("tune")(tune.tune_cmd)
app.command("dynamics")(dynamics.dynamics_cmd)
app.add_typer(schedules.schedules_app, name="schedules")
app.add_typer(workloads.workloads_app, name="workloads")
app.add_typer(algorithms.algorithms_app, name="algorithms")
app.add_typer(runs.runs_app, name="runs")
app.add_typer(predict.predict_app, name="predict")
app.add_typer(db.db_app, name="db")
app.add_typer(io.import_app, name="import")
app.add_typer(io.export_app, name="export")
