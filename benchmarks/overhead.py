"""Per-step cost of steplab's train loop + recorder against a bare hand-written PyTorch loop.

Same workload, model, data, optimizer, schedule and evaluation cadence; the two loops
alternate in one process, one thread, in R rounds of bare / steplab / bare: steplab's time
is compared with the mean of the two bare runs around it, which cancels a drift of the
machine's speed that is linear over the round. The ``noise`` column is the median over
rounds of ``|bare2 / bare1 - 1|``, the difference between two identical loops a moment
apart: a ratio closer to 1 than that cannot be told from 1 on this machine. Both loops
evaluate at the workload's cadence off their clocks (the bare loop by hand) and the bare
loop records nothing, so the ratio is the cost of steplab's loop itself plus recording
(gradient l2/l1 and update norms, every ``--norm-every`` steps, 1 = every step as
``steplab run`` records them).
Two per-step ratios per round, steplab over bare:

- ``robust``: seconds per step as the benchmark's time axis reads them: training time (the
  loop's own bookkeeping between updates is off the clock, ``steplab.training.clock``), by
  ``steplab.analysis.timing.cell_step_seconds`` over each run's per-update times (the
  trial's ``time/s_per_step`` against the same estimator on the bare loop's clock), which a
  preempted step on a crowded machine does not move;
- ``wall``: what the user's clock pays: steplab's training time plus the time kept off the
  training clock besides evaluation (the recorder's hooks, ``log``, flushes and the loop's
  pauses: ``time/untimed_s``), over steps, against the bare loop's wall time over steps.

The robust ratio is what the ranking sees (the recorder's own work is not training time,
as evaluation is not); the wall ratio is the instrument's real cost, printed beside it.

Prints, per workload, the bare and steplab milliseconds per step (robust, medians over
rounds), min / median / max over rounds of the robust ratio, the 90% Student-t interval of
its mean (``steplab.analysis.seeds.seed_interval``), the median wall ratio and the noise.
Each run lasts about ``--seconds`` (steps calibrated on a warm-up run, at least 20).

    .venv/bin/python benchmarks/overhead.py [--rounds 7] [--workloads logreg,charlm] [--norm-every 1]

A stream that evaluates every step (``stream:permuted-digits``...) makes both loops evaluate
every step: those rows take minutes (``--rounds 5`` is the least the issue asks).

``--no-norms`` adds steplab without norms; ``--norms-floor`` adds the bare loop computing the
recorder's norms with the recorder's own code, off its clock (median ratio to bare): work done
between two updates slows the next update even when its own time is excluded (allocation
most, which hands the step's temporaries colder memory: ``benchmarks/between_steps.py``), so
this is the floor of the recorder's norms as written.

Goal (issue 22): median <= 1.03 on every built-in workload.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from steplab import algorithms, workloads
from steplab.analysis.seeds import seed_interval
from steplab.analysis.timing import TRIAL_STEP_KEY, UNTIMED_KEY, cell_step_seconds
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.training.trace_values import StepNorms

WORKLOADS = ("logreg", "digits-mlp", "teacher-student", "modarith", "charlm", "mnist1d", "mnist1d:mlp",
             "mnist1d:logreg", "mnist1d:large", "shakespeare-char", "mnist1d-tasks", "modarith-skills",
             "teacher-student-noise", "stream:split-digits", "stream:permuted-digits", "stream:rotated-digits",
             "stream:charlm-shift", "stream:input-permuted", "stream:label-permuted",
             "stream:slowly-changing-regression")


def workload(key: str, steps: int) -> workloads.Workload:
    """``key`` (``name`` or ``name:variant``) with a budget of about ``steps`` updates. A
    long stream (loss of plasticity) keeps its steps per task, or takes 100 (the
    slowly-changing regression's 10,000), and fewer tasks (``+tasks=K``); a short stream
    keeps its tasks and takes fewer steps per task (``+steps=S``), so every run still
    crosses task boundaries."""
    name, _, variant = key.partition(":")
    if name == "stream":
        stream = workloads.get(name, variant).stream  # type: ignore[attr-defined]
        if hasattr(stream, "probe"):  # a long stream (steplab.workloads.long_streams)
            per_task = min(stream.steps_per_task, 100)
            variant += f"+tasks={max(2, round(steps / per_task))}+steps={per_task}"
        else:  # steps per task: a multiple of the stream's evaluation cadence
            every = stream.eval_every
            variant += f"+steps={max(1, round(steps / stream.tasks / every)) * every}"
        return workloads.get(name, variant)
    return workloads.get(name, variant or None, budget_steps=steps)


def bare_loop(wl: workloads.Workload, algo: algorithms.ResolvedAlgorithm, seed: int, steps: int,
              norms: bool = False) -> tuple[float, float]:
    """Seconds per step (robust, wall) of the loop a user would write by hand. It evaluates
    at the workload's cadence, as steplab does, off its clock: an evaluation's time is
    excluded from both loops (AlgoPerf's rule) and its after-effect on the next update (cold
    caches, memory given back) falls on both, so the ratio is the harness's alone. With
    ``norms``, it also computes the recorder's three norms around each ``opt.step()`` with the
    recorder's own code (``trace_values.StepNorms``), off its clock like the evaluations: the
    floor of any recorder that records them, with nothing else of steplab's loop."""
    device = torch.device("cpu")
    torch.manual_seed(seed)
    model = wl.init_model(seed)
    opt, sched = algo.build(model, steps)
    batches = wl.batches(seed, device)
    next(batches)  # build the data outside the clock, as steplab does
    clock = time.perf_counter
    times = []
    every, evaluated = wl.eval_every, 0.0
    step_norms, kept = StepNorms(True, True, True) if norms else None, []
    t0 = clock()
    for k in range(1, steps + 1):
        loss = wl.loss(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if step_norms is not None:
            start = clock()
            kept.append(step_norms.before(opt.param_groups))
            evaluated += clock() - start
        opt.step()
        if step_norms is not None:
            start = clock()
            kept.append(step_norms.after())
            evaluated += clock() - start
        times.append(clock() - evaluated)
        sched.step()
        if k % every == 0 or k == steps:
            start = clock()
            model.eval()
            wl.evaluate(model, device)
            model.train()
            evaluated += clock() - start
    float(loss.detach())
    wall = (clock() - t0 - evaluated) / steps
    return cell_step_seconds([[t - t0 for t in times]]), wall


def steplab_loop(wl: workloads.Workload, algo: algorithms.ResolvedAlgorithm, seed: int, steps: int,
                 cfg: TrainConfig) -> tuple[float, float]:
    """Seconds per step (robust, wall incl. the recorder's untimed work) of ``run_trial`` (no
    store: rows kept in memory)."""
    r = run_trial(wl, algo, seed, config=cfg)
    assert r.steps == steps, (r.status, r.message)
    return r.final_metrics[TRIAL_STEP_KEY], (r.train_time_s + r.final_metrics[UNTIMED_KEY]) / r.steps


def config(norm_every: int, record_norms: bool = True) -> TrainConfig:
    """The trial config; ``norm_every`` only where this steplab has the field (run on older code)."""
    extra = {"norm_every": norm_every} if "norm_every" in TrainConfig.__dataclass_fields__ else {}
    return TrainConfig(device="cpu", stop_at_target=False, threads=1, record_norms=record_norms, **extra)


def _interval(ratios: list[float]) -> str:
    iv = seed_interval(ratios, 0.9)
    return f"[{iv.low:.3f}, {iv.high:.3f}]" if math.isfinite(iv.low) else "(one round)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--seconds", type=float, default=0.4, help="length of one run (sets the steps)")
    ap.add_argument("--norm-every", type=int, default=1)
    ap.add_argument("--no-norms", action="store_true", help="also time steplab with record_norms=False")
    ap.add_argument("--norms-floor", action="store_true", help="also time the bare loop computing the recorder's "
                    "norms off its clock (StepNorms alone): the floor of any recorder that records them")
    args = ap.parse_args()
    torch.set_num_threads(1)
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 1e-3})
    cfg = config(args.norm_every)
    head = (f"{'workload':33s} {'steps':>5s} {'bare ms':>8s} {'steplab':>8s} {'min':>6s} {'median':>6s} {'max':>6s}"
            f" {'90% interval (mean)':>19s} {'wall':>6s} {'noise':>6s}")
    print(head + (f" {'no norms':>8s} {'median':>6s}" if args.no_norms else "")
          + (f" {'floor':>6s}" if args.norms_floor else ""), flush=True)
    worst = 0.0
    for key in args.workloads.split(","):
        probe = bare_loop(workload(key, 20), algo, 0, 20)[1]  # warm-up and calibration
        wl = workload(key, max(20, min(3000, round(args.seconds / probe))))
        steps = wl.budget_steps
        steplab_loop(wl, algo, 0, steps, cfg)  # warm-up: allocator, kernels, data cache
        ratios, walls, ratios_nn, bares, full, nn, noise, floor = [], [], [], [], [], [], [], []
        for r in range(args.rounds):
            # a sandwich, bare / steplab / bare: the mean of the two bare runs cancels a drift
            # of the machine's speed that is linear over the round
            b1, b1_wall = bare_loop(wl, algo, r, steps)
            s, s_wall = steplab_loop(wl, algo, r, steps, cfg)
            if args.no_norms:
                s2 = steplab_loop(wl, algo, r, steps, config(args.norm_every, record_norms=False))[0]
            if args.norms_floor:
                f = bare_loop(wl, algo, r, steps, norms=True)[0]
            b2, b2_wall = bare_loop(wl, algo, r, steps)
            b, b_wall = (b1 + b2) / 2, (b1_wall + b2_wall) / 2
            bares.append(b), full.append(s), ratios.append(s / b), walls.append(s_wall / b_wall)
            noise.append(abs(b2 / b1 - 1))
            if args.no_norms:
                nn.append(s2), ratios_nn.append(s2 / b)
            if args.norms_floor:
                floor.append(f / b)
        worst = max(worst, statistics.median(ratios))
        line = (f"{key:33s} {steps:5d} {1e3 * statistics.median(bares):8.3f} {1e3 * statistics.median(full):8.3f}"
                f" {min(ratios):6.3f} {statistics.median(ratios):6.3f} {max(ratios):6.3f} {_interval(ratios):>19s}"
                f" {statistics.median(walls):6.3f} {statistics.median(noise):6.3f}")
        if args.no_norms:
            line += f" {1e3 * statistics.median(nn):8.3f} {statistics.median(ratios_nn):6.3f}"
        if args.norms_floor:
            line += f" {statistics.median(floor):6.3f}"
        print(line, flush=True)
    print(f"largest median ratio: {worst:.3f} (goal <= 1.03)")


if __name__ == "__main__":
    main()
