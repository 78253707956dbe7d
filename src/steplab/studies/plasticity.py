"""Long continual streams (loss of plasticity) trained as one recorded trial.

:func:`run_long` trains a long stream of :mod:`steplab.workloads.long_streams` (hundreds of
tasks) as *one* trial (workload ``stream``, variant = the stream's key), with the one training
loop (:func:`steplab.training.loop.train`): an evaluation before any update (the probe
metrics of the untrained net) and one at every task end (the finished task's online accuracy
and the next task's probe metrics). Unlike :func:`steplab.studies.continual.run_continual`
it never re-evaluates earlier tasks (that is quadratic in the number of tasks): the measure is
the online accuracy per task (Dohare et al. 2024, "Loss of plasticity in deep continual
learning", Nature 632, Methods). The learning rate is the algorithm's own schedule over the
whole stream (constant for Dohare et al.'s "tuned constant step size"); the task starts are
the divergence rule's resets. In the regression (batch 1: one example's squared error varies
by orders of magnitude) only a non-finite loss counts as divergence. The curve "online accuracy of task k against k" of a stored
trial is :func:`steplab.analysis.plasticity.task_curve`.
"""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any

from steplab.algorithms import ResolvedAlgorithm
from steplab.errors import SpecError
from steplab.results import TrialResult, current_environment, trial_spec
from steplab.training.config import TrainConfig
from steplab.training.interrupts import keep_interrupted
from steplab.training.loop import Hooks, Plan, Progress, build, ready, recorder, train
from steplab.workloads.long_streams import LongStream
from steplab.workloads.stream_spec import StreamSpec

__all__ = ["LongResult", "run_long"]


@dataclasses.dataclass
class LongResult:
    """A finished long-stream run: the stored trial, the online curve (one value per task,
    in task order) and the metrics (also in ``trial.final_metrics``)."""

    trial: TrialResult
    curve: list[float]
    metrics: dict[str, float]
    stream: str


def run_long(
    stream: LongStream | StreamSpec | str,
    algorithm: ResolvedAlgorithm,
    seed: int = 0,
    *,
    store: Any = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    study_id: int | None = None,
    index: int = 0,
) -> LongResult:
    """Train ``algorithm`` on the long ``stream`` for its ``tasks x steps`` updates and record
    one trial (see the module docstring). ``config`` supplies the device, threads, norm
    recording and divergence factor. A run that diverges or raises is a recorded outcome."""
    cfg = config or TrainConfig(stop_at_target=False)
    stream = stream if isinstance(stream, LongStream) else LongStream(stream)
    if algorithm.label_smoothing:
        raise SpecError(f"algorithm {algorithm.name!r} sets label_smoothing, which long streams do not apply; "
                        "set it to 0")
    device = cfg.start()
    total, ends = stream.budget_steps, stream.stage_ends()
    record = types.SimpleNamespace(name="stream", variant=stream.key, budget_steps=total)
    spec = trial_spec(record, algorithm, seed, settings={"divergence_factor": cfg.divergence_factor},  # type: ignore[arg-type]
                      study_id=study_id, index=index, stop_at_target=False)
    env = current_environment(str(device))
    trial_id = None if store is None else store.start_trial(spec, name=name, **env.fields())
    try:
        trainee = build(stream, algorithm, seed, device, total)
        batches = ready(stream.batches(seed, device))
        rec = recorder(trainee, cfg, store, trial_id)

        def on_eval(steps: int, metrics: dict[str, float]) -> None:
            if progress is not None:
                progress(steps, total, metrics, rec.train_time_s)

        factor = math.inf if stream.kind == "regression" else cfg.divergence_factor
        plan = Plan(total, stream.eval_every, stop_at_target=False, eval_at_start=True,
                    divergence_factor=factor, divergence_resets=tuple(ends[:-1]))
        out = train(trainee, stream, batches, rec, plan, Hooks(on_eval=on_eval))
    except KeyboardInterrupt as e:
        raise keep_interrupted(store, trial_id, spec, env, e) from None
    summary = {k: v for k, v in out.metrics.items() if k.startswith("online/")}
    final = {**out.metrics, "online/tasks": float(stream.tasks), "online/steps_per_task": float(stream.steps_per_task),
             "online/resets": float(stream.resets)}
    result = out.result(spec, env, final, trial_id)
    if store is not None and trial_id is not None:
        store.finish_trial(trial_id, result)
    return LongResult(result, list(stream.curve), summary, stream.key)
