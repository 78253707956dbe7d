"""Four training-dynamics phenomena, reproduced with steplab's monitors (issue 23, part 3).

Every run goes through steplab's one training loop (``run_trial``) with monitors on
(``TrainConfig(monitors=...)``, the same as ``steplab run --monitor``), is stored in
``OUT/dynamics.db`` (``steplab dynamics NAME --db OUT/dynamics.db`` shows any of them) and is
read back from its trace (``steplab.analysis.dynamics_trace``). Three seeds per setting; an
interval is the mean over seeds with its 90% Student-t interval
(``steplab.analysis.seeds.seed_interval``).

* ``eos`` -- the edge of stability (Cohen et al. 2021, "Gradient Descent on Neural Networks
  Typically Occurs at the Edge of Stability"): full-batch gradient descent on a tanh MLP
  64-64-64-10 (torch's default init) with Cohen's loss, ``1/2 sum_k (f_k - onehot_k)^2``
  averaged over examples, on the first 512 images of sklearn's 8x8 digits (standardized),
  at lr 0.25, 0.4 and 0.6 (2/lr = 8, 5, 3.3, all above the initial sharpness 2.4 and below
  what the run would sharpen to); the sharpness (``sharpness``: Lanczos on the full batch)
  every 40 steps. Claim: it rises to ~2/lr and hovers there: the median of sharpness /
  (2/lr) over the measurements after it first reaches 0.95 x 2/lr lies in [0.9, 1.2] (the
  spec sheet's smoke test). Control: lr 0.05 (2/lr = 40) never gets there.
* ``gns`` -- the gradient noise scale grows as the loss falls (McCandlish et al. 2018, "An
  Empirical Model of Large-Batch Training", §3): digits-mlp with its calibrated AdamW
  baseline, ``gns`` (B_small = 64, B_big = 512 of the 1400 training images, finite-population
  corrected) every 20 steps beside ``train/loss`` on 8 fixed batches. Reported: Spearman's
  rank correlation between B_simple and the training loss over the run (claim: negative)
  and B_simple late / early (the mean of the last three measurements over the first three
  after the EMA's first). The estimator itself recovers a planted noise scale on linear
  regression in ``tests/test_monitors.py``.
* ``grok`` -- grokking on modarith (p = 97, 30% of pairs; AdamW lr 0.03, betas (0.9, 0.98),
  warm-up 5% + cosine over 1500 steps, stopping at 0.95 validation accuracy): the grokking
  delay (``grokking:threshold=0.95``: the first measured steps, every 20, at which training
  and validation accuracy reach 0.95) against weight decay (Power et al. 2022: the strongest
  lever) and against the initialization scale (``modarith:init-x<s>``; Kumar et al. 2023,
  "Grokking as the transition from lazy to rich training dynamics": a larger scale starts
  lazier and groks later; Liu et al. 2023, "Omnigrok"); with the relative weight change at
  the fit (``laziness``) and the Fourier sparsity (IPR of the neurons, Doshi et al. 2023)
  at the fit and at the jump of the validation accuracy (claim: it rises as validation
  accuracy jumps; Spearman correlation between IPR and validation accuracy over the run).
* ``grok-alpha`` -- Kumar et al.'s own knob (part c2): ``modarith:p59+alpha-<a>`` (output
  ``a * (f - f0)``, squared error), full-batch SGD at lr 0.05/a^2, 1000 steps, a from 1/16
  to 2; t_fit, t_grok, delay and the relative weight change at the fit.
* ``logits`` -- attention-logit growth (Wortsman et al. 2023, "Small-scale proxies for
  large-scale Transformer training instabilities", §3.1; Zhai et al. 2023, entropy
  collapse): charlm at a high learning rate (AdamW lr 0.3, 15x the calibrated 0.02, warm-up
  5% + cosine over 200 steps) without and with qk-layernorm; ``logits`` every 20 steps.
  Claim: without qk-ln the largest attention logit grows by orders of magnitude and the
  attention entropy collapses toward 0; with it both stay bounded.

Figures go to ``OUT`` (default ``benchmarks/out/dynamics/``): ``eos.png``, ``gns.png``,
``grokking.png``, ``logits.png``; the numbers to ``OUT/summary.json``. One thread; a run found
finished in the database under its name is not run again (a killed benchmark resumes).
Usage::

    .venv/bin/python benchmarks/dynamics.py             # all four, 3 seeds
    .venv/bin/python benchmarks/dynamics.py --quick     # a smoke run: short budgets, 1 seed
    .venv/bin/python benchmarks/dynamics.py eos grok --out /tmp/dyn
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from steplab import algorithms, workloads
from steplab.analysis.dynamics_trace import DynamicsTrace, dynamics_trace
from steplab.analysis.seeds import seed_interval
from steplab.store import open_store
from steplab.training.config import TrainConfig
from steplab.training.loop import run_trial
from steplab.workloads.base import Target, Workload

PARTS = ("eos", "gns", "grok", "grok-alpha", "logits")
LEVEL = 0.9


# ------------------------------------------------------------------------ shared helpers
def run(store: Any, name: str, wl: Any, algo: Any, seed: int, **cfg: Any) -> tuple[DynamicsTrace, list[Any], Any]:
    """The trial named ``name`` (trained now unless found finished): its monitors, its
    evaluation rows and its result."""
    found = store.list_trials(name=name, status=("reached", "budget", "diverged", "failed"))
    if found:
        t = found[-1]
    else:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a monitor that does not apply says so once
            t = run_trial(wl, algo, seed, store=store, name=name, config=TrainConfig(threads=1, **cfg))
        print(f"  {name}: {t.status}, {t.steps} steps, {time.perf_counter() - start:.1f} s", flush=True)
    evals = store.evals(t.id)
    return dynamics_trace(evals, store.steps(t.id)), evals, t


def ci(values: Sequence[float], fmt: str = "{:.3g}") -> str:
    """``mean [low, high]`` over seeds (90% t-interval); ``n/a`` without finite values."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "n/a"
    iv = seed_interval(finite, LEVEL)
    if len(finite) < 2:
        return fmt.format(iv.point)
    tail = "" if len(finite) == len(values) else f" ({len(finite)}/{len(values)} seeds)"
    return f"{fmt.format(iv.point)} [{fmt.format(iv.low)}, {fmt.format(iv.high)}]{tail}"


