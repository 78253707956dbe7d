"""Reports: terminal tables, JSON-able numbers, the HTML pages and every plot (DESIGN.md,
"Layers": ``report/``).

* the benchmark report (AlgoPerf-style scoring, Dahl et al. 2023): :mod:`.benchmark_data` (what
  is shown, read from a store), :mod:`.benchmark` (terminal), :mod:`.benchmark_html` (the HTML
  page) and :mod:`.benchmark_figures`;
* the run report of single trials, whatever recorded them: :mod:`.run_report` (numbers and
  terminal), :mod:`.run_html`, :mod:`.run_figures`;
* data for programs (``--json``/``--csv``): :mod:`.machine`;
* shared helpers: :mod:`.format` (numbers for people), :mod:`.html` (page shell, escaping,
  cells, embedded figures), :mod:`.style` (colours, labels, base64 PNGs);
* file plots of the CLI commands: :mod:`.plots`, :mod:`.tune_plots`.

Importing this package loads no torch and no training code: the studies and workloads a
report reads are imported inside the functions that need them.
"""

from steplab.report.benchmark import print_summary, print_tradeoff
from steplab.report.benchmark_data import (
    best_trial,
    latest_benchmark,
    n_studies,
    targets_of,
    tradeoff_curves,
)
from steplab.report.benchmark_figures import profile_figure, tradeoff_figure, workload_figure
from steplab.report.benchmark_html import render_html, write_html
from steplab.report.format import (
    MISS,
    format_hyperparameters,
    format_noise,
    format_ratio,
    format_steps,
    format_time,
)

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
