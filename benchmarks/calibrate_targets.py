"""Calibrate workload targets the AlgoPerf way: what a well-tuned baseline reaches in budget.

For each workload (base variant unless ``--all-variants``) this runs a plain PyTorch loop --
AdamW (weight decay on weights only), linear warm-up over 5% of the budget then cosine decay
to 0 (``LambdaLR``), a small peak-learning-rate grid, several seeds -- for the workload's ``default_budget_steps`` and
prints, per learning rate:

* ``best``: the best validation metric reached (median over seeds),
* ``@70%``: the worst seed's best-so-far at 70% of the budget (the suggested target is this
  value for the best learning rate: every seed of the tuned baseline reaches it by then),
* ``ms/step`` (training only) and the evaluation overhead in percent of training time,
* ``L/L0``: the largest training loss over the first one, worst seed (steplab's train loop
  calls a run diverged above 20),
* ``reached``: seeds that reached the workload's current ``default_target`` and the steps
  (at the evaluation cadence) at which they did.

Deliberately independent of steplab's optimizer and schedule modules (Dahl et al. 2023,
"Benchmarking Neural Network Training Algorithms", sets targets from tuned baselines the
same way). Every run uses one thread; ``--procs`` runs that many in parallel.

Usage::

    .venv/bin/python benchmarks/calibrate_targets.py                  # all base variants
    .venv/bin/python benchmarks/calibrate_targets.py digits-mlp charlm --seeds 2
    .venv/bin/python benchmarks/calibrate_targets.py logreg --all-variants
    .venv/bin/python benchmarks/calibrate_targets.py mnist1d:mlp mnist1d:logreg   # variants
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from steplab import workloads

# Peak-lr grid per workload family (a "family:variant" key would override it for one
# variant); AdamW settings per family (weight decay 1 and beta2 0.98 for grokking, as in
# Power et al. 2022; none for the convex problem; 0.01 otherwise).
LR_GRID: dict[str, tuple[float, ...]] = {
    "digits-mlp": (1e-3, 3e-3, 1e-2),
    "logreg": (1e-2, 3e-2, 1e-1, 3e-1),
    "modarith": (5e-2, 7e-2, 1e-1, 1.4e-1),
    "teacher-student": (3e-2, 1e-1, 2e-1, 4e-1),
    "charlm": (1e-2, 2e-2, 4e-2),
    "mnist1d": (1e-2, 2e-2, 3e-2, 6e-2),
    "mnist1d:mlp": (3e-3, 1e-2, 2e-2, 3e-2),
    "mnist1d:logreg": (3e-3, 1e-2, 3e-2, 1e-1),
    "mnist1d:large": (1e-2, 2e-2, 3e-2),
}
ADAMW: dict[str, dict[str, Any]] = {
    "modarith": {"weight_decay": 1.0, "betas": (0.9, 0.98)},
    "logreg": {"weight_decay": 0.0},
}
WARMUP = 0.05


def warmup_cosine(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up over ``WARMUP * total_steps`` updates, then cosine decay to 0."""
    warm = max(1, int(WARMUP * total_steps))

    def f(k: int) -> float:
        if k < warm:
            return (k + 1) / warm
        t = min(1.0, (k - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return f


def run_one(key: str, lr: float, seed: int, budget: int | None = None) -> dict[str, Any]:
    """One trial: train ``key`` for its budget, evaluating on its cadence."""
    torch.set_num_threads(1)
    wl = workloads.get(key, budget_steps=budget)
    device = torch.device("cpu")
    family = key.split(":")[0]
    model = wl.init_model(seed).to(device)
    kw = {"weight_decay": 0.01, **ADAMW.get(family, {})}
    # weight decay on tensors with ndim >= 2 only (weights, embeddings), as
    # steplab.optim.groups.param_groups and nanoGPT's configure_optimizers do
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim >= 2]},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(wl.budget_steps))
    metric, sign = wl.target.metric, (1.0 if wl.target.mode == "max" else -1.0)
    curve: list[tuple[int, float]] = []
    train_s = eval_s = 0.0
    first, worst = math.nan, 1.0  # the first loss, the largest loss / first loss
    batches = wl.batches(seed, device)
    for step in range(1, wl.budget_steps + 1):
        t0 = time.perf_counter()
        loss = wl.loss(model, next(batches))
        first = loss.item() if step == 1 else first
        worst = max(worst, loss.item() / first)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        train_s += time.perf_counter() - t0
        if step % wl.eval_every == 0 or step == wl.budget_steps:
            t0 = time.perf_counter()
            model.eval()
            value = wl.evaluate(model, device)[metric]
            model.train()
            eval_s += time.perf_counter() - t0
            curve.append((step, value if value == value else -sign * math.inf))
    best_at = {}
    for frac in (0.7, 1.0):
        vals = [v for s, v in curve if s <= frac * wl.budget_steps]
        best_at[frac] = max(vals, key=lambda v: sign * v) if vals else math.nan
    hit = next((s for s, v in curve if wl.target.reached(v)), None)
    return {
        "key": key,
        "lr": lr,
        "seed": seed,
        "best": best_at[1.0],
        "best70": best_at[0.7],
        "hit": hit,
        "ms": 1e3 * train_s / wl.budget_steps,
        "eval_pct": 100 * eval_s / train_s,
        "train_s": train_s,
        "curve": curve,
        "loss_ratio": worst,
    }


