"""The built-in baselines: AlgoPerf-style algorithms with their search spaces beside them
(mlcommons/algorithmic-efficiency, ``algorithms/paper_baselines/*/tuning_search_space.json``),
and :func:`get_algorithm`, which finds one by name or reads a ``.toml`` file.
"""

from __future__ import annotations

import os

from steplab.algorithms.algorithm import Algorithm
from steplab.algorithms.space import Choice, LogUniform, SearchSpace, Uniform
from steplab.algorithms.specfile import load_toml
from steplab.errors import SpecError


def _adam_space(lr: tuple[float, float] = (1e-3, 3e-1), wd: tuple[float, float] = (1e-3, 1.0)) -> SearchSpace:
    """AlgoPerf paper-baseline style (``paper_baselines/adamw/tuning_search_space.json``):
    lr log-uniform over 2.5 decades, one_minus_beta1/2 log-uniform, weight decay
    log-uniform, warm-up fraction.

    The lr range is centred on steplab's small workloads, whose tuned AdamW peak lrs run
    from 3e-3 (digits) to 0.4 (teacher-student), see each workload's "How the target was
    set"; AlgoPerf's ranges (1e-4..1e-2) are made for large models. Label smoothing is
    not searched: the train loop does not apply it yet."""
    return {
        "lr": LogUniform(*lr),
        "one_minus_beta1": LogUniform(0.02, 0.3),
        "one_minus_beta2": LogUniform(1e-3, 0.1),
        "weight_decay": LogUniform(*wd),
        "warmup": Uniform(0.0, 0.1),
    }


def _sgd_space(lr: tuple[float, float] = (3e-3, 3.0)) -> SearchSpace:
    """AlgoPerf ``paper_baselines/nesterov`` style: lr over three decades, one_minus_beta1
    (the momentum), small L2 weight decay, warm-up fraction, label smoothing."""
    return {
        "lr": LogUniform(*lr),
        "one_minus_beta1": LogUniform(0.02, 0.5),
        "weight_decay": LogUniform(1e-6, 1e-3),
        "warmup": Uniform(0.0, 0.1),
    }


_ADAMW_KW = {"betas": [0.9, 0.999], "eps": 1e-8}
_COS = {"name": "cosine", "warmup": 0.05}


