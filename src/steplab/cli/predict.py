"""``steplab predict``: loss-curve laws, the convex bound, horizon transfer, cooldowns.

Thin commands over :mod:`steplab.analysis.predict`, :mod:`steplab.analysis.laws` and
:mod:`steplab.analysis.bound`."""

from __future__ import annotations

import math

import typer
from rich.table import Table

from steplab.cli.common import DbOption, console, friendly
from steplab.cli.refs import trial_ids as trial_refs
from steplab.errors import SpecError

predict_app = typer.Typer(help="Predict a schedule's loss curve, bound, best LR and cooldown before training.",
                          no_args_is_help=True)


def _number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"{option} must be a number or 'fit', got {text!r}") from None


@predict_app.command("fit")
@friendly
def fit_cmd(
    refs: list[str] = typer.Argument(..., metavar="TRIAL...", help="One or two trials, by id or name (e.g. a constant and a cosine run)."),
    law: str = typer.Option("annealing", "--law", help="annealing (Tissue et al. 2024), multipower (Luo et al. 2025), "
                            "bound (the convex bound of Schaipp et al. 2025 fitted as a law) or bound-transient (the bound "
                            "with its exponent fitted and an early transient term; needs no --start)."),
    lam: str = typer.Option("0.999", "--lambda", help="Annealing law: momentum decay of the annealing area S2, "
                            "or 'fit' to pick it from 0.9..0.999 by the fit residual (short runs)."),
    include_warmup: bool = typer.Option(False, "--include-warmup", help="Annealing law: count warm-up steps in the areas."),
    start: float | None = typer.Option(None, "--start", help="Leave out the first share of each run from the fit "
                                       "(default: 0.1 for bound, 0 for the others)."),
    metric: str | None = typer.Option(None, "--metric", help="Fit an evaluated metric (e.g. train/loss, validation/loss) "
                                      "instead of the per-step training loss."),
    out: str = typer.Option("law.json", "--out", "-o", help="Write the fitted law here."),
    plot: str | None = typer.Option(None, "--plot", help="Plot observed and fitted curves to this PNG."),
    db: DbOption = None,
) -> None:
    """Fit a loss-curve law on the training-loss traces (or evaluations) of recorded runs."""
    import numpy as np

    from steplab.analysis import predict
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        trial_ids = trial_refs(store, refs)
        runs = [predict.load_run(store, t, metric) for t in trial_ids]
    fitted = predict.fit_runs(runs, law, lam=lam if lam == "fit" else _number("--lambda", lam),
                              include_warmup=include_warmup, start=start)
    fitted.save(out)
    params = {k: v for k, v in fitted.law.to_dict().items() if k != "law"}
    console.print(f"fitted the {law} law on trial(s) {', '.join(map(str, trial_ids))} ({fitted.n_points} points): "
                  + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items()),
                  highlight=False)
    console.print(f"  fit residual (Huber on log loss) {fitted.residual:.3g}; RMS log error {fitted.rmse_log:.3%}"
                  + (f"; the first {fitted.start:.0%} of each run left out" if fitted.start else ""), highlight=False)
    fitted_part = predict.fit_curves(runs, fitted.start)  # the points the law was fitted on
    for r, c in zip(runs, fitted_part, strict=True):
        pred = fitted.law.predict(c.lrs, c.steps)
        ok = np.isfinite(pred)
        err = np.abs(pred[ok] / c.losses[ok] - 1)
        console.print(f"  trial {r.trial_id}: mean relative error {err.mean():.2%}, at the end {err[-1]:.2%}")
    console.print(f"wrote {out}")
    if plot:
        from steplab.report.plots import plot_lines

        series = []
        for i, (r, part) in enumerate(zip(runs, fitted_part, strict=True)):
            c = r.curve()
            series.append((f"trial {r.trial_id}" + (" (smoothed)" if metric is None else ""), c.steps, c.losses,
                           {"color": f"C{i}", "alpha": 0.5}))
            series.append((f"trial {r.trial_id} fit", part.steps, fitted.law.predict(part.lrs, part.steps),
                           {"color": f"C{i}", "ls": "--"}))
        console.print(f"wrote {plot_lines(series, plot, ylabel=metric or 'training loss', title=f'{law} law fit', logy=True)}")


