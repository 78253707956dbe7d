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
    agree: tuple[int, int] | None = typer.Option(None, "--agree", metavar="STUDY_A STUDY_B", help="Instead: how "
                                                 "benchmark STUDY_A ranks the algorithms against STUDY_B (Kendall tau "
                                                 "with a bootstrap interval over studies)."),
    level: float = typer.Option(0.9, "--level", help="Confidence level of the bootstrap intervals and the family-wise "
                                "level of the pairwise tests that decide ties and wins (Holm-corrected)."),
    pairs: bool = typer.Option(False, "--pairs", help="Instead of the summary: the matrix of P(A reaches the target "
                               "faster than B) with intervals (--json/--csv: one row per ordered pair)."),
    db: DbOption = None,
    as_json: common.JsonOption = False,
    as_csv: common.CsvOption = False,
) -> None:
    """Print a benchmark's scores with bootstrap intervals and tie groups, or with --trial a
    report of single runs; optionally write the HTML report. --csv: the per-workload table
    (with --trial: one row per run; with --pairs: one row per pair)."""
    from steplab.errors import SpecError, StoreError
    from steplab.report import machine
    from steplab.store import open_store

    fmt = common.output_format(as_json, as_csv)
    said = err_console if fmt else console  # "wrote ..." must not mix into JSON or CSV

    if agree:
        if trials or study is not None:
            raise SpecError("--agree compares two benchmarks: pass it without --trial and --study")
        from steplab.report import agreement

        with open_store(db, must_exist=True) as store:
            data = agreement.agreement_data(store, *agree, level=level)
        if not common.emit(fmt, data, agreement.agreement_rows(data)):
            agreement.print_agreement(data, console)
        return
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
    from steplab.report.benchmark_data import benchmark_scores

    with open_store(db, must_exist=True) as store:
        study_id = study if study is not None else report.latest_benchmark(store)
        if study_id is None:
            raise StoreError("no benchmark in this database yet; run `steplab bench` first, "
                             "or report single runs with `steplab report --trial ID`")
        scores = benchmark_scores(store, study_id, level=level)  # bench.score, or any study's trials
        title = store.get_study(study_id)["name"]
        if pairs:
            from steplab.report.benchmark import print_pairs
            from steplab.report.benchmark_data import pair_rows

            rows = pair_rows(scores)
            pair_data = {"study_id": study_id, "name": title, "level": scores.level, "pairs": rows}
            if not common.emit(fmt, pair_data, rows):
                print_pairs(scores, console, title=title)
            if html:
                said.print(f"wrote {report.write_html(store, study_id, html, scores=scores)}", highlight=False,
                           markup=False)
            return
        from steplab.report.agreement import print_agreement, suite_pair_agreement

        agreed = suite_pair_agreement(store, level=level)  # the quick and standard suites' rank agreement, if both are stored
        data = machine.scores_data(scores, study_id=study_id, title=title) | ({"agreement": agreed} if agreed else {})
        if not common.emit(fmt, data, machine.scores_rows(scores)):
            report.print_summary(scores, console, title=title)
            if agreed:
                print_agreement(agreed, console)
        if html:
            said.print(f"wrote {report.write_html(store, study_id, html, scores=scores)}", highlight=False,
                       markup=False)
