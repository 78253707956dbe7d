"""The device, the seeds and the clock's sync point that every steplab run shares."""

from __future__ import annotations

import random

import numpy as np
import torch

from steplab.errors import SpecError


def pick_device(name: str | None = None) -> torch.device:
    """``name`` if given and available, else CUDA when present, else CPU."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} requested but CUDA is not available here; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (so host clocks measure it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