@predict_app.command("curve")
@friendly
def curve_cmd(
    law_file: str = typer.Argument(..., help="A law written by `steplab predict fit`."),
    schedule: list[str] = typer.Option(..., "--schedule", "-s", help="Schedule spec (repeat for several)."),
    budget_steps: int = typer.Option(..., "--steps", min=2, help="Run length in updates."),
    lr: float | None = typer.Option(None, "--lr", help="Peak LR (default: the fitted runs' peak)."),
    out: str | None = typer.Option(None, "--out", "-o", help="Plot the predicted curves to this PNG."),
) -> None:
    """Predict the training-loss curve of one or more schedules."""
    import numpy as np

    from steplab import schedules
    from steplab.analysis import predict

    fitted = predict.load_law(law_file)
    peak = lr if lr is not None else fitted.peak_lr
    table = Table(title=f"predicted training loss, {budget_steps} steps, peak lr {peak:.3g}")
    table.add_column("schedule", overflow="fold")
    for frac in ("25%", "50%", "75%", "end"):
        table.add_column(frac, justify="right")
    series = []
    for i, s in enumerate(schedule):
        spec = schedules.spec_from(s)
        curve = predict.predict_curve(fitted.law, spec, budget_steps, peak)
        picks = [curve[max(0, int(f * budget_steps) - 1)] for f in (0.25, 0.5, 0.75)] + [curve[-1]]
        table.add_row(str(spec), *[f"{v:.4g}" if math.isfinite(v) else "—" for v in picks])
        series.append((str(spec), np.arange(1, budget_steps + 1), curve, {"color": f"C{i}"}))
    console.print(table)
    if out:
        from steplab.report.plots import plot_lines

        console.print(f"wrote {plot_lines(series, out, ylabel='predicted training loss', title='predicted loss curves')}")


@predict_app.command("best")
@friendly
def best_cmd(
    law_file: str = typer.Argument(..., help="A law written by `steplab predict fit`."),
    family: str = typer.Option("wsd", "--family", help="wsd, cosine, linear, polynomial or rex."),
    budget_steps: int = typer.Option(..., "--steps", min=2, help="Run length in updates."),
    lr: float | None = typer.Option(None, "--lr", help="Peak LR (default: the fitted runs' peak)."),
    warmup: float = typer.Option(0.0, "--warmup", help="Warm-up fraction added to every candidate."),
    top: int = typer.Option(5, "--top", min=1, help="Show this many."),
) -> None:
    """Search a schedule family's parameters for the lowest predicted final loss."""
    from steplab.analysis import predict

    fitted = predict.load_law(law_file)
    peak = lr if lr is not None else fitted.peak_lr
    ranked = predict.best_in_family(fitted.law, family, budget_steps, peak, warmup=warmup)
    table = Table(title=f"{family}: predicted final training loss, {budget_steps} steps, peak lr {peak:.3g}")
    table.add_column("schedule", overflow="fold")
    table.add_column("final loss", justify="right")
    table.add_column("vs best", justify="right")
    best = ranked[0][1]
    for spec, loss in ranked[:top]:
        table.add_row(str(spec), f"{loss:.5g}", f"+{loss / best - 1:.2%}")
    console.print(table)


