"""How well do loss-curve laws predict unseen schedules, and does the bound transfer LRs?

Part 1 (laws). Per workload, AdamW at the workload's default peak lr, 3 seeds, whole budget:
fit the annealing law (Tissue et al. 2024) and the multi-power law (Luo et al. 2025) on a
constant run + a cosine run (both 5% warm-up) of the same seed, then predict the training
loss curves of unseen schedules: WSD with a 1-sqrt cooldown (20%), linear, REX, step (x0.1
at 50% and 75%) and cosine at twice the horizon. The baseline extrapolator (a saturating
power law, no schedule knowledge) is fitted on the first 20% of each unseen run. Errors are
relative, on the smoothed training loss: at the end (mean and worst over schedules and
seeds) and averaged over the curve. The noise floor is the seed spread of the final loss.

Part 2 (LR transfer). Per workload, a peak-lr grid at horizon T and at 4T (linear decay,
3 seeds): the bound's rule (Schaipp et al. 2025) transfers the best lr at T to 4T; the
ratio final validation loss at the transferred lr / at the grid-best lr at 4T.

Runs are stored in ``--db`` (default ``benchmarks/out/predict.db``) and reused. Usage::

    .venv/bin/python benchmarks/predict.py                    # charlm, digits-mlp, logreg
    .venv/bin/python benchmarks/predict.py logreg --seeds 3 --procs 2
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any

import _sweep  # benchmarks/_sweep.py, beside this script
import numpy as np

from steplab import bound, laws, predict, schedules, workloads
from steplab.store import open_store
from steplab.train import TrainConfig, run_trial

# workload -> (steps for part 1, steps T for part 2); charlm is shortened to fit a CPU laptop
STEPS = {"charlm": (1000, 250), "digits-mlp": (800, 200), "logreg": (500, 125)}
FIT = ("constant:warmup=0.05", "cosine:warmup=0.05")
UNSEEN = ("wsd:decay=0.2,shape=1-sqrt,warmup=0.05", "linear:warmup=0.05", "rex:warmup=0.05",
          "step:milestones=[0.5,0.75],gamma=0.1,warmup=0.05")
LONGER = "cosine:warmup=0.05"  # at twice the horizon
LR_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _label(key: str, spec: str, steps: int, lr: float, seed: int) -> str:
    return f"predict-bench|{key}|{spec}|{steps}|lr={lr:.6g}|seed={seed}"


def _lr(key: str) -> float:
    return float(workloads.get(key).default_hyperparameters["lr"])


def _run(job: tuple[str, str, str, int, float, int]) -> tuple[str, float]:
    db, key, spec, steps, lr, seed = job
    t0 = time.perf_counter()
    wl = workloads.get(key, budget_steps=steps)
    resolved = dataclasses.replace(_sweep.algorithm_at("adamw-cosine", wl, lr),
                                   schedule=schedules.spec_from(spec).to_dict())
    with open_store(db) as store:
        run_trial(wl, resolved, seed, store=store, config=TrainConfig(stop_at_target=False, threads=1),
                  name=_label(key, spec, steps, lr, seed))
    return _label(key, spec, steps, lr, seed), time.perf_counter() - t0


def _errors(pred: np.ndarray, curve: laws.Curve) -> tuple[float, float]:
    p = pred[curve.steps - 1]
    ok = np.isfinite(p)
    rel = np.abs(p[ok] / curve.losses[ok] - 1)
    return float(rel[-1]), float(rel.mean())


def part1(db: str, key: str, seeds: list[int]) -> dict[str, Any]:
    steps, _ = STEPS[key]
    lr = _lr(key)
    rows: dict[str, dict[str, list[float]]] = {m: {"final": [], "curve": []} for m in ("annealing", "multipower", "baseline")}
    finals: dict[str, list[float]] = {}
    with open_store(db) as store:
        for seed in seeds:
            fit_runs = [predict.load_run(store, _sweep.find(store, _label(key, s, steps, lr, seed)).id) for s in FIT]
            fitted = {law: predict.fit_runs(fit_runs, law).law for law in ("annealing", "multipower")}
            targets = [(s, steps) for s in UNSEEN] + [(LONGER, 2 * steps)]
            for spec, n in targets:
                run = predict.load_run(store, _sweep.find(store, _label(key, spec, n, lr, seed)).id)
                curve = run.curve()
                finals.setdefault(f"{spec}@{n}", []).append(float(curve.losses[-1]))
                for law, fl in fitted.items():
                    f, c = _errors(predict.predict_curve(fl, spec, n, lr), curve)
                    rows[law]["final"].append(f)
                    rows[law]["curve"].append(c)
                head = int(0.2 * n)
                base = laws.fit_power_baseline(curve.steps[curve.steps < head], curve.losses[curve.steps < head]).law
                f, c = _errors(base.predict(np.arange(1, n + 1)), curve)
                rows["baseline"]["final"].append(f)
                rows["baseline"]["curve"].append(c)
    noise = statistics.median(max(v) / min(v) - 1 for v in finals.values())
    return {"rows": rows, "noise": noise}


def part2(db: str, key: str, seeds: list[int]) -> dict[str, Any]:
    _, t = STEPS[key]
    spec = "linear:warmup=0.05"
    grid = [_lr(key) * f for f in LR_FACTORS]
    metric = "validation/loss"

    def mean_loss(steps: int, lr: float) -> float:
        vals = []
        with open_store(db) as store:
            for seed in seeds:
                tr = _sweep.find(store, _label(key, spec, steps, lr, seed))
                v = tr.final_metrics.get(metric, math.inf) if tr is not None and tr.status in ("reached", "budget") else math.inf
                vals.append(v if math.isfinite(v) else math.inf)
        return statistics.fmean(vals)

    best_t = min(grid, key=lambda lr: mean_loss(t, lr))
    best_4t = min(grid, key=lambda lr: mean_loss(4 * t, lr))
    transferred = bound.transfer_lr(spec, t, best_t, 4 * t)
    return {"best_t": best_t, "best_4t": best_4t, "transferred": transferred,
            "loss_best_4t": mean_loss(4 * t, best_4t), "spec": spec, "t": t, "grid": grid}


def main() -> None:
    args = _sweep.parse_args(__doc__, STEPS, "benchmarks/out/predict.db")
    seeds = list(range(args.seeds))
    jobs = []
    for k in args.workloads:
        steps, t = STEPS[k]
        lr = _lr(k)
        for s in seeds:
            jobs += [(args.db, k, spec, steps, lr, s) for spec in FIT + UNSEEN]
            jobs.append((args.db, k, LONGER, 2 * steps, lr, s))
            jobs += [(args.db, k, "linear:warmup=0.05", n, lr * f, s) for n in (t, 4 * t) for f in LR_FACTORS]
    print(f"{len(jobs)} runs", flush=True)
    _sweep.execute(args.db, jobs, _label, _run, args.procs)
    # the transferred lr at 4T is generally off the grid: run it too
    extra = []
    for k in args.workloads:
        p2 = part2(args.db, k, seeds)
        extra += [(args.db, k, p2["spec"], 4 * p2["t"], p2["transferred"], s) for s in seeds]
    _sweep.execute(args.db, extra, _label, _run, args.procs)

    print(f"\nPart 1: relative error of the predicted training loss (unseen: {', '.join(UNSEEN)}, {LONGER} at 2x)")
    print(f"{'workload':12} {'model':11} {'final mean':>10} {'final worst':>11} {'curve mean':>10}   noise floor")
    for k in args.workloads:
        r = part1(args.db, k, seeds)
        for m, v in r["rows"].items():
            print(f"{k:12} {m:11} {statistics.fmean(v['final']):10.2%} {max(v['final']):11.2%} "
                  f"{statistics.fmean(v['curve']):10.2%}   {r['noise']:.2%}")
    print("\nPart 2: bound-transferred lr vs grid-tuned lr at 4x the horizon (linear decay, final validation loss)")
    for k in args.workloads:
        p2 = part2(args.db, k, seeds)
        with open_store(args.db) as store:
            vals = []
            for s in seeds:
                tr = _sweep.find(store, _label(k, p2["spec"], 4 * p2["t"], p2["transferred"], s))
                vals.append(tr.final_metrics.get("validation/loss", math.inf) if tr else math.inf)
        lt = statistics.fmean(vals)
        print(f"{k:12} T={p2['t']}: best lr {p2['best_t']:.4g}; 4T: grid best {p2['best_4t']:.4g} (loss "
              f"{p2['loss_best_4t']:.4f}), bound-transferred {p2['transferred']:.4g} (loss {lt:.4f}); ratio "
              f"{lt / p2['loss_best_4t']:.4f}")


if __name__ == "__main__":
    main()
