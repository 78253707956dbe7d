"""DoG with polynomial-decay iterate averaging, the companion its authors call crucial (Ivgi
et al. 2023, "DoG is SGD's Best Friend"; ``dog.PolynomialDecayAverager``), given
schedule-free-style ``train()``/``eval()`` modes (:mod:`steplab.optim.modes`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from steplab.optim.modes import is_train

_AVERAGED: dict[type, type] = {}


def with_averaging(base: type) -> type:
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
            if not is_train(self):
                raise RuntimeError("optimizer is in eval mode; call steplab.optim.modes.train_mode(opt) before stepping")
            loss = super().step(closure)
            if self.averager is not None:
                self.averager.step()
            return loss

        @torch.no_grad()
        def eval(self) -> None:
            if is_train(self) and self.averager is not None and self.averager.t > 1:
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