@predict_app.command("bound")
@friendly
def bound_cmd(
    schedule: list[str] = typer.Option(..., "--schedule", "-s", help="Schedule spec (repeat for several)."),
    budget_steps: int = typer.Option(..., "--steps", min=2, help="Horizon T in updates."),
    lr: float | None = typer.Option(None, "--lr", help="Base LR gamma (default: each schedule's optimal gamma*)."),
    optimal_lr: bool = typer.Option(False, "--optimal-lr", help="Print gamma*, the bound's optimal base LR."),
    norms_from: int | None = typer.Option(None, "--norms-from", help="Use this trial's l2 gradient norms as G_t."),
    out: str | None = typer.Option(None, "--out", "-o", help="Plot the bound over t (every prefix horizon) here."),
    db: DbOption = None,
) -> None:
    """The convex last-iterate bound of schedules (Schaipp et al. 2025): lower is better."""
    import numpy as np

    from steplab import schedules
    from steplab.analysis import bound, predict

    g = None
    if norms_from is not None:
        from steplab.store import open_store

        with open_store(db, must_exist=True) as store:
            norms = predict.trial_norms(store, norms_from)
        g = np.interp(np.arange(budget_steps) / budget_steps, np.arange(len(norms)) / len(norms), norms)
    table = Table(title=f"convex last-iterate bound at T = {budget_steps} (D = 1, G = {'trial ' + str(norms_from) if g is not None else '1'})")
    for col in ("schedule", "gamma*", "Omega* (at gamma*)", *(["Omega (at --lr)"] if lr else [])):
        table.add_column(col, justify="left" if col == "schedule" else "right", overflow="fold")
    series = []
    for i, s in enumerate(schedule):
        spec = schedules.spec_from(s)
        mult = bound.schedule_multipliers(spec, budget_steps)
        gamma, omega = bound.optimal_base_lr(mult, g)
        row = [str(spec), f"{gamma:.4g}", f"{omega:.4g}"]
        base = lr if lr else gamma
        if lr:
            row.append(f"{bound.bound_terms(lr * mult, g).total:.4g}")
        table.add_row(*row)
        series.append((f"{spec} (gamma {base:.3g})", np.arange(1, budget_steps + 1), bound.prefix_bounds(base * mult, g),
                       {"color": f"C{i}"}))
    console.print(table)
    if optimal_lr:
        console.print("gamma* scales with D/G: multiply by your distance-to-solution over gradient-norm scale, "
                      "or use it as a ratio between schedules and horizons (steplab predict transfer)")
    if out:
        from steplab.report.plots import plot_lines

        console.print(f"wrote {plot_lines(series, out, xlabel='horizon t', ylabel='bound Omega_t', title='convex bound along the run', logy=True)}")


@predict_app.command("transfer")
@friendly
def transfer_cmd(
    schedule: str = typer.Option(..., "--schedule", "-s", help="The schedule the LR was tuned with."),
    from_steps: int = typer.Option(..., "--from", min=2, help="Horizon T1 the LR was tuned at."),
    lr: float = typer.Option(..., "--lr", help="The LR tuned at T1."),
    to_steps: int = typer.Option(..., "--to", min=2, help="The new horizon T2."),
    workload: str | None = typer.Option(None, "--workload", help="Also fit the power law on LRs tuned at several horizons in the store."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="The algorithm name of those stored trials."),
    db: DbOption = None,
) -> None:
    """Predict the best peak LR at another horizon (bound rule; Bjorck et al. power law)."""
    from steplab import schedules
    from steplab.analysis import horizons
    from steplab.errors import SpecError

    spec = schedules.spec_from(schedule)
    new = horizons.transfer_lr(spec, from_steps, lr, to_steps)
    tuned: dict[int, float] = {}
    if workload or algorithm:  # every error before any result: a printed result means exit 0
        if not (workload and algorithm):
            raise SpecError("give both --workload and --algorithm to fit the power law on stored trials")
        from steplab.analysis import predict
        from steplab.store import open_store

        with open_store(db, must_exist=True) as store:
            tuned = predict.tuned_horizons(store, workload, algorithm)
    console.print(f"bound rule (Schaipp et al. 2025): lr {lr:.4g} tuned at {from_steps} steps -> {new:.4g} at {to_steps} "
                  f"steps ({new / lr:.3f}x) for {spec}")
    if workload and algorithm:
        if len(tuned) < 2:  # a note, not a failure: the bound rule above is the answer
            console.print(f"power law (Bjorck et al. 2024): not fitted: the store has tuned LRs for {workload} · "
                          f"{algorithm} at {len(tuned)} horizon(s), it needs two or more (run a tuning sweep at "
                          "another --steps)", highlight=False)
            return
        a, b = horizons.fit_horizon_power_law(list(tuned), list(tuned.values()))
        console.print("tuned in the store: " + ", ".join(f"{h} steps: lr {v:.4g}" for h, v in tuned.items()))
        console.print(f"power law (Bjorck et al. 2024): lr*(T) = {a:.4g} * T^{b:.3f} -> {horizons.power_law_lr(a, b, to_steps):.4g} "
                      f"at {to_steps} steps")


