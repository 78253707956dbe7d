"""Does a schedule refined from a run's own gradient norms beat linear decay?

Defazio et al. 2023 ("When, Why and How Much?", arXiv 2310.07831) refine a schedule from the
gradient norms of a linear-decay run and train again with it. This script compares, per
workload, four schedules with AdamW (the l1-norm refinement):

* ``linear``: linear warm-up 5% then linear decay to 0 (``adamw-linear``),
* ``cosine``: linear warm-up 5% then cosine decay to 0 (``adamw-cosine``),
* ``refined``: the schedule refined from the ``linear`` run with the same peak lr and seed
  (``steplab.analysis.refine``, tau 0.1), then trained from scratch (the second pass only is timed
  in the ``steps`` column; ``2-pass`` adds the first pass's budget),
* ``sf-adamw``: schedule-free AdamW (Defazio et al. 2024), warm-up 5%.

and, where the published recipe misses the goal, its natural variants (each refined from the
same ``linear`` run):

* ``ref+wu``: the refined schedule times linear's own 5% linear warm-up (the median filter's
  left padding flattens the early gradient-norm spike, so the refined start can be too hot
  or too cold; practitioners keep the original warm-up),
* ``ref-l2``: l2-norm weights g^-2 (the SGD rule) instead of the l1 rule for Adam,
* ``ref-t.02``: a narrower median filter, tau 0.02 instead of 0.1 (follows the norms more closely),
* ``ref-wide``: the shape refined from linear's run at linear's tuned lr, its peak retuned on a
  wider grid (default lr x 0.25 .. 4): a refined schedule has a different area than linear.

Each at its tuned peak lr over the same small grid (the workload's default lr x 0.5, 1, 2),
3 seeds, the whole budget (no early stop), evaluations every 1% of the budget so steps to
target are resolved finely. Tuned = most seeds reaching the target, then the lowest median
steps to target, then the lowest final validation loss. Prints per workload: steps to
target (median over seeds, seeds reached), final validation loss (mean +- sd), and the
ratio refined / linear with a 90% bootstrap interval over seeds (``_sweep.ratio_ci``; one that
holds 1 is a tie); then the median ratio over workloads.

Runs are stored in ``--db`` (default ``benchmarks/out/refine.db``) and skipped when found,
so a killed run resumes. Usage::

    .venv/bin/python benchmarks/refine.py                      # all workloads, 2 processes
    .venv/bin/python benchmarks/refine.py logreg digits-mlp --seeds 3 --procs 2
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any

import _sweep  # benchmarks/_sweep.py, beside this script

from steplab.analysis import refine
from steplab.store import open_store
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target

# workload key -> (budget override, target override); charlm uses the quick suite's short
# budget (600 steps, loss 1.7) so 36 runs fit in minutes on a laptop CPU
WORKLOADS: dict[str, tuple[int | None, Target | None]] = {
    "logreg": (None, None),
    "logreg:kappa100": (None, None),
    "logreg:kappa1000": (None, None),
    "digits-mlp": (None, None),
    "modarith": (None, None),
    "charlm": (600, Target("validation/loss", 1.7, "min")),
}
METHODS = {"linear": "adamw-linear", "cosine": "adamw-cosine", "sf-adamw": "schedulefree-adamw", "refined": "adamw-linear",
           "ref+wu": "adamw-linear", "ref-l2": "adamw-linear", "ref-t.02": "adamw-linear", "ref-wide": "adamw-linear"}
# refinement options of each refined method (warmup: linear's own warm-up fraction)
REFINED: dict[str, dict[str, Any]] = {"refined": {}, "ref+wu": {"warmup": 0.05}, "ref-l2": {"norm": "l2"},
                                      "ref-t.02": {"tau": 0.02}, "ref-wide": {}}
LR_FACTORS = (0.5, 1.0, 2.0)
WIDE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
EVALS = 100


def _workload(key: str) -> Any:
    return _sweep.workload_at(key, WORKLOADS, EVALS)


def _label(key: str, method: str, lr: float, seed: int, source_lr: float | None = None) -> str:
    """A run's name in the store; ``source_lr`` (the linear run a refined one starts from,
    default its own lr) is not part of it."""
    return f"refine-bench|{key}|{method}|lr={lr:.6g}|seed={seed}"


def _run(args: tuple) -> tuple[str, float]:
    db, key, method, lr, seed, *source = args
    t0 = time.perf_counter()
    wl = _workload(key)
    algo = _sweep.algorithm_at(METHODS[method], wl, lr)
    with open_store(db) as store:
        extra: dict[str, float] = {}
        if method in REFINED:
            source_lr = source[0] if source else lr
            first = _sweep.find(store, _label(key, "linear", source_lr, seed), status=("reached", "budget"))
            if first is None:  # the linear run diverged or failed: nothing to refine from
                return _label(key, method, lr, seed), time.perf_counter() - t0
            opts = dict(REFINED[method])
            warmup = opts.pop("warmup", 0.0)
            r = refine.refine_trial(store, first.id, budget_steps=wl.budget_steps,
                                    warmup_steps=round(warmup * wl.budget_steps), **opts)
            algo = dataclasses.replace(algo, name="adamw-refined", schedule=r.spec.to_dict())
            extra = {"first_pass/steps": float(first.steps)}
        run_trial(wl, algo, seed, store=store, config=TrainConfig(stop_at_target=False, threads=1),
                  name=_label(key, method, lr, seed), extra_metrics=extra)
    return _label(key, method, lr, seed), time.perf_counter() - t0


def _cells(db: str, key: str, grid: dict[str, list[float]], seeds: list[int]) -> dict[str, dict[float, _sweep.Cell]]:
    out: dict[str, dict[float, _sweep.Cell]] = {}
    with open_store(db) as store:
        for method in METHODS:
            for lr in grid[method]:
                cell = _sweep.Cell([], [])
                for seed in seeds:
                    t = _sweep.find(store, _label(key, method, lr, seed))
                    if t is None:
                        cell.steps.append(math.inf)
                        cell.final_loss.append(math.inf)
                        continue
                    ok = t.status in ("reached", "budget")
                    cell.steps.append(t.steps_to_target if ok else math.inf)
                    cell.final_loss.append(t.final_metrics.get("validation/loss", math.inf) if ok else math.inf)
                out.setdefault(method, {})[lr] = cell
    return out


def main() -> None:
    args = _sweep.parse_args(__doc__, WORKLOADS, "benchmarks/out/refine.db")
    seeds = list(range(args.seeds))
    n = len(seeds)
    default_lr = {k: _workload(k).default_hyperparameters["lr"] for k in args.workloads}
    grids = {k: {m: [round(default_lr[k] * f, 8) for f in (WIDE_FACTORS if m == "ref-wide" else LR_FACTORS)]
                 for m in METHODS} for k in args.workloads}
    first = [(args.db, k, m, lr, s) for k in args.workloads for m in ("linear", "cosine", "sf-adamw")
             for lr in grids[k][m] for s in seeds]
    print(f"phase 1: {len(first)} runs (linear, cosine, schedule-free)", flush=True)
    _sweep.execute(args.db, first, _label, _run, args.procs)
    second = []
    for k in args.workloads:
        linear_lr = min(_cells(args.db, k, grids[k], seeds)["linear"].items(), key=lambda kv: kv[1].rank())[0]
        for m in REFINED:
            second += [(args.db, k, m, lr, s, linear_lr if m == "ref-wide" else lr) for lr in grids[k][m] for s in seeds]
    print(f"phase 2: {len(second)} refined runs", flush=True)
    _sweep.execute(args.db, second, _label, _run, args.procs)

    steps_ratio: dict[str, list[float]] = {m: [] for m in REFINED}
    rows = []
    print()
    print(f"{'workload':18} {'method':9} {'lr':>8} {'steps to target':>16} {'final val loss':>18}")
    for k in args.workloads:
        cells = _cells(args.db, k, grids[k], seeds)
        tuned = {m: min(cells[m].items(), key=lambda kv: kv[1].rank()) for m in METHODS}
        for m in METHODS:
            lr, c = tuned[m]
            print(f"{k:18} {m:9} {lr:8.4g} {_sweep.fmt_steps(c, n):>16} {_sweep.fmt_loss(c):>18}")
        lin = tuned["linear"][1]
        lin_loss = statistics.fmean(lin.final_loss)
        for m in REFINED:
            c = tuned[m][1]
            r = _sweep.ratio(c.median_steps, lin.median_steps)
            if math.isfinite(lin.median_steps) and not math.isfinite(c.median_steps):
                r = math.inf  # linear reached the target, this method did not
            steps_ratio[m].append(r)
            rows.append((k, m, r, _sweep.ratio_ci(c.steps, lin.steps), _sweep.ratio(statistics.fmean(c.final_loss), lin_loss),
                         _sweep.ratio_ci(c.final_loss, lin.final_loss, stat="mean"),
                         _sweep.ratio(c.median_steps + _workload(k).budget_steps, lin.median_steps)))
    print("\nratios to linear at tuned lrs with 90% bootstrap intervals over seeds (~: the interval holds 1, a tie)")
    print(f"{'workload':18} {'method':9} {'steps':>6} {'(90% interval)':>18} {'final loss':>10} {'(90% interval)':>18} "
          f"{'2-pass steps':>12}")
    for k, m, r, rci, lr_, lci, two in rows:
        print(f"{k:18} {m:9} {r:6.3f} {_sweep.fmt_ci(rci):>18} {lr_:10.4f} {_sweep.fmt_ci(lci):>18} {two:12.2f}")
    print()
    for m, rs in steps_ratio.items():
        known = [r for r in rs if not math.isnan(r)]  # inf: a miss where linear reached the target
        if known:
            print(f"{m:9} median steps-to-target ratio over {len(known)} workloads {statistics.median(known):.3f}; "
                  f"<= 0.9 on {sum(r <= 0.9 for r in known)}/{len(known)}")


if __name__ == "__main__":
    main()
