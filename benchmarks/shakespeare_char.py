"""shakespeare-char beside nanoGPT's README: validation loss and wall time of the baseline.

Runs nanoGPT's recipe (the built-in ``adamw-nanogpt`` at nanoGPT's peak lr 1e-3; the
workload's tuned lr is 4e-3) through steplab's own training loop (``steplab.training.loop``)
for the full 2,000 updates, one process per seed, one thread each, no stop at the target,
and prints:

* ``validation/loss`` (the workload's fixed 256-window sample) at 500 / 1000 / 1500 / 2000
  updates, per seed and as mean with a 95% t-interval over seeds;
* the loss over the *whole* validation set (1728 windows) at the end;
* training time (AlgoPerf's clock: evaluation excluded), ms per update, and the run's wall
  time (evaluations included, like nanoGPT's ~3 min);

beside nanoGPT's README (about 1.88 after about 3 minutes on a CPU, Tiny Shakespeare) and the
spec sheet's re-runs (1.886 on Tiny Shakespeare in 107 s, 1.898 over its whole validation
set; 1.93 on a Gutenberg-plays corpus).

``--lrs`` sweeps the peak lr instead (the target calibration of the workload's docstring:
per lr the median best, the worst seed's best by 70% of the budget and the seeds reaching the
target); ``--budget`` shortens the run (the schedule is built for it), for a suite's short
budget. Every run needs the corpus in the cache (``~/.cache/steplab`` or ``$STEPLAB_CACHE``;
fetched on first use).

Usage::

    .venv/bin/python benchmarks/shakespeare_char.py                      # 3 seeds, 2000 updates
    .venv/bin/python benchmarks/shakespeare_char.py --lrs 5e-4,1e-3,2e-3,4e-3,8e-3 --procs 2
    .venv/bin/python benchmarks/shakespeare_char.py --budget 600 --at 300,600 --lrs 4e-3
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
from typing import Any

#: nanoGPT's README and the spec sheet's re-runs (workloads-curricula-schedules.md, section 2)
REFERENCE = [
    ("nanoGPT README, Tiny Shakespeare, CPU", "~1.88", "~3 min"),
    ("re-run of the README command (1 thread)", "1.886 (whole val 1.898)", "107 s"),
    ("same command on Gutenberg plays (77 chars)", "1.93", "~105 s"),
]


def run_one(lr: float, seed: int, budget: int | None, at: tuple[int, ...]) -> dict[str, Any]:
    """One run of ``adamw-nanogpt`` at peak ``lr`` on shakespeare-char with ``seed``."""
    import torch

    torch.set_num_threads(1)
    from steplab import algorithms, workloads
    from steplab.training import loop
    from steplab.training.config import TrainConfig

    wl = workloads.get("shakespeare-char", budget_steps=budget)
    algo = algorithms.get_algorithm(wl.default_algorithm).with_hyperparameters(
        {**wl.default_hyperparameters, "lr": lr})
    device = torch.device("cpu")
    wall = time.perf_counter()
    trainee = loop.build(wl, algo, seed, device, wl.budget_steps)
    batches = loop.ready(wl.batches(seed, device))
    rec = loop.recorder(trainee, TrainConfig(threads=1))
    evals: list[tuple[int, float]] = []

    def on_eval(steps: int, metrics: dict[str, float]) -> None:
        evals.append((steps, metrics["validation/loss"]))

    plan = loop.Plan(budget_steps=wl.budget_steps, eval_every=wl.eval_every, metric="validation/loss",
                     mode="min", target=wl.target, stop_at_target=False, eval_steps=at)
    out = loop.train(trainee, wl, batches, rec, plan, loop.Hooks(on_eval=on_eval))
    wall = time.perf_counter() - wall  # build, data, training and its evaluations, as nanoGPT's clock
    trainee.model.eval()
    full = wl.full_validation_loss(trainee.model, device)
    return {"lr": lr, "seed": seed, "budget": wl.budget_steps, "status": out.status, "evals": evals,
            "full_val": full, "train_s": out.train_time_s, "eval_s": out.eval_time_s,
            "wall_s": wall, "ms_per_step": 1e3 * out.train_time_s / max(1, out.steps),
            "target": wl.target.value}


def mean_ci(values: list[float]) -> str:
    """``mean ± half-width`` of the 95% t-interval (Student 1908) over ``values``."""
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    from scipy import stats

    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{statistics.fmean(values):.4f} ± {half:.4f}"


def value_at(run: dict[str, Any], step: int) -> float:
    return next((v for s, v in run["evals"] if s == step), math.nan)


def report_seeds(runs: list[dict[str, Any]], at: tuple[int, ...]) -> None:
    print(f"\nshakespeare-char, adamw-nanogpt lr {runs[0]['lr']:g}, {runs[0]['budget']} updates, "
          f"{len(runs)} seeds, 1 thread each")
    head = ["seed", *(f"val@{s}" for s in at), "whole val", "train s", "ms/step", "wall s"]
    print("  ".join(f"{h:>10}" for h in head))
    for r in runs:
        cells = [str(r["seed"]), *(f"{value_at(r, s):.4f}" for s in at), f"{r['full_val']:.4f}",
                 f"{r['train_s']:.1f}", f"{r['ms_per_step']:.1f}", f"{r['wall_s']:.1f}"]
        print("  ".join(f"{c:>10}" for c in cells))
    print("mean ± 95% CI (t, over seeds):")
    for s in at:
        print(f"  val@{s:<5} {mean_ci([value_at(r, s) for r in runs])}")
    print(f"  whole val  {mean_ci([r['full_val'] for r in runs])}")
    print(f"  train s    {mean_ci([r['train_s'] for r in runs])}   ms/step {mean_ci([r['ms_per_step'] for r in runs])}")
    print(f"  wall s     {mean_ci([r['wall_s'] for r in runs])}")
    print("reference:")
    for what, loss, t in REFERENCE:
        print(f"  {what:<44} val {loss:<24} {t}")


def report_grid(runs: list[dict[str, Any]]) -> None:
    budget = runs[0]["budget"]
    cut = int(0.7 * budget)
    print(f"\nlr grid, {budget} updates, target {runs[0]['target']} (validation/loss, 256-window sample)")
    print(f"{'lr':>8}  {'best (median)':>13}  {'worst @70%':>10}  {'whole val':>9}  reach target (steps)")
    for lr in sorted({r["lr"] for r in runs}):
        rs = [r for r in runs if r["lr"] == lr]
        best = statistics.median(min(v for _, v in r["evals"]) for r in rs)
        worst70 = max(min(v for s, v in r["evals"] if s <= cut) for r in rs)
        reach = [next((s for s, v in r["evals"] if v <= r["target"]), None) for r in rs]
        got = sorted(s for s in reach if s is not None)
        print(f"{lr:>8g}  {best:>13.4f}  {worst70:>10.4f}  {statistics.median(r['full_val'] for r in rs):>9.4f}  "
              f"{len(got)}/{len(rs)} {tuple(got)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lrs", default="", help="comma-separated peak lrs: a calibration grid")
    p.add_argument("--budget", type=int, default=None, help="updates (default: the workload's 2000)")
    p.add_argument("--at", default="500,1000,1500,2000", help="updates at which to report the validation loss")
    p.add_argument("--procs", type=int, default=3, help="runs in parallel (one thread each)")
    p.add_argument("--json", default="", help="also write every run to this file")
    args = p.parse_args()
    at = tuple(int(s) for s in args.at.split(",") if s.strip())
    lrs = [float(x) for x in args.lrs.split(",") if x.strip()] or [1e-3]
    jobs = [(lr, seed, args.budget, at) for lr in lrs for seed in range(args.seeds)]
    with mp.get_context("spawn").Pool(min(args.procs, len(jobs))) as pool:
        runs = pool.starmap(run_one, jobs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
    if len(lrs) > 1:
        report_grid(runs)
    for lr in lrs:
        report_seeds([r for r in runs if r["lr"] == lr], at)


if __name__ == "__main__":
    main()
