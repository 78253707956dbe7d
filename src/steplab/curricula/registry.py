"""The curricula by name: :data:`CURRICULA` maps a name to its :class:`CurriculumInfo`
(description, every option's default, the allowed text values, the options worth tuning in
steplab's search-space form, the maker, the paper)."""

from __future__ import annotations

from steplab.curricula import alp_gmm, bandit, fixed, self_paced, skill_it
from steplab.curricula.base import CurriculumInfo
from steplab.curricula.pacing import PACINGS
from steplab.errors import SpecError

_PACED = {"pacing": "linear", "start": 0.2, "end": 0.8, "inc": 1.9, "step_len": 0, "stages": 4}
_PACED_TUNE = {"start": {"uniform": [0.05, 0.5]}, "end": {"uniform": [0.2, 1.0]}}
_PACED_CITE = ("Hacohen & Weinshall 2019 (arXiv 1904.03626); Platanios et al. 2019 "
               "(arXiv 1903.09848); Wu, Dyer & Neyshabur 2021 (arXiv 2012.03107)")

CURRICULA: dict[str, CurriculumInfo] = {}


def register(entry: CurriculumInfo) -> CurriculumInfo:
    """Add ``entry`` to :data:`CURRICULA` (a name may be registered once)."""
    if entry.name in CURRICULA:
        raise SpecError(f"curriculum {entry.name!r} is already registered")
    CURRICULA[entry.name] = entry
    return entry


def info(name: str) -> CurriculumInfo:
    """The registry entry of ``name``; ``SpecError`` lists the known names."""
    try:
        return CURRICULA[name]
    except KeyError:
        raise SpecError(f"unknown curriculum {name!r}; choose one of {', '.join(CURRICULA)}") from None


def curriculum_names() -> list[str]:
    """Every registered curriculum, in registration order (``uniform`` first)."""
    return list(CURRICULA)


register(CurriculumInfo(
    "uniform", "iid uniform batches with replacement (the control)", {}, fixed.make_uniform,
    citation="Weber et al. 2023 (arXiv 2308.12202)"))
register(CurriculumInfo(
    "easy-to-hard", "fixed pacing: batches from the g(t) easiest examples", dict(_PACED),
    fixed.make_easy_to_hard, {"pacing": PACINGS}, _PACED_TUNE, _PACED_CITE))
register(CurriculumInfo(
    "hard-to-easy", "anti-curriculum: batches from the g(t) hardest examples", dict(_PACED),
    fixed.make_hard_to_easy, {"pacing": PACINGS}, _PACED_TUNE, _PACED_CITE))
register(CurriculumInfo(
    "random-order", "same pacing over a shuffled order (the control for ordering)", dict(_PACED),
    fixed.make_random_order, {"pacing": PACINGS}, _PACED_TUNE, _PACED_CITE))
register(CurriculumInfo(
    "cyclical", "pool size cycling between start and end, easy examples favoured",
    {"start": 0.25, "end": 1.0, "alpha": 0.5, "floor": 0.1}, fixed.make_cyclical, {},
    {"start": {"uniform": [0.1, 0.5]}, "alpha": {"uniform": [0.3, 0.8]}},
    "Kesgin & Amasyali 2023 (arXiv 2202.05531)"))
register(CurriculumInfo(
    "self-paced", "loss-thresholded: examples above a growing lambda left out",
    {"q0": 0.5, "mu": 1.3, "period": 0, "end": 0.8, "warmup": 0}, self_paced.make_self_paced, {},
    {"q0": {"uniform": [0.2, 0.9]}, "mu": {"uniform": [1.05, 2.0]}, "end": {"uniform": [0.2, 1.0]}},
    "Kumar, Packer & Koller 2010 (NeurIPS)"))
register(CurriculumInfo(
    "lp-bandit", "Exp3.S over tasks, rewarded by absolute learning progress",
    {"eta": 0.01, "eps": 0.05, "beta": 0.0, "alpha": 0.0, "bins": 10, "reservoir": 50000},
    bandit.make_lp_bandit, {}, {"eta": {"log_uniform": [1e-3, 1e-1]}, "eps": {"uniform": [0.01, 0.3]}},
    "Graves et al. 2017 (arXiv 1704.03003)"))
register(CurriculumInfo(
    "alp-gmm", "Gaussian mixtures on (task parameters, absolute learning progress)",
    {"fit_rate": 0, "random_task_ratio": 0.2, "max_k": 10, "fitness": "aic", "fit_rows": 1000},
    alp_gmm.make_alp_gmm, {"fitness": alp_gmm.FITNESS}, {"random_task_ratio": {"uniform": [0.05, 0.5]}},
    "Portelas et al. 2019 (arXiv 1910.07224)"))
register(CurriculumInfo(
    "skill-it", "online mixture over skills from held-out losses and a skill graph",
    {"eta": 0.5, "update_steps": 0, "eval_every": 0, "window": 3, "edge": 0.5, "bins": 10},
    skill_it.make_skill_it, {}, {"eta": {"log_uniform": [0.05, 2.0]}},
    "Chen et al. 2023 (arXiv 2307.14430)"))
