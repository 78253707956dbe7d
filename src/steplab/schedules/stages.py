"""Learning-rate schedules across the stages of a continual run (``steplab continual``).

A stage schedule is an ordinary :data:`steplab.schedules.Schedule` (a pure function of the
*global* update number ``k`` returning a multiplier of the peak learning rate) that also
knows the stage boundaries ``B_0 = 0 < B_1 < ... < B_S = T``: stage ``j`` trains updates
``B_{j-1} <= k < B_j`` (length ``L_j``), and ``u = k - B_{j-1}`` is the local step. The four
policies of issue 10, registered in the schedule registry (:mod:`steplab.schedules.registry`)
so that every ``--schedule`` / ``--set schedule=...`` option and every stored trial take them:

* ``stages_rewarm`` -- re-warm and re-decay every stage (Gupta et al. 2023, "Continual
  Pre-Training of Large Language Models: How to (re)warm your model?", arXiv 2308.04014;
  Ibrahim et al. 2024, "Simple and Scalable Strategies to Continually Pre-train Large
  Language Models", arXiv 2403.08763, §5): ``W_j = round(stage_warmup * L_j)`` warm-up
  updates ``(u + 1) / W_j``, then ``end + (1 - end) f(x)``, ``x = (u - W_j) / (L_j - W_j)``,
  ``f`` cosine ``(1 + cos(pi x)) / 2`` or linear ``1 - x`` (to ``end = 0.1`` x peak, the
  papers' minimum).
* ``stages_constant`` -- no re-warm, keep the last learning rate (Ibrahim et al. 2024's
  "no re-warming" baseline): stage 1 as above, then ``s(k) = end`` for ``k >= B_1``.
* ``stages_infinite`` -- the infinite schedule (Ibrahim et al. 2024, §7.2; Janson et al.
  2025, "Beyond Cosine Decay: On the effectiveness of Infinite Learning Rate Schedule for
  Continual Pre-training", arXiv 2503.02844, ``infinite_lr`` in their code). Phase *ends* are
  cumulative fractions of the stage (the reference code's convention):
  ``W = round(stage_warmup L)``, ``C = round(cooldown_end L)``, ``A = round(anneal_start L)``.
  Stage 1: warm-up to 1, cool down to ``const`` by ``u = C`` (cosine
  ``const + (1 - const)(1 + cos(pi p))/2``, linear ``1 - (1 - const) p`` or inverse-sqrt
  ``1 + (const - 1) h(p) / h(1)``, ``h(p) = 1/sqrt(1 + timescale p) - 1``, with
  ``p = (u - W) / (C - W)``), stay at ``const`` up to ``u = A``, then anneal exponentially
  ``const * (final / const)^((u - A) / (L - A))`` towards ``final``. Later stages start
  directly in the constant phase (no re-warm): ``const`` up to ``u = A_j``, then the same
  anneal. Defaults: ``const = 0.25``, ``final = 0.01`` (the reference's
  ``constant_lr_ratio``/``min_lr_ratio``), ``cooldown_end = 0.15``, ``anneal_start = 0.8``.
  The annealed model is the *released* one; the non-annealed state is what continues, so
  :func:`steplab.studies.continual.run_continual` restores the model saved at each anneal start
  (:func:`steplab.schedules.policies.anneal_starts`) when the next stage begins, as the reference code does.
* ``stages_wsd`` -- warmup-stable-decay per stage (Hu et al. 2024, "MiniCPM", arXiv
  2404.06395, §4; cooldown shapes of Hägele et al. 2024, arXiv 2405.18392): each stage
  warms up over ``W_j``, stays at 1, and cools down over its last ``round(decay L_j)``
  updates to ``end``.

Stage lengths come from ``stages`` (equal stages) or ``ends`` (cumulative fractions of the
run where stages end, last = 1); ``steplab continual`` fills them in from the stream. The
warm-up of every policy is ``stage_warmup`` (a fraction of each stage, default 0.05: Ibrahim
et al. warm up over 1% of a stage, one update in a CPU-sized stage). The registry's common
``warmup`` (a fraction of the *run*, 0 by default; tuning search spaces draw it) keeps its
meaning for every schedule: the first ``W = round(warmup T)`` updates ramp linearly,
``(k + 1) / W``, up to the stage schedule's value at update ``W``, which plays on from there
(the stage boundaries do not move).
Conventions as in :mod:`steplab.schedules`: warm-up update ``u < W`` uses ``(u + 1) / W``;
a decay reaches its end value at the stage boundary, so the stage's last update uses a
value just above it; past ``T`` the last stage's end value holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from steplab.errors import SpecError
from steplab.schedules.compose import Schedule, join, warmup
from steplab.schedules.params import check_run_fractions
from steplab.schedules.shapes import infinite_schedule, wsd_schedule

__all__ = [
    "STAGE_DECAYS",
    "constant_stage_schedule",
    "infinite_stage_schedule",
    "rewarm_stage_schedule",
    "stage_boundaries",
    "stage_warmup_steps",
    "wsd_stage_schedule",
]

#: decay shapes of a stage: progress ``x`` in [0, 1] -> fraction of the way from ``end`` to 1
STAGE_DECAYS = {"cosine": lambda x: 0.5 * (1.0 + math.cos(math.pi * x)), "linear": lambda x: 1.0 - x}


def stage_boundaries(budget_steps: int, *, stages: int = 1, ends: Sequence[float] | None = None) -> list[int]:
    """The updates ``[B_1, ..., B_S]`` (``B_S = budget_steps``) where the stages end: ``S``
    equal stages (``B_j = round(j T / S)``), or ``round(e T)`` for cumulative fractions
    ``ends`` rising strictly to 1. Raises ``SpecError`` when a stage would be empty.

    >>> stage_boundaries(10, stages=3)
    [3, 7, 10]
    """
    if ends is not None:
        check_run_fractions(ends, "stage ends")
        bounds = [int(round(e * budget_steps)) for e in ends[:-1]] + [budget_steps]
    else:
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise SpecError(f"stages must be a positive integer, got {stages!r}")
        if stages > budget_steps:
            raise SpecError(f"{stages} stages in a {budget_steps}-update run would be empty; use fewer stages "
                            "or a longer run")
        bounds = [int(round(j * budget_steps / stages)) for j in range(1, stages + 1)]
    if any(b <= a for a, b in zip([0, *bounds], bounds)):
        raise SpecError(f"stages ending at updates {bounds} of a {budget_steps}-update run would be empty; "
                        "use fewer stages or a longer run")
    return bounds


def _lengths(bounds: Sequence[int]) -> list[int]:
    return [b - a for a, b in zip([0, *bounds], bounds)]


def _decay(length: int, shape: str, end: float) -> Schedule:
    """``end + (1 - end) f(u / length)`` for a stage's decay, holding ``end`` past ``length``."""
    f = STAGE_DECAYS[shape]
    return lambda u: end + (1.0 - end) * f(min(max(u, 0), length) / length if length > 0 else 1.0)


