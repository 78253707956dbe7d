"""``steplab report``: a benchmark's scores, or a report of single runs
(:mod:`steplab.report`, :mod:`steplab.report.run_report`)."""

from __future__ import annotations

import typer

from steplab.cli.common import DbOption, console, friendly


@friendly
def report_cmd(
    study: int | None = typer.Option(None, "--study", help="Benchmark study id (default: the newest)."),
    trials: list[int] = typer.Option([], "--trial", help="Report these trials instead of a benchmark: any "
                                     "run, recorded or imported (repeatable; steplab runs list)."),
    html: str | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
    db: DbOption = None,
) -> None:
    """Print a benchmark's scores, or with --trial a report of single runs; optionally write
    the HTML report."""
    from steplab.errors import SpecError, StoreError
    from steplab.store import open_store

    if trials:
        if study is not None:
            raise SpecError("--trial and --study do not go together: --study reports a benchmark, "
                            "--trial single runs; pass one of them")
        from steplab.report import run_html, run_report

        with open_store(db) as store:
            runs = run_report.load_runs(store, trials)
        run_report.print_report(runs, console)
        if html:
            console.print(f"wrote {run_html.write_html(runs, html)}")
        return
    from steplab import report
    from steplab.studies import bench

    with open_store(db) as store:
        study_id = study if study is not None else report.latest_benchmark(store)
        if study_id is None:
            raise StoreError("no benchmark in this database yet; run `steplab bench` first, "
                             "or report single runs with `steplab report --trial ID`")
        scores = bench.score(store, study_id)
        report.print_summary(scores, console, title=store.get_study(study_id)["name"])
        if html:
            console.print(f"wrote {report.write_html(store, study_id, html)}")
