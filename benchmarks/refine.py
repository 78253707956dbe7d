"""Does a schedule refined from a run's own gradient norms beat linear decay?

Defazio et al. 2023 ("When, Why and How Much?", arXiv 2310.07831) refine a schedule from the
gradient norms of a linear-decay run and train again with it. This script compares, per
workload, four schedules with AdamW (the l1-norm refinement):

* ``linear``: linear warm-up 5% then linear decay to 0 (``adamw-linear``),
* ``cosine``: linear warm-up 5% then cosine decay to 0 (``adamw-cosine``),
* ``refined``: the schedule refined from the ``linear`` run with the same peak lr and seed
  (``steplab.refine``, tau 0.1), then trained from scratch (the second pass only is timed
  in the ``steps`` column; ``2-pass`` adds the first pass's budget),
* ``sf-adamw``: schedule-free AdamW (Defazio et al. 2024), warm-up 5%.

Each at its tuned peak lr over the same small grid (the workload's default lr x 0.5, 1, 2),
3 seeds, the whole budget (no early stop), evaluations every 1% of the budget so steps to
target are resolved finely. Tuned = most seeds reaching the target, then the lowest median
steps to target, then the lowest final validation loss. Prints per workload: steps to
target (median over seeds, seeds reached), final validation loss (mean +- sd), and the
ratio refined / linear with the noise floor (linear's seed spread max/min - 1 at its tuned
lr); then the median ratio over workloads.

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

from steplab import refine, workloads
from steplab.store import open_store
from steplab.train import TrainConfig, run_trial
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
METHODS = {"linear": "adamw-linear", "cosine": "adamw-cosine", "sf-adamw": "schedulefree-adamw", "refined": "adamw-linear"}
LR_FACTORS = (0.5, 1.0, 2.0)
EVALS = 100


def _workload(key: str) -> Any:
    budget, target = WORKLOADS[key]
    wl = workloads.get(key, budget_steps=budget, target=target)
    wl.evals_per_budget = EVALS
    return wl


def _label(key: str, method: str, lr: float, seed: int) -> str:
    return f"refine-bench|{key}|{method}|lr={lr:.6g}|seed={seed}"


def _run(args: tuple[str, str, str, float, int]) -> tuple[str, float]:
    db, key, method, lr, seed = args
    t0 = time.perf_counter()
    wl = _workload(key)
    algo = _sweep.algorithm_at(METHODS[method], wl, lr)
    with open_store(db) as store:
        extra: dict[str, float] = {}
        if method == "refined":
            first = _sweep.find(store, _label(key, "linear", lr, seed), status=("reached", "budget"))
            if first is None:  # the linear run diverged or failed: nothing to refine from
                return _label(key, method, lr, seed), time.perf_counter() - t0
            r = refine.refine_trial(store, first.id, steps=wl.budget_steps)
            algo = dataclasses.replace(algo, name="adamw-refined", schedule=r.spec.to_dict())
            extra = {"first_pass/steps": float(first.steps)}
        run_trial(wl, algo, seed, store=store, config=TrainConfig(stop_at_target=False, threads=1),
                  name=_label(key, method, lr, seed), extra_metrics=extra)
    return _label(key, method, lr, seed), time.perf_counter() - t0


@dataclasses.dataclass
class Cell:
    steps: list[float]
    final_loss: list[float]

    @property
    def reached(self) -> int:
        return sum(math.isfinite(s) for s in self.steps)

    @property
    def median_steps(self) -> float:
        return statistics.median(self.steps) if self.steps else math.inf

    def rank(self) -> tuple[float, float, float]:
        loss = statistics.fmean(self.final_loss) if self.final_loss else math.inf
        return (-self.reached, self.median_steps, loss if math.isfinite(loss) else math.inf)


def _cells(db: str, key: str, lrs: list[float], seeds: list[int]) -> dict[str, dict[float, Cell]]:
    out: dict[str, dict[float, Cell]] = {}
    with open_store(db) as store:
        for method in METHODS:
            for lr in lrs:
                cell = Cell([], [])
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


def _fmt_steps(c: Cell, n: int) -> str:
    m = c.median_steps
    return f"{m:6.0f} ({c.reached}/{n})" if math.isfinite(m) else f"  miss ({c.reached}/{n})"


def _fmt_loss(c: Cell) -> str:
    finite = [x for x in c.final_loss if math.isfinite(x)]
    if not finite:
        return "diverged"
    sd = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{statistics.fmean(finite):.4f} +- {sd:.4f}"


def main() -> None:
    args = _sweep.parse_args(__doc__, WORKLOADS, "benchmarks/out/refine.db")
    seeds = list(range(args.seeds))
    grids = {k: [round(_workload(k).default_hyperparameters["lr"] * f, 8) for f in LR_FACTORS] for k in args.workloads}
    first = [(args.db, k, m, lr, s) for k in args.workloads for m in ("linear", "cosine", "sf-adamw")
             for lr in grids[k] for s in seeds]
    second = [(args.db, k, "refined", lr, s) for k in args.workloads for lr in grids[k] for s in seeds]
    print(f"phase 1: {len(first)} runs (linear, cosine, schedule-free)", flush=True)
    _sweep.execute(args.db, first, _label, _run, args.procs)
    print(f"phase 2: {len(second)} refined runs", flush=True)
    _sweep.execute(args.db, second, _label, _run, args.procs)

    ratios: list[float] = []
    n = len(seeds)
    print()
    print(f"{'workload':18} {'method':9} {'lr':>8} {'steps to target':>16} {'final val loss':>18}   notes")
    for k in args.workloads:
        cells = _cells(args.db, k, grids[k], seeds)
        tuned = {m: min(cells[m].items(), key=lambda kv: kv[1].rank()) for m in METHODS}
        budget = _workload(k).budget_steps
        for m in ("linear", "cosine", "refined", "sf-adamw"):
            lr, c = tuned[m]
            print(f"{k:18} {m:9} {lr:8.4g} {_fmt_steps(c, n):>16} {_fmt_loss(c):>18}")
        lin, ref = tuned["linear"][1], tuned["refined"][1]
        finite = [s for s in lin.steps if math.isfinite(s)]
        noise = (max(finite) / min(finite) - 1) if len(finite) >= 2 else math.nan
        if math.isfinite(lin.median_steps) and math.isfinite(ref.median_steps):
            ratio = ref.median_steps / lin.median_steps
            two_pass = (ref.median_steps + budget) / lin.median_steps
            ratios.append(ratio)
            print(f"{'':18} refined/linear steps {ratio:.3f} (noise floor {noise:.0%}); with the first pass "
                  f"({budget} steps) {two_pass:.2f}")
        else:
            print(f"{'':18} refined/linear: n/a (linear {_fmt_steps(lin, n).strip()}, refined "
                  f"{_fmt_steps(ref, n).strip()})")
    if ratios:
        print(f"\nmedian refined/linear steps-to-target over {len(ratios)} workloads: {statistics.median(ratios):.3f}; "
              f"<= 0.9 on {sum(r <= 0.9 for r in ratios)}/{len(ratios)}")


if __name__ == "__main__":
    main()