def stage_warmup_steps(length: int, fraction: float) -> int:
    """Warm-up updates of a stage of ``length``: ``round(fraction * length)``, leaving >= 1 update after it."""
    return min(length - 1, int(round(fraction * length)))


def rewarm_stage_schedule(
    *, boundaries: Sequence[int], stage_warmup: float = 0.05, shape: str = "cosine", end: float = 0.1
) -> Schedule:
    """Re-warm and re-decay every stage (Gupta et al. 2023; Ibrahim et al. 2024, §5):
    stage ``j`` plays ``warmup(decay, W_j)``, ``W_j = round(stage_warmup L_j)``, the decay
    ``end + (1 - end) f((u - W_j) / (L_j - W_j))``, ``f`` cosine or linear.

    >>> f = rewarm_stage_schedule(boundaries=[4, 8], stage_warmup=0.25, shape="linear", end=0.1)
    >>> [round(f(k), 4) for k in range(9)]
    [1.0, 1.0, 0.7, 0.4, 1.0, 1.0, 0.7, 0.4, 0.1]
    """
    pieces = []
    for length in _lengths(boundaries):
        w = stage_warmup_steps(length, stage_warmup)
        pieces.append(warmup(_decay(length - w, shape, end), w))
    return join(pieces, list(boundaries[:-1]))


