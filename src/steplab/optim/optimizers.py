"""Optimizers by name, built from well-kept packages (DESIGN.md, ``optim/``).

Each registry entry (:mod:`steplab.optim.catalog`) points at a class in ``torch.optim``, ``schedulefree`` (Defazio et al.
2024, "The Road Less Scheduled"), ``pytorch_optimizer`` (Lion, Prodigy, D-Adaptation,
AdaBelief, Adan, Shampoo, SOAP, Muon) or ``dog`` (``dog-optimizer``, Ivgi et al. 2023). The
only update rules steplab writes itself are the Polyak-type steps no installed package provides
(:mod:`steplab.optim.polyak`: SPS_max, MoMo, ALR-SMAG; they read the minibatch loss, see
:func:`needs_loss`) and the plasticity optimizers (:mod:`steplab.optim.upgd`,
:mod:`steplab.optim.cbp`, :mod:`steplab.optim.regularized`; those with ``needs_model`` in
the registry get ``model=``, see :func:`needs_graph` for UPGD's second-order utility).
Any ``module:Class`` import path works too (bring your own, e.g. ``torch.optim:Adagrad``).

:func:`build_optimizer` adds what every benchmark needs around the class:

* parameter groups in the nanoGPT style (``model.py::configure_optimizers``): tensors with
  fewer than 2 dimensions (biases, norm gains, scalars) get no weight decay;
* AlgoPerf-style convenience kwargs ``beta1`` / ``one_minus_beta1`` / ``beta2`` /
  ``one_minus_beta2`` mapped onto ``betas`` (or ``momentum`` for SGD-like classes);
* kwargs checked against the class signature, so a typo is a one-line ``SpecError``
  instead of being swallowed (``pytorch_optimizer`` classes accept ``**kwargs``).

Optimizers with a train/eval mode (schedule-free; steplab's averaged DoG) are returned in
train mode. Before evaluating or checkpointing, switch them with
:func:`steplab.optim.modes.eval_mode`, and back with :func:`~steplab.optim.modes.train_mode`
(no-ops for every other optimizer)::

    opt = build_optimizer("adamw-schedulefree", model, lr=3e-3, weight_decay=0.05)
    ...train steps...
    with eval_mode(opt):          # params now hold the averaged iterate x
        metrics = evaluate(model)
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from steplab.errors import SpecError
from steplab.optim.classes import class_params as _class_params
from steplab.optim.classes import class_signature  # noqa: F401  (re-exported)
from steplab.optim.classes import resolve_class as _resolve
from steplab.optim.groups import muon_param_groups, param_groups
from steplab.optim.modes import train_mode
from steplab.optim.registry import (  # noqa: F401  (re-exported: the registry's API lives here too)
    default_kwargs,
    describe,
    info,
    is_adam_family,
    optimizer_names,
    register,
    resolve_kwargs,
)

_HINT = "see `steplab algorithms optimizers`"


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
    named, only_var = _class_params(cls)
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
    if entry.averaged or entry.needs_model:
        final["model"] = model
    try:
        opt = cls(groups, lr=lr, **final)
    except (TypeError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"optimizer {entry.name!r} rejected its settings: {msg} ({_HINT})") from None
    train_mode(opt)
    return opt


def needs_loss(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt.step`` needs the minibatch loss, passed as ``opt.step(lambda: loss)``
    (the Polyak-type steps of :mod:`steplab.optim.polyak`; any class may opt in with a class
    attribute ``needs_loss = True``). The closure returns the loss already computed for the
    step: nothing is recomputed, and every other optimizer keeps its plain ``step()``."""
    return bool(getattr(type(opt), "needs_loss", False))


def needs_graph(opt: torch.optim.Optimizer) -> bool:
    """True if ``opt.step`` differentiates the gradient again (a Hessian-vector product), so
    the loop must call ``loss.backward(create_graph=True)``: UPGD with the second-order
    utility (:mod:`steplab.optim.upgd`); any class may opt in with ``needs_graph = True``."""
    return bool(getattr(opt, "needs_graph", False))
