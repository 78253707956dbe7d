"""What to run after ``steplab import``: the ``next:`` commands for an imported trial, chosen
by the rules the commands themselves apply, so every suggestion runs as written (the refine
norm is :func:`steplab.analysis.refine.auto_norm`'s: the optimizer's when the log holds it,
else the one the log has, and the line says when the optimizer is unknown)."""

from __future__ import annotations

from typing import Any

import numpy as np

from steplab.analysis.refine import auto_norm
from steplab.errors import SpecError

__all__ = ["next_commands"]


def next_commands(trial: Any, trace: dict[str, np.ndarray]) -> str:
    """The ``next:`` line for the imported ``trial`` with step trace ``trace``
    (``Store.steps``): ``runs show``, ``refine --norm NORM`` when the log has gradient norms
    (with a note when the norm is not the optimizer's), ``predict fit``."""
    tid = trial.id
    try:
        norm, why = auto_norm(trial, trace)
    except SpecError:  # no gradient norms: refine has nothing to work from
        return (f"  next: steplab runs show {tid}, steplab predict fit {tid} (no gradient norms in this log, so "
                "nothing to refine: import its gradient-norm series too, --grad-norm COLUMN or --tags grad_norm=NAME)")
    note = ""
    if why.startswith("optimizer"):
        note = f" ({why}; pass --optimizer at import to pick the norm by optimizer)"
    return (f"  next: steplab runs show {tid}, steplab refine {tid} --norm {norm}, "
            f"steplab predict fit {tid}{note}")
