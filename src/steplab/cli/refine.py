"""``steplab refine``: a schedule refined from a recorded run's gradient norms (Defazio et
al. 2023, :mod:`steplab.analysis.refine`)."""

from __future__ import annotations

import typer

from steplab.cli.common import DbOption, console, friendly
from steplab.cli.refs import TRIAL_HELP
from steplab.cli.refs import trial_id as trial_ref


@friendly
def refine_cmd(
    ref: str = typer.Argument(..., metavar="TRIAL", help="The recorded run: " + TRIAL_HELP),
    db: DbOption = None,
    tau: float = typer.Option(0.1, "--tau", help="Median-filter width as a fraction of the run (0: no smoothing)."),
    norm: str = typer.Option("auto", "--norm", help="Gradient norm: l2 (SGD-like), l1 (Adam-like) or auto (from the optimizer)."),
    budget_steps: int | None = typer.Option(None, "--steps", min=1, help="Length T' of the run to refine for (default: the recorded run's)."),
    warmup: int = typer.Option(0, "--warmup", min=0, help="Multiply by a linear warm-up of this many steps."),
    exact: bool = typer.Option(False, "--exact", help="Minimize the last-iterate bound numerically instead of the closed form."),
    monotone: bool = typer.Option(False, "--monotone", help="Project onto non-increasing schedules after the warm-up "
                                  "(isotonic; fixes a late peak on non-convex problems)."),
    out: str | None = typer.Option(None, "--out", "-o", help="Write the refined schedule spec (JSON) here."),
    plot: str | None = typer.Option(None, "--plot", help="Plot norms, refined and original schedules to this PNG."),
) -> None:
    """Refine a schedule from a recorded run's gradient norms (Defazio et al. 2023)."""
    import json
    from pathlib import Path

    import numpy as np

    from steplab.algorithms.labels import run_label
    from steplab.analysis import refine
    from steplab.store import open_store

    with open_store(db, must_exist=True) as store:
        trial_id = trial_ref(store, ref)
        trial = store.get_trial(trial_id)
        r = refine.refine_trial(store, trial_id, tau=tau, norm=norm, budget_steps=budget_steps, warmup_steps=warmup,
                                exact_bound=exact)
        if monotone:
            from steplab.analysis.refine_variants import monotone as project

            r = project(r)
        original = store.steps(trial_id)["lr"]
        label = run_label(trial.spec, store.trial_info(trial_id).get("name"))
    v = r.values()
    peak = int(np.argmax(v))
    half = np.flatnonzero(v >= 0.5)
    console.print(
        f"refined trial {trial.id} ({trial.spec.workload} · {label}) from its {r.norm} gradient norms"
        f"{f' ({r.why})' if r.why else ''}, tau {r.tau:g}, {r.method}, for {r.budget_steps} steps", highlight=False,
    )
    console.print(
        f"  peak at step {peak} ({peak / r.budget_steps:.0%} of the run); above half the peak from step "
        f"{half[0] if len(half) else 0} to {half[-1] if len(half) else 0}; multiplier at 50% {v[len(v) // 2]:.3f}, "
        f"at 90% {v[int(0.9 * len(v))]:.3f}"
    )
    if np.isfinite(original).sum() < 2:  # an imported log without its learning rates
        console.print("  no learning rates recorded: no bound comparison with the run's schedule")
    else:
        ours, theirs = refine.bound_comparison(r, original)
        console.print(f"  convex last-iterate bound with these norms (best base lr, lower is better): refined "
                      f"{ours:.4g} vs the run's schedule {theirs:.4g} ({ours / theirs:.2f}x)")
    like, gap = refine.closest_standard(r)
    console.print(f"  closest warm-up + polynomial decay: {like} (largest gap {gap:.3f})", highlight=False)
    text = json.dumps(r.spec.to_dict())
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
        console.print(f"wrote {out}: use it as --schedule {out}")
    else:
        console.print(f"  spec ({len(r.spec.to_dict()['points'])} points): pass --out FILE to save it for --schedule")
    if plot:
        from steplab.report.plots import plot_refinement

        path = plot_refinement(r, plot, original=original,
                               title=f"trial {trial.id}: {trial.spec.workload} · {label}")
        console.print(f"wrote {path}")
