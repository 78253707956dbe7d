"""The statistical parts of the HTML benchmark report: how to read it, the ranking with score
intervals, tie groups and wins, the profile table with its bands, the matrix of pairwise
probabilities of improvement and the workloads that gave no signal.

The statistics are those of Agarwal et al. 2021 ("Deep Reinforcement Learning at the Edge of
the Statistical Precipice": stratified bootstrap intervals, probability of improvement) with
pairwise tests under Holm's correction (Holm 1979), computed in ``steplab.analysis.intervals``
and ``steplab.analysis.verdicts``. Every string from the data is escaped; no scripts, no URLs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from steplab.analysis.intervals import Interval
from steplab.report.benchmark import format_interval
from steplab.report.benchmark_data import (
    no_signal_metric,
    ranking_of,
    scored_workloads,
    targets_reached,
    tie_marks,
    verdict_rule,
    workload_keys,
)
from steplab.report.format import DASH, format_number
from steplab.report.html import cell, escape

if TYPE_CHECKING:
    from steplab.studies.bench import Scores
    from steplab.workloads.base import Target

__all__ = ["HOWTO", "no_signal_html", "pairs_html", "profile_table_html", "ranking_html"]

HOWTO = """<div class="howto">
<p><b>How to read this.</b> Each algorithm is tuned on each workload (the ruleset and N
trials above) and scored by its <b>time to target</b>: how long its fastest trial took to reach
the workload's validation target, counted in <b>training steps</b> and in <b>seconds of training
time</b>: its steps to target times the algorithm's seconds per step on that workload (each
trial's median step time, the median over the algorithm's trials there; evaluation excluded), so
that the machine's load while a trial ran does not decide the order. With several studies the
time is the median over studies.
A trial that never reached the target is a <b>miss</b> and counts as an infinite time.</p>
<p>The <b>performance profile</b> &rho;<sub>a</sub>(&tau;) is the fraction of workloads on which
algorithm <i>a</i> is within a factor &tau; of the fastest algorithm on that workload
(&rho;(1) = share of workloads it wins). The <b>benchmark score</b> is the normalised area under
the profile for &tau; in [1, 4]: 1 means fastest on every workload, 0 means never within 4&times;
of the fastest (AlgoPerf, Dahl et al. 2023). Scores and profiles use training seconds; the
&ldquo;steps&rdquo; score repeats them with step counts, which do not depend on the machine.</p>
<p><b>Intervals</b> [low, high] beside a number come from a bootstrap (Agarwal et al. 2021): the
studies of each algorithm and workload (each with its own tuning trials) are drawn again with
replacement, and every number is recomputed; the interval holds the middle share (the level
below) of the recomputed values. Shaded bands on the profile are the same. With a few studies
the intervals are wide, and a difference inside them is not a finding.</p>
<p><b>Ties and wins.</b> Two algorithms are <b>separated</b> when a test on the difference of
their scores (paired by resample) says it is not zero, after Holm's correction for testing every
pair; only separated pairs count as <b>wins</b>. Algorithms not separated from the one ranked
just above them share a <b>tie group</b> (brackets). <b>P(A faster than B)</b> is the chance
that a study of A reaches the target before a study of B (&frac12; = no difference), averaged over
workloads. A workload that no algorithm reached gives <b>no signal</b>: it is left out of the
scores and listed apart with each algorithm's best value.</p>
</div>"""


def _ci_bar(iv: Interval | None, point: float, width: int = 120) -> str:
    """A pale bar to ``point`` (in [0, 1]) with the interval drawn over it as a dark whisker."""
    p = max(0.0, min(1.0, point)) if math.isfinite(point) else 0.0
    bar = (f'<span style="position:absolute;left:0;top:3px;height:10px;width:{p * width:.0f}px;background:#a9c1dd;'
           'border-radius:2px"></span>')
    whisker = ""
    if iv is not None and math.isfinite(iv.low) and math.isfinite(iv.high) and iv.low < iv.high:
        lo, hi = max(0.0, min(1.0, iv.low)), max(0.0, min(1.0, iv.high))
        whisker = (f'<span style="position:absolute;left:{lo * width:.0f}px;top:5px;height:4px;'
                   f'width:{max(2.0, (hi - lo) * width):.0f}px;border:solid #1d2330;border-width:0 2px;'
                   'background:linear-gradient(#1d2330,#1d2330) center/100% 2px no-repeat"></span>')
    tick = f'<span style="position:absolute;left:{p * width - 1:.0f}px;top:1px;height:14px;width:2px;background:#1d2330"></span>'
    return (f'<span style="position:relative;display:inline-block;width:{width + 4}px;height:16px;'
            f'vertical-align:middle;margin-right:8px;background:#f0f3f7">{bar}{whisker}{tick}</span>')


def ranking_html(scores: Scores, colors: Mapping[str, str]) -> str:
    """The ranking: score (time) with its interval, the tie bracket, the wins (ranks of the
    algorithms it is separated from), score (steps) with its interval, targets reached; then the
    tie groups and the rule in words."""
    keys = workload_keys(scores)
    order = [a for a, _ in ranking_of(scores)]
    rank_of = {a: i for i, a in enumerate(order, 1)}
    marks = tie_marks(scores)
    v = scores.verdict
    rows = []
    for a in order:
        s = scores.score_time.get(a, math.nan)
        iv = scores.score_ci.get(a)
        wins = v.wins(a) if v is not None else []
        rows.append(
            "<tr>" + cell(str(rank_of[a]), "n") + cell(escape(marks.get(a, "")))
            + cell(f'<span class="swatch" style="background:{colors[a]}"></span>{escape(a)}')
            + cell(f"<span style='white-space:nowrap'>{_ci_bar(iv, s)}{escape(format_interval(iv, point=s))}</span>", "n")
            + cell(escape(", ".join(f"#{rank_of[b]}" for b in wins) or DASH))
            + cell(escape(format_interval(scores.score_steps_ci.get(a), point=scores.score_steps.get(a, math.nan))), "n")
            + cell(f"{targets_reached(scores, a)}/{len(keys)}", "n") + "</tr>"
        )
    pct = f"{100 * scores.level:g}%"
    head = (f"<tr><th class='n'>#</th><th>tie</th><th>algorithm</th><th class='n'>score (time) [{pct} interval]</th>"
            f"<th>wins over</th><th class='n'>score (steps) [{pct} interval]</th><th class='n'>targets reached</th></tr>")
    notes = []
    if v is not None:
        groups = " &gt; ".join("{" + escape(", ".join(g)) + "}" for g in v.groups)
        notes.append(f"<p class='note'><b>Tie groups</b>, best first: {groups}.<br>{escape(verdict_rule(scores))} "
                     "(a group is a chain, so two members of one group can still be separated: see &ldquo;wins "
                     "over&rdquo;).</p>")
    return f"<table>{head}{''.join(rows)}</table>" + "".join(notes)


def profile_table_html(scores: Scores) -> str:
    """rho(tau) at the tabulated tau, each with its bootstrap band."""
    head = "<tr><th>algorithm</th>" + "".join(f"<th class='n'>&tau; = {t:g}</th>" for t in scores.profiles_tau) + "</tr>"
    rows = []
    for a, _ in ranking_of(scores):
        lows, highs = scores.profile_bands.get(a, ([], []))
        cells = []
        for k, val in enumerate(scores.profiles.get(a, [])):
            band = (f" <span style='color:#5a6375;font-size:.85em;white-space:nowrap'>[{lows[k]:.2f}, {highs[k]:.2f}]</span>"
                    if k < len(lows) and math.isfinite(lows[k]) and lows[k] != highs[k] else "")
            cells.append(cell(format_number(val, 2) + band, "n"))
        rows.append(f"<tr>{cell(escape(a))}{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _poi_color(p: float) -> str:
    """White at 1/2, to green at 1 and red at 0."""
    if not math.isfinite(p):
        return "#ffffff"
    t = min(1.0, abs(p - 0.5) * 2.0)
    end = (120, 200, 140) if p > 0.5 else (235, 130, 120)
    r, g, b = (round(255 + (e - 255) * t) for e in end)
    return f"#{r:02x}{g:02x}{b:02x}"


def pairs_html(scores: Scores, colors: Mapping[str, str]) -> str:
    """The matrix of P(row reaches the target faster than column) with intervals, coloured
    from red (0) through white (1/2) to green (1); bold where the interval excludes 1/2."""
    v = scores.verdict
    if v is None or len(v.order) < 2:
        return ""
    order = list(v.order)
    head = "<tr><th>row \\ column</th>" + "".join(f"<th class='n'>{escape(b)}</th>" for b in order) + "</tr>"
    rows = []
    for a in order:
        cells = [cell(f'<span class="swatch" style="background:{colors[a]}"></span>{escape(a)}')]
        for b in order:
            if a == b:
                cells.append(cell(DASH, "n"))
                continue
            iv = v.p_improvement[a][b]
            strong = math.isfinite(iv.low) and (iv.low > 0.5 or iv.high < 0.5)
            degenerate = not math.isfinite(iv.low) or iv.low == iv.high == iv.point
            text = format_number(iv.point, 2) + ("" if degenerate else f"<br><span style='color:#5a6375;font-size:.85em;"
                                                 f"white-space:nowrap'>[{iv.low:.2f}, {iv.high:.2f}]</span>")
            cells.append(f'<td class="n" style="background:{_poi_color(iv.point)}">'
                         + (f"<b>{text}</b>" if strong else text) + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    n_w = len(scored_workloads(scores))
    return ("<h2 id='pairs'>Probability of improvement</h2><p class='note'>P(row reaches the target faster than "
            "column): for each scored workload, the share of (study of row, study of column) pairs in which the row's "
            "study was faster (a miss is slower than any reached time, two misses count &frac12;), averaged over "
            f"the {n_w} scored workload(s) (the probability of improvement of Agarwal et al. 2021) with its "
            f"{100 * scores.level:g}% bootstrap interval; bold where the interval excludes &frac12;. Each interval is "
            "for its own pair, not corrected for looking at many pairs: wins are decided on the scores (Ranking).</p>"
            f"<table>{head}{''.join(rows)}</table>")


def no_signal_html(scores: Scores, targets: Mapping[str, Target | None]) -> str:
    """The workloads no algorithm reached in any study: left out of the score, with each
    algorithm's best value of the target metric."""
    if not scores.no_signal:
        return ""
    order = [a for a, _ in ranking_of(scores)]
    keys = list(scores.no_signal)
    head = "<tr><th>algorithm</th>" + "".join(
        f"<th class='n'>{escape(w)}<br><span style='color:#5a6375;font-size:.85em;white-space:nowrap'>{_target(targets.get(w), no_signal_metric(scores, w))}</span></th>"
        for w in keys) + "</tr>"
    rows = ["<tr>" + cell(escape(a)) + "".join(cell(format_number(scores.no_signal[w].get(a, math.nan), 4), "n")
                                                 for w in keys) + "</tr>" for a in order]
    one = len(keys) == 1
    return ("<h2 id='no-signal'>Workloads with no signal</h2><p class='note'>No algorithm reached the target of "
            f"{escape(', '.join(keys))} in any study, so {'this workload says' if one else 'these workloads say'} "
            f"nothing about which algorithm is faster: {'it is' if one else 'they are'} left out of the profile and "
            "the score (instead of scoring 0 for everyone). The table shows the best value of the target metric each "
            "algorithm reached (over its trials); a lower target, a longer budget or more trials would make "
            f"{'it' if one else 'them'} count.</p><table>{head}{''.join(rows)}</table>")


def _target(target: Target | None, metric: str) -> str:
    if target is None:
        return f"best {escape(metric)}"
    return f"{escape(target.metric)} {'&ge;' if target.mode == 'max' else '&le;'} {escape(f'{target.value:g}')}"
