"""Do law-optimal and refined schedules beat tuned standard schedules at the same horizon T?

Issue 26's protocol. Per workload, AdamW (the workload's default hyperparameters), whole
budget T, ``--seeds`` seeds:

* **tuned baselines**: cosine, linear, and WSD with a 1-sqrt cooldown over the last 20%
  (Hägele et al. 2024), each with 5% linear warm-up, each at every peak lr of the grid
  (default lr x ``--factors``); tuned = the lowest mean final validation loss over seeds.
* **law-opt**: two cheap fitting runs at the default lr (constant over T, and a cosine over
  T/2 with the same warm-up steps, "a short cosine": 1.5 runs of budget); the multi-power law
  (Luo et al. 2025) fitted on their training-loss traces; its optimal schedule
  (``steplab.analysis.law_optimal``, projected Adam) trained at default lr x ``--law-factors``
  (budget: 1.5 + len(law-factors) runs, at most the baselines' len(factors)).
* **law-bnd**: the same, with the convex bound fitted as a law instead (Schaipp et al. 2025,
  ``predict fit --law bound``; its gradient in ``law_optimal``).
* **law-bt**: the same, with the bound law's transient variant (``predict fit --law
  bound-transient``: its exponent fitted and an early transient ``C exp(-S1 / tau)``, so no
  start of the runs is left out).
* **law-ens**: the same fits; the best three laws by leave-one-schedule-out error
  (``steplab.analysis.law_select``: multi-power, bound, bound-transient, annealing at each
  lambda) as an ensemble,
  the schedule minimising their *worst* predicted final loss (robust to the choice of law);
  when the optimizer flags the optimum (a law extrapolated below its floor ``L0``,
  ``LawOptimal.suspect``) it falls back to the standard schedule the ensemble predicts best.
* **law-tgt** (for goal 2, steps to target; loss targets only): the bound-transient law fitted
  on the same runs; the target converted to the law's units (the training loss) by the median
  ratio of the evaluated metric to the law over the fitting runs' second halves; the law's
  optimal schedule for the shortest horizon ``h`` (a multiple of the evaluation cadence) at
  which it predicts the target, then that schedule's last LR until ``T``. Trained at the default lr only
  (the law knows no other; budget 2.5 runs). Each run stores its ``h`` (``law/target_horizon``):
  the law's prediction of the steps to target.
* **refined** (Defazio et al. 2023, the paper's closed form, l1 norms), **ref-mono** (its
  isotonic projection after linear's 5% warm-up) and **ref-iter** (refined again from the
  refined run's norms), each from the linear run at linear's tuned lr and trained at that lr
  (budget: linear's grid + 1 or 2 runs).

Printed per workload: each method's tuned lr, runs used per seed, final validation loss
(mean +- sd) and steps to target (median, seeds reached); then the ratio of each new method's
final loss to the best tuned standard schedule's and of its steps to tuned linear's, each with
a 90% bootstrap interval over seeds (``_sweep.ratio_ci``; ``~``: the interval holds 1, a tie).

Prediction (issue 26 goal 2, for free from the same runs): per seed, laws fitted on the two
fitting runs predict the final ``train/loss`` evaluation of the unseen default-lr runs: WSD and
linear at T, cosine at T (twice the short cosine's horizon), and (``--predict-extra``) REX and
step at T. Old: annealing (lambda 0.999) and multi-power, as ``steplab predict fit`` does;
new: the convex bound fitted as a law (``predict fit --law bound``) and its transient variant
(``--law bound-transient``), the leave-one-schedule-out
choice, and the share of observed losses inside its interval.

Runs are stored in ``--db`` (default ``benchmarks/out/beat.db``) and skipped when found, so a
killed run resumes. Usage::

    .venv/bin/python benchmarks/beat.py --quick          # logreg:kappa100 + charlm@300 (300 steps), 3 seeds
    .venv/bin/python benchmarks/beat.py --seeds 5 --procs 2 --predict-extra   # the full protocol
    .venv/bin/python benchmarks/beat.py --workloads shakespeare-char@1000 --quick --methods law-opt law-bt refined ref-iter
    .venv/bin/python benchmarks/beat.py --workloads shakespeare-char@1000 --seeds 5 --factors 0.5 1 2 \
        --law-factors 1 --methods law-bt refined ref-iter --procs 2        # 5 seeds, ~70 runs, ~45 min on 2 cores
    .venv/bin/python benchmarks/beat.py --predict-protocol charlm --seeds 3 --db benchmarks/out/predict.db
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path
from typing import Any

import _sweep  # benchmarks/_sweep.py, beside this script
import numpy as np

from steplab import schedules, workloads
from steplab.analysis import law_optimal, law_select, predict, refine
from steplab.analysis.refine_variants import monotone
from steplab.errors import SpecError
from steplab.store import open_store
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target

# workload -> (budget override, target override); the four workloads
WORKLOADS: dict[str, tuple[int | None, Target | None]] = {
    "charlm": (600, Target("validation/loss", 1.7, "min")),
    "shakespeare-char": (None, None),
    "mnist1d": (None, None),
    "logreg:kappa100": (None, None),
}
# --quick: a shorter charlm (300 steps, target 1.8) so the run fits ~20 minutes of one core
QUICK: dict[str, tuple[int | None, Target | None]] = {
    "logreg:kappa100": (None, None),
    "charlm@300": (300, Target("validation/loss", 1.8, "min")),
    # half the workload's 2,000 updates (a run is ~70 s here, not ~140 s); the target is
    # between the constant run's final 1.96 and tuned linear's 1.88 (benchmarks/predict.py's runs)
    "shakespeare-char@1000": (1000, Target("validation/loss", 1.95, "min")),
}
ALL = {**WORKLOADS, **QUICK}  # a key is a workload name, "@T" for a shortened one
TRAIN_EVAL = {"charlm": 16, "shakespeare-char": 8, "mnist1d": 10, "logreg:kappa100": 64}
STANDARD = {"cosine": "cosine:warmup=0.05", "linear": "linear:warmup=0.05",
            "wsd": "wsd:decay=0.2,shape=1-sqrt,warmup=0.05"}
FITS = {"fit-constant": ("constant:warmup=0.05", 1.0), "fit-cosine": ("cosine:warmup=0.1", 0.5)}
EXTRA = {"rex": "rex:warmup=0.05", "step": "step:milestones=[0.5,0.75],gamma=0.1,warmup=0.05"}
LAW_METHODS = ("law-opt", "law-bnd", "law-bt", "law-ens", "law-tgt")
#: the law each single-law method optimizes
METHOD_LAW = {"law-opt": "multipower", "law-bnd": "bound", "law-bt": "bound-transient"}
NEW = (*LAW_METHODS, "refined", "ref-mono", "ref-iter")
EVALS = 50


def _workload(key: str, budget: int | None = None) -> Any:
    """Workload ``key`` (of :data:`ALL`) with its budget (or ``budget``) and target."""
    steps, target = ALL[key]
    wl = workloads.get(key.split("@")[0], budget_steps=budget or steps, target=target)
    wl.evals_per_budget = EVALS
    return wl


#: bumped when the law-optimal optimizer changes, so stored law-* runs are redone
LAW_VERSION = 2
#: a method's own version where it changed alone (law-ens: the bound-transient candidate, and
#: candidates whose refit fails are skipped)
METHOD_VERSION = {"law-ens": 4}


def _label(key: str, method: str, lr: float, seed: int) -> str:
    tag = f"@v{METHOD_VERSION.get(method, LAW_VERSION)}" if method.startswith("law-") else ""
    return f"beat|{key}|{method}{tag}|lr={lr:.6g}|seed={seed}"


def _fit_runs(store: Any, key: str, lr: float, seed: int) -> list[predict.Run]:
    runs = []
    for m in FITS:
        t = _sweep.find(store, _label(key, m, lr, seed), status=("reached", "budget"))
        if t is None:
            raise RuntimeError(f"fitting run {m} of {key} seed {seed} is missing or diverged")
        runs.append(predict.load_run(store, t.id))
    return runs


def _targets_loss(key: str) -> bool:
    """Whether ``key``'s target is a loss to bring below a value (``law-tgt`` needs one)."""
    target = _workload(key).target
    return target.mode == "min" and target.metric.endswith("loss")


