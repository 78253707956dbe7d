"""Which learning-rate schedule across stages, how much replay, and does the stability gap show?

Issue 10's benchmark (``steplab continual``). Two streams, AdamW (weight decay 0.01), every
stage schedule of ``steplab.schedules.stages`` -- ``rewarm`` (warm-up 5% of each stage, cosine
to 0.1x), ``constant`` (stage 1 as rewarm, then keep its last lr), ``infinite`` (cooldown to
0.25x once, exponential anneal to 0.01x over the last 20% of each stage, the next stage
continuing from the non-annealed model) and ``wsd`` (per stage: warm-up, stable, 1-sqrt cooldown
over the last 20% to 0) -- crossed with replay 0, 5% and 25% of every batch at equal compute:

* ``split-digits`` (5 tasks of 2 classes, class-incremental, 100 updates per task, batch 32,
  experience replay from a 200-example reservoir), evaluated after *every* update on each seen
  task's test examples (79-80 per task);
* ``charlm-shift`` (a character LM continued from Python source to English prose, 250 updates
  per stage, batch 16 -- smaller than the stream's defaults, 400 x 32, to keep the benchmark
  near 20 minutes on one shared core -- replay from the whole old corpus), evaluated every 10
  updates on 64 windows of 64 characters per domain; its a_i is minus the validation loss.

Protocol (Cha & Cho 2024, "Hyperparameters in Continual Learning: a Reality Check"): the peak
lr of every schedule is tuned on the stream's *tuning twin* (``+twin``: other class pairing
and split / the other halves of both texts) at replay 5%, by final ACC (mean over the tuning
seeds), and the tuned value is used unchanged on the reported stream. Grid: 1e-3, 3e-3, 1e-2
(digits, 3 seeds), 0.01, 0.02, 0.04 (LM, 1 seed).

Printed: per stream and replay, each schedule's metrics as mean +- seed sd over ``--seeds``
seeds; then the differences to ``rewarm`` with their 90% Welch t-interval over seeds
(``steplab.analysis.seeds.difference_interval``: an interval holding 0 is a tie); then the evidence for the
stability gap: min-ACC with dense evaluation against min-ACC recomputed from the *same* runs
evaluated only every 10 updates and only at task ends (evaluation never changes the
trajectory, ``tests/test_continual.py``), and the gap against task dissimilarity on
``rotated-digits`` with 2 tasks (angle 30, 90, 180 degrees; rewarm, no replay). Compute: every
cell of a table trains the same number of updates (replay replaces new examples); the
training and evaluation seconds are printed apart (one thread per run, a shared machine:
seconds are noisy, updates are not).

Runs are stored in ``--db`` (default ``benchmarks/out/continual.db``) under a label and skipped
when found, so a killed run resumes. Plots: ``benchmarks/out/continual_split_digits.png`` and
``benchmarks/out/continual_charlm_shift.png``. Usage::

    .venv/bin/python benchmarks/continual.py                      # everything, 3 seeds, 1 process
    .venv/bin/python benchmarks/continual.py split-digits --seeds 2
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import _sweep  # benchmarks/_sweep.py, beside this script

from steplab import algorithms
from steplab.analysis.seeds import difference_interval
from steplab.store import open_store
from steplab.studies import continual
from steplab.training.config import TrainConfig
from steplab.workloads.stream_metrics import History, min_accuracy
from steplab.workloads.stream_spec import parse_stream
from steplab.workloads.task_stream import Stream

SCHEDULES = ("rewarm", "constant", "infinite", "wsd")
REPLAYS = (0.0, 0.05, 0.25)
STREAMS = {
    "split-digits": {"base": "split-digits", "grid": (1e-3, 3e-3, 1e-2), "tune_seeds": 3},
    "charlm-shift": {"base": "charlm-shift+steps=250+batch=16", "grid": (0.01, 0.02, 0.04), "tune_seeds": 1},
}
TUNE_REPLAY = 0.05
ANGLES = (30.0, 90.0, 180.0)
DIAL = "rotated-digits+tasks=2"
CFG = TrainConfig(stop_at_target=False, threads=1, record_norms=False)


def _key(base: str, replay: float, twin: bool = False) -> str:
    opts = ([f"replay={replay:g}"] if replay else []) + (["twin"] if twin else [])
    return parse_stream("+".join([base, *opts])).key


def _label(stream: str, schedule: str, lr: float, seed: int) -> str:
    return f"continual-bench|{stream}|{schedule}|lr={lr:.6g}|seed={seed}"


def _algo(lr: float) -> algorithms.ResolvedAlgorithm:
    return algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": lr, "weight_decay": 0.01})


def _run(args: tuple) -> tuple[str, float]:
    db, stream, schedule, lr, seed = args
    t0 = time.perf_counter()
    label = _label(stream, schedule, lr, seed)
    with open_store(db) as store:
        continual.run_continual(stream, _algo(lr), seed, stage_schedule=schedule, store=store, config=CFG,
                                name=label)
    return label, time.perf_counter() - t0


def _load(store: Any, stream: str, schedule: str, lr: float, seeds: list[int]) -> list[tuple[Any, History]]:
    out = []
    for s in seeds:
        t = _sweep.find(store, _label(stream, schedule, lr, s), status=("budget",))
        if t is not None:
            out.append((t, continual.history_of(store, t.id)[0]))
    return out


def _ms(values: list[float], fmt: str = "{:.3f}") -> str:
    v = [x for x in values if math.isfinite(x)]
    if not v:
        return "—"
    if len(v) == 1:  # one seed: no spread to show
        return fmt.format(v[0])
    return f"{fmt.format(statistics.fmean(v))}±{fmt.format(statistics.stdev(v)).lstrip('-')}"


def _mean(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return statistics.fmean(v) if v else math.nan


def _sparse(h: History, every: int | None) -> History:
    """The same run evaluated only every ``every`` updates (``None``: only at task ends)."""
    keep = (lambda t: t == 0 or t in h.stage_ends) if every is None else (lambda t: t % every == 0)
    out = History(list(h.stage_ends))
    for task, pts in h.curves.items():
        out.curves[task] = [(t, v) for t, v in pts if keep(t)]
    return out


def tune(db: str, name: str, seeds: list[int], procs: int) -> dict[str, float]:
    """Per schedule, the lr of the grid with the best mean final ACC on the twin."""
    cfg = STREAMS[name]
    twin = _key(cfg["base"], TUNE_REPLAY, twin=True)
    tune_seeds = seeds[:cfg["tune_seeds"]]
    jobs = [(db, twin, s, lr, seed) for s in SCHEDULES for lr in cfg["grid"] for seed in tune_seeds]
    print(f"{name}: tuning the peak lr on the twin {twin} ({len(jobs)} runs)", flush=True)
    _sweep.execute(db, jobs, _label, _run, procs)
    best: dict[str, float] = {}
    print(f"  {'schedule':9} " + " ".join(f"{'lr ' + format(lr, 'g'):>14}" for lr in cfg["grid"]) + "   (ACC on the twin)")
    with open_store(db) as store:
        for s in SCHEDULES:
            accs = {lr: [t.final_metrics["continual/acc"] for t, _ in _load(store, twin, s, lr, tune_seeds)]
                    for lr in cfg["grid"]}
            # a seed that diverged or failed makes its lr unusable
            score = {lr: _mean(a) if len(a) == len(tune_seeds) else -math.inf for lr, a in accs.items()}
            best[s] = max(cfg["grid"], key=lambda lr: score[lr])
            shown = [_ms(accs[lr]) if len(accs[lr]) == len(tune_seeds) else
                     f"{len(tune_seeds) - len(accs[lr])} diverged" for lr in cfg["grid"]]
            print(f"  {s:9} " + " ".join(f"{x:>14}" for x in shown) + f"   -> {best[s]:g}")
    return best


def report(db: str, name: str, lrs: dict[str, float], seeds: list[int], procs: int) -> None:
    cfg = STREAMS[name]
    jobs = [(db, _key(cfg["base"], r), s, lrs[s], seed) for r in REPLAYS for s in SCHEDULES for seed in seeds]
    print(f"{name}: {len(jobs)} runs on the reported stream", flush=True)
    _sweep.execute(db, jobs, _label, _run, procs)
    lm = name == "charlm-shift"
    with open_store(db) as store:
        cells = {(r, s): _load(store, _key(cfg["base"], r), s, lrs[s], seeds) for r in REPLAYS for s in SCHEDULES}
    stream = Stream(_key(cfg["base"], 0.0))
    n = len(seeds)
    print()
    if lm:
        print(f"{name} ({stream.tasks} stages x {stream.steps_per_task} updates, batch {stream.batch_size}, eval every "
              f"{stream.eval_every} on {min(stream.eval_sizes())} windows per domain; loss in nats/char, "
              f"mean±sd over {n} seeds)")
        cols = ["code@1", "code end", "prose end", "mean end", "code peak", "forget", "gap steps", "recov",
                "train s", "eval s"]
    else:
        print(f"{name} ({stream.tasks} tasks x {stream.steps_per_task} updates, batch {stream.batch_size}, eval every "
              f"{stream.eval_every} on {min(stream.eval_sizes())}-{max(stream.eval_sizes())} examples per task; "
              f"mean±sd over {n} seeds)")
        cols = ["ACC", "forgetting", "min-ACC", "WC-ACC", "ACC-minACC", "WF10", "gap h", "gap steps", "train s",
                "eval s"]
    print(f"{'replay':>6} {'schedule':9} {'lr':>6} " + " ".join(f"{c:>13}" for c in cols))
    for r in REPLAYS:
        for s in SCHEDULES:
            runs = cells[(r, s)]
            fm = [t.final_metrics for t, _ in runs]
            if lm:
                vals = [
                    [-h.value(0, h.stage_ends[0]) for _, h in runs],  # code loss at the end of stage 1
                    [m["task0/loss"] for m in fm], [m["task1/loss"] for m in fm], [-m["continual/acc"] for m in fm],
                    [-min(v for t, v in h.curves[0] if t > h.stage_ends[0]) for _, h in runs],
                    [m["continual/forgetting"] for m in fm], [m["continual/gap_steps"] for m in fm],
                    [m["continual/gap_recovered"] for m in fm],
                    [t.train_time_s for t, _ in runs], [t.eval_time_s for t, _ in runs],
                ]
            else:
                vals = [
                    [m["continual/acc"] for m in fm], [m["continual/forgetting"] for m in fm],
                    [m["continual/min_acc"] for m in fm], [m["continual/wc_acc"] for m in fm],
                    [m["continual/acc"] - m["continual/min_acc"] for m in fm], [m["continual/wf10"] for m in fm],
                    [m["continual/gap_height"] for m in fm], [m["continual/gap_steps"] for m in fm],
                    [t.train_time_s for t, _ in runs], [t.eval_time_s for t, _ in runs],
                ]
            fmts = ["{:.3f}"] * 7 + ["{:.0f}", "{:.2f}", "{:.2f}"] if not lm else \
                ["{:.3f}"] * 6 + ["{:.0f}", "{:.2f}", "{:.1f}", "{:.1f}"]
            print(f"{r:6.0%} {s:9} {lrs[s]:6.3g} " + " ".join(f"{_ms(v, f):>13}" for v, f in zip(vals, fmts)))
    # differences to rewarm, with their intervals
    metrics = [("ACC", "continual/acc"), ("min-ACC", "continual/min_acc"), ("forgetting", "continual/forgetting")]
    print(f"\n{name}: difference to rewarm at the same replay with its 90% Welch t-interval over seeds "
          "('~' = the interval holds 0, a tie)" + ("; LM: ACC = -(mean loss), min-ACC = -(mean worst old-domain loss)" if lm else ""))
    print(f"{'replay':>6} {'schedule':9} " + " ".join(f"{m:>24}" for m, _ in metrics))
    for r in REPLAYS:
        ref = [t.final_metrics for t, _ in cells[(r, "rewarm")]]
        for s in SCHEDULES[1:]:
            cur = [t.final_metrics for t, _ in cells[(r, s)]]
            parts = []
            for _, key in metrics:
                a, b = [m[key] for m in cur], [m[key] for m in ref]
                iv = difference_interval([x for x in a if math.isfinite(x)], [x for x in b if math.isfinite(x)], 0.9)
                flag = "~" if iv.contains(0.0) else " "
                parts.append(f"{iv.point:+.3f} [{iv.low:+.3f}, {iv.high:+.3f}]{flag}" if math.isfinite(iv.low)
                             else f"{_mean(a) - _mean(b):+.3f} (one seed){' ':7}")
            print(f"{r:6.0%} {s:9} " + " ".join(f"{p:>24}" for p in parts))
    if not lm:
        print(f"\n{name}: the stability gap needs dense evaluation -- min-ACC of the same runs recomputed with "
              "evaluations every 1, every 10 and only at task ends")
        print(f"{'replay':>6} {'schedule':9} {'final ACC':>12} {'min-ACC @1':>12} {'@10':>12} {'task ends':>12}")
        for r in REPLAYS[1:]:
            for s in SCHEDULES:
                runs = cells[(r, s)]
                acc = [t.final_metrics["continual/acc"] for t, _ in runs]
                mins = [[min_accuracy(_sparse(h, e)) for _, h in runs] for e in (1, 10, None)]
                print(f"{r:6.0%} {s:9} {_ms(acc):>12} " + " ".join(f"{_ms(m):>12}" for m in mins))
    _plot(db, name, cells, lrs)


def _plot(db: str, name: str, cells: dict, lrs: dict[str, float]) -> None:
    from steplab.report.plots import plot_continual

    replay = 0.25
    stream = Stream(_key(STREAMS[name]["base"], replay))
    sign = 1.0 if stream.metric == "accuracy" else -1.0
    panels = []
    with open_store(db) as store:
        for s in SCHEDULES:
            if not cells[(replay, s)]:
                continue
            t, h = cells[(replay, s)][0]
            steps = store.steps(t.id)
            fm = t.final_metrics
            panels.append({
                "title": f"{s} (lr {lrs[s]:g}), {stream.key}, seed {t.spec.seed}",
                "curves": {i: [(x, sign * v) for x, v in pts] for i, pts in h.curves.items()},
                "stage_ends": h.stage_ends, "ylabel": stream.metric, "lr": (steps["step"], steps["lr"]),
                "note": (f"ACC {fm['continual/acc']:.3f}  min-ACC {fm['continual/min_acc']:.3f}  "
                         f"WC-ACC {fm['continual/wc_acc']:.3f}" if sign > 0 else
                         f"code {fm['task0/loss']:.3f}  prose {fm['task1/loss']:.3f} nats/char"),
            })
    out = Path(db).parent / f"continual_{name.replace('-', '_')}.png"
    title = (f"{name}: a_i(t) after every update, dashed = task switches, grey = lr" if sign > 0 else
             f"{name}: validation loss per domain (task 1 = code, task 2 = prose), grey = lr")
    print(f"wrote {plot_continual(panels, out, title=title)}")


def dial(db: str, lr: float, seeds: list[int], procs: int) -> None:
    streams = {a: parse_stream(f"{DIAL}+angle={a:g}").key for a in ANGLES}
    jobs = [(db, streams[a], "rewarm", lr, seed) for a in ANGLES for seed in seeds]
    print(f"rotated-digits dial: {len(jobs)} runs", flush=True)
    _sweep.execute(db, jobs, _label, _run, procs)
    print(f"\nstability gap against task dissimilarity ({DIAL}, rewarm, lr {lr:g}, no replay, eval every 1; "
          f"mean±sd over {len(seeds)} seeds)")
    print(f"{'angle':>6} {'task 1 @end1':>13} {'gap height':>13} {'gap steps':>13} {'min-ACC':>13} {'final ACC':>13} "
          f"{'forgetting':>13}")
    with open_store(db) as store:
        for a in ANGLES:
            runs = _load(store, streams[a], "rewarm", lr, seeds)
            fm = [t.final_metrics for t, _ in runs]
            print(f"{a:6.0f} {_ms([h.value(0, h.stage_ends[0]) for _, h in runs]):>13} "
                  f"{_ms([m['continual/gap_height'] for m in fm]):>13} "
                  f"{_ms([m['continual/gap_steps'] for m in fm], '{:.0f}'):>13} "
                  f"{_ms([m['continual/min_acc'] for m in fm]):>13} {_ms([m['continual/acc'] for m in fm]):>13} "
                  f"{_ms([m['continual/forgetting'] for m in fm]):>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=["split-digits", "charlm-shift", "dial"],
                        help="split-digits, charlm-shift, dial (rotated-digits angles)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--db", default="benchmarks/out/continual.db")
    args = parser.parse_args()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    tuned: dict[str, dict[str, float]] = {}
    for name in ("split-digits", "charlm-shift"):
        if name in args.parts:
            tuned[name] = tune(args.db, name, seeds, args.procs)
            report(args.db, name, tuned[name], seeds, args.procs)
            print()
    if "dial" in args.parts:
        lr = tuned.get("split-digits", {}).get("rewarm", 3e-3)
        dial(args.db, lr, seeds, args.procs)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