@predict_app.command("cooldown")
@friendly
def cooldown_cmd(
    budget_steps: int = typer.Option(..., "--steps", min=10, help="Run length in updates."),
    shape: str = typer.Option("linear", "--shape", help="Cooldown shape: linear, 1-sqrt, cosine, square."),
    law_file: str | None = typer.Option(None, "--law", help="Also ask a fitted law (steplab predict fit)."),
    lr: float | None = typer.Option(None, "--lr", help="Peak LR for the law (default: the fitted runs')."),
    from_steps: int | None = typer.Option(None, "--from", help="Continue a WSD run tuned at this horizon, or restart?"),
) -> None:
    """Plan a WSD cooldown: the best fraction by the bound (and a law), continue vs restart."""
    import numpy as np

    from steplab.analysis import horizons, predict

    plan = horizons.optimal_cooldown(budget_steps, shape=shape)
    best = float(plan.omegas.min())
    table = Table(title=f"WSD ({shape} cooldown) at {budget_steps} steps: convex bound at each fraction's optimal LR")
    for col in ("cooldown", "Omega*", "vs best", "gamma*"):
        table.add_column(col, justify="right")
    for c, o, g in zip(plan.fractions, plan.omegas, plan.gammas):
        if round(c * 20) % 2 == 0 or c == plan.best_fraction:
            table.add_row(f"{c:.0%}", f"{o:.4g}", f"+{o / best - 1:.1%}", f"{g:.4g}")
    console.print(table)
    console.print(f"bound: best cooldown {plan.best_fraction:.0%} of the run")
    if law_file:
        fitted = predict.load_law(law_file)
        peak = lr if lr is not None else fitted.peak_lr
        ranked = sorted(((d, predict.final_loss(fitted.law, {"name": "wsd", "decay": d, "shape": shape}, budget_steps, peak))
                         for d in np.round(np.arange(0.05, 1.0001, 0.05), 2)), key=lambda x: x[1])
        console.print(f"law ({fitted.law.LAW}): best cooldown {ranked[0][0]:.0%} (predicted final loss {ranked[0][1]:.4g}; "
                      f"20%: {dict(ranked)[0.2]:.4g})")
    if from_steps:
        r = horizons.continue_vs_restart(from_steps, budget_steps, decay=0.2, shape=shape)
        console.print(
            f"continue a WSD(20%) run tuned at {from_steps} steps to {budget_steps}: {int(r['steps_continue'])} more steps from its "
            f"stable checkpoint, bound {r['omega_continue']:.4g}; restart: {int(r['steps_restart'])} steps at its own "
            f"optimal lr, bound {r['omega_restart']:.4g} (continuing costs {r['ratio'] - 1:.1%} in the bound, saves "
            f"{1 - r['steps_continue'] / r['steps_restart']:.0%} of the steps)"
        )


@predict_app.command("select")
@friendly
def select_cmd(
    refs: list[str] = typer.Argument(..., metavar="TRIAL...", help="Runs of two or more schedules, by id or name."),
    metric: str | None = typer.Option(None, "--metric", help="Fit an evaluated metric (e.g. train/loss) instead of "
                                      "the per-step training loss."),
    out: str = typer.Option("law.json", "--out", "-o", help="Write the chosen law, refitted on all runs, here."),
    db: DbOption = None,
) -> None:
    """Choose a law (multi-power, bound, bound-transient, or annealing at each lambda) by leave-one-schedule-out error."""
    from steplab.analysis import law_select, predict
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        trial_ids = trial_refs(store, refs)
        runs = [predict.load_run(store, t, metric) for t in trial_ids]
    sel = law_select.select(runs)
    table = Table(title=f"leave-one-schedule-out error of the final loss over {len(runs)} held-out runs")
    for col in ("law", "mean", "worst", "curve mean"):
        table.add_column(col, justify="left" if col == "law" else "right")
    for label, mean, worst, curve in sel.table():
        table.add_row(label, f"{mean:.2%}", f"{worst:.2%}", f"{curve:.2%}")
    console.print(table)
    chosen = sel.chosen
    fitted = predict.fit_runs(runs, chosen.law, lam=chosen.lam if chosen.lam is not None else 0.999)
    fitted.save(out)
    console.print(f"chosen: {chosen.label}; predictions of unseen schedules carry about +-{sel.q:.2%} "
                  f"(its worst held-out error); wrote {out}", highlight=False)


