"""Loss of plasticity on a long stream, and which algorithms keep it (issue 24).

Dohare et al. 2024 ("Loss of plasticity in deep continual learning", Nature 632): trained by
backprop with a constant step size on hundreds of tasks, a network learns each new task
worse than the early ones, while its dead units and weights grow and the effective rank of
its representation falls. Here, on ``steplab continual``'s long streams
(:mod:`steplab.workloads.long_streams`), scaled to a shared CPU: ``input-permuted`` on
sklearn's digits (a new permutation of the 64 pixels per task, 1797 images), MLP 64-100-100-10
(ReLU, Kaiming-uniform weights, zero biases), batch 16, a fixed number of updates per task;
the measure is the online accuracy (the prediction before each update, averaged per task).

Algorithms (all at a constant lr; the lr tuned per algorithm on seed 0 by total online
accuracy over a 3-point grid on the 1-3-10 ladder, extended by one point beyond an end up to
twice while the best lr is at that end; the other hyperparameters fixed at published values,
the same number of updates for each): backprop = plain SGD; Adam; UPGD (Elsayed & Mahmood 2024,
first-order global utility, protecting; beta_u 0.9999, sigma 0.1, decoupled decay 0.01: their
IP-MNIST statistics-run settings); continual backprop (Dohare et al. 2024, replacement rate
1e-4, maturity 100, decay 0.99, contribution utility; ``cbp-1e-3``: replacement rate 1e-3, as
this stream is far shorter than theirs); shrink and perturb per step (Dohare et
al.'s form: SGD with L2 ``wd`` then Gaussian noise sigma; wd 1e-2, sigma 1e-3 -- stronger than
their MNIST 1e-4 / 1e-5 because these streams are ~1000x shorter); L2 Init (Kumar et al.
2023, lambda 1e-2, their best); spectral regularization (Lewandowski et al. 2025, lambda 1e-4,
sigma_max^2 penalty). Optimizers by name from ``steplab.optim`` (``upgd``, ``cbp``,
``shrink-perturb``, ``l2init``, ``spectral``).

Printed: per algorithm its tuned lr, the online accuracy over the first and the last 10% of
tasks, their difference (``drop``, paired per seed) and the probe metrics at the end (dead
units, effective rank, mean |w|), each as the mean over seeds with its 95% Student-t
interval (``steplab.analysis.seeds.seed_interval``), and the training microseconds per update
(median over seeds; a shared machine, so seconds are noisy, updates are not); then the cost
per update measured again with the algorithms interleaved in one process (``--cost-rounds``
rounds of 1000 updates) and its ratio to backprop. An algorithm
*loses plasticity* when the lower end of its drop interval is above 0. Figures:
``benchmarks/out/plasticity/curves.png`` (online accuracy of task k against k, mean over
seeds with the seed range as a band, smoothed over 5% of the tasks) and ``probes.png``.

Runs are kept as JSON under ``benchmarks/out/plasticity/runs/`` and skipped when found, so a
killed benchmark resumes. Usage::

    flock /tmp/steplab-bench.lock nice -n 19 .venv/bin/python benchmarks/plasticity.py
    .venv/bin/python benchmarks/plasticity.py --algorithms backprop,cbp --seeds 2 --stream input-permuted+tasks=50
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "plasticity"
STREAM = "input-permuted+tasks=400+steps=50+probe_every=4"
SGD_GRID = (0.01, 0.03, 0.1)
#: name -> (optimizer, optimizer kwargs, weight decay, lr grid)
ALGORITHMS: dict[str, tuple[str, dict[str, Any], float, tuple[float, ...]]] = {
    "backprop": ("sgd", {}, 0.0, SGD_GRID),
    "adam": ("adam", {}, 0.0, (1e-4, 3e-4, 1e-3)),
    "upgd": ("upgd", {"beta_utility": 0.9999, "sigma": 0.1}, 0.01, SGD_GRID),
    "cbp": ("cbp", {"replacement_rate": 1e-4, "maturity": 100, "decay_rate": 0.99}, 0.0, SGD_GRID),
    "cbp-1e-3": ("cbp", {"replacement_rate": 1e-3, "maturity": 100, "decay_rate": 0.99}, 0.0, SGD_GRID),
    "shrink-perturb": ("shrink-perturb", {"sigma": 1e-3}, 1e-2, SGD_GRID),
    "l2init": ("l2init", {"l2_init": 1e-2}, 0.0, SGD_GRID),
    "spectral": ("spectral", {"spectral": 1e-4}, 0.0, SGD_GRID),
}
#: how often a grid is extended by one point when its best lr is at an end
EXTEND = 2
PROBES = (("plasticity/dead_fraction", "dead units", "{:.3f}"), ("plasticity/erank", "erank", "{:.1f}"),
          ("plasticity/weight_magnitude", "mean |w|", "{:.4f}"))


def _ladder(lr: float, *, up: bool) -> float:
    """The next value of the 1-3-10 grid above (or below) ``lr``: 0.1 -> 0.3 -> 1, 1e-3 -> 3e-4."""
    mantissa = float(f"{lr:.0e}".split("e")[0])
    factor = (3.0 if mantissa < 2 else 10 / 3) if up else (1 / 3 if mantissa > 2 else 0.3)
    return float(f"{lr * factor:.0e}")


def _label(stream: str, name: str, lr: float, seed: int) -> str:
    return f"{stream}__{name}__lr{lr:g}__s{seed}".replace("/", "_")


def _run(job: tuple[str, str, float, int]) -> dict[str, Any]:
    """One run (cached as JSON): the online curve, probe curves and final metrics."""
    stream, name, lr, seed = job
    path = OUT / "runs" / f"{_label(stream, name, lr, seed)}.json"
    if path.exists():
        return json.loads(path.read_text())
    import torch

    from steplab.algorithms.algorithm import ResolvedAlgorithm
    from steplab.studies.plasticity import run_long
    from steplab.training.config import TrainConfig
    from steplab.workloads.long_streams import LongStream

    torch.set_num_threads(1)
    opt, kwargs, wd, _ = ALGORITHMS[name]
    algo = ResolvedAlgorithm(name=name, optimizer=opt, optimizer_kwargs=dict(kwargs), lr=lr, weight_decay=wd,
                             schedule={"name": "constant"})
    s = LongStream(stream)
    probes: dict[str, list[tuple[int, float]]] = {m: [] for m, _, _ in PROBES}
    evaluate = s.evaluate

    def recording(model: Any, device: Any) -> dict[str, float]:  # keep the probe curves (no store)
        out = evaluate(model, device)
        for m in probes:
            if m in out:
                probes[m].append((s.steps // s.steps_per_task, out[m]))
        return out

    s.evaluate = recording  # type: ignore[method-assign]
    start = time.perf_counter()
    res = run_long(s, algo, seed, config=TrainConfig(stop_at_target=False, record_norms=False, threads=1))
    t = res.trial
    row = {"stream": stream, "algorithm": name, "lr": lr, "seed": seed, "status": t.status, "message": t.message,
           "curve": res.curve, "probes": probes, "steps": t.steps, "train_time_s": t.train_time_s,
           "eval_time_s": t.eval_time_s, "wall_s": time.perf_counter() - start,
           "final": {k: v for k, v in t.final_metrics.items() if isinstance(v, float) and math.isfinite(v)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    print(f"  {name:15s} lr={lr:<7g} seed={seed} {t.status:8s} online mean {row['final'].get('online/mean', math.nan):.3f}"
          f" drop {row['final'].get('online/drop', math.nan):+.3f}  {1e6 * t.train_time_s / max(t.steps, 1):.0f} us/step",
          flush=True)
    return row


def _pool(jobs: list[tuple[str, str, float, int]], procs: int) -> list[dict[str, Any]]:
    if procs <= 1:
        return [_run(j) for j in jobs]
    with mp.get_context("spawn").Pool(procs) as pool:
        return pool.map(_run, jobs, chunksize=1)


def _score(row: dict[str, Any]) -> float:
    v = row["final"].get("online/mean", math.nan)
    return v if row["status"] in ("budget", "reached") and math.isfinite(v) else -math.inf


def _iv(values: list[float], fmt: str) -> str:
    from steplab.analysis.seeds import seed_interval

    iv = seed_interval(values, 0.95)
    if math.isnan(iv.low):
        return fmt.format(iv.point) if not math.isnan(iv.point) else "—"
    return f"{fmt.format(iv.point)} [{fmt.format(iv.low)}, {fmt.format(iv.high)}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stream", default=STREAM)
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--cost-rounds", type=int, default=3, help="interleaved rounds of the cost per update (0: skip)")
    args = ap.parse_args()
    names = [n.strip() for n in args.algorithms.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        raise SystemExit(f"unknown algorithm {unknown[0]!r}; known: {', '.join(ALGORITHMS)}")
    print(f"stream {args.stream}; tuning the lr on seed 0 by total online accuracy", flush=True)
    tuning = _pool([(args.stream, n, lr, 0) for n in names for lr in ALGORITHMS[n][3]], args.procs)
    for _ in range(EXTEND):  # a best lr at an end of the grid: one more point beyond it
        best = {n: max((r for r in tuning if r["algorithm"] == n), key=_score) for n in names}
        more = []
        for n in names:
            tried = sorted(r["lr"] for r in tuning if r["algorithm"] == n)
            if best[n]["lr"] == tried[-1]:
                more.append((args.stream, n, _ladder(tried[-1], up=True), 0))
            elif best[n]["lr"] == tried[0]:
                more.append((args.stream, n, _ladder(tried[0], up=False), 0))
        if not more:
            break
        tuning += _pool(more, args.procs)
    best = {n: max((r for r in tuning if r["algorithm"] == n), key=_score) for n in names}
    for n in names:
        grid = ", ".join(f"{r['lr']:g}: {r['final'].get('online/mean', math.nan):.3f}"
                         for r in tuning if r["algorithm"] == n)
        print(f"  {n:15s} total online accuracy by lr  {grid}  -> lr {best[n]['lr']:g}")
    rest = _pool([(args.stream, n, best[n]["lr"], s) for n in names for s in range(1, args.seeds)], args.procs)
    runs = {n: [best[n], *[r for r in rest if r["algorithm"] == n]] for n in names}
    _table(runs)
    _plots(runs, args.stream)
    if args.cost_rounds:
        _cost(args.stream, {n: best[n]["lr"] for n in names}, args.cost_rounds)


def _cost(stream: str, lrs: dict[str, float], rounds: int, updates: int = 1000) -> None:
    """Training microseconds per update of each algorithm, measured in one process, the
    algorithms interleaved round by round (so a busy machine slows them alike): ``updates``
    updates of the same stream (20 tasks); the median over ``rounds``, and the ratio to backprop."""
    import torch

    from steplab.algorithms.algorithm import ResolvedAlgorithm
    from steplab.studies.plasticity import run_long
    from steplab.training.config import TrainConfig

    torch.set_num_threads(1)
    short = stream + f"+tasks=20+steps={updates // 20}+probe_every=100"
    times: dict[str, list[float]] = {n: [] for n in lrs}
    for _ in range(rounds):
        for n, lr in lrs.items():
            opt, kwargs, wd, _ = ALGORITHMS[n]
            algo = ResolvedAlgorithm(name=n, optimizer=opt, optimizer_kwargs=dict(kwargs), lr=lr, weight_decay=wd,
                                     schedule={"name": "constant"})
            t = run_long(short, algo, 0, config=TrainConfig(stop_at_target=False, record_norms=False, threads=1)).trial
            times[n].append(1e6 * t.train_time_s / max(t.steps, 1))
    base = statistics.median(times["backprop"]) if "backprop" in times else math.nan
    print(f"\ncost per update ({updates} updates x {rounds} interleaved rounds, one thread; median [min, max])")
    for n, ts in times.items():
        med = statistics.median(ts)
        print(f"  {n:15s} {med:7.0f} us [{min(ts):.0f}, {max(ts):.0f}]  {med / base:5.2f}x backprop")


def _table(runs: dict[str, list[dict[str, Any]]]) -> None:
    cols = ["algorithm", "lr", "first 10%", "last 10%", "drop (first - last)", *[t for _, t, _ in PROBES],
            "us/step", "verdict"]
    print("\nonline accuracy per task: mean over seeds [95% t-interval]; probes at the end")
    print(" | ".join(cols))
    print(" | ".join("---" for _ in cols))
    from steplab.analysis.seeds import seed_interval

    for n, rows in runs.items():
        ok = [r for r in rows if r["status"] in ("budget", "reached")]
        f = {k: [r["final"].get(k, math.nan) for r in ok] for k in
             ("online/first", "online/last", "online/drop", *[m for m, _, _ in PROBES])}
        drop = seed_interval(f["online/drop"], 0.95)
        verdict = ("loses plasticity" if drop.low > 0 else "keeps it (drop interval holds 0)" if drop.low <= 0 <= drop.high
                   else "improves" if drop.high < 0 else f"{len(ok)} seed(s): no interval")
        us = statistics.median(1e6 * r["train_time_s"] / max(r["steps"], 1) for r in rows)
        cells = [n, f"{rows[0]['lr']:g}", _iv(f["online/first"], "{:.3f}"), _iv(f["online/last"], "{:.3f}"),
                 _iv(f["online/drop"], "{:+.3f}"), *[_iv(f[m], fmt) for m, _, fmt in PROBES], f"{us:.0f}",
                 verdict + ("" if len(ok) == len(rows) else f" ({len(rows) - len(ok)} runs failed)")]
        print(" | ".join(cells))


def _band(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = min(len(c) for c in curves)
    a = np.array([c[:n] for c in curves])
    return np.arange(n), a.mean(0), a.min(0), a.max(0)


def _slug(stream: str) -> str:
    return stream.replace("+", "_").replace("=", "")


def _plots(runs: dict[str, list[dict[str, Any]]], stream: str) -> None:
    from steplab.report.plasticity_plots import plot_long

    ok = {n: [r for r in rows if r["status"] in ("budget", "reached")] for n, rows in runs.items()}
    ok = {n: rows for n, rows in ok.items() if rows}
    tasks = max(len(r["curve"]) for rows in ok.values() for r in rows)
    window = max(1, tasks // 20)
    lines = {f"{n} (lr {rows[0]['lr']:g})": _band([r["curve"] for r in rows]) for n, rows in ok.items()}
    curves = plot_long([{"title": f"{stream}\nonline accuracy of task k (mean over seeds, band = seed range)",
                         "ylabel": "online accuracy", "lines": lines}], OUT / f"{_slug(stream)}-curves.png",
                       window=window)
    panels = []
    for m, title, _ in PROBES:
        per = {}
        for n, rows in ok.items():
            series = [[v for _, v in r["probes"][m]] for r in rows]
            x, mean, low, high = _band(series)
            per[n] = (np.array([k for k, _ in rows[0]["probes"][m]][:len(x)]), mean, low, high)
        panels.append({"title": f"{title} at task starts", "ylabel": title, "lines": per})
    probes = plot_long(panels, OUT / f"{_slug(stream)}-probes.png")
    print(f"\nwrote {curves} and {probes}")


if __name__ == "__main__":
    main()
