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
from steplab.analysis.intervals import DEFAULT_LEVEL
from steplab.report.benchmark import describe_saving, format_diff, format_interval, ratio_or_miss
from steplab.report.benchmark_data import (
    benchmark_scores,
    best_trial,
    fastest_time,
    final_value,
    interval_of,
    n_studies,
    ranking_of,
    ratio_table,
    reached_in_time,
    scored_workloads,
    targets_of,
    time_of,
    workload_keys,
)
from steplab.report.benchmark_figures import (
    profile_bands_figure,
    profile_figure,
    tradeoff_figure,
    workload_figure,
)
from steplab.report.benchmark_stats_html import (
    HOWTO,
    no_signal_html,
    pairs_html,
    profile_table_html,
    ranking_html,
)
from steplab.report.format import (
    DASH,
    MISS,
    format_hyperparameters,
    format_number,
    format_steps,
    format_time,
)
from steplab.report.html import cell, escape, image, page
from steplab.report.style import COLORS
from steplab.results import TrialResult

#: rows of the "All trials" table: a 10,000-trial benchmark lists its first 2,000 (about 2 MB
#: of HTML, not 11) and names the command that prints every one
MAX_TRIAL_ROWS = 2000

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



def _nowrap(text: str) -> str:
    """``text`` escaped, kept on one line (a value and its interval)."""
    return f"<span style='white-space:nowrap'>{escape(text)}</span>"


