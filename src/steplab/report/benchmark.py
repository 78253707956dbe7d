"""The benchmark report in the terminal: ``rich`` tables of the ranking, the per-workload
times to target, the performance profile, the variant agreement and the tradeoff curves.

What is shown follows AlgoPerf's reporting (Dahl et al. 2023, "Benchmarking Neural Network
Training Algorithms", arXiv:2306.07179, sections "Scoring" and "Results"): per-workload
time-to-target tables, performance profiles (Dolan & Moré 2002) and the benchmark score,
plus what steplab adds - the time in training steps beside the seconds and the run-to-run
noise floor of the times (``bench.noise_floor``). The tradeoff tables show the
accuracy-vs-training-time curves of ``steplab bench --tradeoff cyclic`` (Portes et al. 2022,
``steplab.studies.tradeoff``). Names from the data are printed as plain text, never as rich
markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.report.benchmark_data import (
    base_workloads,
    fastest_time,
    n_studies,
    ranking_of,
    ratio_table,
    targets_reached,
    time_of,
    workload_keys,
)
from steplab.report.format import (
    DASH,
    MISS,
    format_noise,
    format_number,
    format_ratio,
    format_steps,
    format_time,
)

if TYPE_CHECKING:
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Agreement, Curve

__all__ = ["describe_saving", "format_diff", "print_summary", "print_tradeoff"]


def print_summary(scores: Scores, console: Console | None = None, *, title: str = "benchmark") -> None:
    """Print the ranking, per-workload time-to-target (steps and seconds, ratio to the
    fastest, noise floor), the performance profile and the variant agreement of
    ``scores`` (``bench.score``) on ``console``. Names from the data are printed as plain
    text, never as rich markup."""
    console = console or Console()
    n_s = n_studies(scores)
    keys = workload_keys(scores)
    base = base_workloads(scores.time_s) if scores.time_s else []

    rank = Table(title=Text(f"{title}: ranking (benchmark score, 1 = fastest everywhere)"), title_justify="left")
    rank.add_column("#", justify="right")
    rank.add_column("algorithm", style="bold cyan", overflow="fold")
    rank.add_column("score (time)", justify="right")
    rank.add_column("score (steps)", justify="right")
    rank.add_column("targets reached", justify="right")
    for i, (a, s) in enumerate(ranking_of(scores), 1):
        rank.add_row(
            str(i),
            Text(a),
            f"{s:.3f}",
            f"{scores.score_steps.get(a, math.nan):.3f}",
            f"{targets_reached(scores, a)}/{len(keys)}",
        )
    console.print(rank)

    r_time, r_steps = ratio_table(scores.time_s), ratio_table(scores.steps)
    per = Table(
        title=Text(f"time to target per workload ({n_s} stud{'y' if n_s == 1 else 'ies'}; "
                   "noise floor = spread of per-study steps)"),
        title_justify="left",
    )
    per.add_column("workload", style="bold", overflow="fold")
    per.add_column("algorithm", style="cyan", overflow="fold")
    per.add_column("steps", justify="right")
    per.add_column("×best", justify="right")
    per.add_column("time", justify="right")
    per.add_column("×best", justify="right")
    per.add_column("noise floor", justify="right")
    order = [a for a, _ in ranking_of(scores)]
    for w in keys:
        best_t, best_s = fastest_time(scores.time_s, w), fastest_time(scores.steps, w)
        for j, a in enumerate(order):
            t, s = time_of(scores.time_s, a, w), time_of(scores.steps, a, w)
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
    prof.add_column("algorithm", style="cyan", overflow="fold")
    for tau in scores.profiles_tau:
        prof.add_column(f"tau={tau:g}", justify="right")
    for a in order:
        prof.add_row(Text(a), *(f"{v:.2f}" for v in scores.profiles.get(a, [])))
    console.print(prof)

    if scores.variants:
        var = Table(title=Text("variant agreement (do variants rank the algorithms like the base?)"),
                    title_justify="left")
        for col in ("variant", "kendall tau", "p", "base winner", "variant winner", "same winner"):
            var.add_column(col, overflow="fold")
        for key, v in scores.variants.items():
            var.add_row(
                Text(key),
                format_number(v.get("kendall_tau")),
                format_number(v.get("p_value")),
                Text(", ".join(v.get("base_winners", ())) or DASH),
                Text(", ".join(v.get("variant_winners", ())) or DASH),
                "yes" if v.get("same_winner") else "no",
            )
        console.print(var)



def format_diff(v: float) -> str:
    """A signed difference to 4 decimals (``"+0.0012"``); ``"—"`` for NaN."""
    return f"{v:+.4f}" if math.isfinite(v) else DASH


def describe_saving(a: Agreement) -> str:
    """One cyclic run's training time and steps against the separate runs' sum, and the
    share it saves."""
    return (f"{format_time(a.cyclic_time_s)} vs {format_time(a.separate_time_s)} "
            f"({a.cyclic_steps:,} vs {a.separate_steps:,} steps): "
            + (f"saves {100 * a.saving:.0f}%" if math.isfinite(a.saving) else DASH))


def print_tradeoff(curves: Sequence[Curve], console: Console | None = None) -> None:
    """Print one table per workload: per algorithm and cycle budget, the cyclic run's metric
    and training time at the cycle end, the separate run's, and their difference; then the
    cyclic run's total training time against the separate runs' sum."""
    console = console or Console()
    for w in dict.fromkeys(c.workload for c in curves):
        mine = [c for c in curves if c.workload == w]
        metric = mine[0].metric
        table = Table(title=Text(f"{w}: {metric} vs training time, one cyclic run vs separate runs "
                                 "(diff = cyclic - separate; Portes et al. 2022)"), title_justify="left")
        table.add_column("algorithm", style="cyan", no_wrap=True, overflow="fold")
        for col in ("budget steps", "cyclic", "separate", "diff", "time cyclic", "time separate"):
            table.add_column(col, justify="right")
        for c in mine:
            sep = {p.budget_steps: p for p in c.separate}
            for j, (p, d) in enumerate(zip(c.cyclic, c.agreement.diffs)):
                q = sep.get(p.budget_steps)
                table.add_row(Text(c.algorithm) if j == 0 else "", f"{p.budget_steps:,}", format_number(p.value, 4),
                              format_number(q.value if q else math.nan, 4), format_diff(d), format_time(p.time_s),
                              format_time(q.time_s if q else math.nan))
            table.add_row("", "total", "", "", "", format_time(c.agreement.cyclic_time_s),
                          format_time(c.agreement.separate_time_s), end_section=True)
        console.print(table)
        for c in mine:
            console.print(Text(f"  {c.algorithm}: max |cyclic - separate| {format_number(c.agreement.max_abs_diff, 4)}; "
                               f"one cyclic run {describe_saving(c.agreement)}"))
