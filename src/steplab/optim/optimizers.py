"""Optimizers by name, built from well-kept packages (DESIGN.md, ``optimizers.py``).

Each registry entry points at a class in ``torch.optim``, ``schedulefree`` (Defazio et al.
2024, "The Road Less Scheduled"), ``pytorch_optimizer`` (Lion, Prodigy, D-Adaptation,
AdaBelief, Adan, Shampoo, SOAP, Muon) or ``dog`` (``dog-optimizer``, Ivgi et al. 2023). The
only update rules steplab writes itself are the Polyak-type steps no installed package provides
(:mod:`steplab.optim.polyak`: SPS_max, MoMo, ALR-SMAG); they read the minibatch loss, see
:func:`needs_loss`. Any ``module:Class`` import path works too (bring your own, e.g.
``torch.optim:Adagrad``).

:func:`build_optimizer` adds what every benchmark needs around the class:

* parameter groups in the nanoGPT style (``model.py::configure_optimizers``): tensors with
  fewer than 2 dimensions (biases, norm gains, scalars) get no weight decay;
* AlgoPerf-style convenience kwargs ``beta1`` / ``one_minus_beta1`` / ``beta2`` /
  ``one_minus_beta2`` mapped onto ``betas`` (or ``momentum`` for SGD-like classes);
* kwargs checked against the class signature, so a typo is a one-line ``SpecError``
  instead of being swallowed (``pytorch_optimizer`` classes accept ``**kwargs``).

Optimizers with a train/eval mode (schedule-free; steplab's averaged DoG) are returned in
train mode. Before evaluating or checkpointing, switch them with :func:`eval_mode`, and back
with :func:`train_mode` (no-ops for every other optimizer)::

    opt = build_optimizer("adamw-schedulefree", model, lr=3e-3, weight_decay=0.05)
    ...train steps...
    with eval_mode(opt):          # params now hold the averaged iterate x
        metrics = evaluate(model)
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steplab.errors import SpecError

_HINT = "see `steplab algorithms optimizers`"
_BETA_KEYS = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2")


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


_REGISTRY: dict[str, OptimizerInfo] = {}


def register(info: OptimizerInfo) -> OptimizerInfo:
    """Add an optimizer to the registry (a user can register their own)."""
    _REGISTRY[info.name] = info
    return info


for _info in [
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
]:
    register(_info)

# for bring-your-own classes: names that mark an Adam-like or sign-like update
_ADAM_LIKE = ("adam", "lion", "sign", "adagrad", "rmsprop", "adabelief", "adan", "prodigy",
              "lamb", "adafactor", "adadelta", "adamax", "yogi", "sophia", "soap", "shampoo")


def optimizer_names() -> list[str]:
    """Registered optimizer names, sorted."""
    return sorted(_REGISTRY)


def info(name: str) -> OptimizerInfo:
    """The registry entry for ``name``, or an ad-hoc entry for a ``module:Class`` path."""
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"an optimizer must be a registry name or 'module:Class', got {name!r} ({_HINT})")
    key = name.strip().lower().replace("_", "-")
    if key in _REGISTRY:
        return _REGISTRY[key]
    if ":" in name:
        cls_name = name.rpartition(":")[2]
        return OptimizerInfo(name.strip(), name.strip(), f"bring-your-own {cls_name}", name.strip(),
                             adam_family=any(k in cls_name.lower() for k in _ADAM_LIKE))
    raise SpecError(
        f"unknown optimizer {name!r}; known: {', '.join(optimizer_names())}, "
        f"or an import path like 'torch.optim:Adagrad' ({_HINT})"
    )


def _resolve(entry: OptimizerInfo) -> type:
    module_name, _, attr = entry.target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise SpecError(f"optimizer {entry.name!r}: cannot import {entry.target!r} ({e}); "
                        f"install the package or fix the path ({_HINT})") from None
    if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)):
        raise SpecError(f"optimizer {entry.name!r}: {entry.target!r} is not a torch.optim.Optimizer subclass")
    if entry.averaged:
        return _averaged(obj)
    return obj


def _signature(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """Named keyword parameters of ``cls.__init__`` (minus self/params), and whether only
    ``**kwargs`` is declared (then names cannot be checked)."""
    params = dict(inspect.signature(cls.__init__).parameters)
    if getattr(cls, "_steplab_wraps", None) is not None:  # averaged DoG: wrapper + base kwargs
        params = {**inspect.signature(cls._steplab_wraps.__init__).parameters, **params}
    named = {k: p for k, p in params.items()
             if k not in ("self", "params", "model") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    only_var = not named and any(p.kind is p.VAR_KEYWORD for p in params.values())
    return named, only_var


def default_kwargs(name: str) -> dict[str, Any]:
    """The kwargs ``name`` is built with when none are given: the class's own defaults,
    overridden by steplab's registry defaults (e.g. ``nadamw``'s decoupled weight decay)."""
    entry = info(name)
    named, _ = _signature(_resolve(entry))
    out = {k: p.default for k, p in named.items() if p.default is not inspect.Parameter.empty}
    out.update(entry.defaults)
    return out


def resolve_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``kwargs`` against the class of ``name`` and map the AlgoPerf-style convenience
    keys (``beta1``, ``one_minus_beta1``, ``beta2``, ``one_minus_beta2``) onto ``betas`` (or
    onto ``momentum`` for SGD-like classes). Returns the canonical kwargs (registry defaults
    not included); raises a one-line ``SpecError`` naming the optimizer."""
    entry = info(name)
    named, only_var = _signature(_resolve(entry))
    odd = [k for k in kwargs if not isinstance(k, str)]
    if odd:
        raise SpecError(f"optimizer {entry.name!r}: kwarg names must be strings, got {odd[0]!r}")
    out = {k: v for k, v in kwargs.items() if k not in _BETA_KEYS}
    for k in ("lr", "weight_decay", "model"):
        if k in out:
            raise SpecError(f"optimizer {entry.name!r}: give {k!r} as its own setting, not as an optimizer kwarg")
    if not only_var:
        bad = sorted(k for k in out if k not in named)
        if bad:
            raise SpecError(f"optimizer {entry.name!r} has no parameter {', '.join(map(repr, bad))}; "
                            f"it takes: {', '.join(sorted(k for k in named if k not in ('lr', 'weight_decay')))} ({_HINT})")
    if "betas" in out:  # steplab reads betas[0] and betas[1] (defaults, beta1/beta2 keys)
        b = out["betas"]
        if isinstance(b, (str, bytes)) or not isinstance(b, Sequence) or len(b) < 2 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in b
        ):
            raise SpecError(f"optimizer {entry.name!r}: 'betas' must be a list of numbers like [0.9, 0.999], got {b!r}")
    m = out.get("momentum", 0.0)
    if isinstance(m, bool) or not isinstance(m, (int, float)):
        raise SpecError(f"optimizer {entry.name!r}: 'momentum' must be a number like 0.9, got {m!r}")
    betas_given = {k: kwargs[k] for k in _BETA_KEYS if k in kwargs}
    if not betas_given:
        return out
    for one, other in (("beta1", "one_minus_beta1"), ("beta2", "one_minus_beta2")):
        if one in betas_given and other in betas_given:
            raise SpecError(f"optimizer {entry.name!r}: give {one!r} or {other!r}, not both")
    vals: dict[int, float] = {}
    for k, v in betas_given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= sys.float_info.max:
            raise SpecError(f"optimizer {entry.name!r}: {k!r} must be a finite number, got {v!r}")
        vals[0 if "beta1" in k else 1] = 1.0 - float(v) if k.startswith("one_minus") else float(v)
    if "betas" in named:
        base = out.get("betas", default_kwargs(entry.name).get("betas", (0.9, 0.999)))
        betas = list(base)
        for i, v in vals.items():
            betas[i] = v
        out["betas"] = tuple(betas)
    elif "momentum" in named:
        if 1 in vals:
            raise SpecError(f"optimizer {entry.name!r} has momentum but no second beta; drop beta2/one_minus_beta2")
        out["momentum"] = vals[0]
    else:
        raise SpecError(f"optimizer {entry.name!r} takes neither betas nor momentum; "
                        f"drop {', '.join(sorted(betas_given))} ({_HINT})")
    return out