def _target_in_law_units(store: Any, runs: list[predict.Run], law: Any, wl: Any) -> float:
    """The workload's target (a validation loss) in the law's units (the training loss it was
    fitted on): divided by the median ratio of the evaluated metric to the law's prediction
    over the second half of each fitting run."""
    ratios = []
    for run in runs:
        rows = [(e.step, e.value) for e in store.evals(run.trial_id)
                if e.metric == wl.target.metric and e.step >= run.updates // 2]
        steps = np.array([s for s, _ in rows])
        pred = dataclasses.replace(law, warmup_steps=run.warmup_steps).predict(run.lrs[: run.updates], steps)
        ratios += [v / p for (_, v), p in zip(rows, pred) if np.isfinite(p) and p > 0]
    if not ratios:
        raise SpecError(f"no {wl.target.metric} evaluations in the second half of the fitting runs")
    return wl.target.value / statistics.median(ratios)


def _target_schedule(store: Any, runs: list[predict.Run], wl: Any, base_lr: float, w: int) -> tuple[dict[str, Any], dict[str, float]]:
    """``law-tgt``: the bound-transient law's optimal schedule for the shortest horizon ``h``
    (a multiple of the evaluation cadence) at which its predicted loss reaches the target,
    then that schedule's last LR until ``T`` (the run is meant to stop at the target)."""
    law = predict.fit_runs(runs, "bound-transient").law
    goal = _target_in_law_units(store, runs, law, wl)
    T, every = wl.budget_steps, max(1, wl.budget_steps // EVALS)
    h = next((h for h in range(w + 3 + every, T + 1, every)
              if law_optimal.optimize_schedule([law], h, base_lr, warmup_steps=w, iterations=300).predicted[0] <= goal), T)
    res = law_optimal.optimize_schedule([law], h, base_lr, warmup_steps=w, iterations=2000)
    mult = np.concatenate([res.multipliers, np.full(T - h, res.multipliers[-1])])
    extra = {"law/suspect": float(bool(res.suspect)), "law/predicted": res.predicted[0],
             "law/target_horizon": float(h), "law/target_in_law_units": goal}
    return law_optimal.piecewise_spec(mult, w).to_dict(), extra


def _law_schedule(store: Any, key: str, method: str, lr: float, seed: int, wl: Any) -> tuple[dict[str, Any], dict[str, float]]:
    base_lr = wl.default_hyperparameters["lr"]
    runs = _fit_runs(store, key, base_lr, seed)
    w = runs[0].warmup_steps
    if method == "law-tgt":
        return _target_schedule(store, runs, wl, base_lr, w)
    if method in METHOD_LAW:
        laws = [predict.fit_runs(runs, METHOD_LAW[method]).law]
        objective = "mean"
    else:
        laws = list(law_select.select(runs, ensemble=3).ensemble)
        objective = "worst"
    res = law_optimal.optimize_schedule(laws, wl.budget_steps, base_lr, warmup_steps=w, objective=objective,
                                        iterations=2000)
    best = min(res.standard, key=lambda k: max(res.standard[k]))
    extra = {"law/suspect": float(bool(res.suspect)), "law/predicted": max(res.predicted),
             "law/predicted_best_standard": max(res.standard[best])}
    if method == "law-ens" and res.suspect:  # the robust variant falls back to the best standard schedule
        return schedules.spec_from({**law_optimal.STANDARD[best], "warmup": w / wl.budget_steps}).to_dict(), extra
    return res.spec.to_dict(), extra


def _run(job: tuple) -> tuple[str, float]:
    db, key, method, lr, seed = job
    t0 = time.perf_counter()
    wl = _workload(key)
    spec: Any = None
    extra: dict[str, float] = {}
    with open_store(db) as store:
        if method in STANDARD or method in EXTRA:
            spec = STANDARD.get(method) or EXTRA[method]
        elif method in FITS:
            spec, frac = FITS[method]
            wl = _workload(key, max(3, round(frac * wl.budget_steps)))
        elif method in LAW_METHODS:
            spec, extra = _law_schedule(store, key, method, lr, seed, wl)
        else:
            src = "refined" if method == "ref-iter" else "linear"
            first = _sweep.find(store, _label(key, src, lr, seed), status=("reached", "budget"))
            if first is None:
                return _label(key, method, lr, seed), time.perf_counter() - t0
            warm = round(0.05 * wl.budget_steps) if method == "ref-mono" else 0
            r = refine.refine_trial(store, first.id, budget_steps=wl.budget_steps, warmup_steps=warm)
            spec = (monotone(r) if method == "ref-mono" else r).spec.to_dict()
        algo = dataclasses.replace(_sweep.algorithm_at("adamw-cosine", wl, lr),
                                   schedule=schedules.spec_from(spec).to_dict())
        cfg = TrainConfig(stop_at_target=False, threads=1, train_eval_batches=TRAIN_EVAL[key.split("@")[0]])
        run_trial(wl, algo, seed, store=store, config=cfg, name=_label(key, method, lr, seed), extra_metrics=extra)
    return _label(key, method, lr, seed), time.perf_counter() - t0


def _cell(db: str, key: str, method: str, lr: float, seeds: list[int]) -> _sweep.Cell:
    cell = _sweep.Cell([], [])
    with open_store(db) as store:
        for seed in seeds:
            t = _sweep.find(store, _label(key, method, lr, seed))
            ok = t is not None and t.status in ("reached", "budget")
            cell.steps.append(t.steps_to_target if ok else math.inf)
            loss = t.final_metrics.get("validation/loss", math.inf) if ok else math.inf
            cell.final_loss.append(loss if math.isfinite(loss) else math.inf)
    return cell


def _tuned(db: str, key: str, method: str, lrs: list[float], seeds: list[int]) -> tuple[float, _sweep.Cell]:
    """The lr with the lowest mean final validation loss (then fewest steps)."""
    cells = {lr: _cell(db, key, method, lr, seeds) for lr in lrs}
    return min(cells.items(), key=lambda kv: (statistics.fmean(kv[1].final_loss), kv[1].median_steps))


def _final_train(store: Any, trial_id: int) -> float:
    rows = [(r.step, r.value) for r in store.evals(trial_id) if r.metric == "train/loss"]
    return float(max(rows)[1]) if rows else math.nan


def _prediction(db: str, key: str, seeds: list[int], extra: bool) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Relative errors of the predicted final train/loss of unseen default-lr runs, and the
    number of seeds on which each law's fit was refused."""
    wl = _workload(key)
    lr, n = wl.default_hyperparameters["lr"], wl.budget_steps
    targets = dict(STANDARD, **(EXTRA if extra else {}))
    errs: dict[str, list[float]] = {"annealing(0.999)": [], "multipower": [], "bound": [], "bound-transient": [],
                                    "loso-choice": [], "in-interval": []}
    refused: dict[str, int] = {}  # law -> seeds whose fit was refused
    with open_store(db) as store:
        for seed in seeds:
            runs = _fit_runs(store, key, lr, seed)
            old = {}
            for m, law_name in (("annealing(0.999)", "annealing"), ("multipower", "multipower"),
                                ("bound", "bound"), ("bound-transient", "bound-transient")):
                try:
                    old[m] = predict.fit_runs(runs, law_name).law
                except SpecError:  # e.g. no parameters with positive losses fit (a loss falling to 0)
                    refused[m] = refused.get(m, 0) + 1
            sel = law_select.select(runs, ensemble=3)
            for name, spec in targets.items():
                t = _sweep.find(store, _label(key, name, lr, seed), status=("reached", "budget"))
                if t is None:
                    continue
                obs = _final_train(store, t.id)
                for m, law in old.items():
                    errs[m].append(abs(predict.final_loss(law, spec, n, lr) / obs - 1))
                iv = law_select.predict_interval(sel, spec, n, lr)
                errs["loso-choice"].append(abs(iv.point / obs - 1))
                errs["in-interval"].append(float(iv.low <= obs <= iv.high))
    return errs, refused


def predict_protocol(db: str, key: str, seeds: list[int]) -> None:
    """``benchmarks/predict.py``'s part 1 (its runs, labels and scoring: fit on constant + cosine
    at T, predict WSD, linear, REX, step at T and cosine at 2T, scored on ``train/loss``),
    with the old fits beside the leave-one-schedule-out choice (and its interval coverage)."""
    import predict as pbench  # benchmarks/predict.py

    from steplab.analysis.seeds import seed_interval

    steps, _ = pbench.STEPS[key]
    lr = pbench._lr(key)
    jobs = [(db, key, spec, steps, lr, s) for s in seeds for spec in pbench.FIT + pbench.UNSEEN]
    jobs += [(db, key, pbench.LONGER, 2 * steps, lr, s) for s in seeds]
    print(f"prediction protocol ({key}, T = {steps}): {len(jobs)} runs", flush=True)
    _sweep.execute(db, jobs, pbench._label, pbench._run, 1)
    rows: dict[str, dict[str, list[float]]] = {}
    cover: dict[str, list[float]] = {}
    with open_store(db) as store:
        for seed in seeds:
            ids = [_sweep.find(store, pbench._label(key, s, steps, lr, seed)).id for s in pbench.FIT]
            models: dict[str, Any] = {name: predict.fit_trials(store, ids, law, metric=metric, lam=lam).law
                                      for name, (law, metric, lam) in pbench.LAWS.items()}
            sels = {}
            for src, metric in (("trace", None), ("evals", "train/loss")):
                sel = law_select.select([predict.load_run(store, i, metric) for i in ids], ensemble=3)
                sels[f"loso {src}"] = sel
                models[f"loso {src} ({sel.chosen.label})"] = sel.law
            for spec, n in [(s, steps) for s in pbench.UNSEEN] + [(pbench.LONGER, 2 * steps)]:
                tid = _sweep.find(store, pbench._label(key, spec, n, lr, seed)).id
                at, observed = pbench._train_evals(store, tid)
                where = "2T" if n != steps else "T"
                for name, law in models.items():
                    f, _ = pbench._errors(predict.predict_curve(law, spec, n, lr), at, observed)
                    rows.setdefault(name.split(" (")[0], {}).setdefault(where, []).append(f)
                for name, sel in sels.items():  # the ensemble's mean prediction
                    mean = np.mean([predict.predict_curve(law, spec, n, lr) for law in sel.ensemble], axis=0)
                    f, _ = pbench._errors(mean, at, observed)
                    rows.setdefault(name.replace("loso", "ensemble"), {}).setdefault(where, []).append(f)
                for name, sel in sels.items():
                    iv = law_select.predict_interval(sel, spec, n, lr)
                    cover.setdefault(name, []).append(float(iv.low <= observed[-1] <= iv.high))
    print(f"relative error of the final train/loss, {key}, {len(seeds)} seed(s): mean [90% t-interval] (worst)")
    for name, by in rows.items():
        cells = []
        for where in ("T", "2T"):
            v = by.get(where, [])
            iv = seed_interval(v, 0.9) if len(v) > 1 else None
            cells.append(f"{where}: {np.mean(v):6.2%}" + (f" [{iv.low:6.2%}, {iv.high:6.2%}]" if iv else "")
                         + f" ({max(v):.2%})")
        print(f"  {name:22} " + "   ".join(cells))
    for name, v in cover.items():
        print(f"  {name} interval holds the observed final loss: {sum(v):.0f}/{len(v)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="*", default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--factors", type=float, nargs="*", default=[0.25, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--law-factors", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    parser.add_argument("--quick", action="store_true", help="logreg:kappa100 + charlm at 300 steps, 3 seeds, "
                        "lr grid x0.5/1/2, law schedules at the fitted lr only, no ref-iter on charlm")
    parser.add_argument("--predict-extra", action="store_true", help="also train REX and step at the default lr")
    parser.add_argument("--methods", nargs="*", default=None, help=f"only these new methods (of {', '.join(NEW)}; "
                        "ref-iter needs refined)")
    parser.add_argument("--db", default="benchmarks/out/beat.db")
    parser.add_argument("--plot", metavar="DIR", help="also draw each workload's schedules (seed 0) and mean "
                        "validation-loss curves of the tuned methods into DIR")
    parser.add_argument("--predict-protocol", metavar="WORKLOAD", help="instead: benchmarks/predict.py's part 1 on "
                        "WORKLOAD (charlm, digits-mlp, logreg) with the leave-one-schedule-out choice beside the old fits")
    args = parser.parse_args()
    if args.predict_protocol:
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        predict_protocol(args.db, args.predict_protocol, list(range(args.seeds)))
        return
    if args.quick:
        args.seeds = min(args.seeds, 3)
        args.factors, args.law_factors = [0.5, 1.0, 2.0], [1.0]
    keys = args.workloads or list(QUICK if args.quick else WORKLOADS)
    unknown = [k for k in keys if k not in ALL]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; use {sorted(ALL)}")
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    base = {k: float(_workload(k).default_hyperparameters["lr"]) for k in keys}
    grid = {k: [round(base[k] * f, 8) for f in args.factors] for k in keys}
    law_grid = {k: [round(base[k] * f, 8) for f in args.law_factors] for k in keys}
    chosen = NEW if args.methods is None else tuple(args.methods)
    if set(chosen) - set(NEW) or ("ref-iter" in chosen and "refined" not in chosen):
        raise SystemExit(f"--methods takes some of {', '.join(NEW)} (ref-iter with refined), got {' '.join(chosen)}")
    new = {k: [m for m in chosen if not (args.quick and k.startswith("charlm") and m == "ref-iter")
               and not (m == "law-tgt" and not _targets_loss(k))] for k in keys}
    laws_run = [m for m in LAW_METHODS if m in chosen]
    refs_run = [m for m in ("refined", "ref-mono") if m in chosen]

    phase1 = [(args.db, k, m, lr, s) for k in keys for s in seeds for m in STANDARD for lr in grid[k]]
    phase1 += [(args.db, k, m, base[k], s) for k in keys for s in seeds for m in FITS]
    if args.predict_extra:
        phase1 += [(args.db, k, m, base[k], s) for k in keys for s in seeds for m in EXTRA]
    print(f"phase 1: {len(phase1)} runs (baselines over the lr grid, fitting runs)", flush=True)
    _sweep.execute(args.db, phase1, _label, _run, args.procs)
    lin_lr = {k: _tuned(args.db, k, "linear", grid[k], seeds)[0] for k in keys}
    def law_lrs(method: str, key: str) -> list[float]:
        """law-tgt's horizon is predicted for the lr its law was fitted at: it runs there only."""
        return [base[key]] if method == "law-tgt" else law_grid[key]

    phase2 = [(args.db, k, m, lr, s) for k in keys for s in seeds for m in laws_run for lr in law_lrs(m, k) if m in new[k]]
    phase2 += [(args.db, k, m, lin_lr[k], s) for k in keys for s in seeds for m in refs_run]
    print(f"phase 2: {len(phase2)} runs (law-optimal, refined)", flush=True)
    _sweep.execute(args.db, phase2, _label, _run, args.procs)
    phase3 = [(args.db, k, "ref-iter", lin_lr[k], s) for k in keys for s in seeds if "ref-iter" in new[k]]
    print(f"phase 3: {len(phase3)} runs (iterated refinement)", flush=True)
    _sweep.execute(args.db, phase3, _label, _run, args.procs)

    n = len(seeds)
    nf = len(args.factors)
    budget = {**{m: nf for m in STANDARD}, **{m: 1.5 + len(args.law_factors) for m in LAW_METHODS}, "law-tgt": 2.5,
              "refined": nf + 1, "ref-mono": nf + 1, "ref-iter": nf + 2}
    summary: dict[str, list[tuple[str, float, float]]] = {m: [] for m in chosen}
    for k in keys:
        wl = _workload(k)
        print(f"\n{k}: T = {wl.budget_steps}, target {wl.target.metric} {wl.target.value:g}, {n} seeds, "
              f"default lr {base[k]:g}")
        print(f"  {'method':9} {'lr':>9} {'runs':>5} {'final val loss':>18} {'steps to target':>16}")
        tuned = {m: _tuned(args.db, k, m, grid[k], seeds) for m in STANDARD}
        tuned.update({m: _tuned(args.db, k, m, law_lrs(m, k), seeds) for m in laws_run if m in new[k]})
        tuned.update({m: (lin_lr[k], _cell(args.db, k, m, lin_lr[k], seeds)) for m in new[k] if m.startswith("ref")})
        for m, (lr, c) in tuned.items():
            print(f"  {m:9} {lr:9.4g} {budget[m]:5.1f} {_sweep.fmt_loss(c):>18} {_sweep.fmt_steps(c, n):>16}"
                  + (_law_note(args.db, k, m, lr, seeds) if m.startswith("law-") else ""))
        best_std = min(STANDARD, key=lambda m: statistics.fmean(tuned[m][1].final_loss))
        ref, lin = tuned[best_std][1], tuned["linear"][1]
        print(f"  ratios: final loss to the best tuned standard ({best_std}), steps to target to tuned linear; "
              "90% bootstrap over seeds, ~ = tie")
        for m in new[k]:
            c = tuned[m][1]
            floss = _sweep.ratio_ci(c.final_loss, ref.final_loss, stat="mean")
            steps = _sweep.ratio_ci(c.steps, lin.steps)
            if math.isinf(lin.median_steps):  # no ratio to a miss; not counted towards the goal
                summary[m].append((k, floss.high, math.nan))
                shown = f"n/a: tuned linear missed the target, {m} reached it on {c.reached}/{n} seeds"
            else:
                summary[m].append((k, floss.high, steps.high))
                shown = f"{steps.point:7.3f} {_sweep.fmt_ci(steps)}"
            print(f"  {m:9} final {floss.point:7.4f} {_sweep.fmt_ci(floss)}  steps {shown}")
        if args.plot:
            for path in plot_methods(args.db, k, {m: lr for m, (lr, _) in tuned.items()}, seeds, args.plot):
                print(f"  wrote {path}")
        errs, refused = _prediction(args.db, k, seeds, args.predict_extra)
        print(f"  prediction of unseen default-lr runs' final train/loss ({', '.join(STANDARD)}"
              f"{', ' + ', '.join(EXTRA) if args.predict_extra else ''}; cosine at 2x the fitted cosine's horizon):")
        for m, v in errs.items():
            if not v:
                continue
            if m == "in-interval":
                print(f"    observed inside the loso interval: {sum(v):.0f}/{len(v)}")
                continue
            iv = _seed_iv(v)
            print(f"    {m:17} mean {iv[0]:.2%} [{iv[1]:.2%}, {iv[2]:.2%}] worst {max(v):.2%}")
        for m, n_refused in refused.items():
            print(f"    {m}: fit refused on {n_refused}/{n} seeds (no parameters with positive losses)")
    print("\ngoals: final loss <= 0.99x the best tuned standard outside the interval; steps <= 0.9x linear's")
    for m, rows in summary.items():
        if rows:
            wins = sum(f <= 0.99 for _, f, _ in rows)
            fast = sum(s <= 0.9 for _, _, s in rows)
            known = sum(not math.isnan(s) for _, _, s in rows)
            print(f"  {m:9} final-loss goal on {wins}/{len(rows)} workloads; steps goal on {fast}/{known} "
                  "(workloads where tuned linear reached the target)")


def plot_methods(db: str, key: str, lrs: dict[str, float], seeds: list[int], out_dir: str) -> list[Path]:
    """Two figures of ``key``'s tuned methods (``lrs``: method -> its tuned lr): the LR
    schedule each trained (seed 0's stored trace) and the validation loss over updates, the
    mean over ``seeds`` of the runs at that lr (the last half of training, where they part)."""
    from steplab.report.plots import plot_lines

    lr_series: list[tuple[str, Any, Any, dict]] = []
    loss_series: list[tuple[str, Any, Any, dict]] = []
    with open_store(db) as store:
        for i, (method, lr) in enumerate(lrs.items()):
            style = {"color": f"C{i}", "linestyle": "-" if method in STANDARD else "--"}
            curves = []
            for seed in seeds:
                t = _sweep.find(store, _label(key, method, lr, seed), status=("reached", "budget"))
                if t is None:
                    continue
                if not lr_series or lr_series[-1][0] != method:
                    trace = store.steps(t.id)
                    lr_series.append((method, trace["step"] + 1, trace["lr"], style))
                rows = sorted((r.step, r.value) for r in store.evals(t.id) if r.metric == "validation/loss")
                curves.append(dict(rows))
            common = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
            if common:
                half = [s for s in common if s >= common[-1] // 2]
                mean = [statistics.fmean(c[s] for c in curves) for s in half]
                loss_series.append((f"{method} (lr {lr:g})", half, mean, style))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n, name = len(seeds), key.replace(":", "-").replace("@", "-")
    return [plot_lines(lr_series, out / f"beat-{name}-lr.png", ylabel="learning rate",
                       title=f"{key}: tuned schedules (seed 0); dashed: new methods"),
            plot_lines(loss_series, out / f"beat-{name}-loss.png", ylabel="validation loss",
                       title=f"{key}: validation loss, mean of {n} seeds, last half of training")]


def _law_note(db: str, key: str, method: str, lr: float, seeds: list[int]) -> str:
    """How many seeds' optima the optimizer flagged (a law extrapolated below its floor)."""
    with open_store(db) as store:
        found = [_sweep.find(store, _label(key, method, lr, s)) for s in seeds]
    flags = [t.final_metrics.get("law/suspect", 0.0) for t in found if t is not None]
    return f"   law extrapolated on {sum(flags):.0f}/{len(flags)} seeds" if any(flags) else ""


def _seed_iv(v: list[float]) -> tuple[float, float, float]:
    """Mean and 90% Student-t interval (``steplab.analysis.seeds.seed_interval``)."""
    from steplab.analysis.seeds import seed_interval

    iv = seed_interval(v, 0.9)
    return iv.point, iv.low, iv.high


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
