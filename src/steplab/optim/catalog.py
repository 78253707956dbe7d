"""The optimizers steplab knows by name: one :class:`OptimizerInfo` per entry, pointing at a
class in ``torch.optim``, ``schedulefree`` (Defazio et al. 2024, "The Road Less Scheduled"),
``pytorch_optimizer`` (Lion, Prodigy, D-Adaptation, AdaBelief, Adan, Shampoo, SOAP, Muon),
``dog`` (``dog-optimizer``, Ivgi et al. 2023), :mod:`steplab.optim.polyak` or the plasticity
optimizers (:mod:`steplab.optim.upgd`, :mod:`~steplab.optim.cbp`,
:mod:`~steplab.optim.regularized`), with its source and steplab's fixed defaults. Lookups are in :mod:`steplab.optim.optimizers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimizerInfo:
    """A registry entry: where the class lives, steplab's fixed defaults, its source."""

    name: str
    target: str  # "module:Class"
    summary: str
    source: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    adam_family: bool = True  # Adam-like or sign-like update: report l1-type grad norms
    averaged: bool = False  # steplab wraps it with iterate averaging + train()/eval()
    #: how parameters are grouped: "decay" (:func:`param_groups`) or "muon"
    #: (:func:`muon_param_groups`: hidden matrices to Muon, the rest to AdamW)
    groups: str = "decay"
    #: the class takes the model (``model=``) besides its parameters: continual backprop,
    #: spectral regularization (:mod:`steplab.optim.cbp`, :mod:`steplab.optim.regularized`)
    needs_model: bool = False