def _time_cell(value: float, best: float, fmt: Any, iv: Any = None) -> str:
    """A time with its interval: bold when fastest, grey when missed."""
    text = _nowrap(format_interval(iv, lambda v: fmt(v, missing=MISS), point=value))
    if not math.isfinite(value):
        return cell(text, "n miss")
    return cell(text, "n best" if value == best else "n")


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
        ("statistics", escape(f"{100 * scores.level:g}% bootstrap intervals"
                              + (f" ({scores.bootstrap.n_resamples:,} resamples, seed {scores.bootstrap.seed})"
                                 if scores.bootstrap is not None else "") + ", Holm-corrected pairwise tests")),
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
    r_time, r_steps = ratio_table(scores.time_s), ratio_table(scores.steps)
    best_t, best_s = fastest_time(scores.time_s, w), fastest_time(scores.steps, w)
    boot = scores.bootstrap
    sens = {a: r for (a, wk), r in (sensitivity or {}).items() if wk == w}  # a column only where sweeps exist
    head = ("<tr><th>algorithm</th><th class='n'>steps to target</th><th class='n'>&times; best</th>"
            "<th class='n'>time to target</th><th class='n'>&times; best</th>"
            "<th class='n'>studies reached</th><th class='n'>trials reached</th>"
            + ("<th class='n'>LR sensitivity</th>" if sens else "") + "</tr>")
    rows = []
    for a, _ in ranking_of(scores):
        if w not in scores.time_s.get(a, {}):
            continue
        mine = [t for t in trials if t.spec.algorithm == a]
        hit = sum(reached_in_time(t) for t in mine)
        st = boot.point_study_times.get((a, w)) if boot is not None else None
        studies = f"{sum(math.isfinite(x) for x in st)}/{len(st)}" if st is not None else DASH
        rows.append(
            "<tr>" + cell(f'<span class="swatch" style="background:{colors[a]}"></span>{escape(a)}')
            + _time_cell(time_of(scores.steps, a, w), best_s, format_steps, interval_of(scores.steps_ci, a, w))
            + cell(_nowrap(format_interval(interval_of(scores.ratio_steps_ci, a, w), ratio_or_miss,
                                           point=r_steps.get(a, {}).get(w, math.inf))), "n")
            + _time_cell(time_of(scores.time_s, a, w), best_t, format_time, interval_of(scores.time_ci, a, w))
            + cell(_nowrap(format_interval(interval_of(scores.ratio_ci, a, w), ratio_or_miss,
                                           point=r_time.get(a, {}).get(w, math.inf))), "n")
            + cell(studies, "n") + cell(f"{hit}/{len(mine)}", "n")
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


def render_html(store: Store, study_id: int, *, title: str | None = None, level: float = DEFAULT_LEVEL,
                scores: Scores | None = None) -> str:
    """The HTML report of benchmark study ``study_id`` as a string (see :func:`write_html`)."""
    from steplab.analysis.sensitivity import results_in_store
    from steplab.studies.tradeoff import is_tradeoff, study_curves

    study = store.get_study(study_id)
    scores = scores if scores is not None else benchmark_scores(store, study_id, level=level)
    all_trials = scores.stored if scores.stored is not None else store.list_trials(study_id=study_id)
    targets = targets_of(study, all_trials)
    ranked = [a for a, _ in ranking_of(scores)]
    sensitivity = results_in_store(store)  # LR sweeps of the same store (steplab sensitivity)
    colors = {a: COLORS[i % len(COLORS)] for i, a in enumerate(ranked)}
    for t in all_trials:  # algorithms with no finished trial yet
        colors.setdefault(t.spec.algorithm, COLORS[len(colors) % len(COLORS)])
    title = title or f"steplab benchmark: {study['name']}"
    study_of = {t.id: t.spec.study_id for t in scores.trials if t.id is not None}
    n_scored = len(scored_workloads(scores))

    parts = [_header(study, scores, title), HOWTO]
    parts.append("<h2>Ranking</h2>" + ranking_html(scores, colors))
    parts.append(no_signal_html(scores, targets))
    parts.append(
        "<h2 id='profile'>Performance profile</h2>"
        + (image(profile_figure(scores, colors), "performance profiles") if n_scored else "")
        + ((image(bands, "performance profiles with bootstrap bands")) if (bands := profile_bands_figure(scores, colors))
           else "")
        + f"<p class='note'>&rho;(&tau;) at the tabulated &tau; (training time) with its {100 * scores.level:g}% "
        f"bootstrap band (shaded in the panels), over the {n_scored} scored workload(s)"
        + ("; variants are compared under Variant agreement" if scores.variants else "")
        + (", without the workloads that gave no signal" if scores.no_signal else "")
        + ":</p>"
        + profile_table_html(scores)
    )
    parts.append(pairs_html(scores, colors))
    parts.append(_variants_html(scores))

    parts.append("<h2>Time to target per workload</h2><p class='note'>Fastest in bold; "
                 "&times; best is the factor of the fastest algorithm on the workload; "
                 f"[low, high] is the {100 * scores.level:g}% bootstrap interval (&ldquo;miss&rdquo; as an end: some "
                 "resamples missed the target); the figure shows each algorithm's best trial (fastest to the target, "
                 "else the best final metric).</p>")
    for w in workload_keys(scores):
        mine = [t for t in scores.trials if scoring.workload_key(t.spec) == w]
        target = targets.get(w)
        best: dict[str, TrialResult] = {}
        for a in ranked:
            pick = best_trial([t for t in mine if t.spec.algorithm == a], target)
            if pick is not None:
                best[a] = pick
        flag = " <span class='miss'>(no signal: left out of the score)</span>" if w in scores.no_signal else ""
        parts.append(
            f"<h3>{escape(w)}{flag}</h3><p class='note'>{_target_text(target, [t.spec.budget_steps for t in mine])}</p>"
            + _workload_table_html(scores, w, mine, colors, sensitivity)
            + image(workload_figure(store, best, target, colors), f"traces on {w}")
        )

    if any(is_tradeoff(t.spec.algorithm) for t in all_trials):  # study_curves reads every trial again
        parts.append(_tradeoff_html(study_curves(store, study_id, targets), colors))
    shown = all_trials[:MAX_TRIAL_ROWS]
    cut = (f"<p class='note'>The first {len(shown):,} by id; every trial: <code>steplab runs list --study {study_id} "
           "--limit 0 --csv</code>.</p>") if len(shown) < len(all_trials) else ""
    parts.append(f"<h2>All trials ({len(all_trials)})</h2>" + cut + _trials_html(shown, targets, study_of))
    return page(title, "\n".join(p for p in parts if p))


def write_html(store: Store, study_id: int, path: str | Path, *, title: str | None = None, level: float = DEFAULT_LEVEL,
               scores: Scores | None = None) -> Path:
    """Write the report of benchmark study ``study_id`` to ``path``: one self-contained
    HTML file (inline CSS, figures as base64 PNGs, no scripts or external URLs) with the
    spec, how to read it, the ranking with intervals and tie groups, the no-signal workloads,
    the performance profile with its bands, the pairwise probabilities of improvement,
    per-workload time-to-target tables with the traces of each algorithm's best trial, and
    every trial. Intervals and tests at confidence ``level`` (or those of ``scores``, the
    study's ``bench.score``, when given). Strings from the data are escaped. Raises
    ``SpecError`` when no trial has finished."""
    out = Path(path)
    text = render_html(store, study_id, title=title, level=level, scores=scores)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
