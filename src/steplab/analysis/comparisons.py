"""Comparisons over a table of times to target: whether workload variants rank the algorithms
as their base workloads do (AlgoPerf, Dahl et al. 2023, arXiv:2306.07179, "Workload
variants"), and each algorithm's time against a reference algorithm's (a ratio or a speedup).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from steplab.analysis.scoring import Table, check_time
from steplab.workloads import references


@dataclasses.dataclass(frozen=True)
class VariantAgreement:
    """How a workload variant ranks the algorithms compared with its base workload.

    ``kendall_tau``/``p_value`` come from ``scipy.stats.kendalltau`` (tau-b, ties allowed)
    on the times of ``algorithms`` (misses rank last, tied with each other); they are
    ``nan`` when fewer than two algorithms are compared or either ranking is all ties.
    ``base_winners``/``variant_winners`` are the (tied) fastest algorithms that reached the
    target, empty when none did; ``same_winner`` is whether those sets are equal and
    non-empty.
    """

    base: str
    variant: str
    algorithms: tuple[str, ...]
    kendall_tau: float
    p_value: float
    base_winners: tuple[str, ...]
    variant_winners: tuple[str, ...]
    same_winner: bool


def _winners(times: Mapping[str, float]) -> tuple[str, ...]:
    finite = {a: t for a, t in times.items() if math.isfinite(t)}
    if not finite:
        return ()
    best = min(finite.values())
    return tuple(sorted(a for a, t in finite.items() if t == best))


def variant_agreement(table: Table) -> dict[str, VariantAgreement]:
    """For each ``name:variant`` key whose base ``name`` is also in the table, whether the
    variant ranks the algorithms as the base workload does.

    AlgoPerf "Workload variants": a variant is a small change to a workload (activation,
    normalisation, width); algorithms that are robust keep their rank across variants,
    while a benchmark without variants can reward brittle tuning to one configuration.
    Only algorithms with an entry on both the base and the variant are compared; variants
    without a base entry in the table are skipped. Returns ``{variant_key: agreement}``
    in key order.
    """
    keys = sorted({w for row in table.values() for w in row})
    out: dict[str, VariantAgreement] = {}
    for key in keys:
        base, variant = references.split(key)
        if variant is None or base not in keys:
            continue
        algorithms = tuple(sorted(a for a, row in table.items() if key in row and base in row))
        t_base = {a: check_time(table[a][base], f"time of {a} on {base}") for a in algorithms}
        t_var = {a: check_time(table[a][key], f"time of {a} on {key}") for a in algorithms}
        x = np.array([t_base[a] for a in algorithms], dtype=float)
        y = np.array([t_var[a] for a in algorithms], dtype=float)
        tau = p = math.nan
        if len(algorithms) >= 2 and len(set(x.tolist())) > 1 and len(set(y.tolist())) > 1:
            from scipy import stats  # imported here: scipy.stats costs a second at start-up

            # ranks, so that misses (inf) compare as slowest and tie with each other
            res = stats.kendalltau(stats.rankdata(x), stats.rankdata(y))
            tau, p = float(res.statistic), float(res.pvalue)
        wb, wv = _winners(t_base), _winners(t_var)
        out[key] = VariantAgreement(
            base=base,
            variant=variant,
            algorithms=algorithms,
            kendall_tau=tau,
            p_value=p,
            base_winners=wb,
            variant_winners=wv,
            same_winner=bool(wb) and wb == wv,
        )
    return out


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with ``x/inf = 0``, ``inf/x = inf`` and ``inf/inf = nan``."""
    if math.isinf(numerator) and math.isinf(denominator):
        return math.nan
    if math.isinf(denominator):
        return 0.0
    if denominator == 0.0:
        return math.inf if numerator > 0 else math.nan
    return numerator / denominator


def _against_reference(
    table: Table, reference: str, *, invert: bool
) -> dict[str, dict[str, float]]:
    if reference not in table:
        known = ", ".join(sorted(table))
        raise ValueError(f"reference algorithm {reference!r} is not in the table; known: {known}")
    ref = table[reference]
    out: dict[str, dict[str, float]] = {}
    for algorithm, row in table.items():
        out[algorithm] = {}
        for w, t_ref in ref.items():
            if w not in row:
                continue
            t = check_time(row[w], f"time of {algorithm} on {w}")
            t_ref = check_time(t_ref, f"time of {reference} on {w}")
            out[algorithm][w] = _ratio(t_ref, t) if invert else _ratio(t, t_ref)
    return out


def time_ratio_table(table: Table, reference: str) -> dict[str, dict[str, float]]:
    """``t(a, w) / t(reference, w)`` per algorithm and workload (< 1: faster than it).

    Workloads are those of ``reference``; an algorithm without an entry for one is left
    out there. A miss against a reference hit is ``inf``, a hit against a reference miss is
    ``0``, two misses are ``nan`` (no comparison).

    >>> time_ratio_table({"ref": {"w": 4.0}, "new": {"w": 3.0}}, "ref")["new"]
    {'w': 0.75}
    """
    return _against_reference(table, reference, invert=False)


def speedup_table(table: Table, reference: str) -> dict[str, dict[str, float]]:
    """Speedup over a reference, ``t(reference, w) / t(a, w)`` (> 1: faster than it).

    The inverse of :func:`time_ratio_table`, same conventions: a miss against a reference
    hit is a speedup of ``0``, a hit against a reference miss is ``inf``, two misses
    ``nan``.

    >>> speedup_table({"ref": {"w": 4.0}, "new": {"w": 2.0}}, "ref")["new"]
    {'w': 2.0}
    """
    return _against_reference(table, reference, invert=True)


__all__ = ["VariantAgreement", "speedup_table", "time_ratio_table", "variant_agreement"]
