"""``steplab continual``: train a stream of tasks as one recorded run, see forgetting and the
stability gap (:mod:`steplab.studies.continual`).

``steplab continual STREAM [options]`` runs; ``steplab continual list`` lists the streams;
``steplab continual report ID [ID...]`` tabulates stored continual runs and plots their
curves. A long stream (``input-permuted``, ``label-permuted``, ``slowly-changing-regression``:
loss of plasticity) runs and reports through :mod:`steplab.cli.plasticity`."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from steplab.algorithms.defaults import DEFAULT_ALGORITHM, stream_hyperparameters
from steplab.cli.common import (
    DbOption,
    DeviceOption,
    LrOption,
    SeedOption,
    SetsOption,
    WeightDecayOption,
    build_algorithm,
    console,
    friendly,
    progress_bar,
)
from steplab.cli.signals import interruptible

if TYPE_CHECKING:
    from steplab.algorithms import ResolvedAlgorithm
    from steplab.training.config import TrainConfig
    from steplab.workloads.stream_spec import StreamSpec

#: (final-metric key, name, format, meaning) of the continual metrics, in table order
COLUMNS = [
    ("continual/acc", "ACC", "{:.3f}", "mean over tasks of the final value (Lopez-Paz & Ranzato 2017)"),
    ("continual/bwt", "BWT", "{:+.3f}", "final minus just-learned value, mean over earlier tasks"),
    ("continual/fwt", "FWT", "{:+.3f}", "value just before training a task minus before any training"),
    ("continual/forgetting", "forgetting", "{:.3f}", "best earlier value minus final (Chaudhry et al. 2018)"),
    ("continual/forgetting_since_learned", "forgetting since learned", "{:.3f}",
     "just-learned minus final (-BWT; Avalanche's StreamForgetting)"),
    ("continual/min_acc", "min-ACC", "{:.3f}", "worst value of earlier tasks while later ones train (De Lange et al. 2023)"),
    ("continual/wc_acc", "WC-ACC", "{:.3f}", "(1/T) final value of the last task + (1 - 1/T) min-ACC"),
    ("continual/wf10", "WF10", "{:.3f}", "largest drop within 10 evaluations, mean over tasks"),
    ("continual/wf100", "WF100", "{:.3f}", "largest drop within 100 evaluations"),
    ("continual/wp10", "WP10", "{:.3f}", "largest rise within 10 evaluations"),
    ("continual/wp100", "WP100", "{:.3f}", "largest rise within 100 evaluations"),
    ("continual/gap_height", "gap height", "{:.3f}", "drop of an earlier task after a switch (LM: loss rise)"),
    ("continual/gap_steps", "gap steps", "{:.0f}", "updates until it is back half-way (stage end if never)"),
    ("continual/gap_recovered", "gap recovered", "{:.0%}", "share of the dips that came back half-way"),
]


def _f(fmt: str, v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _lm_note(kind: str) -> str:
    return (" (an LM stream: a_i = -validation loss, so ACC is minus the mean loss and gap height is a loss rise"
            " in nats/char)" if kind == "lm" else "")


@friendly
def continual_cmd(
    args: list[str] = typer.Argument(..., metavar="STREAM | list | report TRIAL_ID...",
                                     help="A stream (e.g. split-digits, rotated-digits+tasks=2+angle=90), "
                                          "`list` for the streams, or `report` and stored trial ids."),
    algorithm: str | None = typer.Option(None, "--algorithm", "-a",
                                         help="Built-in algorithm or .toml (default: adamw at the stream's lr); "
                                              "its schedule is replaced by the stage schedule."),
    stage_schedule: str | None = typer.Option(None, "--stage-schedule", "-s",
                                              help="rewarm (default), constant, infinite or wsd [:key=value,...]; "
                                                   "`none` keeps the algorithm's own schedule over the whole stream. "
                                                   "Long streams: a constant lr unless `none`."),
    replay: float | None = typer.Option(None, "--replay", help="Fraction of each batch from earlier tasks (0 .. <1)."),
    buffer: str | None = typer.Option(None, "--buffer", help="Replay buffer in examples (reservoir), or `all`."),
    eval_every: int | None = typer.Option(None, "--eval-every", min=1,
                                          help="Evaluate the seen tasks every N updates (default 1; 10 for charlm-shift)."),
    eval_subset: int | None = typer.Option(None, "--eval-subset", min=1,
                                           help="Evaluation examples per task (windows for charlm-shift)."),
    steps_per_task: int | None = typer.Option(None, "--steps-per-task", min=1, help="Updates per task."),
    batch: int | None = typer.Option(None, "--batch-size", min=1, help="Batch size (replay included)."),
    tasks: int | None = typer.Option(None, "--tasks", min=2,
                                     help="Tasks of permuted-/rotated-digits and of the long streams."),
    angle: float | None = typer.Option(None, "--angle", help="rotated-digits: degrees between tasks."),
    scenario: str | None = typer.Option(None, "--scenario", help="split-digits: class or task (a head per task)."),
    twin: bool = typer.Option(False, "--twin", help="The stream's tuning twin (same configuration, other data)."),
    restore: bool = typer.Option(True, "--restore/--no-restore",
                                 help="infinite: continue each stage from the non-annealed model (reference code)."),
    lr: LrOption = None,
    weight_decay: WeightDecayOption = None,
    sets: SetsOption = None,
    seed: SeedOption = 0,
    device: DeviceOption = None,
    threads: int | None = typer.Option(None, "--threads", min=1,
                                       help="torch threads (default 1 on CPU: the models are tiny)."),
    name: str | None = typer.Option(None, "--name", help="A label for the stored run."),
    plot: str | None = typer.Option(None, "--plot", help="Plot a_i(t) per task with the task boundaries to this PNG."),
    db: DbOption = None,
) -> None:
    """Train a stream of tasks one after the other (one stored run); print the accuracy matrix,
    forgetting, min-ACC / WC-ACC (the stability gap) and their cost."""
    from steplab.errors import SpecError

    head, rest = args[0], args[1:]
    if head == "list":
        if rest:
            raise SpecError("`steplab continual list` takes no further arguments")
        return _list()
    if head == "report":
        if not rest:
            raise SpecError("`steplab continual report` needs trials (ids or names), e.g. `steplab continual report 3 4`")
        from steplab.cli import plasticity

        if plasticity.report_long(rest, db, plot):
            return None
        return _report(rest, db, plot)
    if rest:
        raise SpecError(f"one stream per run, got {' '.join(args)!r}; run them one after the other")
    from steplab.training.config import TrainConfig
    from steplab.training.device import pick_device

    stream = _stream_spec(head, {"replay": replay, "buffer": buffer, "eval_every": eval_every,
                                 "eval_subset": eval_subset, "steps": steps_per_task, "batch": batch,
                                 "tasks": tasks, "angle": angle, "scenario": scenario, "twin": twin or None})
    dev = pick_device(device)
    train = TrainConfig(device=str(dev), stop_at_target=False,
                        threads=threads if threads is not None else (1 if dev.type == "cpu" else None))
    if stream.long:
        from steplab.cli import plasticity

        algo = plasticity.long_algorithm(algorithm, lr, weight_decay, sets, stage_schedule)
        return plasticity.run_long_cmd(stream, algo, seed, train, name, plot, db)
    algo = _stream_algorithm(algorithm, lr, weight_decay, sets, stream.kind)
    policy = stage_schedule or "rewarm"
    _run(stream, algo, None if policy.strip().lower() == "none" else policy, restore, seed, train,
         name, plot, db)


def _stream_spec(text: str, flags: dict[str, Any]) -> StreamSpec:
    """The :class:`steplab.workloads.stream_spec.StreamSpec` of ``STREAM[+key=value...]`` with the
    option flags that were given (not ``None``) applied on top."""
    from steplab.workloads.stream_spec import parse_stream

    spec = parse_stream(text)
    options = {k: v for k, v in flags.items() if v is not None}
    if "buffer" in options:
        options["buffer"] = _buffer(options["buffer"])
    return spec.with_options(**options) if options else spec


def _buffer(text: str) -> int | str:
    """``--buffer``: a number of examples, or ``all``."""
    from steplab.errors import SpecError

    if text.lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise SpecError(f"--buffer takes a number of examples or `all`, got {text!r}") from None


def _stream_algorithm(algorithm: str | None, lr: float | None, weight_decay: float | None,
                      sets: list[str] | None, kind: str) -> ResolvedAlgorithm:
    """The resolved algorithm: ``--algorithm`` with the flags, or, without one, AdamW at the
    stream's default lr and weight decay (any of them given by a flag or ``--set`` wins)."""
    base = build_algorithm(algorithm or DEFAULT_ALGORITHM, lr=lr, weight_decay=weight_decay, sets=sets)
    if algorithm is not None:
        return base.resolved()
    given = {s.partition("=")[0].strip() for s in sets or ()}
    given |= {k for k, v in (("lr", lr), ("weight_decay", weight_decay)) if v is not None}
    hp = {k: v for k, v in stream_hyperparameters(kind).items() if k not in given}
    base = dataclasses.replace(base, name=base.optimizer)  # its schedule is replaced by the stage schedule
    return base.with_hyperparameters(hp) if hp else base.resolved()


