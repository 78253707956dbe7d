"""``steplab dynamics``: the monitors of a stored run (issue 23) against the step and the
learning rate: the sharpness beside its stability threshold (2/lr, Cohen et al. 2021; 38/lr
for Adam's preconditioned sharpness, Cohen et al. 2022), the gradient noise scale, the
relative weight change, logit sizes, the Fourier sparsity and the grokking delay
(:mod:`steplab.analysis.dynamics_trace`; the plot: :mod:`steplab.report.dynamics_figures`)."""

from __future__ import annotations

import typer

from steplab.cli import common
from steplab.cli.common import DbOption, console, err_console, friendly, hint
from steplab.cli.refs import TRIAL_HELP
from steplab.cli.refs import trial_id as trial_ref


def _cell(value: float) -> str:
    import math

    return f"{value:.4g}" if math.isfinite(value) else "—"


def _header(column: str, values: list[float], lrs: list[float]) -> str:
    """A threshold column is named by its constant ``c/lr`` (2/lr, 38/lr) when it is one."""
    import math

    if not column.endswith("/threshold"):
        return column
    consts = {round(v * lr, 3) for v, lr in zip(values, lrs) if math.isfinite(v) and math.isfinite(lr)}
    return f"{consts.pop():g}/lr" if len(consts) == 1 else column


@friendly
def dynamics_cmd(
    ref: str = typer.Argument(..., metavar="TRIAL", help="The recorded run: " + TRIAL_HELP),
    db: DbOption = None,
    plot: str | None = typer.Option(None, "--plot", help="Write panels of the monitors against the step (lr on a twin axis) to this PNG."),
    as_json: common.JsonOption = False,
    as_csv: common.CsvOption = False,
) -> None:
    """The monitors a run recorded (steplab run --monitor ...) by step, with the learning rate,
    2/lr beside the sharpness and the grokking delay."""
    import math

    from rich.table import Table
    from rich.text import Text

    from steplab.algorithms.labels import run_label
    from steplab.analysis.dynamics_trace import dynamics_trace, grokking_summary
    from steplab.store import open_store

    fmt = common.output_format(as_json, as_csv)
    with open_store(db, must_exist=True) as store:
        trial_id = trial_ref(store, ref)
        t = store.get_trial(trial_id)
        evals = store.evals(trial_id)
        trace = dynamics_trace(evals, store.steps(trial_id))
        label = run_label(t.spec, store.trial_info(trial_id).get("name"))
    grok = grokking_summary(trace)
    monitors = t.spec.settings.get("monitors") or []
    if fmt:
        common.emit(fmt, {"id": t.id, "workload": t.spec.workload, "label": label, "monitors": monitors,
                          "monitor_every": t.spec.settings.get("monitor_every"), "grokking": grok,
                          "rows": trace.rows()}, trace.rows())
    elif trace.empty:
        hint(f"trial {t.id} ({t.spec.workload} · {label}) recorded no monitors; record them with: "
             f"steplab run {t.spec.workload} --monitor sharpness,gns,laziness --monitor-every 50")
    else:
        title = f"trial {t.id}: {t.spec.workload} · {label} · monitors {', '.join(monitors) or 'recorded'}"
        table = Table(title=title)
        columns = trace.columns()
        for col in ("step", "lr", *columns):
            table.add_column(_header(col, trace.values.get(col, []), trace.lr), justify="right", overflow="fold")
        for row in trace.rows(bookkeeping=False):
            table.add_row(str(row["step"]), _cell(row["lr"]), *(_cell(row[c]) for c in columns))
        console.print(table)
        if grok is not None:
            def when(x: float) -> str:
                return f"step {x:.0f}" if math.isfinite(x) else "not reached"

            console.print(f"grokking: training accuracy at the threshold at {when(grok['fit_step'])}, validation "
                          f"accuracy at {when(grok['generalize_step'])}; delay {_cell(grok['delay'])} steps",
                          highlight=False)
    if plot and not trace.empty:
        from steplab.report.dynamics_figures import plot_dynamics

        path = plot_dynamics(trace, plot, title=f"trial {t.id}: {t.spec.workload} · {label}")
        (err_console if fmt else console).print(Text(f"wrote {path}"))
