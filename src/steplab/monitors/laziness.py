"""``laziness``: how far the weights moved from their initialization, overall and per layer.

Lazy ("kernel") training barely moves the weights relative to their size, so the network
stays close to its linearization at initialization; rich (feature-learning) training moves
them by a finite fraction (Chizat, Oyallon & Bach 2019, "On Lazy Training in Differentiable
Programming"). Kumar, Bordelon, Gershman & Pehlevan 2023 ("Grokking as the transition from
lazy to rich training dynamics", arXiv 2310.06110) explain grokking as a late lazy-to-rich
transition and measure laziness by the squared relative parameter movement
``|theta_T - theta_0|^2 / |theta_0|^2`` over all parameters.

Reported (``theta`` = all trainable parameters):

* ``laziness``: the relative change ``|theta_t - theta_0| / |theta_0|`` (Euclidean norms);
* ``laziness/squared``: Kumar et al.'s form, the square of the above;
* ``laziness/<layer>``: the relative change of one layer's parameters, a layer being the
  top-level child module (``embed``, ``hidden``) or, inside a container, its numbered child
  (``blocks.0``); a layer that starts at zero norm is left out;
* ``laziness/weight_norm``: ``|theta_t|``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from steplab.monitors.base import Monitor, MonitorError, Probe


def layer_of(name: str) -> str:
    """The layer a parameter belongs to: its first name component, with the index when the
    first component is a container (``blocks.0.qkv.weight`` -> ``blocks.0``)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0] if len(parts) > 1 else name


@dataclasses.dataclass
class Laziness(Monitor):
    """Relative weight change from step 0, overall and per layer; see the module docstring."""

    name: ClassVar[str] = "laziness"
    needs_initial: ClassVar[bool] = True
    #: also the per-layer values
    per_layer: bool = True

    def __call__(self, probe: Probe) -> dict[str, float]:
        if not probe.initial:
            raise MonitorError("laziness needs the parameters of step 0 (Probe.initial is empty)")
        moved: dict[str, float] = {}
        start: dict[str, float] = {}
        now_sq = 0.0
        with torch.no_grad():
            for name, p in probe.named_parameters():
                if name not in probe.initial:
                    raise MonitorError(f"parameter {name!r} has no step-0 copy in Probe.initial")
                p0 = probe.initial[name].to(device=p.device, dtype=torch.float64)
                layer = layer_of(name)
                moved[layer] = moved.get(layer, 0.0) + float((p.double() - p0).square().sum())
                start[layer] = start.get(layer, 0.0) + float(p0.square().sum())
                now_sq += float(p.double().square().sum())
        total_start = sum(start.values())
        if total_start == 0:
            raise MonitorError("the parameters of step 0 are all zero: no relative change")
        relative = (sum(moved.values()) / total_start) ** 0.5
        out = {"laziness": relative, "laziness/squared": relative**2, "laziness/weight_norm": now_sq**0.5}
        if self.per_layer:
            out.update({f"laziness/{layer}": (moved[layer] / start[layer]) ** 0.5 for layer in moved if start[layer] > 0})
        return out
