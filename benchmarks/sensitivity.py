"""Do qk-layernorm and z-loss make the char LM less sensitive to the learning rate?

Wortsman et al. 2023 ("Small-scale proxies for large-scale Transformer training
instabilities", arXiv 2309.14322) measure a training recipe's LR sensitivity: the mean, over
a log grid of peak learning rates, of how much worse than the grid's best each run ends
(runs that diverge count as the loss at initialization), ``steplab.analysis.sensitivity``. They find
qk-layernorm lowers it sharply and the z-loss keeps the output logits from drifting. This
script measures, with ``steplab.analysis.sensitivity.sweep``:

* ``adamw-cosine`` on ``charlm`` base vs ``qk-ln`` vs ``zloss`` vs ``qk-ln+zloss``,
* ``adamw-cosine``, ``sgd-nesterov-cosine`` and ``schedulefree-adamw`` on ``digits-mlp``
  (each over its family's default grid, ``sensitivity.default_range``),

over 7 log-spaced peak lrs (Adam family 3e-4 .. 3e-1, SGD 1e-3 .. 1: half-decade steps),
3 seeds, the same steps and 5% warm-up at every point, final ``validation/loss``. charlm
runs 400 steps, not the quick suite's 600: 84 charlm runs at ~13 ms/step on an idle core
(20-30 ms on a shared one) must fit in ~20 minutes on one core. Each algorithm runs at its
defaults, with the workload's calibrated weight decay for ``adamw-cosine``.

Prints per configuration the LR sensitivity and the grid-best loss (mean over the 3 seeds
with its 90% Student-t interval), the best lr, the
number of diverged runs and the seed-mean loss at every lr; writes the plots
``benchmarks/out/sensitivity-charlm.png`` and ``benchmarks/out/sensitivity-digits.png``.

Runs are stored in ``--db`` (default ``benchmarks/out/sensitivity.db``) and skipped when
found, so a killed run resumes. One process, one thread. Usage::

    .venv/bin/python benchmarks/sensitivity.py
    .venv/bin/python benchmarks/sensitivity.py --seeds 3 --charlm-steps 400
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from steplab import algorithms, workloads
from steplab.analysis import sensitivity
from steplab.report.plots import plot_lr_sensitivity
from steplab.store import open_store
from steplab.studies.sensitivity import base_point, sweep
from steplab.training.config import TrainConfig

CHARLM_VARIANTS = ("base", "qk-ln", "zloss", "qk-ln+zloss")
DIGITS_ALGORITHMS = ("adamw-cosine", "sgd-nesterov-cosine", "schedulefree-adamw")
POINTS = 7
EVALS = 5  # evaluations per run: only the final loss is scored


def _fmt(mean: float, sd: float, n: int) -> str:
    """``mean [low, high]``: the 90% Student-t interval of the mean over ``n`` seeds."""
    from scipy import stats

    if not math.isfinite(mean):
        return "—"
    if not math.isfinite(sd) or n < 2:
        return f"{mean:.4f}"
    half = stats.t.ppf(0.95, n - 1) * sd / math.sqrt(n)
    return f"{mean:.4f} [{mean - half:.4f}, {mean + half:.4f}]"


def _table(title: str, results: dict[str, sensitivity.SensitivityResult]) -> None:
    print(f"\n{title}")
    first = next(iter(results.values()))
    print(f"{'':22} {'LR sensitivity [90%]':>24} {'grid-best loss [90%]':>24} {'best lr':>8} {'diverged':>8} {'L_init':>7}")
    for row in sensitivity.summary_rows(results):
        r = results[row["label"]]
        n_runs = len(r.grid) * row["seeds"]
        print(f"{row['label']:22} {_fmt(row['sensitivity'], row['sensitivity_sd'], row['seeds']):>24} "
              f"{_fmt(row['best_loss'], row['best_loss_sd'], row['seeds']):>24} {row['best_lr']:8.3g} "
              f"{row['diverged']:>3}/{n_runs:<4} {row['init_loss']:7.3f}")
    print("seed-mean final loss per lr (clamped at L_init; x = all seeds diverged)")
    print(f"{'':22} " + " ".join(f"{lr:>7.2g}" for lr in first.grid))
    for label, r in results.items():
        mean, div = r.mean_curve()
        n = len(r.complete_seeds())
        cells = [("      x" if n and d == n else f"{m:7.3f}") for m, d in zip(mean, div, strict=True)]
        print(f"{label:22} " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--charlm-steps", type=int, default=400)
    parser.add_argument("--db", default="benchmarks/out/sensitivity.db")
    parser.add_argument("--out", default="benchmarks/out")
    parser.add_argument("--skip-charlm", action="store_true")
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    cfg = TrainConfig(threads=1, record_norms=False)
    t0 = time.perf_counter()

    def progress(done: int, total: int, label: str) -> None:
        if done < total:
            print(f"  [{done + 1}/{total}] {label} (elapsed {time.perf_counter() - t0:.0f}s)", flush=True)

    charlm: dict[str, sensitivity.SensitivityResult] = {}
    digits: dict[str, sensitivity.SensitivityResult] = {}
    with open_store(args.db) as store:
        for name in DIGITS_ALGORITHMS:
            wl = workloads.get("digits-mlp")
            wl.evals_per_budget = EVALS
            algo = algorithms.get_algorithm(name)
            grid = sensitivity.lr_grid(*sensitivity.default_range(algo.optimizer), POINTS)
            digits[name] = sweep(wl, base_point(algo, wl), grid, seeds, store=store,
                                 config=cfg, progress=progress)
        if not args.skip_charlm:
            algo = algorithms.get_algorithm("adamw-cosine")
            grid = sensitivity.lr_grid(*sensitivity.default_range(algo.optimizer), POINTS)
            for variant in CHARLM_VARIANTS:
                wl = workloads.get("charlm", variant, budget_steps=args.charlm_steps)
                wl.evals_per_budget = EVALS
                charlm[variant] = sweep(wl, base_point(algo, wl), grid, seeds, store=store,
                                        config=cfg, progress=progress)
    print(f"\nLR sensitivity = mean over the grid of min(L(lr), L_init) - min_lr L(lr), final validation/loss; "
          f"mean over {args.seeds} seeds with its 90% t-interval (two configurations whose intervals of the "
          f"difference hold 0 are tied); {POINTS}-point log grids")
    _table("digits-mlp (400 steps; Adam family lr 3e-4..0.3, SGD 1e-3..1)", digits)
    print(f"wrote {plot_lr_sensitivity(digits, Path(args.out) / 'sensitivity-digits.png', title='digits-mlp: final validation loss vs peak lr (400 steps)')}")
    if charlm:
        _table(f"charlm, adamw-cosine ({args.charlm_steps} steps; lr 3e-4..0.3)", charlm)
        print(f"wrote {plot_lr_sensitivity(charlm, Path(args.out) / 'sensitivity-charlm.png', title=f'charlm adamw-cosine: final validation loss vs peak lr ({args.charlm_steps} steps)')}")
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
