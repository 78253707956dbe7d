"""What does a step of Shampoo, SOAP or Muon cost next to AdamW's?

The strongest baselines (``shampoo-cosine``, ``soap-cosine``, ``muon-cosine``, from
pytorch-optimizer) do more work per step than AdamW: Kronecker-factor statistics and their
inverse roots (Shampoo, every 5 steps), eigenbases (SOAP, every 10 steps), five
Newton-Schulz iterations (Muon, every step). Time-to-target counts that work, so its size
matters. Per workload, each optimizer (built from its baseline's defaults) trains the
workload's model from the same initialization: 10 untimed warm-up steps, then ``--steps``
timed steps (a multiple of 10, so the periodic work is counted in proportion), one thread.
The optimizers take turns within each of ``--reps`` repetitions, so a change in machine
load hits all of them alike.

Prints per workload and optimizer the ms per full training step (forward, backward, update)
and per ``optimizer.step()`` alone, each the fastest of the repetitions (the least disturbed
by other processes, as ``timeit`` reports), their ratios to AdamW's, and the 90% Student-t
interval of the per-repetition step ratio (paired within a repetition;
``steplab.analysis.seeds.seed_interval``: wide on a loaded machine). Usage::

    .venv/bin/python benchmarks/optimizers_cost.py
    .venv/bin/python benchmarks/optimizers_cost.py --reps 3 --steps 100
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch

from steplab import algorithms, workloads
from steplab.analysis.seeds import seed_interval

ALGORITHMS = {"adamw": "adamw-cosine", "shampoo": "shampoo-cosine", "soap": "soap-cosine", "muon": "muon-cosine"}
WORKLOADS = ("digits-mlp", "charlm")
WARMUP = 10


def _time(workload: str, algorithm: str, steps: int) -> tuple[float, float]:
    """(s per full step, s per optimizer.step()) over ``steps`` timed steps."""
    wl = workloads.get(workload)
    torch.manual_seed(0)
    model = wl.init_model(0)
    opt = algorithms.get_algorithm(algorithm).resolved().build_optimizer(model)
    batches = list(itertools.islice(wl.batches(0, torch.device("cpu")), WARMUP + steps))
    full = upd = 0.0
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        loss = wl.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if i >= WARMUP:
            full += t2 - t0
            upd += t2 - t1
    return full / steps, upd / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.steps} timed steps after {WARMUP} warm-up steps, {args.reps} repetitions, 1 thread; "
          "fastest repetition (90% interval of the mean per-repetition step ratio in brackets)")
    print(f"{'workload':12} {'optimizer':9} {'ms/step':>8} {'ms/update':>10} {'x AdamW step':>13} "
          f"{'x AdamW update':>15} {'(90% interval)':>16}")
    for workload in WORKLOADS:
        full: dict[str, list[float]] = {k: [] for k in ALGORITHMS}
        upd: dict[str, list[float]] = {k: [] for k in ALGORITHMS}
        for _ in range(args.reps):
            for name, algo in ALGORITHMS.items():
                f, u = _time(workload, algo, args.steps)
                full[name].append(f)
                upd[name].append(u)
        for name in ALGORITHMS:
            iv = seed_interval([f / a for f, a in zip(full[name], full["adamw"], strict=True)], 0.9)
            shown = f"[{iv.low:.2f}, {iv.high:.2f}]" if math.isfinite(iv.low) else "(one rep)"
            print(f"{workload:12} {name:9} {1e3 * min(full[name]):8.2f} {1e3 * min(upd[name]):10.2f} "
                  f"{min(full[name]) / min(full['adamw']):13.2f} {min(upd[name]) / min(upd['adamw']):15.2f} "
                  f"{shown:>16}", flush=True)

if __name__ == "__main__":
    main()
