"""Per-step cost of steplab's train loop + recorder against a bare hand-written PyTorch loop.

Same workload, model, data, optimizer and schedule; the two loops alternate in one
process (R rounds, each round runs both), one thread. The bare loop has no evaluation and
no recording; steplab's evaluation time is excluded from its training time, so the ratio is
the cost of the loop itself plus recording. Prints, per workload, the median per-step
ratio over rounds and the 90% Student-t interval of the mean ratio over rounds
(``steplab.analysis.seeds.seed_interval``; the goal is met when its upper end is under it).

    .venv/bin/python benchmarks/overhead.py [--rounds 5] [--workloads digits-mlp,charlm]
Goal (issue 3): <= 1.03.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from steplab import algorithms, workloads
from steplab.analysis.seeds import seed_interval
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial

STEPS = {"digits-mlp": 1000, "logreg": 2000, "teacher-student": 1000, "modarith": 300, "charlm": 400}


def bare_loop(wl: workloads.Workload, algo: algorithms.ResolvedAlgorithm, seed: int, steps: int) -> float:
    """Seconds per step of the loop a user would write by hand."""
    torch.manual_seed(seed)
    model = wl.init_model(seed)
    opt, sched = algo.build(model, steps)
    batches = wl.batches(seed, torch.device("cpu"))
    next(batches)  # build the data outside the clock, as steplab does
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = wl.loss(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    float(loss.detach())
    return (time.perf_counter() - t0) / steps


def steplab_loop(wl, algo, seed: int, steps: int, record_norms: bool) -> float:
    r = run_trial(wl, algo, seed, config=TrainConfig(stop_at_target=False, threads=1, record_norms=record_norms))
    assert r.steps == steps, (r.status, r.message)
    return r.train_time_s / r.steps


def _interval(ratios: list[float]) -> str:
    iv = seed_interval(ratios, 0.9)
    return f"[{iv.low:.3f}, {iv.high:.3f}]" if math.isfinite(iv.low) else "(one round)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="digits-mlp,logreg,charlm")
    args = ap.parse_args()
    torch.set_num_threads(1)
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 1e-3})
    print(f"{'workload':16s} {'bare ms/step':>12s} {'steplab':>9s} {'ratio':>7s} {'90% interval (mean)':>19s}"
          f" {'no norms':>9s} {'ratio':>7s}")
    for name in args.workloads.split(","):
        steps = STEPS[name]
        wl = workloads.get(name, budget_steps=steps)
        steplab_loop(wl, algo, 0, steps, True)  # warm-up: allocator, kernels, data cache
        bare_loop(wl, algo, 0, steps)
        ratios, ratios_nn, bares, full, nn = [], [], [], [], []
        for r in range(args.rounds):
            b = bare_loop(wl, algo, r, steps)
            s = steplab_loop(wl, algo, r, steps, True)
            s2 = steplab_loop(wl, algo, r, steps, False)
            bares.append(b), full.append(s), nn.append(s2)
            ratios.append(s / b), ratios_nn.append(s2 / b)
        print(f"{name:16s} {1e3 * statistics.median(bares):12.3f} {1e3 * statistics.median(full):9.3f}"
              f" {statistics.median(ratios):7.3f} {_interval(ratios):>19s}"
              f" {1e3 * statistics.median(nn):9.3f} {statistics.median(ratios_nn):7.3f}")


if __name__ == "__main__":
    main()
