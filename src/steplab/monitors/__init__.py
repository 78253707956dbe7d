"""Training-dynamics monitors (issue 23): sharpness, gradient noise scale, laziness, logits,
grokking. ``from steplab.monitors import Probe, measure, parse_monitors``.

Names load on first use (PEP 562): ``import steplab.monitors`` does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MONITORS", "Monitor", "MonitorError", "MonitorWarning", "Probe", "measure", "parse_monitors"]


def __getattr__(name: str) -> Any:
    if name in ("MONITORS", "parse_monitors"):
        from steplab.monitors import registry

        return getattr(registry, name)
    if name in ("Monitor", "MonitorError", "MonitorWarning", "Probe", "measure", "PREFIX"):
        from steplab.monitors import base

        return getattr(base, name)
    raise AttributeError(f"module 'steplab.monitors' has no attribute {name!r}")
