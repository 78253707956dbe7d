"""The Ray Tune strategies of ``steplab tune``: ``asha`` and ``pbt`` (``pip install 'steplab[ray]'``).

Ray Tune is the engine and the scheduler here; steplab only supplies the trainable and the
compute budget:

* ``asha``: ``ray.tune.schedulers.ASHAScheduler`` (Li et al. 2020, "A System for Massively
  Parallel Hyperparameter Tuning"), ``time_attr="steps"``, ``max_t`` = the trial length,
  ``grace_period`` = a tenth of it, ``reduction_factor=3``; points from Ray's random search
  over the algorithm's search space.
* ``pbt``: ``ray.tune.schedulers.PopulationBasedTraining`` (Jaderberg et al. 2017) with
  Ray's defaults ``quantile_fraction=0.25``, ``resample_probability=0.25`` and perturbation
  factors 1.2 / 0.8, asynchronous (``synch=False``, Ray's default: a member exploits when it
  reaches a round, without waiting for the others, which a population larger than the CPUs
  needs), ``perturbation_interval`` = a tenth of the trial length; exploit copies the model,
  optimizer and schedule state through Ray checkpoints, and the member's stored trace is cut
  back to the step of the checkpoint it continues from. The population is as many members
  as the budget buys full trials (or ``TuneSpec.population``).

Each Ray trial is one stored steplab trial of the tune's study (named
``ray:<Ray trial id>``; a PBT member keeps its trial when it is restarted from a donor's
checkpoint, with the lineage in its final metrics ``pbt/exploits`` and its message). The
budget is enforced in the store: a trial leases each chunk of steps before training it
(``Store.lease_steps``, one transaction), so the trials' steps never sum past it however Ray
schedules them; a ``ray.tune.Stopper`` stops the experiment once the reported steps are
within one evaluation interval of it. A trial that Ray stops (ASHA's early stop, the end of
the experiment) or that finds the budget spent is recorded ``pruned``. A killed tune
restarts Ray with the budget left, the stored trials counting against it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from steplab.algorithms import space
from steplab.errors import SpecError
from steplab.results import TrialResult, current_environment, trial_spec
from steplab.store import Store, new_worker_id, open_store
from steplab.training.config import TrainConfig
from steplab.training.curriculum import require_uniform
from steplab.training.device import pick_device
from steplab.training.loop import Hooks, Plan, build, ready, recorder, train


def _import_tune() -> Any:
    try:
        from ray import tune
    except ImportError as e:
        raise SpecError(f"strategies asha and pbt need Ray Tune ({e}): pip install 'steplab[ray]'") from None
    return tune


def _ray_space(tune: Any, params: dict[str, space.Param]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in params.items():
        if isinstance(p, space.LogUniform):
            out[name] = tune.loguniform(p.low, p.high)
        elif isinstance(p, space.Uniform):
            out[name] = tune.uniform(p.low, p.high)
        else:
            out[name] = tune.choice(list(p.values))
    return out


def _set_hyperparameters(opt: Any, sched: Any, algo: Any) -> None:
    """Point a restored optimizer at ``algo``'s peak lr and weight decay (PBT's explore step
    changed them; the optimizer state is the donor's). Every group's lr is scaled by the same
    factor, so groups with their own lr (Muon's AdamW part) keep their ratio."""
    factor = algo.lr / sched.base_lrs[0] if sched.base_lrs and sched.base_lrs[0] else 1.0
    for group in opt.param_groups:
        group["lr"] *= factor
        group["initial_lr"] = group.get("initial_lr", group["lr"]) * factor
        if group.get("weight_decay"):
            group["weight_decay"] = algo.weight_decay
    sched.base_lrs = [b * factor for b in sched.base_lrs]


def pbt_interval(su: Any) -> int:
    """Steps between PBT's exploit/explore rounds: a tenth of a trial (at least one
    evaluation interval)."""
    return max(1, su.trial_steps // su.spec.evals, su.trial_steps // 10)


def make_trainable(su: Any, study_id: int, db_url: str, pbt: bool) -> Callable[[dict[str, Any]], None]:
    """The Ray Tune function trainable of one tune: trains a trial with the one training loop,
    leasing a chunk of one evaluation interval before each and reporting ``{metric, "steps"}``
    after each (with a checkpoint for PBT), records everything in the store, and turns Ray's
    stop into a ``pruned`` trial."""

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        torch.set_num_threads(1)
        store = open_store(db_url)
        try:
            _train_member(tune, su, study_id, store, config, pbt)
        finally:
            store.close()

    return trainable


def _train_member(tune: Any, su: Any, study_id: int, store: Store, config: dict[str, Any], pbt: bool) -> None:
    """One Ray trial (a PBT member restarted from a donor's checkpoint included)."""
    spec, wl = su.spec, su.workload
    every = max(1, su.trial_steps // spec.evals)
    algo = su.resolve({k: config[k] for k in su.space})
    device = pick_device(None)
    ray_id = tune.get_context().get_trial_id()
    label = f"ray:{ray_id}"
    mine = store.list_trials(study_id=study_id, name=label)
    if any(t.status != "running" for t in mine):
        return  # finished already: PBT may still exploit a member at its last report
    found = [t for t in mine if t.status == "running"]
    ckpt = tune.get_checkpoint()
    state: dict[str, Any] | None = None
    step, exploits, lineage = 0, 0, ""
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / "state.pt", weights_only=True)
        step = int(state["step"])
        exploits = int(state["exploits"]) + (1 if state["trial"] != ray_id else 0)
        lineage = str(state["lineage"]) + (f" {step}:{state['trial']}" if state["trial"] != ray_id else "")
    ts = trial_spec(wl, algo, spec.seed, settings={"eval_every": every}, budget_steps=su.trial_steps,
                    study_id=study_id, index=int(found[0].spec.index) if found else 0, stop_at_target=False)
    env = current_environment(str(device))
    worker = new_worker_id()
    if found:
        tid = int(found[0].id)  # type: ignore[arg-type]
        store.set_trial_spec(tid, ts)
        store.truncate_trial(tid, step)  # what it trained after the checkpoint is replaced
    else:
        ts = dataclasses.replace(ts, index=len(store.list_trials(study_id=study_id)))
        tid = store.start_trial(ts, name=label, worker=worker, **env.fields())
    require_uniform(algo, f"tune --strategy {spec.strategy}")
    trainee = build(wl, algo, spec.seed, device, su.trial_steps)
    if state is not None:
        trainee.restore(state)
        _set_hyperparameters(trainee.opt, trainee.lr_scheduler, algo)
    rec = recorder(trainee, TrainConfig(), store, tid)
    rec.step = step
    batches = ready(wl.batches(spec.seed, device))
    for _ in range(step):  # the data order of an uninterrupted run
        next(batches)
    stopped: list[SystemExit] = []

    def lease(at: int) -> str | None:
        if (at - step) % every == 0 and not store.lease_steps(study_id, min(every, su.trial_steps - at),
                                                              spec.budget_steps):
            return f"compute budget exhausted after {at} steps"
        return None

    def report(done: int, metrics: dict[str, float]) -> str | None:
        result = {spec.metric: metrics.get(spec.metric, math.nan), "steps": done}
        try:
            if pbt and done % pbt_interval(su) == 0:  # a checkpoint where PBT may exploit
                with tempfile.TemporaryDirectory() as d:
                    torch.save({**trainee.checkpoint(), "step": done, "trial": ray_id, "exploits": exploits,
                                "lineage": lineage}, Path(d) / "state.pt")
                    tune.report(result, checkpoint=tune.Checkpoint.from_directory(d))
            else:
                tune.report(result)
        except SystemExit as e:  # Ray stops the trial here (ASHA, the budget, PBT's pause)
            stopped.append(e)
            return f"stopped by Ray Tune after {done} steps" if done < su.trial_steps else None
        return None

    plan = Plan(su.trial_steps, every, spec.metric, spec.mode, stop_at_target=False, start_step=step,
                divergence_resets=tuple(wl.divergence_resets))
    with store.heartbeat(worker):
        out = train(trainee, wl, batches, rec, plan, Hooks(lease, report))
    if stopped and pbt and out.steps < su.trial_steps:
        raise stopped[0]  # paused: PBT restarts it from a checkpoint (or run() closes it)
    out.message = (out.message if out.status != "budget" else lineage.strip())[:500]
    store.finish_trial(tid, out.result(ts, env, {**out.metrics, "pbt/exploits": float(exploits)}, tid))
    if stopped:
        raise stopped[0]


def _stopper(tune: Any, budget_steps: int, interval: int) -> Any:
    class BudgetStopper(tune.Stopper):
        """Stop the experiment once the reported steps are within one interval of the
        budget (the leases in the store are what guarantee it is never passed)."""

        def __init__(self) -> None:
            self.steps: dict[str, int] = {}

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.steps[trial_id] = int(result.get("steps", 0))
            return False

        def stop_all(self) -> bool:
            return sum(self.steps.values()) + interval > budget_steps

    return BudgetStopper()


#: Ray's own output a tune does not need (``verbose=False``): Tune's console reporter, usage
#: stats, the metrics agent and its export errors, workers' logs; set only where unset
QUIET_ENV = {
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no "Configuration for experiment" table
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_enable_metrics_collection": "0",  # no metrics agent, so no metrics-fetch errors
    "RAY_DEDUP_LOGS": "0",
    "RAY_ENABLE_RECORD_ACTOR_TASK_LOGGING": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


def quiet_ray(verbose: bool = False) -> None:
    """Silence Ray's log noise unless ``verbose``: the :data:`QUIET_ENV` variables (read by
    the Ray processes ``ray.init`` starts, so set before it) and Ray's Python loggers at
    ERROR (its token-authentication and search-algorithm warnings)."""
    import logging

    if verbose:
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    for name in ("ray", "ray.tune", "ray.train", "ray.air", "ray._private"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")  # e.g. PBT's reuse_actors advice


def run(su: Any, store: Store, study_id: int, done: list[TrialResult], db_url: str,
        on_trial: Callable[[TrialResult, int], None] | None = None, verbose: bool = False) -> list[TrialResult]:
    """Run the ``asha`` or ``pbt`` strategy with the budget the stored trials ``done`` left;
    Ray's own logs are silenced unless ``verbose`` (:func:`quiet_ray`)."""
    quiet_ray(verbose)
    # a trial the spent budget stops before its first evaluation ends with nothing to report
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    tune = _import_tune()
    import ray
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    spec = su.spec
    used = sum(t.steps for t in done)
    left = spec.budget_steps - used
    interval = max(1, su.trial_steps // spec.evals)
    concurrency = max(1, min(2, os.cpu_count() or 1))
    pbt = spec.strategy == "pbt"
    if left < interval:
        return list(done)
    store.set_lease(study_id, used)  # dead attempts' leases are not spent
    param_space = _ray_space(tune, su.space)
    if pbt:
        population = spec.population or max(2, left // su.trial_steps)
        if population * su.trial_steps > left:
            population = max(2, left // su.trial_steps)
        scheduler = PopulationBasedTraining(
            time_attr="steps", perturbation_interval=pbt_interval(su),
            hyperparam_mutations=param_space, quantile_fraction=0.25, resample_probability=0.25,
            perturbation_factors=(1.2, 0.8), synch=False)
        random.seed(spec.seed)  # PBT draws its exploit and explore choices from ``random``
        samples = population
    else:
        scheduler = ASHAScheduler(time_attr="steps", max_t=su.trial_steps,
                                  grace_period=max(interval, su.trial_steps // 10), reduction_factor=3)
        samples = max(1, left // max(interval, su.trial_steps // 10))
    if not ray.is_initialized():
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    folder = Path(tempfile.gettempdir()) / "steplab-ray" / spec.study_name()
    tuner = tune.Tuner(
        tune.with_resources(make_trainable(su, study_id, db_url, pbt), {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, num_samples=samples, scheduler=scheduler,
                                    search_alg=BasicVariantGenerator(random_state=spec.seed,
                                                                     max_concurrent=0 if pbt else concurrency)),
        run_config=tune.RunConfig(storage_path=str(folder.parent), name=folder.name, verbose=0,
                                  stop=_stopper(tune, left, interval),
                                  # PBT restores members from others' checkpoints: keep them all
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=None if pbt else 2)),
    )
    tuner.fit()
    _close_paused(store, study_id, su)
    finished = [t for t in store.list_trials(study_id=study_id) if t.status != "running"]
    known = {t.id for t in done}
    total = used
    for t in finished:
        if t.id in known:
            continue
        total += t.steps
        if on_trial is not None:
            on_trial(t, total)
    return finished


def _close_paused(store: Store, study_id: int, su: Any) -> None:
    """Finish the trials Ray left paused (a PBT population stopped by the budget between
    rounds): ``budget`` when they trained their whole length, else ``pruned``, with the
    steps, time and last evaluation their trace holds."""
    for t in store.list_trials(study_id=study_id, status="running"):
        if not (store.trial_info(t.id)["name"] or "").startswith("ray:"):
            continue
        trace = store.steps(t.id)
        n = int(trace["step"].size)
        last: dict[str, float] = {}
        for e in store.evals(t.id):
            last[e.metric] = e.value
        status = "budget" if n >= su.trial_steps else "pruned"
        train_s = float(trace["time_s"][-1]) if n and math.isfinite(trace["time_s"][-1]) else 0.0
        store.finish_trial(t.id, dataclasses.replace(
            t, status=status, steps=n, train_time_s=train_s, final_metrics=last,
            message="" if status == "budget" else f"stopped by Ray Tune after {n} steps"))