BUILTIN: list[OptimizerInfo] = [
    OptimizerInfo("sgd", "torch.optim:SGD", "SGD; `momentum`, `nesterov` kwargs (L2 weight decay)",
                  "Robbins & Monro 1951; Sutskever et al. 2013", adam_family=False),
    OptimizerInfo("adam", "torch.optim:Adam", "Adam (L2 weight decay added to the gradient)",
                  "Kingma & Ba 2015, arXiv 1412.6980"),
    OptimizerInfo("adamw", "torch.optim:AdamW", "AdamW (decoupled weight decay)",
                  "Loshchilov & Hutter 2019, arXiv 1711.05101"),
    OptimizerInfo("nadamw", "torch.optim:NAdam",
                  "NAdam with decoupled weight decay and constant momentum (AlgoPerf's NAdamW baseline)",
                  "Dozat 2016; Dahl et al. 2023, arXiv 2306.07179",
                  # momentum_decay=inf makes torch's mu_t = beta1 * (1 - 0.5 * 0.96**(t*inf)) = beta1,
                  # the constant-momentum NAdam of Choi et al. 2019 (Table 1) that AlgoPerf uses;
                  # torch's default 4e-3 keeps mu_t near beta1/2 for thousands of steps.
                  {"decoupled_weight_decay": True, "momentum_decay": math.inf}),
    OptimizerInfo("radam", "torch.optim:RAdam", "RAdam with decoupled weight decay",
                  "Liu et al. 2020, arXiv 1908.03265", {"decoupled_weight_decay": True}),
    OptimizerInfo("sgd-schedulefree", "schedulefree:SGDScheduleFree",
                  "Schedule-Free SGD (needs train/eval switching)",
                  "Defazio et al. 2024, arXiv 2405.15682", adam_family=False),
    OptimizerInfo("adamw-schedulefree", "schedulefree:AdamWScheduleFree",
                  "Schedule-Free AdamW (needs train/eval switching)", "Defazio et al. 2024, arXiv 2405.15682"),
    OptimizerInfo("radam-schedulefree", "schedulefree:RAdamScheduleFree",
                  "Schedule-Free RAdam, no warm-up needed (needs train/eval switching)",
                  "Defazio et al. 2024, arXiv 2405.15682"),
    OptimizerInfo("lion", "pytorch_optimizer:Lion", "Lion, sign of an interpolated momentum",
                  "Chen et al. 2023, arXiv 2302.06675"),
    OptimizerInfo("prodigy", "pytorch_optimizer:Prodigy", "Prodigy, D-Adaptation-style step size (lr=1)",
                  "Mishchenko & Defazio 2024, arXiv 2306.06101"),
    OptimizerInfo("dadapt-adam", "pytorch_optimizer:DAdaptAdam",
                  "D-Adaptation Adam, learned step size (lr=1), decoupled weight decay",
                  "Defazio & Mishchenko 2023, arXiv 2301.07733", {"weight_decouple": True}),
    OptimizerInfo("adabelief", "pytorch_optimizer:AdaBelief", "AdaBelief, second moment of g - m",
                  "Zhuang et al. 2020, arXiv 2010.07468"),
    OptimizerInfo("adan", "pytorch_optimizer:Adan", "Adan, Nesterov momentum of gradient differences",
                  "Xie et al. 2022, arXiv 2208.06677"),
    OptimizerInfo("dog", "dog:DoG",
                  "DoG parameter-free step size (lr=1) + polynomial-decay averaging at eval",
                  "Ivgi et al. 2023, arXiv 2302.12022", adam_family=False, averaged=True),
    OptimizerInfo("ldog", "dog:LDoG", "layer-wise DoG (lr=1) + polynomial-decay averaging at eval",
                  "Ivgi et al. 2023, arXiv 2302.12022", adam_family=False, averaged=True),
    # Matrix preconditioners, from pytorch-optimizer (runs eagerly on CPU; heavyball 3.2.1
    # also has them but compiles every step function with torch.compile first: ~76 s before
    # the first SOAP step of a 2-layer MLP on CPU). AlgoPerf 2024's external-tuning leader
    # was distributed Shampoo (Shi et al. 2023) with Adam grafting.
    OptimizerInfo("shampoo", "pytorch_optimizer:ScalableShampoo",
                  "Shampoo, blockwise Kronecker preconditioner grafted to RMSProp step sizes",
                  "Gupta et al. 2018, arXiv 1802.09568; Anil et al. 2020, arXiv 2002.09018; Shi et al. 2023, "
                  "arXiv 2309.06497",
                  # graft_type 3 = LayerWiseGrafting.RMSPROP: each layer's step has the norm of an
                  # RMSProp step (the winner grafts Adam's); EMA momentum like Adam's; decoupled
                  # weight decay; start_preconditioning_step=5 as distributed_shampoo's default.
                  # Inverse roots every 5 steps, a cost/quality compromise measured on charlm
                  # (600 steps, lr 1e-2, betas 0.9/0.99, one seed): every 1 / 5 / 10 steps gave
                  # validation loss 1.569 / 1.688 / 1.895 (AdamW 1.560) at ~8x / ~2.4x / ~1.5x
                  # AdamW's step time (coupled Newton iterations on CPU). distributed_shampoo's
                  # default is 1; modded-nanogpt's DistributedShampoo run used 10.
                  {"graft_type": 3, "moving_average_for_momentum": True, "decoupled_weight_decay": True,
                   "start_preconditioning_step": 5, "preconditioning_compute_steps": 5}),
    OptimizerInfo("soap", "pytorch_optimizer:SOAP",
                  "SOAP, Adam in the eigenbasis of Shampoo's preconditioner (refreshed every 10 steps)",
                  "Vyas et al. 2024, arXiv 2409.11321"),
    OptimizerInfo("muon", "pytorch_optimizer:Muon",
                  "Muon (Newton-Schulz orthogonalized Nesterov momentum) on hidden matrices, AdamW "
                  "(lr `adamw_lr`) on embeddings, output head, biases and norms",
                  "Jordan et al. 2024, kellerjordan.github.io/posts/muon; Liu et al. 2025, arXiv 2502.16982",
                  groups="muon"),
    # Polyak-type step sizes (steplab.optim.polyak): lr is the cap of the adaptive step; they read
    # the minibatch loss through step(closure), see needs_loss
    OptimizerInfo("sps", "steplab.optim.polyak:SPSMax", "SPS_max stochastic Polyak step, capped at lr",
                  "Loizou et al. 2021, arXiv 2002.10542", adam_family=False),
    OptimizerInfo("momo", "steplab.optim.polyak:MoMo", "MoMo momentum model, online f* estimate, capped at lr",
                  "Schaipp et al. 2023, arXiv 2305.07583", adam_family=False),
    OptimizerInfo("alr-smag", "steplab.optim.polyak:PolyakMomentum",
                  "generalized Polyak step with heavy-ball momentum (ALR-SMAG), capped at lr",
                  "Wang et al. 2023, arXiv 2305.12939", adam_family=False),
    # Against loss of plasticity in continual learning (steplab.optim.upgd / cbp / regularized;
    # docs/tutorials/continual.md, "Plasticity optimizers")
    OptimizerInfo("upgd", "steplab.optim.upgd:UPGD",
                  "UPGD: utility-gated perturbed SGD, first-order global utility, protecting",
                  "Elsayed & Mahmood 2024, arXiv 2404.00781", adam_family=False),
    OptimizerInfo("upgd-np", "steplab.optim.upgd:UPGD",
                  "UPGD, non-protecting: the utility gates only the noise",
                  "Elsayed & Mahmood 2024, arXiv 2404.00781", {"protect": False}, adam_family=False),
    OptimizerInfo("upgd-so", "steplab.optim.upgd:UPGD",
                  "UPGD, second-order utility (Hutchinson Hessian diagonal; backward with create_graph)",
                  "Elsayed & Mahmood 2024, arXiv 2404.00781", {"utility": "second"}, adam_family=False),
    OptimizerInfo("cbp", "steplab.optim.cbp:ContinualBackprop",
                  "continual backprop: SGD + reinitialize low-utility mature hidden units (MLPs)",
                  "Dohare et al. 2024, Nature 632", adam_family=False, needs_model=True),
    OptimizerInfo("cbp-adam", "steplab.optim.cbp:ContinualBackprop",
                  "continual backprop on Adam (moments of replaced units restart, AdamGnT)",
                  "Dohare et al. 2024, Nature 632", {"base": "adam"}, needs_model=True),
    OptimizerInfo("shrink-perturb", "steplab.optim.regularized:ShrinkPerturb",
                  "SGD with L2 weight decay (the shrink) + Gaussian noise every step",
                  "Ash & Adams 2020, arXiv 1910.08475; Dohare et al. 2024", adam_family=False),
    OptimizerInfo("l2init", "steplab.optim.regularized:L2Init", "SGD + pull toward the initial parameters",
                  "Kumar et al. 2023, arXiv 2308.11958", adam_family=False),
    OptimizerInfo("l2init-adam", "steplab.optim.regularized:L2Init", "Adam + pull toward the initial parameters",
                  "Kumar et al. 2023, arXiv 2308.11958", {"base": "adam"}),
    OptimizerInfo("spectral", "steplab.optim.regularized:SpectralReg",
                  "SGD + keep each layer's largest singular value near 1",
                  "Lewandowski et al. 2025, arXiv 2406.06811", adam_family=False, needs_model=True),
    OptimizerInfo("spectral-adam", "steplab.optim.regularized:SpectralReg",
                  "Adam + keep each layer's largest singular value near 1",
                  "Lewandowski et al. 2025, arXiv 2406.06811", {"base": "adam"}, needs_model=True),
]

# for bring-your-own classes: names that mark an Adam-like or sign-like update
ADAM_LIKE = ("adam", "lion", "sign", "adagrad", "rmsprop", "adabelief", "adan", "prodigy",
              "lamb", "adafactor", "adadelta", "adamax", "yogi", "sophia", "soap", "shampoo")
