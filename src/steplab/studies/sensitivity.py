"""The learning-rate sensitivity sweep (Wortsman et al. 2023, "Small-scale proxies for
large-scale Transformer training instabilities", arXiv 2309.14322): train an algorithm at every
peak lr of a log grid, for every seed, into a store, to score it with the formula of
:mod:`steplab.analysis.sensitivity`.

One study of kind ``"sensitivity"`` per workload, algorithm, grid and budget; finished points
are skipped, so a killed sweep resumes (a point stopped by Ctrl-C/SIGTERM is kept as
``interrupted`` and runs again). Every run goes through the one training loop
(:func:`steplab.training.loop.run_trial`) with ``stop_at_target`` off (the final loss is what is
compared); the loss at initialization ``L_init`` of each seed is stored with its runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steplab.algorithms import Algorithm, ResolvedAlgorithm
from steplab.analysis.sensitivity import KIND, SensitivityResult, load
from steplab.errors import SpecError
from steplab.results import FINISHED
from steplab.training.config import TrainConfig
from steplab.training.device import pick_device
from steplab.training.loop import run_trial
from steplab.workloads.base import Workload

__all__ = ["Progress", "base_point", "init_loss", "study_name", "sweep"]


def base_point(algorithm: Algorithm, workload: Workload) -> ResolvedAlgorithm:
    """The algorithm's own defaults, with the workload's calibrated hyperparameters (other
    than ``lr``) when it is the workload's calibrated algorithm (``default_algorithm``)."""
    hp = dict(algorithm.defaults())
    if algorithm.name == workload.default_algorithm:
        extra = {k: v for k, v in workload.default_hyperparameters.items() if k != "lr"}
        hp = {k: v for k, v in hp.items() if not (k.startswith("one_minus_") and k.removeprefix("one_minus_") in extra)}
        hp.update(extra)
    return algorithm.with_hyperparameters(hp)


def study_name(workload: Workload, algorithm: ResolvedAlgorithm, grid: Sequence[float], metric: str) -> str:
    """The store name of a sweep: workload, algorithm, grid and budget, plus a digest of the
    algorithm's other settings (two sweeps of differently overridden algorithms differ)."""
    spec = {k: v for k, v in algorithm.to_dict().items() if k not in ("lr", "hyperparameters")}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return (f"sensitivity {workload.key} {algorithm.name} lr {grid[0]:.3g}..{grid[-1]:.3g} x{len(grid)} "
            f"{workload.budget_steps} steps {metric} {digest}")


def init_loss(workload: Workload, seed: int, metric: str, device: Any = None) -> float:
    """``metric`` of ``workload.init_model(seed)`` before any update (eval mode)."""
    import torch

    device = device or torch.device("cpu")
    model = workload.init_model(seed).to(device)
    model.eval()
    value = workload.evaluate(model, device).get(metric)
    if value is None:
        raise SpecError(f"workload {workload.key!r} does not report {metric!r}; pick --metric from "
                        f"{', '.join(sorted(workload.evaluate(model, device)))}")
    return float(value)


#: called before each run with (done, total, label)
Progress = Callable[[int, int, str], None]


def sweep(
    workload: Workload,
    algorithm: ResolvedAlgorithm,
    grid: Sequence[float],
    seeds: Sequence[int],
    *,
    store: Any,
    config: Any = None,
    metric: str = "validation/loss",
    progress: Progress | None = None,
) -> SensitivityResult:
    """Run ``algorithm`` at every lr of ``grid`` (its other settings, warm-up fraction and the
    workload's budget unchanged) for every seed, to the end of the budget, into ``store``;
    points already finished there are skipped. Returns the sweep read back
    (:func:`steplab.analysis.sensitivity.load`).

    Args:
        workload: the workload, with the budget to use (``budget_steps=`` override).
        algorithm: the settings at the base point (see :func:`base_point`); ``lr`` is replaced.
        grid: the peak learning rates (:func:`steplab.analysis.sensitivity.lr_grid`).
        seeds: training seeds; each seed's ``L_init`` is its own initial model's.
        store: an open :class:`steplab.store.Store`.
        config: a :class:`steplab.training.config.TrainConfig`; ``stop_at_target`` is forced off.
        metric: the loss to compare (default ``validation/loss``).
    """
    grid = [float(x) for x in grid]
    if not grid:
        raise SpecError("the lr grid is empty")
    cfg = dataclasses.replace(config or TrainConfig(record_norms=False), stop_at_target=False)
    name = study_name(workload, algorithm, grid, metric)
    spec = {"workload": workload.name, "variant": workload.variant, "algorithm": algorithm.name,
            "algorithm_spec": algorithm.to_dict(), "grid": grid, "budget_steps": workload.budget_steps,
            "metric": metric}
    found = store.find_study(name)
    if found is None:
        study_id = store.create_study(name, KIND, spec)
    else:
        if found["kind"] != KIND or _settings(found["spec"]) != _settings(json.loads(json.dumps(spec))):
            raise SpecError(f"a different study named {name!r} is already in the store; use another --db")
        study_id = int(found["id"])
        store.reap_stale(study_id)
    done = {(t.spec.index, t.spec.seed) for t in store.list_trials(study_id=study_id, status=FINISHED)}
    todo = [(j, s) for s in seeds for j in range(len(grid)) if (j, s) not in done]
    device = pick_device(cfg.device)
    inits: dict[int, float] = {}
    for k, (j, seed) in enumerate(todo):
        lr = grid[j]
        label = f"{workload.key} {algorithm.name} lr={lr:.3g} seed={seed}"
        if progress is not None:
            progress(k, len(todo), label)
        if seed not in inits:
            inits[seed] = init_loss(workload, seed, metric, device)
        point = dataclasses.replace(algorithm, lr=lr, hyperparameters={**algorithm.hyperparameters, "lr": lr})
        run_trial(workload, point, seed, store=store, study_id=study_id, index=j, config=cfg,
                  name=f"sensitivity|{label}", extra_metrics={"sensitivity/init_loss": inits[seed]})
    if progress is not None and todo:
        progress(len(todo), len(todo), "done")
    return load(store, study_id)


def _settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep's spec without the base point's lr (every grid point replaces it)."""
    algo = {k: v for k, v in dict(spec.get("algorithm_spec") or {}).items() if k not in ("lr", "hyperparameters")}
    return {**spec, "algorithm_spec": algo}
