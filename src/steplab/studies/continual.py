"""Continual training: one stream of tasks (:mod:`steplab.workloads.task_stream`) trained as
one trial, with a stage schedule, replay and continual evaluation.

:func:`run_continual` trains one stream as *one* trial in the store (workload ``stream``,
variant = the stream's key, e.g. ``split-digits+replay=0.05``): it evaluates before any
training, every ``eval_every`` updates on every task seen so far and at every stage end on
all tasks, records each task's metric as eval rows ``task{i}/accuracy`` (or
``task{i}/loss``), and stores the metrics of :mod:`steplab.workloads.stream_metrics`
(``continual/acc``, ``continual/min_acc``...) in the trial's final metrics. The learning
rate follows a stage schedule (:mod:`steplab.schedules.stages`). The loop is the one
training loop (:func:`steplab.training.loop.train`: device, seeding, the recorder that
keeps evaluation time apart from training time, the divergence rule with the task switches
as its resets, failures as recorded outcomes); the stage boundaries of the infinite
schedule's non-annealed restore hook into it.

The streams, their data and specs are in :mod:`steplab.workloads.task_stream`,
:mod:`steplab.workloads.stream_data` and :mod:`steplab.workloads.stream_spec`;
:mod:`steplab.workloads.stream` wraps a stream as a workload for ``steplab bench``.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from steplab import schedules
from steplab.algorithms import ResolvedAlgorithm
from steplab.errors import SpecError
from steplab.results import TrialResult, current_environment, trial_spec
from steplab.training.config import TrainConfig
from steplab.training.interrupts import keep_interrupted
from steplab.training.loop import Hooks, Plan, Progress, build, ready, recorder, train
from steplab.workloads.stream_metrics import History, accuracy_matrix, summarize
from steplab.workloads.stream_spec import StreamSpec
from steplab.workloads.task_stream import Batch, Stream

__all__ = ["ContinualResult", "history_of", "run_continual", "stage_algorithm"]


@dataclasses.dataclass
class ContinualResult:
    """A finished continual run: the stored trial, the curves ``a_i(t)``, ``R`` (row 0 before
    training) and the metrics (also in ``trial.final_metrics``)."""

    trial: TrialResult
    history: History
    matrix: np.ndarray
    metrics: dict[str, float]
    stream: str
    schedule: dict[str, Any]
    restores: list[int]


def stage_algorithm(algorithm: ResolvedAlgorithm, stream: Stream, stage_schedule: str | Mapping[str, Any] | None) -> ResolvedAlgorithm:
    """``algorithm`` with its schedule replaced by ``stage_schedule`` (``rewarm``,
    ``constant``, ``infinite``, ``wsd``, optionally ``NAME:key=value,...``) fitted to the
    stream's stages, and named ``ALGO+POLICY``; ``None`` keeps the algorithm's own schedule
    over the whole stream."""
    if stage_schedule is None:
        return algorithm
    spec = schedules.policy_spec(stage_schedule, stages=stream.tasks)
    policy = spec["name"].removeprefix("stages_")
    return dataclasses.replace(algorithm, schedule=spec, name=f"{algorithm.name}+{policy}")


class _StreamTask:
    """The loop's view of a stream: its loss, and the evaluation of the tasks seen after
    ``steps`` updates, added to the run's ``history``."""

    def __init__(self, stream: Stream, history: History) -> None:
        self.stream, self.history = stream, history
        self.steps = 0
        self.evals = 0

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.stream.loss(model, batch)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        metrics = self.stream.evaluate(model, device, self.stream.seen(self.steps))
        self.history.add(self.steps, self.stream.scores(metrics))
        self.evals += 1
        return metrics


