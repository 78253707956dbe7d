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
    suite: str | None = typer.Option(None, "--suite", help="Suite: quick or full."),
    algorithms: str | None = typer.Option(None, "--algorithms", help="Comma-separated algorithm names or .toml files."),
    workloads: str | None = typer.Option(None, "--workloads", help="Comma-separated workloads (overrides the suite's)."),
    ruleset: str | None = typer.Option(None, "--ruleset", help="external (N quasi-random trials) or self (defaults, 3x budget)."),
    trials: int | None = typer.Option(None, "--trials", help="Tuning trials per study (external ruleset)."),
    studies: int | None = typer.Option(None, "--studies", help="Independent studies (the median over them is scored)."),
    seed: int | None = typer.Option(None, "--seed", help="Base seed of the QMC draws and the training runs."),
    sets: list[str] = typer.Option([], "--set", help="Override a field of every algorithm: key=value."),
    name: str | None = typer.Option(None, "--name", help="Name of the benchmark in the store (re-use it to resume)."),
    workers: int | None = typer.Option(None, "--workers", "-j", min=1, help="Parallel workers (default 1; with --ray, every CPU)."),
    ray: bool = typer.Option(False, "--ray", help="Run trials as Ray tasks (local Ray unless --ray-address)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="Address of a running Ray cluster."),
    html: str | None = typer.Option(None, "--html", help="Also write the HTML report here."),
    tradeoff: str | None = typer.Option(None, "--tradeoff", help="Also measure accuracy-vs-time curves: cyclic "
                                        "(one run with cycles ending at 1/8..1 of the budget vs separate runs)."),
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
        "studies": studies, "seed": seed, "name": name, "tradeoff": tradeoff}, sets)
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
        )
        if todo:
            use_ray = ray_address if ray_address else ray
            n = workers if workers is not None else ((os.cpu_count() or 1) if use_ray else 1)
            executor = make_executor(workers=n, ray=use_ray)
            with executor, progress_bar("[bold]trials") as bar:
                task = bar.add_task("trials", total=len(todo), info="")

                def waiting(n: int) -> None:
                    bar.update(task, info=f"waiting for {n} trial(s) running in other processes")

                for r in bench.run(b, executor, url, on_wait=waiting):
                    wk = r.spec.workload if r.spec.variant == "base" else f"{r.spec.workload}:{r.spec.variant}"
                    bar.update(task, advance=1, info=f"{r.spec.algorithm} on {wk}: {r.status}")
        scores = bench.score(store, b.study_id)
        report.print_summary(scores, console, title=spec.study_name())
        if spec.tradeoff:
            report.print_tradeoff(report.tradeoff_curves(store, b.study_id), console)
        if html:
            path = report.write_html(store, b.study_id, html)
            console.print(f"wrote {path}")
    console.print(f"benchmark wall time {time.perf_counter() - t0:.1f} s; results in {store.url}")
