"""Adding studies until a verdict is confident, without inflating false verdicts.

Looking at a comparison after every added study and stopping at the first "significant"
one is optional stopping: with two identical methods, a paired test at 5% repeated after
each seed from 3 to 20 calls a winner 23.6% of the time instead of 5% (Armitage, McPherson
& Rowe 1969, "Repeated significance tests on accumulating data", J. R. Stat. Soc. A 132;
the rate re-simulated in steplab's statistics notes). The remedy is to plan the looks
before the first one and spend the error rate over them (Pocock 1977, "Group sequential
methods in the design and analysis of clinical trials", Biometrika 64; O'Brien & Fleming
1979, Biometrics 35).

steplab spends it the simplest valid way, Bonferroni over the planned looks: a benchmark
that starts with ``first`` studies and may grow to ``cap`` looks at most ``K = cap - first
+ 1`` times, once per study count, and each look decides at level ``1 - (1 - L) / K``.
Whatever the dependence between looks, the chance that any look separates two identical
algorithms is at most ``K (1 - L) / K = 1 - L`` (Boole's inequality). It is conservative
(Pocock's boundary is less so) but needs no model of how the looks correlate, which the
bootstrap intervals of a benchmark do not give. Every look is recorded, whatever it decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from steplab.analysis.intervals import batch_ratios, batch_scores, medians

#: what a look decided: stop (separated, or the cap reached) or add a study
DECISIONS: tuple[str, ...] = ("separated", "cap", "continue")


@dataclasses.dataclass(frozen=True)
class LookPlan:
    """The planned looks of a sequential comparison at family level ``level``: the first
    after ``first`` studies, then one after each added study, the last at ``cap``.

    >>> p = LookPlan(level=0.9, first=3, cap=7)
    >>> p.looks, round(p.look_level, 4), p.studies_at(1), p.studies_at(5)
    (5, 0.98, 3, 7)
    """

    level: float
    first: int
    cap: int

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"level must be in (0, 1), got {self.level!r}")
        if not 1 <= self.first <= self.cap:
            raise ValueError(f"need 1 <= first <= cap, got first={self.first!r}, cap={self.cap!r}")

    @property
    def looks(self) -> int:
        """``K``: how many looks the plan allows."""
        return self.cap - self.first + 1

    @property
    def look_level(self) -> float:
        """The level each look decides at: ``1 - (1 - level) / K`` (Bonferroni)."""
        return 1.0 - (1.0 - self.level) / self.looks

    def studies_at(self, look: int) -> int:
        """Studies per deciding cell at look ``look`` (1-based)."""
        if not 1 <= look <= self.looks:
            raise ValueError(f"look must be in 1..{self.looks}, got {look!r}")
        return self.first + look - 1

    def decide(self, look: int, separated: bool) -> str:
        """``"separated"`` when the look separated, else ``"cap"`` at the last planned look
        and ``"continue"`` before it."""
        self.studies_at(look)
        if separated:
            return "separated"
        return "cap" if look == self.looks else "continue"




def score_difference(a: np.ndarray, b: np.ndarray, others_best: np.ndarray | None, r_max: float) -> np.ndarray:
    """``score(a) - score(b)`` from per-workload times ``a``, ``b`` shaped ``(..., W)`` (``inf``
    = missed), the ratios taken to the fastest of ``a``, ``b`` and ``others_best`` (``(W,)``,
    the other algorithms' fastest time per workload, ``None`` for none): the benchmark score
    of ``analysis.profiles`` (AlgoPerf §4.3), vectorised with ``analysis.intervals``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rows = [a, b] if others_best is None else [a, b, np.broadcast_to(np.asarray(others_best, dtype=float), a.shape)]
    scores = batch_scores(batch_ratios(np.stack(rows, axis=-2)), r_max)
    return scores[..., 0] - scores[..., 1]


def permutation_p(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, others_best: np.ndarray | None = None,
                  r_max: float = 4.0, n_permutations: int = 2000,
                  rng: np.random.Generator | int = 0) -> np.ndarray:
    """Two-sided p-value of "``a`` and ``b`` are the same algorithm" from their study times.

    ``a[w]``, ``b[w]``: the study times (fastest trial of each study, ``inf`` = missed) of
    the two algorithms on workload ``w``, shaped ``(..., n_a)`` and ``(..., n_b)`` (leading
    axes batch independent comparisons). The statistic is the benchmark-score difference
    (:func:`score_difference` of the per-workload medians); its null distribution comes from
    shuffling the ``n_a + n_b`` studies of each workload between the two algorithms,
    workload by workload (a stratified permutation test, Fisher 1935, "The Design of
    Experiments", §21; Good 2005, "Permutation, Parametric and Bootstrap Tests of
    Hypotheses", §3). Under the null the studies of one workload are exchangeable, so
    ``p = (1 + #{|T*| >= |T|}) / (R + 1)`` over ``R`` random shuffles is exact at every
    study count (Phipson & Smyth 2010, "Permutation p-values should never be zero", SAGMB
    9), unlike percentile bootstrap intervals, which are too narrow at 3-5 studies.
    """
    if len(a) != len(b) or not len(a):
        raise ValueError(f"need the same workloads (at least one) for both algorithms, got {len(a)} and {len(b)}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    a = [np.asarray(x, dtype=float) for x in a]
    b = [np.asarray(x, dtype=float) for x in b]
    observed = score_difference(np.stack([medians(x) for x in a], axis=-1),
                                np.stack([medians(x) for x in b], axis=-1), others_best, r_max)
    perm_a, perm_b = [], []
    for xa, xb in zip(a, b, strict=True):
        if xa.shape[:-1] != xb.shape[:-1]:
            raise ValueError(f"study-time arrays must share their leading axes, got {xa.shape} and {xb.shape}")
        pooled = np.concatenate([xa, xb], axis=-1)
        n, n_a = pooled.shape[-1], xa.shape[-1]
        # one set of shuffles serves every batched comparison: each p-value stays exact
        order = gen.permuted(np.tile(np.arange(n), (n_permutations, 1)), axis=1)
        shuffled = pooled[..., order]
        perm_a.append(medians(shuffled[..., :n_a]))
        perm_b.append(medians(shuffled[..., n_a:]))
    null = score_difference(np.stack(perm_a, axis=-1), np.stack(perm_b, axis=-1), others_best, r_max)
    extreme = np.abs(null) >= np.abs(observed)[..., None] - 1e-12
    return (1.0 + extreme.sum(axis=-1)) / (n_permutations + 1.0)


__all__ = ["DECISIONS", "LookPlan", "permutation_p", "score_difference"]