def run_continual(
    stream: Stream | StreamSpec | str,
    algorithm: ResolvedAlgorithm,
    seed: int = 0,
    *,
    stage_schedule: str | Mapping[str, Any] | None = "rewarm",
    restore: bool = True,
    store: Any = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    study_id: int | None = None,
    index: int = 0,
) -> ContinualResult:
    """Train ``algorithm`` on every task of ``stream`` in turn and record one trial.

    Evaluation (model in eval mode, no gradients, time kept apart from training time): all
    tasks before the first update (``b_i``) and at every task end (the rows of ``R``), the
    tasks seen so far every ``eval_every`` updates; it draws no random numbers, so it never
    changes the trajectory. With ``stages_infinite`` and ``restore`` the model saved when
    each stage's anneal starts is loaded back when the next stage begins (the annealed model
    is the evaluated, *released* one; its anneal updates are counted in
    ``continual/discarded_steps``). ``config`` supplies the device, threads, norm recording
    and divergence factor (``stop_at_target``/``eval_steps`` do not apply). A run that
    diverges (a non-finite loss, or one above ``divergence_factor`` times the first loss of
    its task: a new class's loss jumps at the switch by design) or raises is a recorded
    outcome, as in :func:`steplab.training.loop.run_trial`."""
    cfg = config or TrainConfig(stop_at_target=False)
    stream = stream if isinstance(stream, Stream) else Stream(stream)
    algo = stage_algorithm(algorithm, stream, stage_schedule)
    if algo.label_smoothing:
        raise SpecError(f"algorithm {algo.name!r} sets label_smoothing, which continual runs do not apply; set it to 0")
    device = cfg.start()
    total, ends = stream.budget_steps, stream.stage_ends()
    releases = schedules.anneal_starts(algo.schedule, total) if restore else {}
    record = types.SimpleNamespace(name="stream", variant=stream.key, budget_steps=total)
    spec = trial_spec(record, algo, seed, settings={"divergence_factor": cfg.divergence_factor},  # type: ignore[arg-type]
                      study_id=study_id, index=index, stop_at_target=False)
    env = current_environment(str(device))
    trial_id = None if store is None else store.start_trial(spec, name=name, **env.fields())

    try:  # Ctrl-C, SIGTERM: the trial is kept as interrupted
        trainee = build(stream, algo, seed, device, total)
        batches = ready(stream.batches(seed, device))
        rec = recorder(trainee, cfg, store, trial_id)
        task = _StreamTask(stream, History(list(ends)))
        saved: dict[str, torch.Tensor] | None = None
        restores: list[int] = []
        discarded = 0

        def before_step(step: int) -> None:
            nonlocal saved
            task.steps = step + 1  # what the evaluation after this update sees
            if step in releases:  # the non-annealed state the next stage continues from
                saved = copy.deepcopy(trainee.model.state_dict())

        def on_eval(steps: int, metrics: dict[str, float]) -> None:
            nonlocal saved, discarded
            if progress is not None:
                progress(steps, total, metrics, rec.train_time_s)
            if saved is not None and steps in releases.values():
                trainee.model.load_state_dict(saved)
                discarded += steps - next(k for k, v in releases.items() if v == steps)
                restores.append(steps)
                saved = None

        plan = Plan(total, stream.eval_every, stop_at_target=False, eval_at_start=True,
                    divergence_factor=cfg.divergence_factor, divergence_resets=tuple(ends))
        out = train(trainee, task, batches, rec, plan, Hooks(before_step, on_eval))
    except KeyboardInterrupt as e:
        raise keep_interrupted(store, trial_id, spec, env, e) from None

    summary = summarize(task.history)
    sizes = stream.eval_sizes()
    final = {**out.metrics, **summary,
             "continual/eval_every": float(stream.eval_every), "continual/eval_subset": float(min(sizes)),
             "continual/evals": float(task.evals), "continual/tasks": float(stream.tasks),
             "continual/replay": stream.replay, "continual/discarded_steps": float(discarded)}
    result = out.result(spec, env, final, trial_id)
    if store is not None and trial_id is not None:
        store.finish_trial(trial_id, result)
    return ContinualResult(result, task.history, accuracy_matrix(task.history), summary, stream.key,
                           dict(algo.schedule), restores)


def history_of(store: Any, trial_id: int) -> tuple[History, Stream]:
    """The curves ``a_i(t)`` of a stored continual trial (workload ``stream``), rebuilt from
    its eval rows, with its stream (whose data is not loaded)."""
    trial = store.get_trial(trial_id)
    if trial.spec.workload != "stream":
        raise SpecError(f"trial {trial_id} is a {trial.spec.workload!r} run, not a continual one "
                        "(`steplab continual` records workload 'stream')")
    stream = Stream(trial.spec.variant)
    history = History(stream.stage_ends())
    by_step: dict[int, dict[str, float]] = {}
    for row in store.evals(trial_id):
        by_step.setdefault(row.step, {})[row.metric] = row.value
    for step in sorted(by_step):
        history.add(step, stream.scores(by_step[step]))
    return history, stream
