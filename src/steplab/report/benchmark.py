"""The benchmark report in the terminal: ``rich`` tables of the ranking (with tie groups and
wins), the per-workload times to target, the performance profile, the variant agreement, the
pairwise probability of improvement and the tradeoff curves.

What is shown follows AlgoPerf's reporting (Dahl et al. 2023, "Benchmarking Neural Network
Training Algorithms", arXiv:2306.07179, sections "Scoring" and "Results"): per-workload
time-to-target tables, performance profiles (Dolan & Moré 2002) and the benchmark score, plus
what steplab adds: the time in training steps beside the seconds, and the statistics of
Agarwal et al. 2021 ("Deep Reinforcement Learning at the Edge of the Statistical Precipice"):
a bootstrap confidence interval beside every compared number, tie groups from pairwise tests
with Holm's correction, wins only for separated pairs, P(A faster than B)
(``steplab.analysis.intervals``, ``steplab.analysis.verdicts``), and a note on workloads that
gave no signal. The tradeoff tables show the accuracy-vs-training-time curves of ``steplab
bench --tradeoff cyclic`` (Portes et al. 2022, ``steplab.studies.tradeoff``). Names from the
data are printed as plain text, never as rich markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.analysis.intervals import Interval
from steplab.report.benchmark_data import (
    interval_of,
    n_studies,
    no_signal_metric,
    ranking_of,
    ratio_table,
    targets_reached,
    tie_marks,
    time_of,
    verdict_rule,
    workload_keys,
)
from steplab.report.format import DASH, MISS, format_number, format_ratio, format_steps, format_time

if TYPE_CHECKING:
    from steplab.studies.bench import Scores
    from steplab.studies.tradeoff import Agreement, Curve

__all__ = ["describe_saving", "format_diff", "format_interval", "print_pairs", "print_summary", "print_tradeoff",
           "ratio_or_miss"]


def format_interval(iv: Interval | None, fmt: Callable[[float], str] = lambda v: format_number(v, 3),
                    *, point: float | None = None) -> str:
    """``"0.591 [0.402, 0.700]"``: the point and its interval, each through ``fmt`` (a miss,
    ``inf``, as ``fmt`` shows it); the point alone without an interval.

    >>> format_interval(Interval(0.5912, 0.4, 0.7, 0.9))
    '0.591 [0.400, 0.700]'
    """
    if iv is None or math.isnan(iv.low):
        return fmt(point if point is not None else (iv.point if iv is not None else math.nan))
    if iv.low == iv.high == iv.point:  # every resample agrees (e.g. all missed): the point alone
        return fmt(iv.point)
    return f"{fmt(iv.point)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def ratio_or_miss(ratio: float) -> str:
    """``"×1.25"``; ``"miss"`` for ``inf`` (a resample or a point that missed the target)."""
    return format_ratio(ratio) if math.isfinite(ratio) else MISS


def _studies_reached(scores: Scores, a: str, w: str) -> str:
    boot = scores.bootstrap
    if boot is None or (a, w) not in boot.point_study_times:
        return DASH
    st = boot.point_study_times[(a, w)]
    return f"{int(sum(math.isfinite(x) for x in st))}/{len(st)}"


def _level(scores: Scores) -> str:
    return f"{100 * scores.level:g}%"


def print_summary(scores: Scores, console: Console | None = None, *, title: str = "benchmark") -> None:
    """Print the ranking (scores with intervals, tie groups, wins), the per-workload
    time-to-target (steps and seconds with intervals, ratio to the fastest), the no-signal
    workloads, the performance profile with its bands and the variant agreement of ``scores``
    (``bench.score``) on ``console``. Names from the data are printed as plain text."""
    console = console or Console()
    n_s = n_studies(scores)
    keys = workload_keys(scores)
    pct = _level(scores)
    order = [a for a, _ in ranking_of(scores)]
    marks = tie_marks(scores)
    rank_of = {a: i for i, a in enumerate(order, 1)}

    rank = Table(title=Text(f"{title}: ranking (benchmark score, 1 = fastest everywhere; [{pct} interval]; "
                            "┐ ┘ = a tie group)"), title_justify="left")
    rank.add_column("#", justify="right")
    rank.add_column("tie", justify="center")
    rank.add_column("algorithm", style="bold cyan", overflow="fold")
    rank.add_column("score (time)", justify="right")
    rank.add_column("wins over #", justify="left")
    rank.add_column("score (steps)", justify="right")
    rank.add_column("targets reached", justify="right")
    for a in order:
        wins = scores.verdict.wins(a) if scores.verdict is not None else []
        rank.add_row(
            str(rank_of[a]), marks.get(a, ""), Text(a),
            format_interval(scores.score_ci.get(a), point=scores.score_time.get(a, math.nan)),
            " ".join(str(rank_of[b]) for b in wins) or DASH,
            format_interval(scores.score_steps_ci.get(a), point=scores.score_steps.get(a, math.nan)),
            f"{targets_reached(scores, a)}/{len(keys)}",
        )
    console.print(rank)
    if scores.verdict is not None:
        groups = " > ".join("{" + ", ".join(g) + "}" for g in scores.verdict.groups)
        console.print(Text(f"  tie groups, best first: {groups}"))
        console.print(Text(f"  {verdict_rule(scores)}. P(A faster than B): steplab report --pairs"), style="dim")
    for w, best in scores.no_signal.items():
        metric = no_signal_metric(scores, w)
        values = ", ".join(f"{a} {format_number(v, 4)}" for a, v in best.items())
        console.print(Text(f"  no signal on {w}: no algorithm reached its target in any study, so it is left out of "
                           f"the score. Best {metric} reached: {values}."), style="yellow")

    r_time, r_steps = ratio_table(scores.time_s), ratio_table(scores.steps)
    per = Table(
        title=Text(f"time to target per workload ({n_s} stud{'y' if n_s == 1 else 'ies'}; median over studies "
                   f"[{pct} bootstrap interval])"),
        title_justify="left",
    )
    per.add_column("workload", style="bold", overflow="fold")
    per.add_column("algorithm", style="cyan", overflow="fold")
    per.add_column("steps", justify="right")
    per.add_column("×best", justify="right")
    per.add_column("time", justify="right")
    per.add_column("×best (time)", justify="right")
    per.add_column("studies reached", justify="right")
    for w in keys:
        for j, a in enumerate(order):
            t, s = time_of(scores.time_s, a, w), time_of(scores.steps, a, w)
            style = "" if math.isfinite(t) else "dim"
            per.add_row(
                Text(w) if j == 0 else "",
                Text(a),
                Text(format_interval(interval_of(scores.steps_ci, a, w), lambda v: format_steps(v, missing=MISS),
                                     point=s), style=style),
                format_ratio(r_steps.get(a, {}).get(w, math.inf)),
                Text(format_interval(interval_of(scores.time_ci, a, w), lambda v: format_time(v, missing=MISS),
                                     point=t), style=style),
                format_interval(interval_of(scores.ratio_ci, a, w), ratio_or_miss,
                                point=r_time.get(a, {}).get(w, math.inf)),
                _studies_reached(scores, a, w),
                end_section=j == len(order) - 1,
            )
    console.print(per)

    n_w = len(scores.bootstrap.scored) if scores.bootstrap is not None else len(keys)
    prof = Table(
        title=Text(f"performance profile rho(tau): share of the {n_w} scored workload(s) within "
                   f"a factor tau of the fastest (time) [{pct} band]"),
        title_justify="left",
    )
    prof.add_column("algorithm", style="cyan", overflow="fold")
    for tau in scores.profiles_tau:
        prof.add_column(f"tau={tau:g}", justify="right")
    for a in order:
        lows, highs = scores.profile_bands.get(a, ([], []))
        cells = [format_number(v, 2) + (f" [{lows[k]:.2f}, {highs[k]:.2f}]" if k < len(lows) and math.isfinite(lows[k])
                                        else "") for k, v in enumerate(scores.profiles.get(a, []))]
        prof.add_row(Text(a), *cells)
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


def print_pairs(scores: Scores, console: Console | None = None, *, title: str = "benchmark") -> None:
    """Print the matrix of ``P(row reaches the target faster than column)`` with its interval
    (``verdicts.p_improvement``; Agarwal et al. 2021): green where the interval lies above
    1/2, red where it lies below."""
    console = console or Console()
    if scores.verdict is None:
        console.print(Text("no probability of improvement: the scores carry no resamples"))
        return
    order = list(scores.verdict.order)
    n_w = len(scores.bootstrap.scored) if scores.bootstrap is not None else 0
    console.print(Text(f"{title}: P(row reaches the target faster than column), from the per-study times, mean over "
                       f"{n_w} scored workload(s) [{_level(scores)} interval]"))
    table = Table()
    table.add_column("row \\ column", style="bold cyan", overflow="fold")
    for b in order:
        table.add_column(Text(b), justify="right", overflow="fold")
    for a in order:
        row: list[Text | str] = [Text(a)]
        for b in order:
            if a == b:
                row.append(DASH)
                continue
            iv = scores.verdict.p_improvement[a][b]
            style = "green" if iv.low > 0.5 else "red" if iv.high < 0.5 else ""
            row.append(Text(format_interval(iv, lambda v: format_number(v, 2)), style=style))
        table.add_row(*row)
    console.print(table)
    console.print(Text("  1/2 = no difference; a miss counts as slower than any reached time, two misses as a tie "
                       "(rliable's probability of improvement on times). Each interval is for its own pair, not "
                       "corrected for looking at many pairs: wins are decided on the scores (steplab report)."),
                  style="dim")



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
