"""Parameter groups: which tensors decay and, for Muon, which tensors Muon updates
(nanoGPT ``model.py::configure_optimizers``; the Muon README).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from steplab.errors import SpecError


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
