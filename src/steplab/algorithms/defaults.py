"""The defaults a command falls back on when the user names no algorithm: library policy,
kept here so that the CLI only maps flags (DESIGN.md, ``cli/``: "no policy in the CLI").
"""

from __future__ import annotations

#: the built-in algorithm used when none is given: AdamW, 5% warm-up, cosine decay
DEFAULT_ALGORITHM = "adamw-cosine"
#: an algorithm given only as ``--optimizer``/``--schedule``: the optimizer when only a
#: schedule is given, the schedule when only an optimizer is given, and its peak lr
DEFAULT_OPTIMIZER = "adamw"
DEFAULT_SCHEDULE = "cosine:warmup=0.05"
DEFAULT_LR = 1e-3


def stream_hyperparameters(kind: str) -> dict[str, float]:
    """AdamW's peak lr and weight decay for a continual stream of ``kind`` (``"lm"`` or a
    classification stream): the calibrated ``adamw-cosine`` settings of the charlm-sized
    model (lr 0.02) and of digits (lr 3e-3, ``steplab.workloads.digits``), weight decay 0.01."""
    return {"lr": 0.02 if kind == "lm" else 3e-3, "weight_decay": 0.01}
