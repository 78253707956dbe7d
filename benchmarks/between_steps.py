"""What work done between two updates, off the clock, costs the updates themselves.

A bare hand-written loop (``overhead.bare_loop``'s) runs a piece of work around each
``opt.step()`` (before it, after the backward pass, and after it), keeps that work's own time
off its clock, and is timed against the same loop without it: rounds of bare / each variant /
bare, the variant's seconds per update (``cell_step_seconds``, as the ranking reads them)
over the mean of the two bare runs. So the ratio is what the work does to the *next* update
through the machine's state, not the work's own time (printed beside it, microseconds per
step off the clock). On a CPU step under a millisecond this is what decides whether a
recorder can stay within a few percent of a bare loop (issue 22).

Variants:

- ``hooks``: no-op optimizer step pre- and post-hooks, registered (no work of its own);
- ``pyobjects``: a dozen small Python objects a step;
- ``item``: ``loss.item()``;
- ``alloc``: one ``torch.empty`` of the model's size;
- ``fresh-norms``: the gradient l2/l1 and update norms from fresh flat copies (one
  ``_flatten_dense_tensors`` of the gradients, ``vector_norm`` and ``abs().sum()``, a flat copy
  of the parameters before the step, subtracted from a new flat copy after it): the
  recorder's CPU path until December 2026, several tensors allocated a step;
- ``ring-norms``: the recorder's :class:`~steplab.training.trace_values.StepNorms` as it is
  (a preallocated ring, two ``_foreach_copy_`` a step, reduced a ring at a time).

    .venv/bin/python benchmarks/between_steps.py [--workloads logreg,digits-mlp] [--rounds 13]

Measured (2 cores, December 2026, 21 rounds; medians on logreg / digits-mlp /
teacher-student / mnist1d:mlp): fresh-norms 1.101 / 1.063 / 1.055 / 1.043 and ring-norms
1.047 / 1.037 / 1.034 / 1.036, for about the same work off the clock (19-48 microseconds a
step); hooks, pyobjects, item and alloc alone 0.99-1.02 (13 rounds). Allocating several
tensors a step costs the next update more than the work itself; what is left (3-5%) is the
floor of recording the three norms every step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from overhead import workload
from torch._utils import _flatten_dense_tensors

from steplab import algorithms, workloads
from steplab.analysis.timing import cell_step_seconds
from steplab.training.trace_values import StepNorms

VARIANTS = ("hooks", "pyobjects", "item", "alloc", "fresh-norms", "ring-norms")

Work = tuple[Callable[[torch.Tensor], object], Callable[[], object]]


def work_of(variant: str, opt: torch.optim.Optimizer) -> Work:
    """(before the step, given the loss; after the step) for ``variant``."""
    params = [p for g in opt.param_groups for p in g["params"]]
    n = sum(p.numel() for p in params)
    kept: list[object] = []

    def nothing(*_: object) -> None:
        return None

    if variant == "hooks":
        opt.register_step_pre_hook(nothing)
        opt.register_step_post_hook(nothing)
        return nothing, nothing
    if variant == "pyobjects":
        return (lambda loss: kept.append([[k, (k, k)] for k in range(12)]) or kept.clear()), nothing
    if variant == "item":
        return (lambda loss: loss.item()), nothing
    if variant == "alloc":
        return (lambda loss: torch.empty(n)), nothing
    if variant == "fresh-norms":
        snapshot = torch.empty(n)

        def before(loss: torch.Tensor) -> object:
            with torch.no_grad():
                flat = _flatten_dense_tensors([p.grad for p in params])
                kept[:] = [torch.linalg.vector_norm(flat), flat.abs().sum()]
                snapshot.copy_(_flatten_dense_tensors(params))
            return None

        def after() -> object:
            with torch.no_grad():
                snapshot.sub_(_flatten_dense_tensors(params))
                kept.append(torch.linalg.vector_norm(snapshot))
            return None

        return before, after
    if variant == "ring-norms":
        norms = StepNorms(True, True, True)
        return (lambda loss: kept.append(norms.before(opt.param_groups))), (lambda: kept.append(norms.after()))
    raise SystemExit(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")


def loop(wl: workloads.Workload, algo: algorithms.ResolvedAlgorithm, seed: int, steps: int,
         variant: str | None) -> tuple[float, float]:
    """(seconds per update as the ranking reads them, seconds of off-clock work per update)."""
    torch.manual_seed(seed)
    model = wl.init_model(seed)
    opt, sched = algo.build(model, steps)
    before, after = work_of(variant, opt) if variant else (None, None)
    batches = wl.batches(seed, torch.device("cpu"))
    next(batches)
    clock = time.perf_counter
    times, excluded = [], 0.0
    t0 = clock()
    for _ in range(steps):
        loss = wl.loss(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if before is not None:
            start = clock()
            before(loss)
            excluded += clock() - start
        opt.step()
        if after is not None:
            start = clock()
            after()
            excluded += clock() - start
        times.append(clock() - excluded)
        sched.step()
    return cell_step_seconds([[t - t0 for t in times]]), excluded / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="logreg,digits-mlp,teacher-student,mnist1d:mlp")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--rounds", type=int, default=13)
    ap.add_argument("--steps", type=int, default=800)
    args = ap.parse_args()
    torch.set_num_threads(1)
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}: use one of {', '.join(VARIANTS)}")
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": 1e-3})
    print(f"{'workload':18s} " + " ".join(f"{v:>20s}" for v in variants) + "   (median ratio, off-clock us/step)")
    for key in args.workloads.split(","):
        wl = workload(key, args.steps)
        steps = wl.budget_steps
        for v in [None, *variants]:  # warm-up
            loop(wl, algo, 0, steps, v)
        ratios: dict[str, list[float]] = {v: [] for v in variants}
        spent: dict[str, list[float]] = {v: [] for v in variants}
        for r in range(args.rounds):
            b1 = loop(wl, algo, r, steps, None)[0]
            got = {v: loop(wl, algo, r, steps, v) for v in variants}
            b2 = loop(wl, algo, r, steps, None)[0]
            for v, (s, e) in got.items():
                ratios[v].append(s / ((b1 + b2) / 2))
                spent[v].append(e)
        cells = [f"{statistics.median(ratios[v]):.3f} ({1e6 * statistics.median(spent[v]):5.1f} us)" for v in variants]
        print(f"{key:18s} " + " ".join(f"{c:>20s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
