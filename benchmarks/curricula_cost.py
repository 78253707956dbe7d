"""What does a curriculum cost per training step?

Every curriculum of ``steplab.curricula`` runs every update, so its ``sample`` + ``observe``
(+ ``observe_eval`` where it asks) must be small next to a step. For each curriculum this
drives a sampler over a pool of ``--n`` examples (random difficulty, 10 tasks, 2-d task
parameters) for ``--steps`` updates of ``--batch`` examples on synthetic per-example losses
(a fixed function of the example and the step, so every curriculum sees the same losses),
one BLAS thread. ALP-GMM's Gaussian-mixture fits (every ``fit_rate`` episodes, about 20 per
run) are timed apart: the table gives the per-step cost without them, the seconds per fit
and the cost per step with the fits spread over the run.

Prints per curriculum the mean microseconds per step over ``--reps`` repetitions with its
90% Student-t interval (``steplab.analysis.seeds.seed_interval``; wide on a loaded
machine). Usage::

    .venv/bin/python benchmarks/curricula_cost.py
    .venv/bin/python benchmarks/curricula_cost.py --n 4000 --batch 64 --steps 1000 --reps 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from steplab.analysis.seeds import seed_interval
from steplab.curricula import CURRICULA, TaskPool, build
from steplab.curricula.alp_gmm import ALPGMM


def _pool(n: int) -> TaskPool:
    rng = np.random.default_rng(0)
    return TaskPool(rng.random(n), tasks=np.arange(n) % 10, params=rng.random((n, 2)))


def _run(name: str, pool: TaskPool, steps: int, batch: int, seed: int) -> tuple[float, float, int]:
    """(seconds in sample/observe without fits, seconds in fits, number of fits)."""
    fit_time = [0.0]
    real_fit = ALPGMM._fit

    def timed_fit(self: ALPGMM, x: np.ndarray) -> None:
        t0 = time.perf_counter()
        real_fit(self, x)
        fit_time[0] += time.perf_counter() - t0

    ALPGMM._fit = timed_fit  # type: ignore[method-assign]
    try:
        sampler = build(name, pool, steps, batch, seed)
        k = int(getattr(sampler, "k", 10))
        evals = 1.0 + np.arange(k, dtype=float)
        total = 0.0
        for t in range(steps):
            t0 = time.perf_counter()
            idx = sampler.sample(t)
            losses = 0.2 + pool.difficulty[idx] * np.exp(-t / 300.0)
            sampler.observe(t, idx, losses)
            if sampler.eval_every and t % sampler.eval_every == 0:
                sampler.observe_eval(t, evals * np.exp(-t / 200.0))
            total += time.perf_counter() - t0
        fits = len(sampler.teacher.fits) if hasattr(sampler, "teacher") else 0
    finally:
        ALPGMM._fit = real_fit  # type: ignore[method-assign]
    return total - fit_time[0], fit_time[0], fits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="examples in the pool")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="curricula to time (default: all)")
    args = ap.parse_args()
    pool = _pool(args.n)
    names = args.only or list(CURRICULA)
    print(f"N={args.n} batch={args.batch} steps={args.steps} reps={args.reps}; microseconds per step, "
          "mean [90% interval]")
    print(f"{'curriculum':<14} {'us/step (no fits)':>26} {'fits':>5} {'s/fit':>7} {'us/step (with fits)':>26}")
    with threadpool_limits(limits=1):
        for name in names:
            plain, withfits, per_fit, nfits = [], [], [], 0
            for rep in range(args.reps):
                t, f, nfits = _run(name, pool, args.steps, args.batch, rep)
                plain.append(t / args.steps * 1e6)
                withfits.append((t + f) / args.steps * 1e6)
                if nfits:
                    per_fit.append(f / nfits)
            a, b = seed_interval(plain, 0.9), seed_interval(withfits, 0.9)
            fit_text = f"{np.mean(per_fit):7.3f}" if per_fit else f"{'-':>7}"
            print(f"{name:<14} {a.point:9.1f} [{a.low:7.1f}, {a.high:7.1f}] {nfits:5d} {fit_text} "
                  f"{b.point:9.1f} [{b.low:7.1f}, {b.high:7.1f}]")


if __name__ == "__main__":
    main()