def interval(values: Sequence[float]) -> dict[str, float]:
    finite = [v for v in values if math.isfinite(v)]
    iv = seed_interval(finite, LEVEL) if finite else None
    return {"mean": iv.point, "low": iv.low, "high": iv.high, "n": len(finite)} if iv else {"n": 0}


def series(trace: DynamicsTrace, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one monitor metric where it was measured."""
    values = np.asarray(trace.values.get(key, [math.nan] * len(trace.steps)), dtype=float)
    steps = np.asarray(trace.steps, dtype=float)
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def eval_series(evals: Sequence[Any], metric: str) -> dict[int, float]:
    return {int(e.step): float(e.value) for e in evals if e.metric == metric}


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def figure(rows: int, cols: int, width: float = 5.2, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=110, squeeze=False)


def save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"  wrote {path}")


# ------------------------------------------------------------------------ (a) edge of stability
class EoSDigits(Workload):
    """Full-batch regression of one-hot digit labels with Cohen et al.'s MSE (module doc)."""

    name = "eos-digits"
    description = "full-batch GD, tanh MLP 64-64-64-10, MSE on 512 sklearn digits (Cohen et al. 2021)"
    evals_per_budget = 4
    N_TRAIN, WIDTH = 512, 64
    _cache: dict[str, tuple[torch.Tensor, ...]] = {}

    @property
    def default_budget_steps(self) -> int:
        return 1200

    @property
    def default_target(self) -> Target:
        return Target("validation/loss", 0.0, "min")

    @property
    def batch_size(self) -> int:
        return self.N_TRAIN

    def _data(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if str(device) not in self._cache:
            from sklearn.datasets import load_digits

            x_all, y_all = load_digits(return_X_y=True)
            x = torch.tensor(x_all, dtype=torch.float32)
            mean, std = x[: self.N_TRAIN].mean(0), x[: self.N_TRAIN].std(0) + 1e-6
            x = (x - mean) / std
            onehot = nn.functional.one_hot(torch.tensor(y_all), 10).float()
            n = self.N_TRAIN
            self._cache[str(device)] = tuple(t.to(device) for t in (x[:n], onehot[:n], x[n:], onehot[n:]))
        return self._cache[str(device)]

    def init_model(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            w = self.WIDTH
            return nn.Sequential(nn.Linear(64, w), nn.Tanh(), nn.Linear(w, w), nn.Tanh(), nn.Linear(w, 10))

    def batches(self, seed: int, device: torch.device) -> Iterator[Any]:
        x, y, _, _ = self._data(device)
        while True:  # full batch: every step (and the probe) sees the whole training set
            yield x, y

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        return 0.5 * (model(x) - y).square().sum(1).mean()

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        x_tr, y_tr, x, y = self._data(device)
        with torch.no_grad():
            return {"validation/loss": float(self.loss(model, (x, y))),
                    "validation/accuracy": float((model(x).argmax(1) == y.argmax(1)).float().mean()),
                    "validation/train_loss": float(self.loss(model, (x_tr, y_tr)))}


def eos(store: Any, seeds: Sequence[int], quick: bool, out: Path) -> dict[str, Any]:
    budget, every = (300, 20) if quick else (1200, 40)
    lrs = (0.25, 0.4, 0.6, 0.05)
    summary: dict[str, Any] = {}
    rows = []
    fig, axes = figure(1, len(lrs))
    for ax, lr in zip(axes[0], lrs):
        algo = algorithms.Algorithm(name="gd", optimizer="sgd", lr=lr, schedule={"name": "constant"}).resolved()
        edge = 2 / lr
        reached, ratios, peaks, losses = [], [], [], []
        for seed in seeds:
            wl = EoSDigits(budget_steps=budget)
            trace, evals, _ = run(store, f"eos/lr={lr:g}/seed={seed}/steps={budget}", wl, algo, seed,
                                  stop_at_target=False, monitors=("sharpness",), monitor_every=every)
            steps, sharp = series(trace, "sharpness")
            at = np.flatnonzero(sharp >= 0.95 * edge)
            reached.append(float(steps[at[0]]) if at.size else math.inf)
            later = sharp[at[0] + 1:] if at.size else np.array([])
            ratios.append(float(np.median(later)) / edge if later.size else math.nan)
            peaks.append(float(sharp.max()) / edge)
            losses.append(eval_series(evals, "validation/train_loss").get(budget, math.nan))
            ax.plot(steps, sharp, alpha=0.8, label=f"seed {seed}")
        ax.axhline(edge, color="k", linestyle="--", linewidth=1, label="2/lr")
        ax.set_title(f"GD lr {lr:g}")
        ax.set_xlabel("step")
        ax.set_ylabel("sharpness")
        ax.legend(fontsize=7)
        n_reach = sum(math.isfinite(r) for r in reached)
        rows.append([f"{lr:g}", f"{edge:.3g}", f"{n_reach}/{len(seeds)}", ci(reached, "{:.0f}"), ci(ratios),
                     ci(peaks), ci(losses, "{:.3g}")])
        summary[f"lr={lr:g}"] = {"two_over_lr": edge, "reached": n_reach, "steps_to_edge": interval(reached),
                                 "median_ratio_after": interval(ratios), "max_ratio": interval(peaks),
                                 "final_train_loss": interval(losses)}
    print_table(f"(a) edge of stability: full-batch GD, tanh MLP, MSE, {budget} steps, sharpness every {every}",
                ["lr", "2/lr", "reached 0.95x2/lr", "step reached", "median S/(2/lr) after", "max S/(2/lr)",
                 "final train loss"], rows)
    save(fig, out / "eos.png")
    return summary


# ------------------------------------------------------------------------ (b) gradient noise scale
def gns(store: Any, seeds: Sequence[int], quick: bool, out: Path) -> dict[str, Any]:
    budget, every = (120, 20) if quick else (400, 20)
    wl = workloads.get("digits-mlp", budget_steps=budget)
    wl.evals_per_budget = budget // every
    algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters(dict(wl.default_hyperparameters))
    rhos, early, late, ratio, loss_early, loss_late = [], [], [], [], [], []
    fig, axes = figure(1, 2)
    for seed in seeds:
        trace, evals, _ = run(store, f"gns/digits/seed={seed}/steps={budget}", wl, algo, seed, stop_at_target=False,
                              monitors=("gns:batches=8:population=1400",), monitor_every=every, train_eval_batches=8)
        steps, b = series(trace, "gns/b_simple")
        loss = eval_series(evals, "train/loss")
        pairs = [(s, v, loss[int(s)]) for s, v in zip(steps, b) if int(s) in loss and s > 0]
        s_, b_, l_ = (np.array(x) for x in zip(*pairs))
        rhos.append(float(stats.spearmanr(b_, l_).statistic))
        k = max(1, min(3, len(b_) // 3))
        early.append(float(b_[:k].mean()))
        late.append(float(b_[-k:].mean()))
        ratio.append(late[-1] / early[-1])
        loss_early.append(float(l_[:k].mean()))
        loss_late.append(float(l_[-k:].mean()))
        axes[0][0].plot(s_, b_, marker="o", markersize=3, label=f"seed {seed}")
        axes[0][1].loglog(l_, b_, marker="o", markersize=3, label=f"seed {seed}")
    axes[0][0].set(xlabel="step", ylabel="B_simple (examples)", title="gradient noise scale, digits-mlp")
    axes[0][1].set(xlabel="train loss", ylabel="B_simple (examples)", title="B_simple against the loss")
    for ax in axes[0]:
        ax.legend(fontsize=7)
    print_table(f"(b) gradient noise scale: digits-mlp, AdamW, {budget} steps, gns every {every} (B_s 64, B_b 512)",
                ["Spearman(B_simple, train loss)", "B_simple early", "B_simple late", "late / early",
                 "train loss early", "train loss late"],
                [[ci(rhos), ci(early), ci(late), ci(ratio), ci(loss_early), ci(loss_late)]])
    save(fig, out / "gns.png")
    return {"spearman_bsimple_loss": interval(rhos), "b_simple_early": interval(early), "b_simple_late": interval(late),
            "late_over_early": interval(ratio), "train_loss_early": interval(loss_early),
            "train_loss_late": interval(loss_late)}


# ------------------------------------------------------------------------ (c) grokking
def grok(store: Any, seeds: Sequence[int], quick: bool, out: Path) -> dict[str, Any]:
    budget, every, lr = (200, 20, 0.03) if quick else (1500, 20, 0.03)
    settings = [("base", 0.5), ("base", 1.0), ("base", 2.0), ("init-x2", 1.0), ("init-x4", 1.0)]
    summary: dict[str, Any] = {}
    rows = []
    fig, axes = figure(1, len(settings))
    for ax, (variant, wd) in zip(axes[0], settings):
        wl = workloads.get("modarith", variant, budget_steps=budget)
        wl.evals_per_budget = budget // every
        algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters(
            {"lr": lr, "weight_decay": wd, "beta2": 0.98})
        fit, gen, delay, lazy, ipr_fit, ipr_gen, rho = [], [], [], [], [], [], []
        for seed in seeds:
            trace, _, _ = run(store, f"grok/{variant}/wd={wd:g}/lr={lr:g}/seed={seed}/steps={budget}", wl, algo, seed,
                              monitors=("grokking:threshold=0.95", "laziness:per_layer=false"), monitor_every=every)
            steps, val = series(trace, "grokking/val_accuracy")
            _, train = series(trace, "grokking/train_accuracy")
            _, ipr = series(trace, "grokking/ipr_neurons")
            _, laz = series(trace, "laziness")
            hit_fit, hit_gen = np.flatnonzero(train >= 0.95), np.flatnonzero(val >= 0.95)
            fit.append(float(steps[hit_fit[0]]) if hit_fit.size else math.inf)
            gen.append(float(steps[hit_gen[0]]) if hit_gen.size else math.inf)
            delay.append(gen[-1] - fit[-1] if hit_fit.size and hit_gen.size else math.inf)
            lazy.append(float(laz[hit_fit[0]]) if hit_fit.size else math.nan)
            ipr_fit.append(float(ipr[hit_fit[0]]) if hit_fit.size else math.nan)
            ipr_gen.append(float(ipr[hit_gen[0]]) if hit_gen.size else math.nan)
            rho.append(float(stats.spearmanr(ipr, val).statistic) if len(ipr) > 2 else math.nan)
            if seed == seeds[0]:
                ax.plot(steps, train, label="train accuracy")
                ax.plot(steps, val, label="validation accuracy")
                twin = ax.twinx()
                twin.plot(steps, ipr, color="tab:red", linestyle=":", label="IPR (neurons)")
                twin.set_ylabel("Fourier IPR", color="tab:red")
        ax.set(title=f"modarith {variant}, wd {wd:g} (seed {seeds[0]})", xlabel="step", ylabel="accuracy")
        ax.legend(fontsize=7, loc="center right")
        n_gen = sum(math.isfinite(g) for g in gen)
        label = f"{variant} wd={wd:g}"
        rows.append([label, f"{n_gen}/{len(seeds)}", ci(fit, "{:.0f}"), ci(gen, "{:.0f}"), ci(delay, "{:.0f}"),
                     ci(lazy), ci(ipr_fit), ci(ipr_gen), ci(rho, "{:.2f}")])
        summary[label] = {"grokked": n_gen, "fit_step": interval(fit), "generalize_step": interval(gen),
                          "delay": interval(delay), "laziness_at_fit": interval(lazy), "ipr_at_fit": interval(ipr_fit),
                          "ipr_at_generalize": interval(ipr_gen), "spearman_ipr_val": interval(rho)}
    print_table(f"(c) grokking: modarith, AdamW lr {lr:g}, cosine over {budget} steps, monitors every {every}",
                ["setting", "grokked", "t_fit (train 0.95)", "t_grok (val 0.95)", "delay", "laziness at t_fit",
                 "IPR at t_fit", "IPR at t_grok", "Spearman(IPR, val acc)"], rows)
    save(fig, out / "grokking.png")
    return summary


# ------------------------------------------------------------------------ (c2) grokking against Kumar's alpha
class FullBatchModArith(workloads.modarith.ModArith):
    """A modarith variant trained full batch (every step sees all training pairs)."""

    @property
    def batch_size(self) -> int:
        return len(self.train_set(torch.device("cpu"))[1])


def grok_alpha(store: Any, seeds: Sequence[int], quick: bool, out: Path) -> dict[str, Any]:
    """Kumar et al. 2023's setting: ``modarith:p59+alpha-<a>`` (output ``a * (f - f0)``,
    squared error to the one-hot label), full-batch SGD without momentum or decay at constant
    ``lr = LR1 / a^2`` (their ``100 / a^2``; the early function-space dynamics are the same for
    every ``a``, the weights move ``1/a`` as far). Claim: a larger ``a`` starts lazier (smaller
    relative weight change at the fit) and groks later."""
    budget, every, lr1 = (100, 20, 0.05) if quick else (1000, 20, 0.05)
    alphas = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)
    summary: dict[str, Any] = {}
    rows = []
    fig, axes = figure(2, len(alphas) // 2)
    for ax, alpha in zip(axes.flat, alphas):
        wl = FullBatchModArith(f"p59+alpha-{alpha:g}", budget_steps=budget)
        wl.evals_per_budget = budget // every
        lr = lr1 / alpha**2
        algo = algorithms.Algorithm(name="gd", optimizer="sgd", lr=lr, schedule={"name": "constant"}).resolved()
        fit, gen, delay, lazy_fit, lazy_end, val_end = [], [], [], [], [], []
        for seed in seeds:
            trace, _, _ = run(store, f"grok-alpha/p59/alpha={alpha:g}/lr={lr:g}/seed={seed}/steps={budget}", wl, algo,
                              seed, monitors=("grokking:threshold=0.95", "laziness:per_layer=false"),
                              monitor_every=every)
            steps, val = series(trace, "grokking/val_accuracy")
            _, train = series(trace, "grokking/train_accuracy")
            _, laz = series(trace, "laziness")
            hit_fit, hit_gen = np.flatnonzero(train >= 0.95), np.flatnonzero(val >= 0.95)
            fit.append(float(steps[hit_fit[0]]) if hit_fit.size else math.inf)
            gen.append(float(steps[hit_gen[0]]) if hit_gen.size else math.inf)
            delay.append(gen[-1] - fit[-1] if hit_fit.size and hit_gen.size else math.inf)
            lazy_fit.append(float(laz[hit_fit[0]]) if hit_fit.size else math.nan)
            lazy_end.append(float(laz[-1]))
            val_end.append(float(val[-1]))
            if seed == seeds[0]:
                ax.plot(steps, train, label="train accuracy")
                ax.plot(steps, val, label="validation accuracy")
                twin = ax.twinx()
                twin.plot(steps, laz, color="tab:red", linestyle=":", label="laziness")
                twin.set_ylabel("relative weight change", color="tab:red")
        ax.set(title=f"p59 alpha {alpha:g}, SGD lr {lr:g} (seed {seeds[0]})", xlabel="step", ylabel="accuracy")
        ax.legend(fontsize=7, loc="center right")
        n_fit, n_gen = sum(math.isfinite(f) for f in fit), sum(math.isfinite(g) for g in gen)
        label = f"alpha={alpha:g}"
        rows.append([label, f"{lr:g}", f"{n_fit}/{len(seeds)}", f"{n_gen}/{len(seeds)}", ci(fit, "{:.0f}"),
                     ci(gen, "{:.0f}"), ci(delay, "{:.0f}"), ci(lazy_fit), ci(lazy_end), ci(val_end)])
        summary[label] = {"lr": lr, "fitted": n_fit, "grokked": n_gen, "fit_step": interval(fit),
                          "generalize_step": interval(gen), "delay": interval(delay),
                          "laziness_at_fit": interval(lazy_fit), "laziness_at_end": interval(lazy_end),
                          "val_accuracy_at_end": interval(val_end)}
    print_table(f"(c2) grokking against Kumar's alpha: modarith p59, output alpha*(f-f0), squared error, full-batch "
                f"SGD lr {lr1:g}/alpha^2, {budget} steps, monitors every {every}",
                ["setting", "lr", "fitted", "grokked", "t_fit (train 0.95)", "t_grok (val 0.95)", "delay",
                 "laziness at t_fit", f"laziness at {budget}", f"val acc at {budget}"], rows)
    save(fig, out / "grokking-alpha.png")
    return summary


# ------------------------------------------------------------------------ (d) attention logits
def logits(store: Any, seeds: Sequence[int], quick: bool, out: Path) -> dict[str, Any]:
    budget, every, lr = (60, 10, 0.3) if quick else (200, 20, 0.3)
    summary: dict[str, Any] = {}
    rows = []
    fig, axes = figure(1, 2)
    for variant in ("base", "qk-ln"):
        wl = workloads.get("charlm", variant, budget_steps=budget)
        wl.evals_per_budget = 4
        algo = algorithms.get_algorithm("adamw-cosine").with_hyperparameters({"lr": lr, "weight_decay": 0.01})
        start, peak, ent0, ent_end, ent_min, final = [], [], [], [], [], []
        for seed in seeds:
            trace, evals, _ = run(store, f"logits/{variant}/lr={lr:g}/seed={seed}/steps={budget}", wl, algo, seed,
                                  stop_at_target=False, monitors=("logits",), monitor_every=every)
            steps, top = series(trace, "logits/attn_max/0")
            _, ent = series(trace, "logits/attn_entropy/0")
            start.append(float(top[0]))
            peak.append(float(top.max()))
            ent0.append(float(ent[0]))
            ent_end.append(float(ent[-1]))
            ent_min.append(float(ent.min()))
            final.append(eval_series(evals, "validation/loss").get(budget, math.nan))
            axes[0][0].semilogy(steps, top, color="tab:red" if variant == "base" else "tab:blue", alpha=0.8,
                                label=f"{variant} seed {seed}")
            axes[0][1].plot(steps, ent, color="tab:red" if variant == "base" else "tab:blue", alpha=0.8,
                            label=f"{variant} seed {seed}")
        rows.append([variant, ci(start), ci(peak), ci([math.log10(p) for p in peak], "{:.2f}"), ci(ent0), ci(ent_end),
                     ci(final)])
        summary[variant] = {"attn_max_start": interval(start), "attn_max_peak": interval(peak),
                            "log10_attn_max_peak": interval([math.log10(p) for p in peak]),
                            "entropy_start": interval(ent0), "entropy_end": interval(ent_end),
                            "entropy_min": interval(ent_min), "final_validation_loss": interval(final)}
    axes[0][0].set(xlabel="step", ylabel="max attention logit", title=f"charlm, AdamW lr {lr:g}")
    axes[0][1].set(xlabel="step", ylabel="attention entropy (nats)", title="attention entropy (nats)")
    for ax in axes[0]:
        ax.legend(fontsize=6)
    print_table(f"(d) attention logits: charlm, AdamW lr {lr:g}, {budget} steps, logits every {every}",
                ["variant", "max attn logit at 0", "peak max attn logit", "log10 peak", "attn entropy at 0",
                 "attn entropy at end", "final val loss"], rows)
    save(fig, out / "logits.png")
    return summary


def finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", default=list(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: short budgets, one seed")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per setting (default 3; --quick: 1)")
    parser.add_argument("--out", default="benchmarks/out/dynamics", help="folder for the figures, database, summary")
    args = parser.parse_args()
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds if args.seeds is not None else 1 if args.quick else 3))
    db = out / ("dynamics-quick.db" if args.quick else "dynamics.db")
    summary_path = out / ("summary-quick.json" if args.quick else "summary.json")
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    parts = {"eos": eos, "gns": gns, "grok": grok, "grok-alpha": grok_alpha, "logits": logits}
    with open_store(db) as store:
        for part in args.parts:
            start = time.perf_counter()
            summary[part] = parts[part](store, seeds, args.quick, out)
            summary[part]["wall_s"] = round(time.perf_counter() - start, 1)
            print(f"  ({part}: {summary[part]['wall_s']:.0f} s)", flush=True)
    summary_path.write_text(json.dumps(finite(summary), indent=2) + "\n")
    print(f"\nwrote {summary_path}; runs in {db} (steplab dynamics NAME --db {db})")


if __name__ == "__main__":
    main()
