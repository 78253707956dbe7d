"""``steplab report``: a benchmark's scores, or a report of single runs
(:mod:`steplab.report`, :mod:`steplab.report.run_report`)."""

from __future__ import annotations

import typer

from steplab.cli import common
from steplab.cli.common import DbOption, console, err_console, friendly
from steplab.cli.refs import trial_ids as trial_refs


@friendly
def report_cmd(
    study: int | None = typer.Option(None, "--study", help="Benchmark study id (default: the newest)."),
    trials: list[str] = typer.Option([], "--trial", help="Report these trials (id or name) instead of a benchmark: any "
                                     "run, recorded or imported (repeatable; steplab runs list)."),
    html: str | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    db: DbOption = None,
    as_json: common.JsonOption = False,
    as_csv: common.CsvOption = False,
) -> None:
    """Print a benchmark's scores, or with --trial a report of single runs; optionally write
    the HTML report. --csv: the per-workload table (with --trial: one row per run)."""
    from steplab.errors import SpecError, StoreError
    from steplab.report import machine
    from steplab.store import open_store

    fmt = common.output_format(as_json, as_csv)
    said = err_console if fmt else console  # "wrote ..." must not mix into JSON or CSV

    if trials:
        if study is not None:
            raise SpecError("--trial and --study do not go together: --study reports a benchmark, "
                            "--trial single runs; pass one of them")
        from steplab.report import run_html, run_report

        with open_store(db, must_exist=True) as store:
            runs = run_report.load_runs(store, trial_refs(store, trials))
        if not common.emit(fmt, machine.runs_data(runs)):
            run_report.print_report(runs, console)
        if html:
            said.print(f"wrote {run_html.write_html(runs, html)}", highlight=False, markup=False)
        return
    from steplab import report
    from steplab.studies import bench

    with open_store(db, must_exist=True) as store:
        study_id = study if study is not None else report.latest_benchmark(store)
        if study_id is None:
            raise StoreError("no benchmark in this database yet; run `steplab bench` first, "
                             "or report single runs with `steplab report --trial ID`")
        scores = bench.score(store, study_id)
        title = store.get_study(study_id)["name"]
        if not common.emit(fmt, machine.scores_data(scores, study_id=study_id, title=title), machine.scores_rows(scores)):
            report.print_summary(scores, console, title=title)
        if html:
            said.print(f"wrote {report.write_html(store, study_id, html)}", highlight=False, markup=False)
