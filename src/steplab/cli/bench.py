"""``steplab bench``: benchmark algorithms on a suite by time-to-target
(:mod:`steplab.studies.bench`); the flags override the fields of a
:class:`steplab.studies.bench.BenchSpec`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from steplab.cli.common import DbOption, console, friendly, progress_bar

if TYPE_CHECKING:
    from steplab.studies.bench import BenchSpec


def _bench_spec(spec_file: str | None, flags: dict[str, Any], sets: list[str]) -> BenchSpec:
    """The benchmark spec: the TOML file (or the defaults), then each flag that was given."""
    import dataclasses

    from steplab.studies import bench

    spec = bench.load_spec(spec_file) if spec_file else bench.BenchSpec()
    changes = {k: v for k, v in flags.items() if v is not None}
    if "algorithms" in changes:
        changes["algorithms"] = bench.algorithm_list(changes["algorithms"])
    if "workloads" in changes:
        changes["workloads"] = bench.parse_workload_list(changes["workloads"])
    if sets:
        changes["overrides"] = tuple(sets)
    return dataclasses.replace(spec, **changes) if changes else spec


@friendly
def bench_cmd(
    spec_file: str | None = typer.Argument(None, help="Benchmark spec (TOML); flags below override it."),
    suite: str | None = typer.Option(None, "--suite", help="Suite: quick, standard or full."),
    algorithms: str | None = typer.Option(None, "--algorithms", help="Comma-separated algorithm names or .toml files."),
    workloads: str | None = typer.Option(None, "--workloads", help="Comma-separated workloads, built-in names or path/file.py:Class (overrides the suite's)."),
    ruleset: str | None = typer.Option(None, "--ruleset", help="external (N quasi-random trials) or self (defaults, 3x budget)."),
    trials: int | None = typer.Option(None, "--trials", help="Tuning trials per study (external ruleset)."),
    studies: int | None = typer.Option(None, "--studies", help="Independent studies (the median over them is scored)."),
    seed: int | None = typer.Option(None, "--seed", help="Base seed of the QMC draws and the training runs."),
    sets: list[str] = typer.Option([], "--set", help="Override a field of every algorithm: key=value."),
    curriculum: str | None = typer.Option(None, "--curriculum", help="Data schedule of every algorithm "
                                          "(easy-to-hard:pacing=root...; the same as --set curriculum=...)."),
    name: str | None = typer.Option(None, "--name", help="Name of the benchmark in the store (re-use it to resume)."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Parallel workers (default 1; with --ray, every CPU)."),
    ray: bool = typer.Option(False, "--ray", help="Run trials on a pool of long-lived Ray actors, one per CPU (local Ray unless --ray-address)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Address of a running Ray cluster."),
    html: str | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    tradeoff: str | None = typer.Option(None, "--tradeoff", help="Also measure accuracy-vs-time curves: cyclic "
                                        "(one run with cycles ending at 1/8..1 of the budget vs separate runs)."),
    until_confident: float | None = typer.Option(
        None, "--until-confident", help="Add studies to the cells that decide the top until the best algorithm is "
        "separated from the second at this level (e.g. 0.9; looks planned, alpha spent), up to --max-studies."),
    max_studies: int | None = typer.Option(None, "--max-studies", help="Cap on studies per cell with --until-confident."),
    db: DbOption = None,
) -> None:
    """Benchmark algorithms on a suite by time-to-target; resumes a killed run."""
    import os
    import time

    from steplab import report
    from steplab.store import open_store, resolve_url
    from steplab.studies import bench
    from steplab.training.executors import make_executor

    spec = _bench_spec(spec_file, {
        "suite": suite, "algorithms": algorithms, "workloads": workloads, "ruleset": ruleset, "trials": trials,
        "studies": studies, "seed": seed, "name": name, "tradeoff": tradeoff, "until_confident": until_confident,
        "max_studies": max_studies}, [*sets, *([f"curriculum={curriculum}"] if curriculum else [])])
    url = resolve_url(db)
    t0 = time.perf_counter()
    with open_store(url) as store:
        b = bench.open_benchmark(spec, store)
        todo = b.todo
        console.print(
            f"benchmark [bold]{spec.study_name()}[/] (study {b.study_id}): {len(spec.algorithms)} algorithms x "
            f"{len(spec.entries())} workloads, {spec.ruleset} tuning, {spec.trials if spec.ruleset == 'external' else 1} "
            f"trial(s) x {spec.studies} stud{'y' if spec.studies == 1 else 'ies'}"
            f"{' + ' + spec.tradeoff + ' tradeoff runs' if spec.tradeoff else ''} = {len(b.jobs)} trials; "
            f"{len(b.jobs) - len(todo)} already done, {len(todo)} to run"
            + (f"; then up to {spec.max_studies} studies until the top is separated at {spec.until_confident:g}"
               if spec.until_confident is not None else "")
        )
        looks: list[Any] = []
        if todo or spec.until_confident is not None:
            use_ray = ray_address if ray_address else ray
            n = workers if workers is not None else ((os.cpu_count() or 1) if use_ray else 1)
            executor = make_executor(workers=n, ray=use_ray)
            with executor, progress_bar("[bold]trials") as bar:
                task = bar.add_task("trials", total=len(todo), info="")

                def waiting(n: int) -> None:
                    bar.update(task, info=f"waiting for {n} trial(s) running in other processes")

                def looked(look: Any, added: int) -> None:
                    looks.append(look)
                    bar.update(task, total=(bar.tasks[0].total or 0) + added, info=look.summary(spec.until_confident))

                results = (bench.run_until_confident(b, executor, url, store=store, on_wait=waiting, on_look=looked)
                           if spec.until_confident is not None else bench.run(b, executor, url, on_wait=waiting))
                for r in results:
                    wk = r.spec.workload if r.spec.variant == "base" else f"{r.spec.workload}:{r.spec.variant}"
                    bar.update(task, advance=1, info=f"{r.spec.algorithm} on {wk}: {r.status}")
        level = looks[-1].level if looks else None
        scores = bench.score(store, b.study_id, **({"level": level} if level is not None else {}))
        report.print_summary(scores, console, title=spec.study_name())
        print_timing(store, scores.trials, scores.level)
        if spec.tradeoff:
            report.print_tradeoff(report.tradeoff_curves(store, b.study_id), console)
        for look in looks:
            console.print(look.summary(spec.until_confident), highlight=False, soft_wrap=True)
        if html:
            path = report.write_html(store, b.study_id, html, scores=scores)
            console.print(f"wrote {path}")
    console.print(f"benchmark wall time {time.perf_counter() - t0:.1f} s; results in {store.url}")


def print_timing(store: Any, trials: list[Any], level: float) -> None:
    """The time axis beside the timing noise, per workload and algorithm: the cost (steps to
    target x the cell's per-step cost measured from the traces), the raw wall time as
    measured, and the ms per step with its bootstrap interval over the cell's trials
    (:func:`steplab.analysis.timing.timing_table`)."""
    from rich.table import Table
    from rich.text import Text

    from steplab.analysis.timing import timing_table
    from steplab.report.format import MISS, format_time
    from steplab.studies.bench.costs import study_traces

    table = Table(title=Text(f"time axis: cost = steps to target x the cell's ms/step (median over its trials of each one's robust ms/step); "
                             f"raw = wall time; timing noise = {level:.0%} interval of the ms/step over its trials"),
                  title_justify="left")
    for col, justify in (("workload", "left"), ("algorithm", "left"), ("cost", "right"), ("raw", "right"),
                         ("ms/step (interval)", "right"), ("noise", "right"), ("trials", "right")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    cells = timing_table(trials, study_traces(store, trials), level=level)
    for w in sorted({w for row in cells.values() for w in row}):
        for a in sorted(cells, key=lambda a: cells[a][w].cost_s if w in cells[a] else float("inf")):
            if w not in cells[a]:
                continue
            c, iv = cells[a][w], cells[a][w].step_cost
            step = f"{1e3 * iv.point:.2f} [{1e3 * iv.low:.2f}, {1e3 * iv.high:.2f}]" if iv.low == iv.low else "—"
            noise = f"±{c.noise:.0%}" if c.noise == c.noise else "—"
            table.add_row(Text(w), Text(a), format_time(c.cost_s, missing=MISS), format_time(c.raw_s, missing=MISS),
                          step, noise, str(c.trials))
    console.print(table)
