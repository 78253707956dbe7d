"""Reproduce the MNIST-1D table (Greydanus 2020, "Scaling down deep learning", arXiv
2011.14439): test accuracy of logistic regression 32%, MLP 68%, CNN 94%.

Two parts, each over ``--seeds`` seeds (0, 1, ...) with steplab's MNIST-1D data and models
(``steplab.workloads.mnist1d``):

* ``authors``: the protocol of the authors' ``notebooks/train.py`` as their classification
  notebook runs it: ``torch.optim.Adam`` at a constant lr 1e-2, no weight decay, batch 100
  taken **in order** (the batch of step s starts at ``100 s mod 4000``, no reshuffling),
  steps 0..6000 inclusive (6,001 updates), test accuracy on the full test split every 250
  steps; the table reports the last one (``final``) and, beside it, the best one (``max``:
  the paper's figures sit near each curve's peak). A plain PyTorch loop, since it
  reproduces a protocol. The authors did not seed torch; here seed s initialises the model.
* ``steplab``: steplab's calibrated baseline on each variant: the workload's
  ``default_algorithm`` (adamw-cosine) with its ``default_hyperparameters`` at the
  workload's own budget, through ``run_trial`` (shuffled batches, trained to the end of the
  budget), final test accuracy.

Each cell is the mean over seeds with a 95% t-interval. Every run uses one thread;
``--procs`` runs that many at once.

Usage::

    .venv/bin/python benchmarks/mnist1d_reproduce.py
    .venv/bin/python benchmarks/mnist1d_reproduce.py --seeds 5 --procs 2 --steps 6000
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import time
from typing import Any

#: variant of the ``mnist1d`` workload -> (row label, the paper's test accuracy in %)
ROWS = {"logreg": ("logistic regression", 32.0), "mlp": ("MLP", 68.0), "base": ("CNN", 94.0)}
LR, BATCH, EVAL_EVERY = 1e-2, 100, 250


def authors_protocol(variant: str, seed: int, steps: int) -> dict[str, Any]:
    """Adam lr 1e-2, constant, batches in order, updates at steps 0..``steps``; test
    accuracy (%) every ``EVAL_EVERY`` steps. Returns the final and the best accuracy."""
    import torch
    from torch import nn

    from steplab import workloads

    torch.set_num_threads(1)
    wl = workloads.get("mnist1d", variant)
    x, y, x_test, y_test = wl.data(torch.device("cpu"))
    model = wl.init_model(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=0.0)
    accuracies = []
    t0 = time.perf_counter()
    for step in range(steps + 1):
        start = (step * BATCH) % len(x)
        loss = nn.functional.cross_entropy(model(x[start : start + BATCH]), y[start : start + BATCH])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0:
            with torch.no_grad():
                accuracies.append(100.0 * (model(x_test).argmax(-1) == y_test).float().mean().item())
    return {"part": "authors", "variant": variant, "seed": seed, "final": accuracies[-1],
            "max": max(accuracies), "seconds": time.perf_counter() - t0}


def steplab_default(variant: str, seed: int) -> dict[str, Any]:
    """The workload's calibrated adamw-cosine baseline through ``run_trial``, to the end of
    its budget; final test accuracy (%)."""
    from steplab import algorithms, workloads
    from steplab.training.config import TrainConfig
    from steplab.training.loop import run_trial

    wl = workloads.get("mnist1d", variant)
    algo = algorithms.get_algorithm(wl.default_algorithm).with_hyperparameters(wl.default_hyperparameters)
    r = run_trial(wl, algo, seed, config=TrainConfig(threads=1, stop_at_target=False, device="cpu"))
    return {"part": "steplab", "variant": variant, "seed": seed,
            "final": 100.0 * r.final_metrics["validation/accuracy"],
            "max": 100.0 * r.final_metrics.get("best/validation/accuracy", math.nan),
            "seconds": r.train_time_s, "budget": wl.budget_steps, "lr": algo.lr,
            "target": 100.0 * wl.target.value, "steps_to_target": r.steps_to_target}


def _run(job: tuple) -> dict[str, Any]:
    part, variant, seed, steps = job
    return authors_protocol(variant, seed, steps) if part == "authors" else steplab_default(variant, seed)


def mean_interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval over ``values`` (nan for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))


def _cell(values: list[float]) -> str:
    mean, half = mean_interval(values)
    return f"{mean:5.1f} ± {half:4.1f}" if math.isfinite(half) else f"{mean:5.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6000, help="last step of the authors' protocol")
    ap.add_argument("--parts", nargs="*", default=["authors", "steplab"], choices=["authors", "steplab"])
    args = ap.parse_args()
    jobs = [(part, v, s, args.steps) for part in args.parts for v in ROWS for s in range(args.seeds)]
    jobs.sort(key=lambda j: j[1] != "base")  # the CNN runs are the longest: start them first
    t0 = time.time()
    from steplab.workloads import mnist1d_data

    mnist1d_data.dataset()  # generate (or read) the set once, before the workers need it
    with mp.get_context("spawn").Pool(args.procs) as pool:
        results = pool.map(_run, jobs, chunksize=1)
    seeds = ", ".join(map(str, range(args.seeds)))
    print(f"MNIST-1D test accuracy (%), mean ± 95% t-interval over seeds {seeds}")
    if "authors" in args.parts:
        print(f"\nauthors' protocol: Adam lr {LR:g} constant, batch {BATCH} in order, steps 0..{args.steps}")
        print(f"{'model':<20} {'paper':>6} {'final':>13} {'max':>13} {'s/run':>7}")
        for variant, (label, paper) in ROWS.items():
            rs = [r for r in results if r["part"] == "authors" and r["variant"] == variant]
            print(f"{label:<20} {paper:6.0f} {_cell([r['final'] for r in rs]):>13} "
                  f"{_cell([r['max'] for r in rs]):>13} {statistics.median(r['seconds'] for r in rs):7.1f}")
    if "steplab" in args.parts:
        print("\nsteplab's calibrated default: adamw-cosine at the workload's budget, shuffled batches")
        print(f"{'model':<20} {'paper':>6} {'final':>13} {'best':>13} {'budget':>7} {'lr':>6} "
              f"{'target':>7} {'reached':>8} {'s/run':>6}")
        for variant, (label, paper) in ROWS.items():
            rs = [r for r in results if r["part"] == "steplab" and r["variant"] == variant]
            reached = sum(math.isfinite(r["steps_to_target"]) for r in rs)
            print(f"{label:<20} {paper:6.0f} {_cell([r['final'] for r in rs]):>13} "
                  f"{_cell([r['max'] for r in rs]):>13} {rs[0]['budget']:7d} {rs[0]['lr']:6g} "
                  f"{rs[0]['target']:7.1f} {reached:>5}/{len(rs)} {statistics.median(r['seconds'] for r in rs):6.1f}")
    print(f"\n{len(jobs)} runs in {time.time() - t0:.0f} s on {args.procs} processes")


if __name__ == "__main__":
    main()
