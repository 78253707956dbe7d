"""Reports on a benchmark: rich tables in the terminal and a self-contained HTML page.

What is shown follows AlgoPerf's reporting (Dahl et al. 2023, "Benchmarking Neural Network
Training Algorithms", arXiv:2306.07179, sections "Scoring" and "Results"): per-workload
time-to-target tables, performance profiles (Dolan & Moré 2002) and the benchmark score,
plus what steplab adds - the time in training steps beside the seconds, the run-to-run
noise floor of the times (``bench.noise_floor``), and the traces of the best trials.

* :func:`print_summary` - ranking, per-workload times, profile and variant agreement on a
  ``rich`` console.
* :func:`write_html` - one HTML file with inline CSS and figures as base64 PNGs: no
  scripts, no external URLs, every string that comes from the data escaped with
  :func:`html.escape` (study, algorithm and workload names, hyperparameters, messages).
* :func:`latest_benchmark` - the newest benchmark study in a store (the CLI's default).
* :func:`tradeoff_curves`, :func:`print_tradeoff`, :func:`tradeoff_figure` - the
  accuracy-vs-training-time curves of ``steplab bench --tradeoff cyclic`` (Portes et al.
  2022, ``steplab.studies.tradeoff``): a table per workload and a figure in the HTML report.
* An "LR sensitivity" column in the HTML per-workload tables, for the algorithms that have a
  ``steplab sensitivity`` sweep of that workload in the same store
  (``steplab.analysis.sensitivity.results_in_store``, read-only; Wortsman et al. 2023).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.studies import bench, tradeoff
from steplab.analysis import scoring
from steplab.errors import SpecError
from steplab.results import TrialResult
from steplab.store import Store
from steplab.workloads.base import Target

#: what a missed target (``inf``) shows as in tables
MISS = "miss"
_DASH = "—"


# ---------------------------------------------------------------------------------- format
def format_time(seconds: float, *, missing: str = _DASH) -> str:
    """Seconds for people: ``"0.412 s"``, ``"4m 05s"``, ``"1h 02m"``; ``missing`` for
    ``inf``/NaN (a target not reached).

    >>> format_time(0.4123), format_time(245.0), format_time(3725.0), format_time(math.inf)
    ('0.412 s', '4m 05s', '1h 02m', '—')
    """
    s = float(seconds)
    if not math.isfinite(s):
        return missing
    if s < 60:
        return f"{s:#.3g} s"
    if s < 3600:
        m, r = divmod(int(round(s)), 60)
        return f"{m}m {r:02d}s"
    h, r = divmod(int(round(s)), 3600)
    return f"{h}h {r // 60:02d}m"


def format_steps(steps: float, *, missing: str = _DASH) -> str:
    """Steps with thousands separators (a median over an even number of studies may end
    in ``.5``); ``missing`` for ``inf``/NaN.

    >>> format_steps(12000.0), format_steps(416.5), format_steps(math.inf)
    ('12,000', '416.5', '—')
    """
    v = float(steps)
    if not math.isfinite(v):
        return missing
    return f"{v:,.0f}" if v == int(v) else f"{v:,.1f}"


def format_ratio(ratio: float) -> str:
    """``"×1.00"`` style factor of the fastest; ``"—"`` when not comparable."""
    return f"×{ratio:.2f}" if math.isfinite(ratio) else _DASH


def format_noise(spread: float, n_studies: int) -> str:
    """The noise floor (relative spread of per-study times) as ``"±12%"``; explains NaN."""
    if math.isfinite(spread):
        return f"{100 * spread:.0f}%"
    return "n/a (1 study)" if n_studies <= 1 else "n/a (<2 studies reached)"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, list | tuple):
        return "(" + ", ".join(_fmt_value(x) for x in v) + ")"
    return str(v)


def format_hyperparameters(hp: Mapping[str, Any]) -> str:
    """``"lr=0.0356, weight_decay=0.00964"`` (floats to 3 significant digits).

    >>> format_hyperparameters({"lr": 0.035625, "nesterov": True})
    'lr=0.0356, nesterov=True'
    """
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in hp.items())


# ---------------------------------------------------------------------------------- data
def n_studies(scores: bench.Scores) -> int:
    """How many independent studies (S) the scored trials come from."""
    return max(1, len({t.spec.study_id for t in scores.trials}))


def _base_workloads(table: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The workloads the profile and score use (as ``bench.score``: base ones if any)."""
    keys = {w for row in table.values() for w in row}
    return sorted({w for w in keys if ":" not in w} or keys)


def _workload_keys(scores: bench.Scores) -> list[str]:
    return sorted({w for row in scores.time_s.values() for w in row})


