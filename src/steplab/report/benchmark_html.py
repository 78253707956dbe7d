"""The benchmark report as one self-contained HTML page: the spec, how to read it, the ranking,
the performance profile, per-workload time-to-target tables with the traces of each algorithm's
best trial, the variant agreement, the tradeoff curves and every trial.

What is shown follows AlgoPerf's reporting (Dahl et al. 2023, arXiv:2306.07179, "Scoring" and
"Results"). Inline CSS and figures as base64 PNGs: no scripts, no external URLs, every string
that comes from the data escaped (study, algorithm and workload names, hyperparameters,
messages). An "LR sensitivity" column appears in the per-workload tables for the algorithms that
have a ``steplab sensitivity`` sweep of that workload in the same store
(``steplab.analysis.sensitivity.results_in_store``, read-only; Wortsman et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steplab.analysis import scoring
from steplab.report.benchmark import describe_saving, format_diff
from steplab.report.benchmark_data import (
    base_workloads,
    benchmark_scores,
    best_trial,
    fastest_time,
    final_value,
    n_studies,
    ranking_of,
    ratio_table,
    targets_of,
    targets_reached,
    time_of,
    workload_keys,
)
from steplab.report.benchmark_figures import profile_figure, tradeoff_figure, workload_figure
from steplab.report.format import (
    DASH,
    MISS,
    format_hyperparameters,
    format_noise,
    format_number,
    format_ratio,
    format_steps,
    format_time,
)
from steplab.report.html import cell, escape, image, page
from steplab.report.style import COLORS
from steplab.results import TrialResult

if TYPE_CHECKING:
    from steplab.store import Store
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Curve
    from steplab.workloads.base import Target

__all__ = ["render_html", "write_html"]


def _tradeoff_html(curves: Sequence[Curve], colors: Mapping[str, str]) -> str:
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
                rows.append("<tr>" + cell(swatch + escape(c.algorithm) if j == 0 else "")
                            + cell(f"{p.budget_steps:,}", "n") + cell(format_number(p.value, 4), "n")
                            + cell(format_number(q.value if q else math.nan, 4), "n") + cell(escape(format_diff(d)), "n")
                            + cell(escape(format_time(p.time_s)), "n")
                            + cell(escape(format_time(q.time_s if q else math.nan)), "n") + "</tr>")
            notes.append(f"{escape(c.algorithm)}: max |cyclic &minus; separate| {format_number(c.agreement.max_abs_diff, 4)}; "
                         f"one cyclic run {escape(describe_saving(c.agreement))}")
        parts.append(f"<h3>{escape(w)}</h3><p class='note'>metric <code>{escape(mine[0].metric)}</code></p>"
                     f"<table>{head}{''.join(rows)}</table><p class='note'>{'<br>'.join(notes)}</p>"
                     + image(tradeoff_figure(mine, colors), f"tradeoff curves on {w}"))
    return "\n".join(parts)



def _time_cell(value: float, best: float, fmt: Any) -> str:
    if not math.isfinite(value):
        return cell(MISS, "n miss")
    return cell(escape(fmt(value)), "n best" if value == best else "n")


def _header(study: Mapping[str, Any], scores: Scores, title: str) -> str:
    spec = study.get("spec") if isinstance(study.get("spec"), Mapping) else {}
    algos = list(spec.get("algorithms") or sorted(scores.time_s))
    keys = workload_keys(scores)
    versions: dict[str, Any] = {}
    devices = sorted({t.device for t in scores.trials if t.device})
    hosts = sorted({t.host for t in scores.trials if t.host})
    for t in scores.trials:
        versions = t.versions or versions
        if versions:
            break
    rows = [
        ("study", f"{escape(study.get('name', ''))} (id {escape(study.get('id', ''))}, kind {escape(study.get('kind', ''))})"),
        ("suite", escape(spec.get("suite", DASH))),
        ("ruleset", escape(spec.get("ruleset", DASH))),
        ("trials per study (N)", escape(spec.get("trials", DASH))),
        ("studies (S)", escape(spec.get("studies", n_studies(scores)))),
        ("algorithms", escape(", ".join(str(a) for a in algos))),
        ("workloads", escape(", ".join(keys))),
        ("trials finished", escape(len(scores.trials))),
        ("created", escape(study.get("created_at", ""))),
        ("device / host", escape(", ".join(devices) or DASH) + " / " + escape(", ".join(hosts) or DASH)),
        ("versions", escape(", ".join(f"{k} {v}" for k, v in versions.items()) or DASH)),
    ]
    if spec.get("overrides"):
        rows.insert(6, ("overrides", escape(", ".join(map(str, spec["overrides"])))))
    if spec.get("tradeoff"):
        rows.append(("tradeoff curves", escape(spec["tradeoff"]) + " (see Accuracy vs training time)"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f"<h1>{escape(title)}</h1><p class='sub'>steplab time-to-target benchmark report</p>"
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


def _ranking_html(scores: Scores, colors: Mapping[str, str]) -> str:
    keys = workload_keys(scores)
    rows = []
    for i, (a, s) in enumerate(ranking_of(scores), 1):
        st = scores.score_steps.get(a, math.nan)
        rows.append(
            "<tr>" + cell(str(i), "n")
            + cell(f'<span class="swatch" style="background:{colors[a]}"></span>{escape(a)}')
            + cell(f'<span class="bar" style="width:{max(0.0, min(1.0, s)) * 120:.0f}px"></span>{s:.3f}', "n")
            + cell(format_number(st, 3), "n")
            + cell(f"{targets_reached(scores, a)}/{len(keys)}", "n") + "</tr>"
        )
    head = ("<tr><th class='n'>#</th><th>algorithm</th><th class='n'>score (time)</th>"
            "<th class='n'>score (steps)</th><th class='n'>targets reached</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _profile_table_html(scores: Scores) -> str:
    head = "<tr><th>algorithm</th>" + "".join(f"<th class='n'>&tau; = {t:g}</th>" for t in scores.profiles_tau) + "</tr>"
    rows = []
    for a, _ in ranking_of(scores):
        cells = "".join(cell(f"{v:.2f}", "n") for v in scores.profiles.get(a, []))
        rows.append(f"<tr>{cell(escape(a))}{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _sensitivity_cell(r: Any) -> str:
    """``0.412 ± 0.031 (best 1.611)`` for a ``steplab.analysis.sensitivity.SensitivityResult``."""
    if r is None or not math.isfinite(r.sensitivity):
        return DASH
    sd = f" &plusmn; {r.sensitivity_sd:.3f}" if math.isfinite(r.sensitivity_sd) else ""
    return f"{r.sensitivity:.3f}{sd} (best {r.best_loss:.3f})"


def _sensitivity_note(found: Sequence[Any]) -> str:
    sweeps = "; ".join(sorted({f"{escape(r.algorithm)}: lr {r.grid[0]:.3g}..{r.grid[-1]:.3g} &times; {len(r.grid)}, "
                               f"{r.budget_steps:,} steps, {len(r.complete_seeds())} seed(s)" for r in found}))
    return ("<p class='note'>LR sensitivity (Wortsman et al. 2023; <code>steplab sensitivity</code> sweeps "
            "found in this store, read-only): the mean over a log grid of peak learning rates of "
            "min(L(lr), L<sub>init</sub>) &minus; min L, final <code>validation/loss</code>, diverged runs counted "
            "as L<sub>init</sub>; lower is more robust; mean &plusmn; sd over seeds, grid-best loss in brackets. "
            f"Sweeps: {sweeps}.</p>")


def _workload_table_html(scores: Scores, w: str, trials: Sequence[TrialResult],
                         colors: Mapping[str, str], sensitivity: Mapping[tuple[str, str], Any] | None = None) -> str:
    n_s = n_studies(scores)
    r_time, r_steps = ratio_table(scores.time_s), ratio_table(scores.steps)
    best_t, best_s = fastest_time(scores.time_s, w), fastest_time(scores.steps, w)
    sens = {a: r for (a, wk), r in (sensitivity or {}).items() if wk == w}  # a column only where sweeps exist
    head = ("<tr><th>algorithm</th><th class='n'>steps to target</th><th class='n'>&times; best</th>"
            "<th class='n'>time to target</th><th class='n'>&times; best</th>"
            "<th class='n'>noise floor</th><th class='n'>trials reached</th>"
            + ("<th class='n'>LR sensitivity</th>" if sens else "") + "</tr>")
    rows = []
    for a, _ in ranking_of(scores):
        if w not in scores.time_s.get(a, {}):
            continue
        mine = [t for t in trials if t.spec.algorithm == a]
        hit = sum(math.isfinite(scoring.trial_time(t)) for t in mine)
        rows.append(
            "<tr>" + cell(f'<span class="swatch" style="background:{colors[a]}"></span>{escape(a)}')
            + _time_cell(time_of(scores.steps, a, w), best_s, format_steps)
            + cell(escape(format_ratio(r_steps.get(a, {}).get(w, math.inf))), "n")
            + _time_cell(time_of(scores.time_s, a, w), best_t, format_time)
            + cell(escape(format_ratio(r_time.get(a, {}).get(w, math.inf))), "n")
            + cell(escape(format_noise(scores.noise.get(a, {}).get(w, math.nan), n_s)), "n")
            + cell(f"{hit}/{len(mine)}", "n")
            + (cell(_sensitivity_cell(sens.get(a)), "n") if sens else "") + "</tr>"
        )
    shown = [sens[a] for a, _ in ranking_of(scores) if a in sens and w in scores.time_s.get(a, {})]
    return f"<table>{head}{''.join(rows)}</table>" + (_sensitivity_note(shown) if shown else "")


def _variants_html(scores: Scores) -> str:
    if not scores.variants:
        return ""
    head = ("<tr><th>variant</th><th>base</th><th class='n'>Kendall &tau;</th><th class='n'>p</th>"
            "<th>base winner</th><th>variant winner</th><th>same winner</th></tr>")
    rows = []
    for key, v in scores.variants.items():
        rows.append(
            "<tr>" + cell(escape(key)) + cell(escape(v.get("base", ""))) + cell(format_number(v.get("kendall_tau")), "n")
            + cell(format_number(v.get("p_value")), "n") + cell(escape(", ".join(v.get("base_winners", ())) or DASH))
            + cell(escape(", ".join(v.get("variant_winners", ())) or DASH))
            + cell("yes" if v.get("same_winner") else "no") + "</tr>"
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
        final = final_value(t, target.metric) if target is not None else math.nan
        metric_txt = f"{final:.4g}" if math.isfinite(final) else DASH
        status = escape(t.status)
        rows.append(
            "<tr>" + cell(escape(t.id if t.id is not None else DASH), "n")
            + cell(escape(study_of.get(t.id, t.spec.study_id) if t.id is not None else DASH), "n")
            + cell(escape(t.spec.algorithm)) + cell(escape(w)) + cell(escape(t.spec.seed), "n")
            + cell(escape(format_hyperparameters(t.spec.hyperparameters) or "(defaults)"), "hp")
            + cell(f'<span class="status s-{status}">{status}</span>')
            + cell(escape(format_steps(t.steps)), "n")
            + cell(escape(format_steps(t.steps_to_target)), "n")
            + cell(escape(format_time(t.time_to_target_s)), "n")
            + cell(escape(metric_txt), "n") + cell(escape(t.message), "msg") + "</tr>"
        )
    return f"<div class='scroll'><table class='trials'>{head}{''.join(rows)}</table></div>"


def _target_text(target: Target | None, budgets: Sequence[int]) -> str:
    parts = []
    if target is not None:
        parts.append(f"target: <code>{escape(target.metric)}</code> {'&ge;' if target.mode == 'max' else '&le;'} "
                     f"{escape(f'{target.value:g}')}")
    if budgets:
        lo, hi = min(budgets), max(budgets)
        parts.append(f"budget: {lo:,} steps" if lo == hi else f"budget: {lo:,}&ndash;{hi:,} steps")
    return " &middot; ".join(parts)


def render_html(store: Store, study_id: int, *, title: str | None = None) -> str:
    """The HTML report of benchmark study ``study_id`` as a string (see :func:`write_html`)."""
    from steplab.analysis.sensitivity import results_in_store
    from steplab.studies.tradeoff import study_curves

    study = store.get_study(study_id)
    scores = benchmark_scores(store, study_id)
    all_trials = store.list_trials(study_id=study_id)
    targets = targets_of(study, all_trials)
    ranked = [a for a, _ in ranking_of(scores)]
    sensitivity = results_in_store(store)  # LR sweeps of the same store (steplab sensitivity)
    colors = {a: COLORS[i % len(COLORS)] for i, a in enumerate(ranked)}
    for t in all_trials:  # algorithms with no finished trial yet
        colors.setdefault(t.spec.algorithm, COLORS[len(colors) % len(COLORS)])
    title = title or f"steplab benchmark: {study['name']}"
    study_of = {t.id: t.spec.study_id for t in scores.trials if t.id is not None}

    parts = [_header(study, scores, title), _HOWTO]
    parts.append("<h2>Ranking</h2>" + _ranking_html(scores, colors))
    parts.append(
        "<h2 id='profile'>Performance profile</h2>"
        + image(profile_figure(scores, colors), "performance profiles")
        + "<p class='note'>&rho;(&tau;) at the tabulated &tau; (training time)"
        + (f"; the profile and score use the {len(base_workloads(scores.time_s))} base workloads, "
           "variants are compared under Variant agreement" if scores.variants else "")
        + ":</p>"
        + _profile_table_html(scores)
    )
    parts.append(_variants_html(scores))

    parts.append("<h2>Time to target per workload</h2><p class='note'>Fastest in bold; "
                 "&times; best is the factor of the fastest algorithm on the workload; the figure "
                 "shows each algorithm's best trial (fastest to the target, else the best final "
                 "metric).</p>")
    for w in workload_keys(scores):
        mine = [t for t in scores.trials if scoring.workload_key(t.spec) == w]
        target = targets.get(w)
        best: dict[str, TrialResult] = {}
        for a in ranked:
            pick = best_trial([t for t in mine if t.spec.algorithm == a], target)
            if pick is not None:
                best[a] = pick
        parts.append(
            f"<h3>{escape(w)}</h3><p class='note'>{_target_text(target, [t.spec.budget_steps for t in mine])}</p>"
            + _workload_table_html(scores, w, mine, colors, sensitivity)
            + image(workload_figure(store, best, target, colors), f"traces on {w}")
        )

    parts.append(_tradeoff_html(study_curves(store, study_id, targets), colors))
    parts.append(f"<h2>All trials ({len(all_trials)})</h2>" + _trials_html(all_trials, targets, study_of))
    return page(title, "\n".join(p for p in parts if p))


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