def _builtins() -> dict[str, Algorithm]:
    no_warmup = {k: v for k, v in _adam_space().items() if k != "warmup"}
    algos = [
        Algorithm("adamw-cosine", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, dict(_COS),
                  search_space=_adam_space(),
                  description="AdamW, 5% linear warm-up, cosine decay to 0 (Loshchilov & Hutter 2017/2019)"),
        Algorithm("adamw-linear", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "linear", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="AdamW, warm-up, linear decay to 0 (Defazio et al. 2023, 'When, why and how much?')"),
        Algorithm("adamw-wsd", "adamw", dict(_ADAMW_KW), 3e-3, 0.05,
                  {"name": "wsd", "warmup": 0.05, "decay": 0.2, "shape": "1-sqrt"},
                  search_space={**_adam_space(), "schedule.decay": Uniform(0.1, 0.4)},
                  description="AdamW, warmup-stable-decay, 1-sqrt cooldown over the last 20% (Hägele et al. 2024)"),
        Algorithm("nadamw-cosine", "nadamw", dict(_ADAMW_KW), 2e-3, 0.05, dict(_COS),
                  search_space={  # AlgoPerf paper_baselines/nadamw/tuning_search_space.json,
                      # with the lr range moved to the small workloads' optima (see _adam_space)
                      "lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(4e-3, 0.1),
                      "beta2": Choice((0.999,)),
                      "warmup": Choice((0.05,)),
                      "weight_decay": LogUniform(5e-3, 1.0),
                  },
                  description="NAdamW + warm-up + cosine, AlgoPerf's strong baseline (Dahl et al. 2023)"),
        Algorithm("sgd-nesterov-cosine", "sgd", {"momentum": 0.9, "nesterov": True}, 0.1, 5e-4, dict(_COS),
                  search_space=_sgd_space(),
                  description="SGD + Nesterov momentum 0.9, L2 5e-4, warm-up, cosine (AlgoPerf nesterov baseline)"),
        Algorithm("sgd-step", "sgd", {"momentum": 0.9}, 0.1, 5e-4,
                  {"name": "step", "milestones": [0.5, 0.75], "gamma": 0.1},
                  search_space={**_sgd_space(), "schedule.gamma": Choice((0.1, 0.2))},
                  description="SGD + momentum 0.9, /10 at 50% and 75% of the run (He et al. 2016)"),
        Algorithm("lion-cosine", "lion", {"betas": [0.9, 0.99]}, 3e-4, 0.5, dict(_COS),
                  search_space={**_adam_space(lr=(1e-4, 3e-2), wd=(1e-2, 3.0)),
                                "one_minus_beta2": LogUniform(3e-3, 0.1)},
                  description="Lion (lr ~10x below AdamW, weight decay ~10x above), warm-up, cosine (Chen et al. 2023)"),
        Algorithm("schedulefree-adamw", "adamw-schedulefree", {"betas": [0.9, 0.999]}, 3e-3, 0.05,
                  {"name": "constant", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="Schedule-Free AdamW, warm-up in the schedule spec, no decay (Defazio et al. 2024)"),
        Algorithm("schedulefree-sgd", "sgd-schedulefree", {"momentum": 0.9}, 0.5, 5e-4,
                  {"name": "constant", "warmup": 0.05},
                  search_space=_sgd_space(lr=(1e-2, 10.0)),
                  description="Schedule-Free SGD (lr ~10x classical SGD), warm-up, no decay (Defazio et al. 2024)"),
        Algorithm("prodigy", "prodigy", {"betas": [0.9, 0.999], "safeguard_warmup": True}, 1.0, 0.01, dict(_COS),
                  search_space={"lr": LogUniform(0.1, 10.0), "weight_decay": LogUniform(1e-3, 0.5),
                                "warmup": Uniform(0.0, 0.1)},
                  description="Prodigy (lr=1 scales its estimated step), warm-up, cosine (Mishchenko & Defazio 2024)"),
        Algorithm("dog", "dog", {}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.3, 3.0), "optimizer.reps_rel": LogUniform(1e-8, 1e-4)},
                  description="DoG parameter-free step size (lr=1), evaluated at the polynomial-decay average (Ivgi et al. 2023)"),
        Algorithm("adamw-rex", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "rex", "warmup": 0.05},
                  search_space=_adam_space(),
                  description="AdamW, warm-up, REX decay (Chen et al. 2022)"),
        Algorithm("adamw-onecycle", "adamw", dict(_ADAMW_KW), 3e-3, 0.05, {"name": "onecycle", "pct_start": 0.3},
                  search_space={**no_warmup, "schedule.pct_start": Uniform(0.1, 0.5)},
                  description="AdamW, one-cycle lr (30% rise, cosine anneal; momentum not cycled) (Smith & Topin 2017)"),
        # Polyak-type steps (steplab.optim.polyak): lr is the cap of the adaptive step, the schedule
        # scales the cap; f* = 0 (a lower bound of every built-in loss)
        Algorithm("sps", "sps", {"c": 0.5, "f_star": 0.0}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.03, 10.0), "optimizer.c": Uniform(0.2, 1.0)},
                  description="SPS_max: stochastic Polyak step (f*=0, c=1/2) capped at lr (Loizou et al. 2021)"),
        Algorithm("momo", "momo", {"momentum": 0.9, "online_f_star": True}, 1.0, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.1, 10.0), "one_minus_beta1": LogUniform(0.02, 0.3)},
                  description="MoMo: momentum model + Polyak step, f* estimated online, capped at lr (Schaipp et al. 2023)"),
        Algorithm("polyak-momentum", "alr-smag", {"momentum": 0.9, "c": 1.0}, 0.3, 0.0, {"name": "constant"},
                  search_space={"lr": LogUniform(0.01, 3.0), "one_minus_beta1": LogUniform(0.02, 0.3)},
                  description="ALR-SMAG: generalized Polyak step along heavy-ball momentum, capped at lr (Wang et al. 2023)"),
        # the strongest baselines (matrix preconditioners, pytorch-optimizer; see optimizers.py)
        Algorithm("shampoo-cosine", "shampoo", {"betas": [0.9, 0.99]}, 3e-3, 0.05, dict(_COS),
                  search_space={  # AlgoPerf paper_baselines/shampoo/tuning_search_space.json (lr
                      # 1e-4..1e-2, one_minus_beta1 1e-2..0.15, beta2 fixed, warm-up 5%, weight
                      # decay 5e-3..1), lr moved to the small workloads' optima (see _adam_space);
                      # beta2 0.99, not AlgoPerf's 0.999: pytorch-optimizer's RMSProp graft has no
                      # bias correction, so 0.999 inflates the first few hundred steps ~3-30x
                      "lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(1e-2, 0.15),
                      "beta2": Choice((0.99,)),
                      "warmup": Choice((0.05,)),
                      "weight_decay": LogUniform(5e-3, 1.0),
                  },
                  description="Shampoo (RMSProp-grafted, preconditioner every 5 steps), warm-up, cosine "
                              "(Gupta et al. 2018; AlgoPerf 2024 leader: Shi et al. 2023)"),
        Algorithm("soap-cosine", "soap", {"betas": [0.95, 0.95], "precondition_frequency": 10}, 3e-3, 0.01, dict(_COS),
                  # Vyas et al. 2024's defaults (betas 0.95/0.95, eigenbasis refreshed every 10
                  # steps, lr 3e-3, weight decay 0.01); the space is steplab's Adam space
                  search_space=_adam_space(),
                  description="SOAP (Adam in Shampoo's eigenbasis), warm-up, cosine (Vyas et al. 2024)"),
        Algorithm("muon-cosine", "muon", {"momentum": 0.95, "nesterov": True, "adamw_lr": 3e-3}, 0.02, 0.01, dict(_COS),
                  search_space={  # Muon's lr 0.02 (Jordan et al. 2024; modded-nanogpt uses 0.05)
                      # +- about a decade; momentum 0.8..0.98 (modded-nanogpt warms 0.85 -> 0.95);
                      # the AdamW part over steplab's Adam lr range (_adam_space)
                      "lr": LogUniform(3e-3, 0.3),
                      "optimizer.adamw_lr": LogUniform(1e-3, 3e-1),
                      "one_minus_beta1": LogUniform(0.02, 0.2),
                      "weight_decay": LogUniform(1e-3, 0.3),
                      "warmup": Uniform(0.0, 0.1),
                  },
                  description="Muon on hidden matrices + AdamW (adamw_lr) on the rest, warm-up, cosine "
                              "(Jordan et al. 2024)"),
        # nanoGPT's shakespeare_char recipe (karpathy/nanoGPT train.py + config/train_shakespeare_char.py):
        # betas (0.9, 0.99), decay 0.1 on ndim >= 2, clip 1.0, 100 of 2000 warm-up steps, cosine to
        # min_lr = lr / 10; the baseline of shakespeare-char (steplab.workloads.shakespeare: tuned lr
        # 4e-3, nanoGPT's 1e-3 is the default here), lr searched a decade either side of 1e-3
        Algorithm("adamw-nanogpt", "adamw", {"betas": [0.9, 0.99], "eps": 1e-8}, 1e-3, 0.1,
                  {"name": "cosine", "warmup": 0.05, "end": 0.1}, grad_clip=1.0,
                  search_space={**_adam_space(lr=(1e-4, 1e-2)), "one_minus_beta2": LogUniform(3e-3, 0.1)},
                  description="nanoGPT's AdamW recipe: betas (0.9, 0.99), clip 1.0, 5% warm-up, cosine to lr/10 "
                              "(Karpathy, nanoGPT)"),
    ]
    return {a.name: a for a in algos}


_BUILTINS: dict[str, Algorithm] | None = None


def builtins() -> dict[str, Algorithm]:
    """The built-in baselines by name (built once)."""
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = _builtins()
    return dict(_BUILTINS)


def algorithm_names() -> list[str]:
    """Built-in algorithm names, sorted."""
    return sorted(builtins())


def get_algorithm(name_or_path: str | os.PathLike[str]) -> Algorithm:
    """A built-in algorithm by name, or one read from a ``.toml`` file."""
    text = os.fspath(name_or_path)
    key = text.strip().lower().replace("_", "-")
    known = builtins()
    if key in known:
        return known[key]
    if text.endswith(".toml") or os.path.sep in text or os.path.exists(text):
        return load_toml(text)
    raise SpecError(f"unknown algorithm {text!r}; known: {', '.join(sorted(known))}, "
                    f"or a path to a .toml file (see `steplab algorithms list`)")