def _ratios(table: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    if not table:
        return {}
    return scoring.performance_ratios(table, missing="inf")


def _cell(table: Mapping[str, Mapping[str, float]], a: str, w: str) -> float:
    return float(table.get(a, {}).get(w, math.inf))


def _fastest(table: Mapping[str, Mapping[str, float]], w: str) -> float:
    return min((_cell(table, a, w) for a in table), default=math.inf)


def _reached(scores: bench.Scores, a: str) -> int:
    return sum(math.isfinite(v) for v in scores.time_s.get(a, {}).values())


def _ranking(scores: bench.Scores) -> list[tuple[str, float]]:
    return scoring.ranking(scores.score_time)


def targets_of(study: Mapping[str, Any], trials: Sequence[TrialResult]) -> dict[str, Target | None]:
    """The target of every workload key of ``trials``: from the study's benchmark spec
    (a suite may override targets), else the workload's own, else ``None``."""
    out: dict[str, Target | None] = {}
    try:
        for entry in bench.mapping_to_spec(study["spec"]).entries():
            out[entry.key] = entry.build().target
    except Exception:  # not a benchmark spec (e.g. a recorded run): fall back per workload
        out = {}
    from steplab import workloads

    for t in trials:
        key = scoring.workload_key(t.spec)
        if key in out:
            continue
        try:
            out[key] = workloads.get(t.spec.workload, t.spec.variant).target
        except Exception:
            out[key] = None
    return out


def _final(t: TrialResult, metric: str | None) -> float:
    if metric is None:
        return math.nan
    v = t.final_metrics.get(metric, t.final_metrics.get(f"best/{metric}", math.nan))
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def best_trial(trials: Sequence[TrialResult], target: Target | None) -> TrialResult | None:
    """The trial to show for one algorithm on one workload: the fastest to reach the target
    (training seconds), else the one with the best final target metric, else the first."""
    reached = [t for t in trials if math.isfinite(scoring.trial_time(t, "time_s"))]
    if reached:
        return min(reached, key=lambda t: (t.time_to_target_s, t.id or 0))
    if target is not None:
        scored = [t for t in trials if math.isfinite(_final(t, target.metric))]
        if scored:
            sign = -1.0 if target.mode == "max" else 1.0
            return min(scored, key=lambda t: (sign * _final(t, target.metric), t.id or 0))
    return trials[0] if trials else None


def _fallback_scores(store: Store, study_id: int) -> bench.Scores:
    """Scores of a study whose spec is not a benchmark spec: each study id one study."""
    trials = [t for t in store.list_trials(study_id=study_id) if t.status != "running"]
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials yet; run `steplab bench` first")
    t_time = scoring.time_table(trials, measure="time_s")
    t_steps = scoring.time_table(trials, measure="steps")
    base = _base_workloads(t_time)
    taus = [1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
    prof = scoring.performance_profile(t_time, taus, workloads=base, missing="inf")
    return bench.Scores(
        time_s=t_time,
        steps=t_steps,
        score_time=scoring.benchmark_score(t_time, workloads=base, missing="inf"),
        score_steps=scoring.benchmark_score(t_steps, workloads=base, missing="inf"),
        profiles_tau=taus,
        profiles={a: [float(v) for v in p] for a, p in prof.items()},
        variants={k: dataclasses.asdict(v) for k, v in scoring.variant_agreement(t_steps).items()},
        noise=bench.noise_floor(trials),
        trials=trials,
    )


def _scores(store: Store, study_id: int) -> bench.Scores:
    spec = store.get_study(study_id)["spec"]
    if isinstance(spec, Mapping) and "trials" in spec:
        return bench.score(store, study_id)
    return _fallback_scores(store, study_id)


def latest_benchmark(store: Store) -> int | None:
    """The id of the newest study of kind ``"benchmark"`` in ``store``, ``None`` if none."""
    ids = [int(s["id"]) for s in store.list_studies() if s["kind"] == "benchmark"]
    return max(ids) if ids else None


# ---------------------------------------------------------------------------------- terminal
def print_summary(scores: bench.Scores, console: Console | None = None, *, title: str = "benchmark") -> None:
    """Print the ranking, per-workload time-to-target (steps and seconds, ratio to the
    fastest, noise floor), the performance profile and the variant agreement of
    ``scores`` (``bench.score``) on ``console``. Names from the data are printed as plain
    text, never as rich markup."""
    console = console or Console()
    n_s = n_studies(scores)
    keys = _workload_keys(scores)
    base = _base_workloads(scores.time_s) if scores.time_s else []

    rank = Table(title=Text(f"{title}: ranking (benchmark score, 1 = fastest everywhere)"), title_justify="left")
    rank.add_column("#", justify="right")
    rank.add_column("algorithm", style="bold cyan")
    rank.add_column("score (time)", justify="right")
    rank.add_column("score (steps)", justify="right")
    rank.add_column("targets reached", justify="right")
    for i, (a, s) in enumerate(_ranking(scores), 1):
        rank.add_row(
            str(i),
            Text(a),
            f"{s:.3f}",
            f"{scores.score_steps.get(a, math.nan):.3f}",
            f"{_reached(scores, a)}/{len(keys)}",
        )
    console.print(rank)

    r_time, r_steps = _ratios(scores.time_s), _ratios(scores.steps)
    per = Table(
        title=Text(f"time to target per workload ({n_s} stud{'y' if n_s == 1 else 'ies'}; "
                   "noise floor = spread of per-study steps)"),
        title_justify="left",
    )
    per.add_column("workload", style="bold")
    per.add_column("algorithm", style="cyan")
    per.add_column("steps", justify="right")
    per.add_column("×best", justify="right")
    per.add_column("time", justify="right")
    per.add_column("×best", justify="right")
    per.add_column("noise floor", justify="right")
    order = [a for a, _ in _ranking(scores)]
    for w in keys:
        best_t, best_s = _fastest(scores.time_s, w), _fastest(scores.steps, w)
        for j, a in enumerate(order):
            t, s = _cell(scores.time_s, a, w), _cell(scores.steps, a, w)
            steps_txt = Text(format_steps(s, missing=MISS),
                             style="bold" if math.isfinite(s) and s == best_s else ("dim" if not math.isfinite(s) else ""))
            time_txt = Text(format_time(t, missing=MISS),
                            style="bold" if math.isfinite(t) and t == best_t else ("dim" if not math.isfinite(t) else ""))
            per.add_row(
                Text(w) if j == 0 else "",
                Text(a),
                steps_txt,
                format_ratio(r_steps.get(a, {}).get(w, math.inf)),
                time_txt,
                format_ratio(r_time.get(a, {}).get(w, math.inf)),
                format_noise(scores.noise.get(a, {}).get(w, math.nan), n_s),
                end_section=j == len(order) - 1,
            )
    console.print(per)

    prof = Table(
        title=Text(f"performance profile rho(tau): share of the {len(base)} workload(s) within "
                   "a factor tau of the fastest (time)"),
        title_justify="left",
    )
    prof.add_column("algorithm", style="cyan")
    for tau in scores.profiles_tau:
        prof.add_column(f"tau={tau:g}", justify="right")
    for a in order:
        prof.add_row(Text(a), *(f"{v:.2f}" for v in scores.profiles.get(a, [])))
    console.print(prof)

    if scores.variants:
        var = Table(title=Text("variant agreement (do variants rank the algorithms like the base?)"),
                    title_justify="left")
        for col in ("variant", "kendall tau", "p", "base winner", "variant winner", "same winner"):
            var.add_column(col)
        for key, v in scores.variants.items():
            var.add_row(
                Text(key),
                _num(v.get("kendall_tau")),
                _num(v.get("p_value")),
                Text(", ".join(v.get("base_winners", ())) or _DASH),
                Text(", ".join(v.get("variant_winners", ())) or _DASH),
                "yes" if v.get("same_winner") else "no",
            )
        console.print(var)


def tradeoff_curves(store: Store, study_id: int) -> list[tradeoff.Curve]:
    """The tradeoff curves of a benchmark study (``tradeoff.study_curves``) on the metric of
    each workload's target as the study's spec sets it."""
    trials = [t for t in store.list_trials(study_id=study_id) if tradeoff.is_tradeoff(t.spec.algorithm)]
    return tradeoff.study_curves(store, study_id, targets_of(store.get_study(study_id), trials))


def _diff(v: float) -> str:
    return f"{v:+.4f}" if math.isfinite(v) else _DASH


def _saving(a: tradeoff.Agreement) -> str:
    return (f"{format_time(a.cyclic_time_s)} vs {format_time(a.separate_time_s)} "
            f"({a.cyclic_steps:,} vs {a.separate_steps:,} steps): "
            + (f"saves {100 * a.saving:.0f}%" if math.isfinite(a.saving) else _DASH))


def print_tradeoff(curves: Sequence[tradeoff.Curve], console: Console | None = None) -> None:
    """Print one table per workload: per algorithm and cycle budget, the cyclic run's metric
    and training time at the cycle end, the separate run's, and their difference; then the
    cyclic run's total training time against the separate runs' sum."""
    console = console or Console()
    for w in dict.fromkeys(c.workload for c in curves):
        mine = [c for c in curves if c.workload == w]
        metric = mine[0].metric
        table = Table(title=Text(f"{w}: {metric} vs training time, one cyclic run vs separate runs "
                                 "(diff = cyclic - separate; Portes et al. 2022)"), title_justify="left")
        table.add_column("algorithm", style="cyan", no_wrap=True)
        for col in ("budget steps", "cyclic", "separate", "diff", "time cyclic", "time separate"):
            table.add_column(col, justify="right")
        for c in mine:
            sep = {p.budget_steps: p for p in c.separate}
            for j, (p, d) in enumerate(zip(c.cyclic, c.agreement.diffs)):
                q = sep.get(p.budget_steps)
                table.add_row(Text(c.algorithm) if j == 0 else "", f"{p.budget_steps:,}", _num(p.value, 4),
                              _num(q.value if q else math.nan, 4), _diff(d), format_time(p.time_s),
                              format_time(q.time_s if q else math.nan))
            table.add_row("", "total", "", "", "", format_time(c.agreement.cyclic_time_s),
                          format_time(c.agreement.separate_time_s), end_section=True)
        console.print(table)
        for c in mine:
            console.print(Text(f"  {c.algorithm}: max |cyclic - separate| {_num(c.agreement.max_abs_diff, 4)}; "
                               f"one cyclic run {_saving(c.agreement)}"))


def _num(v: Any, digits: int = 2) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _DASH
    return f"{f:.{digits}f}" if math.isfinite(f) else _DASH


# ---------------------------------------------------------------------------------- figures
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_STYLES = ("-", "--", "-.", ":")


def _mpl(text: str) -> str:
    """A label matplotlib draws literally (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'


def profile_figure(scores: bench.Scores, colors: Mapping[str, str], *, r_max: float = 4.0) -> str:
    """The performance profiles as step functions on ``tau`` in ``[1, r_max]`` (log x),
    one line per algorithm; a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.subplots()
    base = _base_workloads(scores.time_s)
    ratios = scoring.performance_ratios(scores.time_s, workloads=base, missing="inf")
    n_w = len(base)
    for k, (a, s) in enumerate(_ranking(scores)):
        r = np.sort(np.array([v for v in ratios.get(a, {}).values() if v <= r_max]))
        xs = np.concatenate([[1.0], r, [r_max]])
        ys = np.concatenate([[float(np.sum(r <= 1.0)) / n_w], np.arange(1, len(r) + 1) / n_w, [len(r) / n_w]])
        ax.step(xs, ys, where="post", color=colors[a], linestyle=_STYLES[k % len(_STYLES)],
                linewidth=2.2 - 0.25 * (k % 4), label=_mpl(f"{a} (score {s:.2f})"))
    ax.set_xscale("log")
    ticks = [1, 1.25, 1.5, 2, 3, 4]
    ax.set_xticks([t for t in ticks if t <= r_max])
    ax.set_xticklabels([f"{t:g}" for t in ticks if t <= r_max])
    ax.minorticks_off()
    ax.set_xlim(1.0, r_max)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("tau (time relative to the fastest algorithm on the workload)")
    ax.set_ylabel("share of workloads within tau")
    ax.set_title(f"performance profiles over {n_w} workload{'s' if n_w != 1 else ''} (training time)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _smooth(y: np.ndarray) -> np.ndarray:
    """A trailing moving average over ~2% of the run (at least 1 step)."""
    n = max(1, len(y) // 50)
    if n == 1 or len(y) == 0:
        return y
    kernel = np.ones(n) / n
    head = np.cumsum(y[: n - 1]) / np.arange(1, n)
    return np.concatenate([head, np.convolve(y, kernel, mode="valid")])


def workload_figure(
    store: Store,
    best: Mapping[str, TrialResult],
    target: Target | None,
    colors: Mapping[str, str],
) -> str:
    """Three panels for one workload: the target metric vs training seconds (dashed line:
    the target), the learning rate vs step and the smoothed training loss vs step, for the
    best trial of each algorithm; a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 3.6))
    ax_m, ax_lr, ax_loss = fig.subplots(1, 3)
    metric = target.metric if target is not None else None
    log_lr = True
    lo_hi: list[float] = []  # smoothed loss extremes: log scale when positive over > 1 decade
    for k, (a, t) in enumerate(best.items()):
        color, ls = colors[a], _STYLES[k % len(_STYLES)]
        label = _mpl(a)
        if t.id is None:
            continue
        evals = [e for e in store.evals(t.id) if metric is None or e.metric == metric]
        if metric is None and evals:
            metric = evals[0].metric
            evals = [e for e in evals if e.metric == metric]
        if evals:
            ax_m.plot([e.time_s for e in evals], [e.value for e in evals], color=color, linestyle=ls,
                      marker="o", markersize=2.5, linewidth=1.6, label=label)
        if math.isfinite(t.time_to_target_s) and target is not None:
            hit = [e.value for e in evals if e.step == int(t.steps_to_target)]
            ax_m.plot([t.time_to_target_s], [hit[0] if hit else target.value], marker="*",
                      markersize=11, color=color, zorder=5)
        tr = store.steps(t.id)
        steps = tr["step"] + 1
        lr = tr["lr"].copy()
        if np.any(np.isfinite(lr)):
            lr[lr <= 0] = np.nan
            ax_lr.plot(steps, lr, color=color, linestyle=ls, linewidth=1.6, label=label)
        loss = tr["loss"]
        ok = np.isfinite(loss)
        if ok.any():
            smooth = _smooth(loss[ok])
            lo_hi.extend([float(smooth.min()), float(smooth.max())])
            ax_loss.plot(steps[ok], smooth, color=color, linestyle=ls, linewidth=1.4, label=label)
    if target is not None:
        ax_m.axhline(target.value, color="black", linestyle="--", linewidth=1.0,
                     label=f"target {'≥' if target.mode == 'max' else '≤'} {target.value:g}")
    ax_m.set_xlabel("training time (s, evaluation excluded)")
    ax_m.set_ylabel(_mpl(metric or "metric"))
    ax_m.set_title(_mpl(f"{metric or 'metric'} (★ = target reached)"), fontsize=10)
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("learning rate (log scale)" if log_lr else "learning rate", fontsize=10)
    if log_lr and ax_lr.lines:
        ax_lr.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss (moving average)", fontsize=10)
    if lo_hi and min(lo_hi) > 0 and max(lo_hi) / min(lo_hi) > 10:
        ax_loss.set_yscale("log")
    for ax in (ax_m, ax_lr, ax_loss):
        ax.grid(alpha=0.3)
    for ax, what in ((ax_m, "evaluations"), (ax_lr, "learning rates"), (ax_loss, "losses")):
        if not ax.lines:
            ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="#777777")
    if ax_m.get_legend_handles_labels()[0]:
        ax_m.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def tradeoff_figure(curves: Sequence[tradeoff.Curve], colors: Mapping[str, str]) -> str:
    """The metric vs training time on one workload: each algorithm's one-run cyclic curve
    (line, points at the cycle ends labelled with their budget in steps), its separate runs
    (squares), and the Pareto frontier over all cyclic points (thick grey steps); a base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.4))
    ax = fig.subplots()
    metric, mode = curves[0].metric, curves[0].mode
    for k, c in enumerate(curves):
        color = colors.get(c.algorithm, _COLORS[k % len(_COLORS)])
        pts = [p for p in c.cyclic if math.isfinite(p.time_s) and math.isfinite(p.value)]
        ax.plot([p.time_s for p in pts], [p.value for p in pts], color=color, linestyle=_STYLES[k % len(_STYLES)],
                marker="o", markersize=5, linewidth=1.6, label=_mpl(f"{c.algorithm}: one cyclic run"))
        for p in pts:
            ax.annotate(f"{p.budget_steps:,}", (p.time_s, p.value), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=color)
        sep = [p for p in c.separate if math.isfinite(p.time_s) and math.isfinite(p.value)]
        ax.plot([p.time_s for p in sep], [p.value for p in sep], color=color, linestyle="none", marker="s",
                markersize=7, markerfacecolor="none", markeredgewidth=1.5,
                label=_mpl(f"{c.algorithm}: separate runs"))
    front = tradeoff.pareto_frontier([p for c in curves for p in c.cyclic], mode)
    if front:
        ax.step([p.time_s for p in front], [p.value for p in front], where="post", color="#555555",
                linewidth=5, alpha=0.3, zorder=0, label="Pareto frontier (cyclic points)")
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, evaluation excluded; log scale)")
    ax.set_ylabel(_mpl(metric))
    better = "higher" if mode == "max" else "lower"
    ax.set_title(_mpl(f"{curves[0].workload}: {metric} vs training time ({better} is better)"), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _png(fig)


def _tradeoff_html(curves: Sequence[tradeoff.Curve], colors: Mapping[str, str]) -> str:
    if not curves:
        return ""
    parts = ["<h2 id='tradeoff'>Accuracy vs training time: one cyclic run</h2><p class='note'>Per algorithm "
             "(its default hyperparameters, first seed) and workload, one run whose learning rate restarts at "
             "the peak and decays to the end value at 1/8, 1/4, 1/2 and all of the budget, evaluated at each "
             "cycle end (Portes et al. 2022, &ldquo;Fast Benchmarking of Accuracy vs. Training Time with "
             "Cyclic Learning Rates&rdquo;), against separate runs trained to each budget with the "
             "algorithm's own schedule. These trials are not part of the time-to-target scores.</p>"]
    head = ("<tr><th>algorithm</th><th class='n'>budget (steps)</th><th class='n'>cyclic</th>"
            "<th class='n'>separate</th><th class='n'>cyclic &minus; separate</th>"
            "<th class='n'>time cyclic</th><th class='n'>time separate</th></tr>")
    for w in dict.fromkeys(c.workload for c in curves):
        mine = [c for c in curves if c.workload == w]
        rows, notes = [], []
        for c in mine:
            sep = {p.budget_steps: p for p in c.separate}
            for j, (p, d) in enumerate(zip(c.cyclic, c.agreement.diffs)):
                q = sep.get(p.budget_steps)
                swatch = f'<span class="swatch" style="background:{colors.get(c.algorithm, "#777")}"></span>'
                rows.append("<tr>" + _td(swatch + _e(c.algorithm) if j == 0 else "")
                            + _td(f"{p.budget_steps:,}", "n") + _td(_num(p.value, 4), "n")
                            + _td(_num(q.value if q else math.nan, 4), "n") + _td(_e(_diff(d)), "n")
                            + _td(_e(format_time(p.time_s)), "n")
                            + _td(_e(format_time(q.time_s if q else math.nan)), "n") + "</tr>")
            notes.append(f"{_e(c.algorithm)}: max |cyclic &minus; separate| {_num(c.agreement.max_abs_diff, 4)}; "
                         f"one cyclic run {_e(_saving(c.agreement))}")
        parts.append(f"<h3>{_e(w)}</h3><p class='note'>metric <code>{_e(mine[0].metric)}</code></p>"
                     f"<table>{head}{''.join(rows)}</table><p class='note'>{'<br>'.join(notes)}</p>"
                     + _img(tradeoff_figure(mine, colors), f"tradeoff curves on {w}"))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
  max-width:1240px;margin:0 auto;padding:24px 28px 60px;line-height:1.45;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;margin:34px 0 8px;padding-bottom:4px;
  border-bottom:1px solid #dde2ea}h3{font-size:1.05em;margin:24px 0 6px}
.sub{color:#5a6375;margin:0 0 14px}
.spec{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;background:#f5f7fa;
  border:1px solid #e2e6ee;border-radius:6px;padding:10px 14px;font-size:.92em}
.spec dt{color:#5a6375}.spec dd{margin:0}
.howto{background:#fbfaf3;border-left:4px solid #e0c65a;padding:10px 14px;font-size:.93em}
.howto p{margin:.3em 0}
table{border-collapse:collapse;font-size:.9em;margin:8px 0 4px}
th,td{padding:4px 10px;border-bottom:1px solid #e6e9ef;text-align:left;vertical-align:top}
th{background:#f0f3f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
.best{font-weight:700}.miss{color:#9aa1ad}
.bar{display:inline-block;height:9px;background:#4c78a8;border-radius:2px;vertical-align:middle;
  margin-right:6px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;
  vertical-align:middle}
.status{padding:1px 6px;border-radius:8px;font-size:.85em;white-space:nowrap}
.s-reached{background:#dff3e4;color:#1d6b35}.s-budget{background:#eef0f4;color:#4a5263}
.s-diverged{background:#fde7d9;color:#9a3f0a}.s-failed{background:#fbdada;color:#9b1c1c}
.s-pruned{background:#ece6f7;color:#5a3a8c}.s-running{background:#e3eefc;color:#1e4f91}
.scroll{overflow-x:auto}.trials{font-size:.8em}.trials td.hp{font-family:ui-monospace,monospace;
  font-size:.95em;max-width:380px}.trials td.msg{max-width:320px;word-break:break-word}
img{max-width:100%;height:auto}.note{color:#5a6375;font-size:.88em}
code{background:#f0f3f7;padding:0 3px;border-radius:3px}
"""


def _e(value: Any) -> str:
    """Escape a value from the data for HTML text or attributes."""
    return html.escape(str(value), quote=True)


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def _time_cell(value: float, best: float, fmt: Any) -> str:
    if not math.isfinite(value):
        return _td(MISS, "n miss")
    return _td(_e(fmt(value)), "n best" if value == best else "n")


def _header(study: Mapping[str, Any], scores: bench.Scores, title: str) -> str:
    spec = study.get("spec") if isinstance(study.get("spec"), Mapping) else {}
    algos = list(spec.get("algorithms") or sorted(scores.time_s))
    keys = _workload_keys(scores)
    versions: dict[str, Any] = {}
    devices = sorted({t.device for t in scores.trials if t.device})
    hosts = sorted({t.host for t in scores.trials if t.host})
    for t in scores.trials:
        versions = t.versions or versions
        if versions:
            break
    rows = [
        ("study", f"{_e(study.get('name', ''))} (id {_e(study.get('id', ''))}, kind {_e(study.get('kind', ''))})"),
        ("suite", _e(spec.get("suite", _DASH))),
        ("ruleset", _e(spec.get("ruleset", _DASH))),
        ("trials per study (N)", _e(spec.get("trials", _DASH))),
        ("studies (S)", _e(spec.get("studies", n_studies(scores)))),
        ("algorithms", _e(", ".join(str(a) for a in algos))),
        ("workloads", _e(", ".join(keys))),
        ("trials finished", _e(len(scores.trials))),
        ("created", _e(study.get("created_at", ""))),
        ("device / host", _e(", ".join(devices) or _DASH) + " / " + _e(", ".join(hosts) or _DASH)),
        ("versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()) or _DASH)),
    ]
    if spec.get("overrides"):
        rows.insert(6, ("overrides", _e(", ".join(map(str, spec["overrides"])))))
    if spec.get("tradeoff"):
        rows.append(("tradeoff curves", _e(spec["tradeoff"]) + " (see Accuracy vs training time)"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f"<h1>{_e(title)}</h1><p class='sub'>steplab time-to-target benchmark report</p>"
            f"<dl class='spec'>{dl}</dl>")


_HOWTO = """<div class="howto">
<p><b>How to read this.</b> Each algorithm is tuned on each workload (the ruleset and N
trials above) and scored by its <b>time to target</b>: how long its fastest trial took to reach
the workload's validation target, counted in <b>training steps</b> and in <b>seconds of training
time</b> (evaluation time excluded). With several studies the time is the median over studies.
A trial that never reached the target is a <b>miss</b> and counts as an infinite time.</p>
<p>The <b>performance profile</b> &rho;<sub>a</sub>(&tau;) is the fraction of workloads on which
algorithm <i>a</i> is within a factor &tau; of the fastest algorithm on that workload
(&rho;(1) = share of workloads it wins). The <b>benchmark score</b> is the normalised area under
the profile for &tau; in [1, 4]: 1 means fastest on every workload, 0 means never within 4&times;
of the fastest (AlgoPerf, Dahl et al. 2023). Scores and profiles use training seconds; the
&ldquo;steps&rdquo; score repeats them with step counts, which do not depend on the machine.</p>
<p>The <b>noise floor</b> is the relative spread (max/min &minus; 1) of an algorithm's per-study
steps to target: a ratio between two algorithms smaller than 1 + the noise floor is within
run-to-run noise. It needs at least two studies (S &ge; 2).</p>
</div>"""


def _ranking_html(scores: bench.Scores, colors: Mapping[str, str]) -> str:
    keys = _workload_keys(scores)
    rows = []
    for i, (a, s) in enumerate(_ranking(scores), 1):
        st = scores.score_steps.get(a, math.nan)
        rows.append(
            "<tr>" + _td(str(i), "n")
            + _td(f'<span class="swatch" style="background:{colors[a]}"></span>{_e(a)}')
            + _td(f'<span class="bar" style="width:{max(0.0, min(1.0, s)) * 120:.0f}px"></span>{s:.3f}', "n")
            + _td(_num(st, 3), "n")
            + _td(f"{_reached(scores, a)}/{len(keys)}", "n") + "</tr>"
        )
    head = ("<tr><th class='n'>#</th><th>algorithm</th><th class='n'>score (time)</th>"
            "<th class='n'>score (steps)</th><th class='n'>targets reached</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _profile_table_html(scores: bench.Scores) -> str:
    head = "<tr><th>algorithm</th>" + "".join(f"<th class='n'>&tau; = {t:g}</th>" for t in scores.profiles_tau) + "</tr>"
    rows = []
    for a, _ in _ranking(scores):
        cells = "".join(_td(f"{v:.2f}", "n") for v in scores.profiles.get(a, []))
        rows.append(f"<tr>{_td(_e(a))}{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _sensitivity_cell(r: Any) -> str:
    """``0.412 ± 0.031 (best 1.611)`` for a ``steplab.analysis.sensitivity.SensitivityResult``."""
    if r is None or not math.isfinite(r.sensitivity):
        return _DASH
    sd = f" &plusmn; {r.sensitivity_sd:.3f}" if math.isfinite(r.sensitivity_sd) else ""
    return f"{r.sensitivity:.3f}{sd} (best {r.best_loss:.3f})"


def _sensitivity_note(found: Sequence[Any]) -> str:
    sweeps = "; ".join(sorted({f"{_e(r.algorithm)}: lr {r.grid[0]:.3g}..{r.grid[-1]:.3g} &times; {len(r.grid)}, "
                               f"{r.budget_steps:,} steps, {len(r.complete_seeds())} seed(s)" for r in found}))
    return ("<p class='note'>LR sensitivity (Wortsman et al. 2023; <code>steplab sensitivity</code> sweeps "
            "found in this store, read-only): the mean over a log grid of peak learning rates of "
            "min(L(lr), L<sub>init</sub>) &minus; min L, final <code>validation/loss</code>, diverged runs counted "
            "as L<sub>init</sub>; lower is more robust; mean &plusmn; sd over seeds, grid-best loss in brackets. "
            f"Sweeps: {sweeps}.</p>")


def _workload_table_html(scores: bench.Scores, w: str, trials: Sequence[TrialResult],
                         colors: Mapping[str, str], sensitivity: Mapping[tuple[str, str], Any] | None = None) -> str:
    n_s = n_studies(scores)
    r_time, r_steps = _ratios(scores.time_s), _ratios(scores.steps)
    best_t, best_s = _fastest(scores.time_s, w), _fastest(scores.steps, w)
    sens = {a: r for (a, wk), r in (sensitivity or {}).items() if wk == w}  # a column only where sweeps exist
    head = ("<tr><th>algorithm</th><th class='n'>steps to target</th><th class='n'>&times; best</th>"
            "<th class='n'>time to target</th><th class='n'>&times; best</th>"
            "<th class='n'>noise floor</th><th class='n'>trials reached</th>"
            + ("<th class='n'>LR sensitivity</th>" if sens else "") + "</tr>")
    rows = []
    for a, _ in _ranking(scores):
        if w not in scores.time_s.get(a, {}):
            continue
        mine = [t for t in trials if t.spec.algorithm == a]
        hit = sum(math.isfinite(scoring.trial_time(t)) for t in mine)
        rows.append(
            "<tr>" + _td(f'<span class="swatch" style="background:{colors[a]}"></span>{_e(a)}')
            + _time_cell(_cell(scores.steps, a, w), best_s, format_steps)
            + _td(_e(format_ratio(r_steps.get(a, {}).get(w, math.inf))), "n")
            + _time_cell(_cell(scores.time_s, a, w), best_t, format_time)
            + _td(_e(format_ratio(r_time.get(a, {}).get(w, math.inf))), "n")
            + _td(_e(format_noise(scores.noise.get(a, {}).get(w, math.nan), n_s)), "n")
            + _td(f"{hit}/{len(mine)}", "n")
            + (_td(_sensitivity_cell(sens.get(a)), "n") if sens else "") + "</tr>"
        )
    shown = [sens[a] for a, _ in _ranking(scores) if a in sens and w in scores.time_s.get(a, {})]
    return f"<table>{head}{''.join(rows)}</table>" + (_sensitivity_note(shown) if shown else "")


def _variants_html(scores: bench.Scores) -> str:
    if not scores.variants:
        return ""
    head = ("<tr><th>variant</th><th>base</th><th class='n'>Kendall &tau;</th><th class='n'>p</th>"
            "<th>base winner</th><th>variant winner</th><th>same winner</th></tr>")
    rows = []
    for key, v in scores.variants.items():
        rows.append(
            "<tr>" + _td(_e(key)) + _td(_e(v.get("base", ""))) + _td(_num(v.get("kendall_tau")), "n")
            + _td(_num(v.get("p_value")), "n") + _td(_e(", ".join(v.get("base_winners", ())) or _DASH))
            + _td(_e(", ".join(v.get("variant_winners", ())) or _DASH))
            + _td("yes" if v.get("same_winner") else "no") + "</tr>"
        )
    return ("<h2>Variant agreement</h2><p class='note'>Whether each workload variant ranks the "
            "algorithms (by steps to target) as its base workload does; a robust algorithm keeps "
            f"its rank.</p><table>{head}{''.join(rows)}</table>")


def _trials_html(trials: Sequence[TrialResult], targets: Mapping[str, Target | None],
                 study_of: Mapping[int, Any]) -> str:
    head = ("<tr><th class='n'>id</th><th class='n'>study</th><th>algorithm</th><th>workload</th>"
            "<th class='n'>seed</th><th>hyperparameters</th><th>status</th><th class='n'>steps</th>"
            "<th class='n'>steps to target</th><th class='n'>time to target</th>"
            "<th class='n'>final target metric</th><th>message</th></tr>")
    rows = []
    for t in trials:
        w = scoring.workload_key(t.spec)
        target = targets.get(w)
        final = _final(t, target.metric) if target is not None else math.nan
        metric_txt = f"{final:.4g}" if math.isfinite(final) else _DASH
        status = _e(t.status)
        rows.append(
            "<tr>" + _td(_e(t.id if t.id is not None else _DASH), "n")
            + _td(_e(study_of.get(t.id, t.spec.study_id) if t.id is not None else _DASH), "n")
            + _td(_e(t.spec.algorithm)) + _td(_e(w)) + _td(_e(t.spec.seed), "n")
            + _td(_e(format_hyperparameters(t.spec.hyperparameters) or "(defaults)"), "hp")
            + _td(f'<span class="status s-{status}">{status}</span>')
            + _td(_e(format_steps(t.steps)), "n")
            + _td(_e(format_steps(t.steps_to_target)), "n")
            + _td(_e(format_time(t.time_to_target_s)), "n")
            + _td(_e(metric_txt), "n") + _td(_e(t.message), "msg") + "</tr>"
        )
    return f"<div class='scroll'><table class='trials'>{head}{''.join(rows)}</table></div>"


def _target_text(target: Target | None, budgets: Sequence[int]) -> str:
    parts = []
    if target is not None:
        parts.append(f"target: <code>{_e(target.metric)}</code> {'&ge;' if target.mode == 'max' else '&le;'} "
                     f"{_e(f'{target.value:g}')}")
    if budgets:
        lo, hi = min(budgets), max(budgets)
        parts.append(f"budget: {lo:,} steps" if lo == hi else f"budget: {lo:,}&ndash;{hi:,} steps")
    return " &middot; ".join(parts)


def render_html(store: Store, study_id: int, *, title: str | None = None) -> str:
    """The HTML report of benchmark study ``study_id`` as a string (see :func:`write_html`)."""
    study = store.get_study(study_id)
    scores = _scores(store, study_id)
    all_trials = store.list_trials(study_id=study_id)
    targets = targets_of(study, all_trials)
    ranked = [a for a, _ in _ranking(scores)]
    from steplab.analysis.sensitivity import results_in_store

    sensitivity = results_in_store(store)  # LR sweeps of the same store (steplab sensitivity)
    colors = {a: _COLORS[i % len(_COLORS)] for i, a in enumerate(ranked)}
    for t in all_trials:  # algorithms with no finished trial yet
        colors.setdefault(t.spec.algorithm, _COLORS[len(colors) % len(_COLORS)])
    title = title or f"steplab benchmark: {study['name']}"
    study_of = {t.id: t.spec.study_id for t in scores.trials if t.id is not None}

    parts = [_header(study, scores, title), _HOWTO]
    parts.append("<h2>Ranking</h2>" + _ranking_html(scores, colors))
    parts.append(
        "<h2 id='profile'>Performance profile</h2>"
        + _img(profile_figure(scores, colors), "performance profiles")
        + "<p class='note'>&rho;(&tau;) at the tabulated &tau; (training time)"
        + (f"; the profile and score use the {len(_base_workloads(scores.time_s))} base workloads, "
           "variants are compared under Variant agreement" if scores.variants else "")
        + ":</p>"
        + _profile_table_html(scores)
    )
    parts.append(_variants_html(scores))

    parts.append("<h2>Time to target per workload</h2><p class='note'>Fastest in bold; "
                 "&times; best is the factor of the fastest algorithm on the workload; the figure "
                 "shows each algorithm's best trial (fastest to the target, else the best final "
                 "metric).</p>")
    for w in _workload_keys(scores):
        mine = [t for t in scores.trials if scoring.workload_key(t.spec) == w]
        target = targets.get(w)
        best: dict[str, TrialResult] = {}
        for a in ranked:
            pick = best_trial([t for t in mine if t.spec.algorithm == a], target)
            if pick is not None:
                best[a] = pick
        parts.append(
            f"<h3>{_e(w)}</h3><p class='note'>{_target_text(target, [t.spec.budget_steps for t in mine])}</p>"
            + _workload_table_html(scores, w, mine, colors, sensitivity)
            + _img(workload_figure(store, best, target, colors), f"traces on {w}")
        )

    parts.append(_tradeoff_html(tradeoff.study_curves(store, study_id, targets), colors))
    parts.append(f"<h2>All trials ({len(all_trials)})</h2>" + _trials_html(all_trials, targets, study_of))
    body = "\n".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def write_html(store: Store, study_id: int, path: str | Path, *, title: str | None = None) -> Path:
    """Write the report of benchmark study ``study_id`` to ``path``: one self-contained
    HTML file (inline CSS, figures as base64 PNGs, no scripts or external URLs) with the
    spec, how to read it, the ranking, the performance profile, per-workload
    time-to-target tables with the traces of each algorithm's best trial, and every trial.
    Strings from the data are escaped. Raises ``SpecError`` when no trial has finished."""
    out = Path(path)
    text = render_html(store, study_id, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


__all__ = [
    "MISS",
    "best_trial",
    "format_hyperparameters",
    "format_noise",
    "format_ratio",
    "format_steps",
    "format_time",
    "latest_benchmark",
    "n_studies",
    "print_summary",
    "print_tradeoff",
    "profile_figure",
    "render_html",
    "targets_of",
    "tradeoff_curves",
    "tradeoff_figure",
    "workload_figure",
    "write_html",
]
