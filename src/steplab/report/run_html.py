"""The run report as one self-contained HTML page, in the look of the benchmark report (the
shared :mod:`steplab.report.html` shell): the summary table of :mod:`steplab.report.run_report`,
then the figures of :mod:`steplab.report.run_figures`; a column no run recorded gets a note
instead of a figure. Inline CSS, figures as base64 PNGs, no scripts or external URLs; strings
from the data escaped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steplab.errors import SpecError
from steplab.report.format import DASH, format_hyperparameters
from steplab.report.html import cell, escape, image, page
from steplab.report.run_figures import figures, run_colors
from steplab.report.run_report import (
    Run,
    RunSummary,
    grad_norm_column,
    metric_names,
    summarize,
    summary_rows,
)

__all__ = ["render_html", "write_html"]


# ---------------------------------------------------------------------------------- html
_HOWTO = """<div class="howto">
<p><b>How to read this.</b> Each column of the table and each colour in the figures is one
trial, whatever recorded it: <code>steplab run</code>, your own loop with the steplab
<code>Recorder</code>, or a log imported from TensorBoard, MLflow or CSV. The <b>final loss</b>
is the mean of the last 5% of the recorded per-step training losses (at least one), so one
noisy batch does not decide it; the figure shows each step's loss faintly and a moving average
over about 2% of the run. The <b>best</b> value of an evaluation metric is its minimum for
losses and errors, its maximum otherwise. &ldquo;&mdash;&rdquo; and a missing figure mean the
source did not record that column (an imported log without gradient norms, for example).</p>
</div>"""


def _header(runs: Sequence[Run], title: str) -> str:
    ids = ", ".join(str(r.trial.id) for r in runs)
    versions: dict[str, str] = next((r.trial.versions for r in runs if r.trial.versions), {})
    rows = [
        ("trials", escape(ids)),
        ("sources", escape(", ".join(dict.fromkeys(r.source for r in runs)))),
        ("device / host", escape(", ".join(sorted({r.trial.device for r in runs if r.trial.device})) or DASH)
         + " / " + escape(", ".join(sorted({r.trial.host for r in runs if r.trial.host})) or DASH)),
        ("versions", escape(", ".join(f"{k} {v}" for k, v in versions.items()) or DASH)),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<h1>{escape(title)}</h1><p class='sub'>steplab run report</p><dl class='spec'>{dl}</dl>"


def _table_html(runs: Sequence[Run], sums: Sequence[RunSummary], colors: Sequence[str]) -> str:
    head = "<tr><th></th>" + "".join(
        f"<th class='n'><span class='swatch' style='background:{c}'></span>trial {escape(r.trial.id)}</th>"
        for r, c in zip(runs, colors)) + "</tr>"
    body = []
    for field, values in summary_rows(runs, sums):
        cells = []
        for v in values:
            if field == "status":
                cells.append(cell(f'<span class="status s-{escape(v)}">{escape(v)}</span>', "n"))
            else:
                cells.append(cell(escape(v), "n miss" if v == DASH else "n"))
        body.append(f"<tr>{cell(escape(field))}{''.join(cells)}</tr>")
    hp = [cell(escape(format_hyperparameters(r.trial.spec.hyperparameters) or DASH), "hp") for r in runs]
    body.append(f"<tr>{cell('hyperparameters')}{''.join(hp)}</tr>")
    if any(r.trial.message and r.trial.message != r.source for r in runs):
        msgs = [cell(escape(r.trial.message if r.trial.message != r.source else ""), "msg") for r in runs]
        body.append(f"<tr>{cell('message')}{''.join(msgs)}</tr>")
    return f"<div class='scroll'><table class='trials'>{head}{''.join(body)}</table></div>"


def _missing_note(runs: Sequence[Run], what: str, has: Any) -> str:
    lacking = [r.label for r in runs if not has(r)]
    if not lacking or len(lacking) == len(runs):
        return ""
    return f"<p class='note'>not recorded by {escape(', '.join(lacking))}: no {escape(what)} line for it.</p>"


def render_html(runs: Sequence[Run], *, title: str | None = None) -> str:
    """The HTML run report of ``runs`` as a string (see :func:`write_html`)."""
    if not runs:
        raise SpecError("no trial to report: pass --trial ID (list them with `steplab runs list`)")
    colors = run_colors(runs)
    sums = [summarize(r) for r in runs]
    if title is None:
        title = (f"steplab run report: {runs[0].label}" if len(runs) == 1
                 else f"steplab run report: trials {', '.join(str(r.trial.id) for r in runs)}")
    has = {
        "Training loss": ("training loss", lambda r: np.isfinite(r.trace["loss"]).any()),
        "Learning rate": ("learning rate", lambda r: np.isfinite(r.trace["lr"]).any()),
        "Gradient norm": ("gradient norm", lambda r: bool(grad_norm_column(r.trace)[0])),
    }
    parts = [_header(runs, title), _HOWTO, "<h2>Summary</h2>" + _table_html(runs, sums, colors)]
    metrics = set(metric_names(runs))
    evals_open = False
    for name, png in figures(runs):
        if name in metrics and not evals_open:
            parts.append("<h2>Evaluations</h2>")
            evals_open = True
        heading = f"<h3>{escape(name)}</h3>" if name in metrics else f"<h2>{escape(name)}</h2>"
        if png is None:
            what = has[name][0] if name in has else name
            parts.append(heading + f"<p class='note miss'>no {escape(what)} recorded by "
                         f"{'this run' if len(runs) == 1 else 'these runs'}: figure skipped.</p>")
            continue
        note = _missing_note(runs, has[name][0], has[name][1]) if name in has else ""
        parts.append(heading + note + image(png, name))
    if not metrics:
        parts.append("<h2>Evaluations</h2><p class='note miss'>no evaluation rows recorded.</p>")
    return page(title, "\n".join(parts))


def write_html(runs: Sequence[Run], path: str | Path, *, title: str | None = None) -> Path:
    """Write the run report of ``runs`` (:func:`load_runs`) to ``path``: one self-contained
    HTML file (inline CSS, figures as base64 PNGs, no scripts or external URLs; strings from
    the data escaped) with the summary table and the loss, learning-rate, gradient-norm and
    evaluation figures; a column no run recorded gets a note instead of a figure."""
    out = Path(path)
    text = render_html(runs, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