def constant_stage_schedule(
    *, boundaries: Sequence[int], stage_warmup: float = 0.05, shape: str = "cosine", end: float = 0.1
) -> Schedule:
    """No re-warm, keep the last learning rate (Ibrahim et al. 2024's baseline): stage 1
    as :func:`rewarm_stage_schedule`, then ``s(k) = end`` for ``k >= B_1``.

    >>> f = constant_stage_schedule(boundaries=[4, 8], stage_warmup=0.25, shape="linear", end=0.1)
    >>> [round(f(k), 4) for k in range(9)]
    [1.0, 1.0, 0.7, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1]
    """
    first = boundaries[0]
    w = stage_warmup_steps(first, stage_warmup)
    stage1 = warmup(_decay(first - w, shape, end), w)
    return lambda k: stage1(min(k, first))


def infinite_stage_schedule(
    *,
    boundaries: Sequence[int],
    stage_warmup: float = 0.05,
    cooldown_end: float = 0.15,
    anneal_start: float = 0.8,
    const: float = 0.25,
    final: float = 0.01,
    cooldown_shape: str = "cosine",
    timescale: float = 10.0,
) -> Schedule:
    """The infinite schedule across stages (Ibrahim et al. 2024, §7.2; Janson et al. 2025,
    ``infinite_lr``): stage 1 warms up, cools down to ``const`` by ``round(cooldown_end L_1)``,
    holds ``const`` to ``A_1 = round(anneal_start L_1)`` and anneals
    ``const (final/const)^((u - A) / (L - A))``; stages ``j >= 2`` hold ``const`` to
    ``A_j`` and anneal the same way (no re-warm). Built from
    :func:`steplab.schedules.infinite_schedule` per stage.

    >>> f = infinite_stage_schedule(boundaries=[10, 20], stage_warmup=0.2, cooldown_end=0.4,
    ...                             anneal_start=0.8, cooldown_shape="linear")
    >>> [round(f(k), 4) for k in (0, 1, 2, 3, 4, 8, 9, 10, 18, 19, 20)]
    [0.5, 1.0, 1.0, 0.625, 0.25, 0.25, 0.05, 0.25, 0.25, 0.05, 0.01]
    """
    if not 0.0 <= cooldown_end <= anneal_start <= 1.0:
        raise SpecError(f"stages_infinite: need 0 <= cooldown_end ({cooldown_end}) <= anneal_start "
                        f"({anneal_start}) <= 1 (cumulative fractions of each stage)")
    pieces = []
    for j, length in enumerate(_lengths(boundaries)):
        a = int(round(anneal_start * length))
        if j == 0:
            w = stage_warmup_steps(length, stage_warmup)
            c = max(w, int(round(cooldown_end * length)))
            a = max(a, c)
            inner = infinite_schedule(budget_steps=length - w, cooldown_end=c - w, anneal_start=a - w,
                                                const=const, final=final, cooldown_shape=cooldown_shape,
                                                timescale=timescale)
            pieces.append(warmup(inner, w))
        else:
            pieces.append(infinite_schedule(budget_steps=length, cooldown_end=0, anneal_start=a,
                                                      const=const, final=final, cooldown_shape=cooldown_shape,
                                                      timescale=timescale))
    return join(pieces, list(boundaries[:-1]))


def wsd_stage_schedule(
    *, boundaries: Sequence[int], stage_warmup: float = 0.05, decay: float = 0.2, shape: str = "1-sqrt",
    end: float = 0.0,
) -> Schedule:
    """Warmup-stable-decay in every stage (Hu et al. 2024, §4; Hägele et al. 2024, eq. 1):
    ``warmup(wsd_schedule(L_j - W_j, D_j), W_j)`` with ``D_j = round(decay L_j)`` cooldown
    updates (``linear 1 - x``, ``cosine``, ``1-sqrt 1 - sqrt(x)``, ``square 1 - x^2``).

    >>> f = wsd_stage_schedule(boundaries=[5, 10], stage_warmup=0.2, decay=0.4, shape="linear")
    >>> [round(f(k), 4) for k in range(11)]
    [1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """
    pieces = []
    for length in _lengths(boundaries):
        w = stage_warmup_steps(length, stage_warmup)
        d = min(length - w, int(round(decay * length)))
        pieces.append(warmup(wsd_schedule(budget_steps=length - w, decay_steps=d, shape=shape,
                                                              end=end), w))
    return join(pieces, list(boundaries[:-1]))