@predict_app.command("optimize")
@friendly
def optimize_cmd(
    law_files: list[str] = typer.Argument(..., metavar="LAW...", help="Law file(s) from `steplab predict fit` / "
                                          "`select`; several form an ensemble."),
    budget_steps: int = typer.Option(..., "--steps", min=3, help="Run length T in updates."),
    lr: float | None = typer.Option(None, "--lr", help="Peak LR (default: the fitted runs' peak; a law only knows "
                                    "the LR scale it was fitted at)."),
    warmup: float = typer.Option(0.0, "--warmup", min=0.0, max=0.5, help="Linear warm-up as a fraction of the run."),
    objective: str = typer.Option("mean", "--objective", help="mean or worst predicted final loss over the laws."),
    init: str = typer.Option("best-standard", "--init", help="best-standard, or constant (Luo et al.)."),
    iterations: int = typer.Option(3000, "--iterations", min=0, help="Projected Adam iterations."),
    out: str | None = typer.Option(None, "--out", "-o", help="Write the piecewise schedule spec (JSON) here."),
    plot: str | None = typer.Option(None, "--plot", help="Plot the optimum and the standard schedules to this PNG."),
) -> None:
    """The schedule with the lowest predicted final loss (Luo et al. 2025's optimizer)."""
    import json
    from pathlib import Path

    import numpy as np

    from steplab import schedules
    from steplab.analysis import law_optimal, predict

    fitted = [predict.load_law(f) for f in law_files]
    peak = lr if lr is not None else max(f.peak_lr for f in fitted)
    w = round(warmup * budget_steps)
    res = law_optimal.optimize_schedule([f.law for f in fitted], budget_steps, peak, warmup_steps=w,
                                        objective=objective, init=init, iterations=iterations)
    agg = np.mean if objective == "mean" else np.max
    table = Table(title=f"predicted final training loss ({objective} over {len(fitted)} law(s)), {budget_steps} "
                        f"steps, peak lr {peak:.3g}, warm-up {w} steps")
    table.add_column("schedule", overflow="fold")
    table.add_column("final loss", justify="right")
    table.add_column("vs optimum", justify="right")
    best = float(agg(res.spec_predicted))
    rows = [("law-optimal (spec)", best)] + [(name, float(agg(v))) for name, v in res.standard.items()]
    for name, v in sorted(rows, key=lambda r: r[1]):
        table.add_row(name, f"{v:.5g}", f"{v - best:+.2g}")
    console.print(table)
    post = res.multipliers[w:]
    below = np.flatnonzero(post < 0.5)
    console.print(f"  at peak for {res.at_peak_fraction():.0%} of the post-warm-up steps; below half the peak from "
                  f"step {w + (below[0] if below.size else post.size)}; final lr {res.lrs[-1]:.3g}", highlight=False)
    if res.suspect:
        console.print(f"  [bold]warning[/bold]: {res.suspect}; refit on longer runs or use a standard schedule",
                      highlight=False)
    console.print("  the gain over a good WSD is often below a law's error on real runs (0.5-1%): "
                  "measure it (benchmarks/beat.py)", highlight=False)
    text = json.dumps(res.spec.to_dict())
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        console.print(f"wrote {out}: use it as --schedule {out}")
    if plot:
        from steplab.report.plots import plot_lines

        steps = np.arange(budget_steps)
        series = [("law-optimal", steps, res.lrs, {"color": "C0", "linewidth": 2})]
        for i, (name, d) in enumerate(law_optimal.STANDARD.items(), 1):
            spec = schedules.spec_from({**d, "warmup": w / budget_steps} if w else d)
            series.append((name, steps, peak * np.asarray(schedules.values(schedules.build(spec, budget_steps),
                                                                           budget_steps)), {"color": f"C{i}", "alpha": 0.6}))
        console.print(f"wrote {plot_lines(series, plot, ylabel='learning rate', title='law-optimal schedule')}")