def _list() -> None:
    from steplab.workloads.stream_spec import STREAMS, StreamSpec

    table = Table(title="continual streams: steplab continual STREAM[+key=value...] (or the flags)")
    table.add_column("stream", style="bold cyan")
    table.add_column("tasks x steps", justify="right")
    table.add_column("what it is; options (defaults)")
    for name, info in sorted(STREAMS.items()):
        spec = StreamSpec(name)
        shown = ", ".join(f"{k}={v}" for k, v in info.defaults.items() if k not in ("steps", "tasks"))
        table.add_row(name, f"{spec.tasks} x {info.defaults['steps']}", f"{info.description}; {shown}")
    console.print(table)


def _run(spec: StreamSpec, algo: ResolvedAlgorithm, policy: str | None, restore: bool, seed: int,
         train: TrainConfig, name: str | None, plot: str | None, db: str | None) -> None:
    """Train the stream as one stored trial, print its accuracy matrix, the continual metrics
    and their cost; plot the curves when asked."""
    from steplab.store import open_store
    from steplab.studies import continual
    from steplab.workloads.task_stream import Stream

    stream = Stream(spec)
    total = stream.budget_steps
    with interruptible("run the same command again to start a new run"), open_store(db) as store, \
            progress_bar("[bold]{task.description}") as bar:
        task = bar.add_task(f"{stream.key} · {algo.name}+{policy or 'own schedule'}", total=total, info="")

        def progress(step: int, total: int, metrics: dict[str, float], train_s: float) -> None:
            k = min(stream.tasks, (step - 1) // stream.steps_per_task + 1)
            vals = [metrics[f"task{i}/{stream.metric}"] for i in range(k) if f"task{i}/{stream.metric}" in metrics]
            mean = sum(vals) / len(vals) if vals else math.nan
            bar.update(task, completed=step, info=f"task {k}/{stream.tasks} · mean {stream.metric} of seen {mean:.3f}")

        res = continual.run_continual(stream, algo, seed, stage_schedule=policy, restore=restore, store=store,
                                      config=train, progress=progress, name=name)
        bar.update(task, completed=res.trial.steps)
    t = res.trial
    head = {"budget": "[green]done[/]", "diverged": "[red]diverged[/]", "failed": "[red]failed[/]"}.get(t.status, t.status)
    console.print(f"trial {t.id}: {head} · {stream.key} · {t.spec.algorithm} · seed {seed}"
                  f"{_lm_note(stream.kind)}", highlight=False)
    _matrix(res.matrix, stream)
    table = Table(title="continual metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it is")
    for k, title, fmt, meaning in COLUMNS:
        table.add_row(title, _f(fmt, t.final_metrics.get(k)), meaning)
    console.print(table)
    sizes = stream.eval_sizes()
    fm = t.final_metrics
    console.print(f"cost: {t.steps} updates, {t.train_time_s:.2f} s training + {t.eval_time_s:.2f} s evaluation "
                  f"({fm['continual/evals']:.0f} evaluations, every {stream.eval_every} updates, on "
                  f"{min(sizes)}-{max(sizes)} {'windows' if stream.kind == 'lm' else 'examples'} per task); "
                  "min-ACC, WC-ACC, WF/WP and the gap compare only at the same eval every and subset size",
                  highlight=False)
    if res.restores:
        console.print(f"infinite: continued from the non-annealed model at updates {res.restores} "
                      f"({fm['continual/discarded_steps']:.0f} anneal updates not carried forward)", highlight=False)
    if t.message:
        console.print(f"  {t.message}", highlight=False, markup=False)
    if plot:
        from steplab.report.plots import plot_continual

        with open_store(db) as store:
            lr_trace = store.steps(t.id) if t.id is not None else None
        console.print(f"wrote {plot_continual([_panel(res.history, stream, t, lr_trace)], plot)}")
    if t.status in ("diverged", "failed"):
        raise typer.Exit(1)


def _matrix(r: Any, stream: Any) -> None:
    sign = 1.0 if stream.metric == "accuracy" else -1.0
    table = Table(title=f"{stream.metric} per task (R; row j = after task j, row 0 = before training)")
    table.add_column("after")
    for i in range(stream.tasks):
        table.add_column(f"task {i + 1}", justify="right")
    for j, row in enumerate(r):
        table.add_row("before" if j == 0 else f"task {j}", *[_f("{:.3f}", sign * v) for v in row])
    console.print(table)


def _panel(history: Any, stream: Any, trial: Any, steps: Any) -> dict[str, Any]:
    sign = 1.0 if stream.metric == "accuracy" else -1.0
    fm = trial.final_metrics
    note = (f"ACC {fm.get('continual/acc', math.nan):.3f}  min-ACC {fm.get('continual/min_acc', math.nan):.3f}  "
            f"WC-ACC {fm.get('continual/wc_acc', math.nan):.3f}  (eval every {stream.eval_every})")
    return {
        "title": f"trial {trial.id}: {stream.key} · {trial.spec.algorithm} · seed {trial.spec.seed}",
        "curves": {i: [(t, sign * v) for t, v in pts] for i, pts in history.curves.items()},
        "stage_ends": stream.stage_ends(),
        "ylabel": stream.metric,
        "lr": (steps["step"], steps["lr"]) if steps is not None and len(steps["step"]) else None,
        "note": note,
    }


def _report(refs: list[str], db: str | None, plot: str | None) -> None:
    from steplab.cli.refs import trial_ids
    from steplab.store import open_store
    from steplab.studies.continual import history_of

    with open_store(db, must_exist=True) as store:
        ids = trial_ids(store, refs)
        loaded = [(store.get_trial(i), *history_of(store, i), store.steps(i)) for i in ids]
    table = Table(title="continual runs (LM streams: a_i = -loss, so ACC is minus the mean loss)")
    table.add_column("")
    for t, _, _, _ in loaded:
        table.add_column(f"trial {t.id}", justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("stream", [t.spec.variant for t, _, _, _ in loaded]),
        ("algorithm", [t.spec.algorithm for t, _, _, _ in loaded]),
        ("seed", [str(t.spec.seed) for t, _, _, _ in loaded]),
        ("status", [t.status for t, _, _, _ in loaded]),
        ("eval every", [_f("{:.0f}", t.final_metrics.get("continual/eval_every")) for t, _, _, _ in loaded]),
        ("eval subset", [_f("{:.0f}", t.final_metrics.get("continual/eval_subset")) for t, _, _, _ in loaded]),
    ]
    rows += [(title, [_f(fmt, t.final_metrics.get(k)) for t, _, _, _ in loaded]) for k, title, fmt, _ in COLUMNS]
    rows += [("train s", [f"{t.train_time_s:.2f}" for t, _, _, _ in loaded]),
             ("eval s", [f"{t.eval_time_s:.2f}" for t, _, _, _ in loaded])]
    for label, cells in rows:
        table.add_row(label, *cells)
    console.print(table)
    if plot:
        from steplab.report.plots import plot_continual

        panels = [_panel(h, s, t, st) for t, h, s, st in loaded]
        console.print(f"wrote {plot_continual(panels, plot)}")
