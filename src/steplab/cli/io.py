"""``steplab import`` and ``steplab export``: outside logs in, steplab trials out.

Thin commands over :mod:`steplab.integrations` (TensorBoard, MLflow, CSV). Every import is
one transaction: bad input prints one line and leaves the store unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from steplab.cli.common import DbOption, console, friendly, hint

if TYPE_CHECKING:
    from steplab.store import Store

import_app = typer.Typer(help="Import a run logged elsewhere (TensorBoard, MLflow, CSV) as a trial.",
                         no_args_is_help=True)
export_app = typer.Typer(help="Export trials to MLflow or TensorBoard.", no_args_is_help=True)

TAGS_HELP = ("Which series fills which trace column, e.g. loss=train/loss,lr=lr,grad_norm=grad_norm "
             "(keys: loss, lr, grad_norm, grad_norm_l1, update_norm; unnamed ones are guessed from common names).")
OPT_HELP = "The optimizer (name or class path), so `steplab refine --norm auto` can pick l1 or l2."
OFFSET_HELP = "Add this to every step (-1 for logs written after the update, like the HF Trainer's)."


def _imported(store: Store, trial_id: int) -> None:
    """What an import stored, and the commands that read it next."""
    trial = store.get_trial(trial_id)
    trace = store.steps(trial_id)
    have = [c for c in ("loss", "lr", "grad_norm", "grad_norm_l1") if (trace[c] == trace[c]).any()]
    n_evals = len(store.evals(trial_id))
    console.print(f"imported trial {trial_id}: {len(trace['step'])} steps ({trace['step'][0]}..{trace['step'][-1]}) "
                  f"with {', '.join(have)}; {n_evals} evaluation rows; from {trial.spec.variant}", highlight=False)
    from steplab.integrations.hints import next_commands

    hint(next_commands(trial, trace))


@import_app.command("tensorboard")
@friendly
def import_tensorboard(
    logdir: str = typer.Argument(..., help="A TensorBoard run folder (or a folder holding exactly one run)."),
    tags: str | None = typer.Option(None, "--tags", help=TAGS_HELP),
    name: str | None = typer.Option(None, "--name", help="A label for the trial (default: the folder name)."),
    optimizer: str | None = typer.Option(None, "--optimizer", help=OPT_HELP),
    offset: int = typer.Option(0, "--offset", help=OFFSET_HELP),
    db: DbOption = None,
) -> None:
    """Import a TensorBoard log (event files) as a trial."""
    from steplab.integrations import tensorboard, traces
    from steplab.store import open_store

    mapping = traces.parse_tags(tags)
    with open_store(db) as store:
        tid = tensorboard.import_logdir(store, logdir, tags=mapping, name=name, optimizer=optimizer, offset=offset)
        _imported(store, tid)


@import_app.command("mlflow")
@friendly
def import_mlflow(
    run_id: str = typer.Argument(..., help="The MLflow run id."),
    tracking_uri: str = typer.Option(..., "--tracking-uri", help="MLflow tracking URI or a local ./mlruns folder."),
    tags: str | None = typer.Option(None, "--tags", help=TAGS_HELP.replace("series", "metric key")),
    name: str | None = typer.Option(None, "--name", help="A label for the trial (default: the run's name)."),
    optimizer: str | None = typer.Option(None, "--optimizer", help=OPT_HELP + " Default: the run's 'optimizer' param."),
    offset: int = typer.Option(0, "--offset", help=OFFSET_HELP),
    db: DbOption = None,
) -> None:
    """Import an MLflow run (metrics with their steps, params) as a trial."""
    from steplab.integrations import mlflow, traces
    from steplab.store import open_store

    mapping = traces.parse_tags(tags)
    with open_store(db) as store:
        tid = mlflow.import_run(store, tracking_uri, run_id, tags=mapping, name=name, optimizer=optimizer,
                                offset=offset)
        _imported(store, tid)


@import_app.command("csv")
@friendly
def import_csv(
    file: str = typer.Argument(..., help="A CSV file with a header row (a W&B or spreadsheet export)."),
    step: str = typer.Option(..., "--step", help="Column of update numbers (W&B: _step)."),
    loss: str = typer.Option(..., "--loss", help="Column of the training loss."),
    lr: str | None = typer.Option(None, "--lr", help="Column of the learning rate."),
    grad_norm: str | None = typer.Option(None, "--grad-norm", help="Column of the global l2 gradient norm (before clipping)."),
    evals: list[str] = typer.Option([], "--eval", help="Column of an evaluation metric (repeatable), e.g. val_loss."),
    time: str | None = typer.Option(None, "--time", help="Column of elapsed seconds (W&B: _runtime)."),
    name: str | None = typer.Option(None, "--name", help="A label for the trial (default: the file name)."),
    optimizer: str | None = typer.Option(None, "--optimizer", help=OPT_HELP),
    offset: int = typer.Option(0, "--offset", help=OFFSET_HELP),
    db: DbOption = None,
) -> None:
    """Import a CSV file of per-step values as a trial."""
    from steplab.integrations import csvfile
    from steplab.store import open_store

    with open_store(db) as store:
        tid = csvfile.import_csv(store, file, step=step, loss=loss, lr=lr, grad_norm=grad_norm, evals=evals,
                                 time=time, name=name, optimizer=optimizer, offset=offset)
        _imported(store, tid)


@export_app.command("mlflow")
@friendly
def export_mlflow(
    tracking_uri: str = typer.Option("mlruns", "--tracking-uri", help="MLflow tracking URI or a local folder."),
    study: int | None = typer.Option(None, "--study", help="Only the trials of this study (default: every trial)."),
    experiment: str | None = typer.Option(None, "--experiment", help="Experiment name (default: the study's, else steplab)."),
    db: DbOption = None,
) -> None:
    """Log each trial as an MLflow run: metrics per step, params, the schedule plot."""
    from steplab.integrations import mlflow
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        ids = mlflow.export_trials(store, tracking_uri, study_id=study, experiment=experiment)
    console.print(f"exported {len(ids)} trial(s) to MLflow at {tracking_uri}; look with `mlflow ui "
                  f"--backend-store-uri {tracking_uri}`", highlight=False)


@export_app.command("tensorboard")
@friendly
def export_tensorboard(
    logdir: str = typer.Option("tb-steplab", "--logdir", help="Write one run folder per trial under here."),
    study: int | None = typer.Option(None, "--study", help="Only the trials of this study (default: every trial)."),
    db: DbOption = None,
) -> None:
    """Write each trial as a TensorBoard run: scalars per step, hparams, the schedule plot."""
    from steplab.integrations import tensorboard
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        runs = tensorboard.export_trials(store, logdir, study_id=study)
    console.print(f"exported {len(runs)} trial(s) to {logdir}; look with `tensorboard --logdir {logdir}`",
                  highlight=False)
