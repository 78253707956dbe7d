"""Does a schedule found during the run (AutoLRS) beat tuned fixed schedules? And Polyak steps?

Jin et al. 2021 ("AutoLRS", ICLR 2021, arXiv 2105.10762) search a constant LR per stage by
Bayesian optimization over candidates trained tau/10 steps each, and report 1.22x-1.5x
speedups over the original schedules. This script compares, per workload, with AdamW:

* ``cosine``: warm-up 5% + cosine decay to 0 (``adamw-cosine``), peak lr tuned on a grid,
* ``linear``: warm-up 5% + linear decay to 0 (``adamw-linear``), tuned the same way,
* ``autolrs``: AutoLRS (``steplab.studies.autolr``, defaults: k = 10 candidates, tau = max(40,
  budget/15) doubling to 8 tau, tau' = tau/10) on AdamW with the workload's tuned peak lr as
  the reference of the multipliers and LR range 1e-3 .. 0.3 (adamw-cosine's search space);
  its steps count the kept run only, its search cost is shown apart (``search steps`` and
  ``search s``, median over seeds),
* ``autolrs-long``: AutoLRS with 3 longer stages (tau = budget/7, doubling) explored 2.5x
  longer (tau' = tau/4): the natural fix where the defaults' 4-8-step explorations are too
  short for the exponential model (its search costs 2.5x as many steps),
* ``replay``: the emergent schedule of seed ``s`` trained from scratch, without search, on
  seed ``s + 1 mod n`` (the same seed would retrain the kept run bit for bit, see
  ``tests/test_autolr.py``; another seed asks whether the schedule is worth reusing),
* ``replay-long``: the same for ``autolrs-long``'s emergent schedule,
* ``replay-long+decay``: ``replay-long`` whose last 20% decays linearly to 0
  (``autolr.anneal_tail``): the stages are constant and never anneal, which a language
  model's final loss pays for (the WSD cooldown),

and the Polyak-type step sizes (``steplab.optim.polyak``), each at its tuned cap lr:

* ``sps`` (SPS_max, Loizou et al. 2021), ``momo`` (MoMo with online f*, Schaipp et al. 2023),
  ``polyak-mom`` (ALR-SMAG, Wang et al. 2023).

Tuned = most seeds reaching the target, then the lowest median steps to target, then the
lowest final validation loss, over the grid (workload default lr x 0.5, 1, 2 for AdamW; the
baseline's cap x 0.3, 1, 3 for the Polyak steps). Every run trains its whole budget
(no early stop) with evaluations every 1% of it. Prints per workload: steps to target
(median over seeds, seeds reached), final validation loss (mean +- sd), then the ratios
autolrs/cosine and replay/cosine of median steps to target with a 90% bootstrap interval over
seeds (``_sweep.ratio_ci``; an interval holding 1 is a tie), and AutoLRS's total steps (kept + search) over cosine's. The
issue's goal: replay <= 0.85x cosine.

Runs are stored in ``--db`` (default ``benchmarks/out/autolr.db``) and skipped when found,
so a killed run resumes. Usage::

    .venv/bin/python benchmarks/autolr.py                        # all workloads, 3 seeds, 2 processes
    .venv/bin/python benchmarks/autolr.py logreg --seeds 1 --procs 1
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from typing import Any

import _sweep  # benchmarks/_sweep.py, beside this script

from steplab import algorithms
from steplab.store import open_store
from steplab.studies import autolr
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target

# workload key -> (budget override, target override); charlm uses the quick suite's short
# budget (600 steps, loss 1.7) like benchmarks/refine.py
WORKLOADS: dict[str, tuple[int | None, Target | None]] = {
    "logreg": (None, None),
    "digits-mlp": (None, None),
    "charlm": (600, Target("validation/loss", 1.7, "min")),
}
#: method -> built-in algorithm
METHODS = {"cosine": "adamw-cosine", "linear": "adamw-linear", "autolrs": "adamw-cosine", "replay": "adamw-cosine",
           "autolrs-long": "adamw-cosine", "replay-long": "adamw-cosine",
           "replay-long+decay": "adamw-cosine", "sps": "sps", "momo": "momo", "polyak-mom": "polyak-momentum"}
# the natural improvement where the defaults miss: 3 longer stages (tau = budget/7, doubling)
# explored 2.5x longer (tau' = tau/4), so the exponential fit sees 10-40 steps, not 4-8
LONG = {"explore_frac": 0.25}
POLYAK = ("sps", "momo", "polyak-mom")
#: replay method -> the AutoLRS method whose emergent schedule it retrains on another seed
REPLAYS = {"replay": "autolrs", "replay-long": "autolrs-long", "replay-long+decay": "autolrs-long"}
#: the last fraction of the run that ``replay-long+decay`` anneals linearly to 0
DECAY_TAIL = 0.2
LR_FACTORS = (0.5, 1.0, 2.0)
CAP_FACTORS = (0.3, 1.0, 3.0)
LR_RANGE = (1e-3, 0.3)  # adamw-cosine's lr search space
EVALS = 100
CFG = TrainConfig(stop_at_target=False, threads=1)


def _workload(key: str) -> Any:
    return _sweep.workload_at(key, WORKLOADS, EVALS)


def _label(key: str, method: str, lr: float, seed: int, source: int | None = None) -> str:
    """A run's name in the store; ``source`` (the seed whose AutoLRS schedule a replay
    trains) is not part of it: it is fixed by ``seed`` and ``--seeds``."""
    return f"autolr-bench|{key}|{method}|lr={lr:.6g}|seed={seed}"


def _algorithm(method: str, wl: Any, lr: float) -> algorithms.ResolvedAlgorithm:
    if method in POLYAK:
        return algorithms.get_algorithm(METHODS[method]).with_hyperparameters({"lr": lr})
    return _sweep.algorithm_at(METHODS[method], wl, lr)


def _run(args: tuple) -> tuple[str, float]:
    db, key, method, lr, seed, *source = args
    t0 = time.perf_counter()
    wl = _workload(key)
    algo = _algorithm(method, wl, lr)
    label = _label(key, method, lr, seed)
    with open_store(db) as store:
        if method in ("autolrs", "autolrs-long"):
            extra = {**LONG, "tau": wl.budget_steps // 7} if method == "autolrs-long" else {}
            cfg = autolr.AutoLRSConfig(lr_min=LR_RANGE[0], lr_max=LR_RANGE[1], **extra)
            autolr.run_autolrs(wl, algo, seed, config=cfg, train=CFG, store=store, name=label)
        elif method in REPLAYS:
            found = _sweep.find(store, _label(key, REPLAYS[method], lr, source[0]), status=("reached", "budget"))
            if found is None:  # the AutoLRS run diverged or failed: nothing to replay
                return label, time.perf_counter() - t0
            res = autolr.load_result(store, found.id)
            algo = dataclasses.replace(autolr.replay_algorithm(res, algo), name="adamw-autolrs-replay")
            if method.endswith("+decay"):
                algo = dataclasses.replace(algo, schedule=autolr.anneal_tail(algo.schedule, DECAY_TAIL))
            run_trial(wl, algo, seed, store=store, config=CFG, name=label,
                      extra_metrics={"replay/of_seed": float(source[0])})
        else:
            run_trial(wl, algo, seed, store=store, config=CFG, name=label)
    return label, time.perf_counter() - t0


def _grid(key: str) -> dict[str, list[float]]:
    base = _workload(key).default_hyperparameters["lr"]
    out: dict[str, list[float]] = {}
    for m in METHODS:
        if m in POLYAK:
            cap = algorithms.get_algorithm(METHODS[m]).lr
            out[m] = [round(cap * f, 8) for f in CAP_FACTORS]
        elif m in ("autolrs", "autolrs-long", *REPLAYS):
            out[m] = [round(base, 8)]
        else:
            out[m] = [round(base * f, 8) for f in LR_FACTORS]
    return out


def _cells(db: str, key: str, grid: dict[str, list[float]], seeds: list[int]) -> dict[str, dict[float, _sweep.Cell]]:
    out: dict[str, dict[float, _sweep.Cell]] = {}
    with open_store(db) as store:
        for method in METHODS:
            for lr in grid[method]:
                cell = _sweep.Cell([], [])
                for seed in seeds:
                    t = _sweep.find(store, _label(key, method, lr, seed))
                    ok = t is not None and t.status in ("reached", "budget")
                    cell.steps.append(t.steps_to_target if ok else math.inf)
                    cell.final_loss.append(t.final_metrics.get("validation/loss", math.inf) if ok else math.inf)
                    if t is not None and "autolrs/search_steps" in t.final_metrics:
                        cell.search_steps.append(t.final_metrics["autolrs/search_steps"])
                        cell.search_s.append(t.final_metrics["autolrs/search_time_s"])
                out.setdefault(method, {})[lr] = cell
    return out


def main() -> None:
    args = _sweep.parse_args(__doc__, WORKLOADS, "benchmarks/out/autolr.db")
    seeds = list(range(args.seeds))
    n = len(seeds)
    grids = {k: _grid(k) for k in args.workloads}
    first = [(args.db, k, m, lr, s) for k in args.workloads for m in METHODS if m not in REPLAYS
             for lr in grids[k][m] for s in seeds]
    print(f"phase 1: {len(first)} runs (fixed schedules, Polyak steps, AutoLRS)", flush=True)
    _sweep.execute(args.db, first, _label, _run, args.procs)
    second = [(args.db, k, m, lr, s, seeds[(i + 1) % n] if n > 1 else s)
              for k in args.workloads for m in REPLAYS for lr in grids[k][m] for i, s in enumerate(seeds)]
    print(f"phase 2: {len(second)} replays of the emergent schedules", flush=True)
    _sweep.execute(args.db, second, _label, _run, args.procs)

    rows = []
    print()
    print(f"{'workload':11} {'method':17} {'lr':>8} {'steps to target':>16} {'final val loss':>18} "
          f"{'search steps':>12} {'search s':>9}")
    for k in args.workloads:
        cells = _cells(args.db, k, grids[k], seeds)
        tuned = {m: min(cells[m].items(), key=lambda kv: kv[1].rank()) for m in METHODS}
        for m in METHODS:
            lr, c = tuned[m]
            search = (f"{statistics.median(c.search_steps):12.0f} {statistics.median(c.search_s):9.1f}"
                      if c.search_steps else f"{'':12} {'':9}")
            print(f"{k:11} {m:17} {lr:8.4g} {_sweep.fmt_steps(c, n):>16} {_sweep.fmt_loss(c):>18} {search}")
        cos = tuned["cosine"][1]
        def with_search(c: _sweep.Cell) -> float:
            return statistics.median([s + x for s, x in zip(c.steps, c.search_steps, strict=False)]) \
                if c.search_steps else math.nan

        for m in ("autolrs", "replay", "autolrs-long", "replay-long", "replay-long+decay", "linear", *POLYAK):
            total = with_search(tuned[m][1])
            r = _sweep.ratio(tuned[m][1].median_steps, cos.median_steps)
            if math.isfinite(cos.median_steps) and not math.isfinite(tuned[m][1].median_steps):
                r = math.inf  # cosine reached the target, this method did not (median over seeds)
            rows.append((k, m, r, _sweep.ratio_ci(tuned[m][1].steps, cos.steps),
                         _sweep.ratio(statistics.fmean(tuned[m][1].final_loss), statistics.fmean(cos.final_loss)),
                         _sweep.ratio_ci(tuned[m][1].final_loss, cos.final_loss, stat="mean"),
                         _sweep.ratio(total, cos.median_steps)))
    print("\nratios to tuned cosine with 90% bootstrap intervals over seeds (~: the interval holds 1, a tie; "
          "autolrs+search counts the search steps too)")
    print(f"{'workload':11} {'method':17} {'steps':>6} {'(90% interval)':>18} {'final loss':>10} {'(90% interval)':>18} "
          f"{'autolrs+search':>14}")
    for k, m, r, rci, rl, lci, tot in rows:
        print(f"{k:11} {m:17} {r:6.3f} {_sweep.fmt_ci(rci):>18} {rl:10.4f} {_sweep.fmt_ci(lci):>18} {tot:14.2f}")
    print()
    for m in ("autolrs", "replay", "autolrs-long", "replay-long", "replay-long+decay"):
        finite = [r for k, mm, r, *_ in rows if mm == m and not math.isnan(r)]  # inf: a miss
        if finite:
            print(f"{m:8} median steps-to-target ratio to cosine over {len(finite)} workloads "
                  f"{statistics.median(finite):.3f}; <= 0.85 on {sum(r <= 0.85 for r in finite)}/{len(finite)}")


if __name__ == "__main__":
    main()
