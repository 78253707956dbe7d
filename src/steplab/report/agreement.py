"""Does the small suite predict the big one? The rank agreement of two stored benchmarks
(Kendall tau-b with a bootstrap interval over studies, :mod:`steplab.analysis.agreement`):
between their benchmark-score rankings, and per workload both ran (e.g. at a short and at a
long budget), read from a store, as JSON-able data and as ``rich`` tables.

:func:`find_suite_pair` finds the newest ``quick`` and ``standard`` benchmarks of a store by
their stored spec's suite name, so ``steplab report`` can print the agreement on its own.
The studies code is imported inside the functions that need it (``import steplab.report``
stays free of torch and the training stack).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from steplab.analysis import agreement
from steplab.errors import SpecError
from steplab.report.format import DASH, format_time

if TYPE_CHECKING:
    from steplab.results import TrialResult
    from steplab.store import Store

__all__ = ["SUITE_PAIR", "agreement_data", "agreement_rows", "find_suite_pair", "print_agreement", "suite_pair_agreement"]

#: the (small, big) suites whose benchmarks ``steplab report`` compares when a store has both
SUITE_PAIR = ("quick", "standard")


def find_suite_pair(store: Store, pair: tuple[str, str] = SUITE_PAIR) -> tuple[int, int] | None:
    """The ids of the newest benchmark of each suite in ``pair`` (by the stored spec's
    ``suite``; benchmarks that override the suite's workloads do not count), or ``None``
    unless the store holds both."""
    newest: dict[str, int] = {}
    for s in store.list_studies():
        spec = s.get("spec")
        if s["kind"] != "benchmark" or not isinstance(spec, Mapping) or spec.get("workloads"):
            continue
        suite = spec.get("suite")
        if suite in pair:
            newest[suite] = max(newest.get(suite, -1), int(s["id"]))
    return (newest[pair[0]], newest[pair[1]]) if all(p in newest for p in pair) else None


def _trials(store: Store, study_id: int) -> list[TrialResult]:
    """The scored trials of a study: ``bench.scored_trials`` for a benchmark spec (study ids
    = tuning studies), else its finished trials."""
    from steplab.studies import bench

    spec = store.get_study(study_id)["spec"]
    if isinstance(spec, Mapping) and "trials" in spec:
        return bench.scored_trials(store, study_id)
    return [t for t in store.list_trials(study_id=study_id) if t.status != "running"]


def _measure() -> str:
    """The time measure the benchmark report ranks by (``bench.scores.TIME_MEASURE``)."""
    from steplab.studies.bench import scores

    return str(getattr(scores, "TIME_MEASURE", "time_s"))


def _side(store: Store, study_id: int) -> tuple[dict[str, Any], agreement.Outcomes]:
    from steplab.report.benchmark_data import targets_of

    study = store.get_study(study_id)
    trials = _trials(store, study_id)
    if not trials:
        raise SpecError(f"study {study_id} has no finished trials to rank; run `steplab bench` first")
    targets = targets_of(study, trials)
    metrics = {k: (t.metric, t.mode) for k, t in targets.items() if t is not None}
    measure = _measure()
    if measure == "cost_s":  # the report ranks by cost: the same per-step costs here
        from steplab.studies.bench.costs import costed_trials

        trials = costed_trials(store, trials)
    outcomes = agreement.study_outcomes(trials, measure, metrics)  # type: ignore[arg-type]
    spec = study["spec"] if isinstance(study["spec"], Mapping) else {}
    n = len({s for row in outcomes.values() for cell in row.values() for s in cell})
    info = {"study_id": study_id, "name": study["name"], "suite": spec.get("suite"), "studies": n,
            "measure": measure, "workloads": agreement.scored_workloads(outcomes)}
    return info, outcomes


def agreement_data(store: Store, study_a: int, study_b: int, *, n_boot: int = 1000,
                   level: float = agreement.DEFAULT_LEVEL, seed: int = 0) -> dict[str, Any]:
    """The rank agreement of benchmark ``study_a`` (e.g. the quick suite) with ``study_b``
    (e.g. the standard suite) as JSON-able data: ``a``/``b`` (study id, name, suite, number of
    studies, scored workloads), ``suite`` (the benchmark-score rankings' agreement) and
    ``workloads`` (per workload key both ran, ranked by time to target, misses by their final
    target metric); each agreement as :class:`steplab.analysis.agreement.Agreement` fields."""
    if study_a == study_b:
        raise SpecError(f"--agree needs two different studies, got {study_a} twice")
    if not 0.0 < level < 1.0:
        raise SpecError(f"the interval level must be between 0 and 1, got {level}; pass e.g. --level 0.9")
    info_a, a = _side(store, study_a)
    info_b, b = _side(store, study_b)
    opts = {"n_boot": n_boot, "level": level, "seed": seed}
    return {
        "a": info_a,
        "b": info_b,
        "level": level,
        "n_boot": n_boot,
        "seed": seed,
        "suite": dataclasses.asdict(agreement.suite_agreement(a, b, **opts)),
        "workloads": {w: dataclasses.asdict(x) for w, x in agreement.budget_agreements(a, b, **opts).items()},
    }


def _tau(x: Mapping[str, Any]) -> str:
    return f"{x['tau']:+.2f}" if math.isfinite(x["tau"]) else DASH


def _interval(x: Mapping[str, Any]) -> str:
    if not (math.isfinite(x["low"]) and math.isfinite(x["high"])):
        return DASH
    return f"[{x['low']:+.2f}, {x['high']:+.2f}]"


def _label(info: Mapping[str, Any]) -> str:
    return f"{info.get('suite') or info['name']} (study {info['study_id']}, {info['studies']} studies)"


def print_agreement(data: Mapping[str, Any], console: Console | None = None) -> None:
    """Print :func:`agreement_data`: the two score rankings side by side with their tau and
    interval, then one row per shared workload. Names are printed as plain text."""
    console = console or Console()
    la, lb = _label(data["a"]), _label(data["b"])
    s = data["suite"]
    pct = f"{100 * data['level']:g}%"
    title = (f"rank agreement: {la} vs {lb}: Kendall tau-b {_tau(s)}, {pct} interval {_interval(s)} "
             f"({s['n_defined']}/{data['n_boot']} bootstrap resamples over studies)")
    side = Table(title=Text(title), title_justify="left")
    side.add_column("#", justify="right")
    for label in (la, lb):
        side.add_column(Text(label), overflow="fold")
        side.add_column("score", justify="right")
    ra, rb = s["ranking_a"], s["ranking_b"]
    if not (s["values_a"] and s["values_b"]):
        empty = [lab for lab, v in ((la, s["values_a"]), (lb, s["values_b"])) if not v]
        console.print(Text(f"{title}\n  no ranking for {' and '.join(empty)}: no workload gave a signal "
                           "(no algorithm reached its target in any study), or fewer than two algorithms are shared"))
        ra = rb = ()
    for i in range(max(len(ra), len(rb))):
        cells: list[Any] = [str(i + 1)]
        for rank, values in ((ra, s["values_a"]), (rb, s["values_b"])):
            a = rank[i] if i < len(rank) else None
            cells += [Text(a or ""), f"{values[a]:.3f}" if a in values else ""]
        side.add_row(*cells)
    if ra or rb:
        console.print(side)
    if data["workloads"]:
        per = Table(title=Text("per workload both ran: algorithms ranked by median time to target, misses by their "
                               "final target metric"), title_justify="left")
        per.add_column("workload", style="bold", overflow="fold")
        per.add_column("tau", justify="right")
        per.add_column(f"{pct} interval", justify="right")
        per.add_column(Text(f"fastest ({data['a'].get('suite') or 'a'})"), overflow="fold")
        per.add_column(Text(f"fastest ({data['b'].get('suite') or 'b'})"), overflow="fold")
        for w, x in data["workloads"].items():
            per.add_row(Text(w), _tau(x), _interval(x), _winner(x, "a"), _winner(x, "b"))
        console.print(per)
    console.print(Text("tau 1 = the same order, -1 = reversed; the interval resamples each benchmark's studies "
                       "(median over the drawn studies, then the ranking) and shows how much the order moves "
                       "between repetitions.", style="dim"))


def _winner(x: Mapping[str, Any], side: str) -> Text:
    rank, values = x[f"ranking_{side}"], x[f"values_{side}"]
    if not rank:
        return Text(DASH)
    first = rank[0]
    t = values.get(first, math.inf)
    return Text(f"{first} ({format_time(t)})" if math.isfinite(t) else f"{first} (closest; all missed)")


def agreement_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per comparison of :func:`agreement_data` (``scope`` = ``suite`` or a workload
    key) for ``--csv``: tau, interval, p-value, resamples with a tau, both rankings."""
    scopes = [("suite", data["suite"]), *data["workloads"].items()]
    return [{"scope": scope, "study_a": data["a"]["study_id"], "study_b": data["b"]["study_id"], "tau": x["tau"],
             "low": x["low"], "high": x["high"], "level": x["level"], "p_value": x["p_value"],
             "n_defined": x["n_defined"], "n_boot": x["n_boot"], "ranking_a": list(x["ranking_a"]),
             "ranking_b": list(x["ranking_b"])} for scope, x in scopes]


def suite_pair_agreement(store: Store, **kwargs: Any) -> dict[str, Any] | None:
    """:func:`agreement_data` of the store's newest quick and standard benchmarks
    (:func:`find_suite_pair`); ``None`` when it lacks either or either has no finished trial."""
    pair = find_suite_pair(store)
    if pair is None:
        return None
    try:
        return agreement_data(store, *pair, **kwargs)
    except SpecError:
        return None