def _star(args: tuple[str, float, int, int | None]) -> dict[str, Any]:
    return run_one(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="workload families or name:variant keys (default: all)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--lrs", type=float, nargs="*", help="override the lr grid")
    ap.add_argument("--all-variants", action="store_true")
    ap.add_argument("--budget", type=int, help="override every budget (exploration)")
    ap.add_argument("--json", help="also write every run (with its curve) to this file")
    args = ap.parse_args()
    names = args.names or workloads.names()
    keys = []
    for name in names:
        if ":" in name:  # one variant: "mnist1d:mlp"
            workloads.get(name)  # an unknown name or variant stops here, in one line
            keys.append(name)
            continue
        cls = workloads.workload_class(name)
        variants = sorted(cls.variants) if args.all_variants else ["base"]
        keys += [name if v == "base" else f"{name}:{v}" for v in variants]
    jobs = [
        (k, lr, s, args.budget)
        for k in keys
        for lr in (args.lrs or LR_GRID.get(k, LR_GRID[k.split(":")[0]]))
        for s in range(args.seeds)
    ]
    jobs.sort(key=lambda j: j[0].startswith(("charlm", "mnist1d:large")), reverse=True)  # longest first
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.procs) as pool:
        results = pool.map(_star, jobs, chunksize=1)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    for key in keys:
        wl = workloads.get(key, budget_steps=args.budget)
        t = wl.target
        print(
            f"\n== {key}: budget {wl.budget_steps} steps, eval every {wl.eval_every}, "
            f"target {t.metric} {'>=' if t.mode == 'max' else '<='} {t.value:g}"
        )
        print(
            f"{'lr':>8} {'best':>8} {'@70%':>8} {'ms/step':>8} {'eval%':>6} {'train s':>8}"
            f" {'L/L0':>6}  reached (steps)"
        )
        sign = 1.0 if t.mode == "max" else -1.0
        rows = []
        for lr in sorted({r["lr"] for r in results if r["key"] == key}):
            rs = [r for r in results if r["key"] == key and r["lr"] == lr]
            best = statistics.median(r["best"] for r in rs)
            worst70 = min((r["best70"] for r in rs), key=lambda v: sign * v)
            hits = sorted(r["hit"] for r in rs if r["hit"] is not None)
            steps = f" ({', '.join(map(str, hits))})" if hits else ""
            rows.append((sign * best, lr, worst70))
            print(
                f"{lr:8.2g} {best:8.4f} {worst70:8.4f} "
                f"{statistics.median(r['ms'] for r in rs):8.2f} "
                f"{statistics.median(r['eval_pct'] for r in rs):6.1f} "
                f"{statistics.median(r['train_s'] for r in rs):8.1f} "
                f"{max(r['loss_ratio'] for r in rs):6.1f}  {len(hits)}/{len(rs)}{steps}"
            )
        _, lr_best, suggested = max(rows)
        print(f"best lr {lr_best:g}; suggested target (worst seed at 70%): {suggested:.4f}")
        if wl.name == "logreg":  # its target is relative to the optimum's validation loss
            from steplab.workloads import logreg

            print(f"L* (L-BFGS optimum's validation loss) = {logreg.optimum(wl.variant):.5f}")
    print(f"\n{len(jobs)} runs in {time.time() - t0:.0f} s on {args.procs} processes")


if __name__ == "__main__":
    main()