def param_groups(model: nn.Module, weight_decay: float, *, no_decay_bias_norm: bool = True) -> list[dict[str, Any]]:
    """Trainable parameters split nanoGPT-style (``model.py::configure_optimizers``): tensors
    with ``ndim >= 2`` (weights, embeddings) decay, the rest (biases, norm gains) do not.

    With ``weight_decay == 0`` or ``no_decay_bias_norm=False`` there is a single group, so
    optimizers whose step size is computed per group (DoG, Prodigy) see one vector."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SpecError("the model has no trainable parameters")
    if weight_decay == 0 or not no_decay_bias_norm:
        return [{"params": params, "weight_decay": weight_decay}]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def output_head(model: nn.Module) -> nn.Module | None:
    """The output layer of ``model``: its last ``nn.Linear`` in registration order (``head``
    of charlm, the last layer of an MLP), or ``None`` when it has none."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else None


def muon_param_groups(model: nn.Module, weight_decay: float, *, no_decay_bias_norm: bool = True) -> list[dict[str, Any]]:
    """Parameter groups for Muon as its authors use it (Jordan et al. 2024; the Muon README:
    "Embeddings, classifier heads, and internal gains/biases should be optimized using
    AdamW"): the hidden matrices (``ndim >= 2``, not owned by an ``nn.Embedding`` nor by the
    :func:`output_head`) form the first group, ``use_muon=True``; embeddings and the head's
    weight (decayed) and every tensor with ``ndim < 2`` (not decayed unless
    ``no_decay_bias_norm=False``) go to AdamW groups, ``use_muon=False``, whose lr is
    ``Muon``'s ``adamw_lr``. Empty groups are dropped; the Muon group comes first, so the lr
    the recorder logs (``param_groups[0]``) is Muon's."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SpecError("the model has no trainable parameters")
    head = output_head(model)
    adamw_owned = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) or m is head
                   for p in m.parameters(recurse=False)}
    hidden = [p for p in params if p.ndim >= 2 and id(p) not in adamw_owned]
    other = [p for p in params if p.ndim >= 2 and id(p) in adamw_owned]
    small = [p for p in params if p.ndim < 2]
    groups = [{"params": hidden, "weight_decay": weight_decay, "use_muon": True},
              {"params": other, "weight_decay": weight_decay, "use_muon": False},
              {"params": small, "weight_decay": weight_decay if not no_decay_bias_norm else 0.0, "use_muon": False}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.0,
    no_decay_bias_norm: bool = True,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (registry name or ``module:Class``) over ``model``'s parameters.

    Args:
        name: a name from :func:`optimizer_names` or an import path ``module:Class``.
        model: the module to train; its trainable parameters are grouped by :func:`param_groups`
            (``muon``: by :func:`muon_param_groups`).
        lr: the peak learning rate (a schedule multiplies it through ``schedules.to_lr_scheduler``).
        weight_decay: applied to the decay group only (as the optimizer defines it: decoupled
            for ``adamw``/``nadamw``/``radam``/schedule-free/pytorch-optimizer, L2 for ``sgd``/``adam``/``dog``).
        no_decay_bias_norm: exempt tensors with fewer than 2 dimensions from weight decay.
        **kwargs: passed to the class (``betas``, ``momentum``, ``eps``...), after
            :func:`resolve_kwargs`; steplab's registry defaults fill the rest.

    Returns:
        The optimizer, in train mode when it has one (schedule-free, ``dog``).

    Raises:
        SpecError: unknown name, unknown kwarg, or a value the class rejects.
    """
    entry = info(name)
    cls = _resolve(entry)
    for key, val in (("lr", lr), ("weight_decay", weight_decay)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not abs(val) <= sys.float_info.max or val < 0:
            raise SpecError(f"optimizer {entry.name!r}: {key} must be a finite number >= 0, got {val!r}")
    given = resolve_kwargs(entry.name, kwargs)
    final = {**entry.defaults, **given}
    if "betas" in final:
        final["betas"] = tuple(final["betas"])
    named, only_var = _signature(cls)
    if "weight_decay" in named or only_var:
        final["weight_decay"] = weight_decay
    elif weight_decay:
        raise SpecError(f"optimizer {entry.name!r} takes no weight_decay; set weight_decay = 0")
    split = muon_param_groups if entry.groups == "muon" else param_groups
    groups = split(model, weight_decay if ("weight_decay" in final) else 0.0,
                   no_decay_bias_norm=no_decay_bias_norm)
    if "weight_decay" not in final:
        for g in groups:
            g.pop("weight_decay")
    if entry.averaged:
        final["model"] = model
    try:
        opt = cls(groups, lr=lr, **final)
    except (TypeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"optimizer {entry.name!r} rejected its settings: {msg} ({_HINT})") from None
    train_mode(opt)
    return opt


def describe(name: str) -> str:
    """One line: name, summary, source, and steplab's defaults that differ from the class."""
    entry = info(name)
    extra = ", ".join(f"{k}={v}" for k, v in entry.defaults.items())
    return (f"{entry.name}: {entry.summary} [{entry.target}; {entry.source}]"
            + (f" (steplab sets {extra})" if extra else ""))


def is_adam_family(name: str) -> bool:
    """True for Adam-like and sign-like updates (coordinate-wise scaling), False for
    SGD-like ones (SGD, schedule-free SGD, DoG); used to pick the gradient-norm type.
    For ``module:Class`` paths this is a guess from the class name."""
    return info(name).adam_family


def needs_loss(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt.step`` needs the minibatch loss, passed as ``opt.step(lambda: loss)``
    (the Polyak-type steps of :mod:`steplab.optim.polyak`; any class may opt in with a class
    attribute ``needs_loss = True``). The closure returns the loss already computed for the
    step: nothing is recomputed, and every other optimizer keeps its plain ``step()``."""
    return bool(getattr(type(opt), "needs_loss", False))


def is_schedule_free(opt: torch.optim.Optimizer) -> bool:
    """True for the ``schedulefree`` package's optimizers (and pytorch-optimizer's ports):
    the parameters hold the gradient point ``y`` in train mode and ``x`` in eval mode."""
    cls = type(opt)
    return cls.__module__.split(".")[0] == "schedulefree" or "schedulefree" in cls.__name__.lower()


def has_modes(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt`` has ``train()``/``eval()`` methods (schedule-free, averaged DoG)."""
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


def _is_train(opt: torch.optim.Optimizer) -> bool:
    return bool(opt.param_groups[0].get("train_mode", True))


class _Mode:
    """Switches ``opt`` on construction; used as a context manager it switches back on exit."""

    def __init__(self, opt: torch.optim.Optimizer, train: bool) -> None:
        self.opt = opt
        self.was_train = _is_train(opt) if has_modes(opt) else None
        if has_modes(opt):
            self._switch(train)

    def _switch(self, train: bool) -> None:
        if train:
            self.opt.train()  # type: ignore[attr-defined]
        else:
            self.opt.eval()  # type: ignore[attr-defined]

    def __enter__(self) -> torch.optim.Optimizer:
        return self.opt

    def __exit__(self, *exc: object) -> None:
        if self.was_train is not None:
            self._switch(self.was_train)


def train_mode(opt: torch.optim.Optimizer) -> _Mode:
    """Put ``opt`` in train mode (``optimizer.train()``) if it has modes; no-op otherwise.

    Call before the first step and after every evaluation (schedulefree README). Usable as a
    context manager that restores the previous mode on exit."""
    return _Mode(opt, train=True)


def eval_mode(opt: torch.optim.Optimizer) -> _Mode:
    """Put ``opt`` in eval mode (``optimizer.eval()``) if it has modes; no-op otherwise.

    Schedule-free: the parameters become the averaged iterate ``x`` at which the loss should
    be measured and checkpoints saved (schedulefree README, "train/eval"). Usable as a
    context manager: ``with eval_mode(opt): evaluate(model)`` returns to the previous mode."""
    return _Mode(opt, train=False)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def refresh_batchnorm(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    batches: Iterable[Any],
    n: int = 50,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> None:
    """Recompute BatchNorm running statistics at the evaluation parameters.

    schedulefree README ("Caveats"): BatchNorm statistics gathered during training belong to
    the train-mode point ``y``; before evaluating, put the optimizer in eval mode, the model
    in train mode, and run ``n`` (50 there) training batches forward without gradients.
    The optimizer is left in eval mode (ready for the evaluation that follows; call
    :func:`train_mode` before the next step) and the model in its previous mode. A no-op for
    models without BatchNorm or optimizers without modes.

    Args:
        batches: an iterable of training batches (only ``n`` are consumed).
        forward: ``forward(model, batch)``; default ``model(batch[0])`` for a tuple/list batch,
            else ``model(batch)``. A workload's ``loss`` works too.
    """
    if not _has_batchnorm(model) or not has_modes(opt):
        return
    eval_mode(opt)
    was_training = model.training
    model.train()
    with torch.no_grad():
        for batch in itertools.islice(batches, n):
            if forward is not None:
                forward(model, batch)
            else:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
    model.train(was_training)


# ----------------------------------------------------------------------------------
# DoG + polynomial-decay averaging (the companion its authors call crucial)
# ----------------------------------------------------------------------------------
_AVERAGED: dict[type, type] = {}


def _averaged(base: type) -> type:
    """``base`` (``dog.DoG``/``dog.LDoG``) plus ``dog.PolynomialDecayAverager`` (gamma=8,
    Shamir & Zhang 2013) stepped after every update, with schedule-free-style modes:
    ``eval()`` loads the averaged weights into the model, ``train()`` restores the iterate."""
    if base in _AVERAGED:
        return _AVERAGED[base]
    from dog import PolynomialDecayAverager

    class Averaged(base):  # type: ignore[misc, valid-type]
        _steplab_wraps = base

        def __init__(self, params: Any, *, model: nn.Module, average: bool = True,
                     average_gamma: float = 8.0, **kwargs: Any) -> None:
            super().__init__(params, **kwargs)
            self.averager = PolynomialDecayAverager(model, gamma=average_gamma) if average else None
            self._stash: dict[str, torch.Tensor] | None = None
            for g in self.param_groups:
                g["train_mode"] = True

        @torch.no_grad()
        def step(self, closure: Any = None) -> Any:
            if not _is_train(self):
                raise RuntimeError("optimizer is in eval mode; call steplab.optim.optimizers.train_mode(opt) before stepping")
            loss = super().step(closure)
            if self.averager is not None:
                self.averager.step()
            return loss

        @torch.no_grad()
        def eval(self) -> None:
            if _is_train(self) and self.averager is not None and self.averager.t > 1:
                model = self.averager.model
                self._stash = {k: v.clone() for k, v in model.state_dict().items()}
                model.load_state_dict(self.averager.averaged_model.state_dict())
            for g in self.param_groups:
                g["train_mode"] = False

        @torch.no_grad()
        def train(self) -> None:
            if self._stash is not None:
                self.averager.model.load_state_dict(self._stash)
                self._stash = None
            for g in self.param_groups:
                g["train_mode"] = True

    Averaged.__name__ = Averaged.__qualname__ = f"Averaged{base.__name__}"
    _AVERAGED[base] = Averaged
    return Averaged


__all__ = [
    "OptimizerInfo",
    "build_optimizer",
    "default_kwargs",
    "describe",
    "eval_mode",
    "has_modes",
    "info",
    "is_adam_family",
    "muon_param_groups",
    "is_schedule_free",
    "needs_loss",
    "optimizer_names",
    "output_head",
    "param_groups",
    "refresh_batchnorm",
    "register",
    "resolve_kwargs",
    "train_mode",
]
