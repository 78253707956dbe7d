"""Curricula: the data schedule of a training algorithm (issue 25).

A learning-rate schedule says how big each step is; a curriculum says what each step is
taken on. A curriculum here is a *sampler*: given the :class:`TaskPool` (per-example
difficulty, optional discrete tasks, continuous task parameters and a skill graph) it
returns the indices of each update's batch, exactly ``batch_size`` of them (budget parity),
and may learn from the batch losses (``observe``) or per-task held-out losses
(``observe_eval``). Samplers are pure: one private ``np.random.Generator`` each, no torch.

Names (:data:`CURRICULA`): ``uniform``; ``easy-to-hard`` / ``hard-to-easy`` /
``random-order`` (fixed pacing, :mod:`~steplab.curricula.pacing`); ``cyclical``;
``self-paced``; ``lp-bandit`` (Exp3.S on absolute learning progress); ``alp-gmm``;
``skill-it``. Specs: :func:`spec_from`, :class:`CurriculumSpec`; samplers: :func:`build`.

Modules: ``base`` (TaskPool, Sampler, helpers), ``pacing`` (pure pacing functions),
``fixed``, ``self_paced``, ``bandit``, ``alp_gmm``, ``skill_it``, ``registry``, ``spec``.
"""

from __future__ import annotations

from steplab.curricula.base import (
    CurriculumInfo,
    Sampler,
    TaskPool,
    assign_bins,
    quantile_bins,
)
from steplab.curricula.pacing import PACINGS, cyclic_fractions, pacing_fraction, pacing_size
from steplab.curricula.registry import CURRICULA, curriculum_names, info
from steplab.curricula.spec import CurriculumSpec, build, spec_from

__all__ = [
    "CURRICULA",
    "PACINGS",
    "CurriculumInfo",
    "CurriculumSpec",
    "Sampler",
    "TaskPool",
    "assign_bins",
    "build",
    "curriculum_names",
    "cyclic_fractions",
    "info",
    "pacing_fraction",
    "pacing_size",
    "quantile_bins",
    "spec_from",
]
