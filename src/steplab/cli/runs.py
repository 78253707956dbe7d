"""``steplab runs list|show``: the trials recorded in the store; ``show`` prints a trial's
whole stored config (every field of its :class:`steplab.results.TrialSpec`, nanoGPT keeps
its config beside each checkpoint the same way)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from steplab.cli import common
from steplab.cli.common import NAME_COLUMN, DbOption, console, err_console, friendly
from steplab.cli.refs import TRIAL_HELP
from steplab.cli.refs import trial_id as trial_ref

if TYPE_CHECKING:
    from steplab.results import TrialResult

runs_app = typer.Typer(help="Trials recorded in the store.", no_args_is_help=True)

#: the columns of ``runs list --csv`` before the final metrics (one column each)
CSV_COLUMNS = ("id", "label", "name", "workload", "variant", "algorithm", "seed", "status", "steps",
               "steps_to_target", "time_to_target_s", "train_time_s", "eval_time_s", "study_id")


def trial_record(t: TrialResult, name: str | None) -> dict[str, Any]:
    """A trial as JSON values for ``--json``/``--csv``: its label (what tells it apart,
    :func:`steplab.algorithms.labels.run_label`), its name, spec fields, outcome and final
    metrics; ``inf`` (target not reached) becomes null on output."""
    from steplab.algorithms.labels import config_diff, run_label

    s = t.spec
    return {"id": t.id, "label": run_label(s, name), "name": name, "workload": s.workload, "variant": s.variant,
            "algorithm": s.algorithm, "seed": s.seed, "status": t.status, "steps": t.steps,
            "steps_to_target": t.steps_to_target, "time_to_target_s": t.time_to_target_s,
            "train_time_s": t.train_time_s, "eval_time_s": t.eval_time_s, "study_id": s.study_id,
            "differs": config_diff(s), "hyperparameters": s.hyperparameters, "final_metrics": t.final_metrics}


def config_lines(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key = value`` lines of a stored config, sorted, nested mappings flattened to dotted
    keys (``hyperparameters.lr = 0.03``); values other than strings are written as JSON."""
    lines: list[str] = []
    for key in sorted(config):
        value = config[key]
        if isinstance(value, Mapping) and value:
            lines += config_lines(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            lines.append(f"{prefix}{key} = {text}")
    return lines


@runs_app.command("list")
@friendly
def runs_list(
    db: DbOption = None,
    study: int | None = typer.Option(None, "--study", help="Only trials of this study."),
    workload: str | None = typer.Option(None, "--workload", help="Only trials of this workload."),
    limit: int = typer.Option(50, "--limit", help="Show the newest N trials (0: all)."),
    as_json: common.JsonOption = False,
    as_csv: common.CsvOption = False,
) -> None:
    """List recorded trials, newest last; a run is labelled by its name, else by its
    algorithm and the settings that differ from it (adamw-cosine lr=0.001 wd=0)."""
    import math

    from rich.text import Text

    from steplab.algorithms.labels import format_value
    from steplab.store import quick_list

    fmt = common.output_format(as_json, as_csv)
    last = limit if limit > 0 else None
    quick = quick_list.list_trials(db, study_id=study, workload=workload, last=last)  # a SQLite file: no SQLAlchemy
    if quick is not None:
        trials, names = quick
    else:
        from steplab.store import open_store

        with open_store(db, must_exist=True) as store:
            trials = store.list_trials(study_id=study, workload=workload, last=last)
            infos = store.trial_infos([t.id for t in trials if t.id is not None])  # one query, not one per trial
        names = [infos.get(t.id or 0, {}).get("name") for t in trials]
    if fmt:
        records = [trial_record(t, name) for t, name in zip(trials, names)]
        csv_rows = [{**{k: r[k] for k in CSV_COLUMNS}, "differs": " ".join(f"{k}={format_value(v)}" for k, v in
                                                                           r["differs"].items()),
                     **r["final_metrics"]} for r in records]
        common.emit(fmt, records, csv_rows)
        return
    from steplab.algorithms.labels import run_label

    # the table shows labels only: a named run's label is its name, nothing is compared with a
    # built-in (that builds the optimizer registry, which imports torch)
    labels = [run_label(t.spec, name) for t, name in zip(trials, names)]
    table = Table(title=f"{len(trials)} trial(s)")
    for col in ("id", "workload", "run", "seed", "status", "steps", "steps to target", "train s", "final"):
        table.add_column(col, justify="right" if col in ("id", "seed", "steps", "steps to target", "train s") else "left",
                         **(NAME_COLUMN if col in ("workload", "run") else {}))
    for t, label in zip(trials, labels):
        final = ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in sorted(t.final_metrics.items()) if k.startswith("validation/"))
        wk = t.spec.workload if t.spec.variant == "base" else f"{t.spec.workload}:{t.spec.variant}"
        table.add_row(str(t.id), Text(wk), Text(label), str(t.spec.seed), t.status, str(t.steps),
                      f"{t.steps_to_target:.0f}" if math.isfinite(t.steps_to_target) else "—",
                      f"{t.train_time_s:.2f}", final)
    console.print(table)


@runs_app.command("show")
@friendly
def runs_show(
    ref: str = typer.Argument(..., metavar="TRIAL", help=TRIAL_HELP),
    db: DbOption = None,
    plot: str | None = typer.Option(None, "--plot", help="Write loss / lr / grad-norm / eval curves to this PNG."),
    as_json: common.JsonOption = False,
) -> None:
    """Summarize one trial and print its whole stored config; optionally plot its curves.
    --json: the summary, the config and every evaluation (not the per-step trace)."""
    import dataclasses

    from rich.text import Text

    from steplab.store import open_store

    fmt = common.output_format(as_json)
    with open_store(db, must_exist=True) as store:
        trial_id = trial_ref(store, ref)
        t = store.get_trial(trial_id)
        steps = store.steps(trial_id)
        evals = store.evals(trial_id)
        record = trial_record(t, store.trial_info(trial_id).get("name"))
    if fmt:
        common.emit(fmt, {**record, "message": t.message, "device": t.device, "host": t.host, "versions": t.versions,
                   "trace_rows": len(steps["step"]), "config": t.spec.to_dict(),
                   "evals": [dataclasses.asdict(e) for e in evals]})
    else:
        _print_trial(t, record["label"], len(steps["step"]), len(evals))
    if plot:
        from steplab.report.plots import plot_trace

        path = plot_trace(steps, evals, plot, title=f"trial {t.id}: {t.spec.workload} · {record['label']}")
        (err_console if fmt else console).print(Text(f"wrote {path}"))


def _print_trial(t: TrialResult, label: str, n_steps: int, n_evals: int) -> None:
    """The terminal summary of ``runs show``."""
    import dataclasses

    from rich.text import Text

    console.print(Text.assemble((f"trial {t.id}", "bold"), f": {t.spec.workload}:{t.spec.variant} · {label} · seed {t.spec.seed}"))
    console.print(f"  status {t.status}; {t.steps} steps; train {t.train_time_s:.2f} s; eval {t.eval_time_s:.2f} s; device {t.device}")
    console.print(f"  time to target: {t.steps_to_target} steps, {t.time_to_target_s:.3g} s")
    for k, v in sorted(t.final_metrics.items()):
        console.print(f"  {k}: {v:.5g}")
    if t.message:
        console.print(f"  message: {t.message}", highlight=False, markup=False)
    console.print(f"  trace: {n_steps} step rows, {n_evals} evaluations")
    console.print("config", style="bold")
    for line in config_lines(dataclasses.asdict(t.spec)):
        console.print(f"  {line}", highlight=False, markup=False)
