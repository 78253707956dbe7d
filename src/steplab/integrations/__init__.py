"""Meet users where they train (DESIGN.md, "integrations/"): one small module per tool.

- :mod:`steplab.integrations.lightning`: a Lightning ``Callback`` (extra ``[lightning]``).
- :mod:`steplab.integrations.hf`: a Hugging Face ``TrainerCallback`` (extra ``[hf]``).
- :mod:`steplab.integrations.tensorboard`: import event files, export trials (``[tensorboard]``).
- :mod:`steplab.integrations.mlflow`: import runs, export trials (``[mlflow]``).
- :mod:`steplab.integrations.csvfile`: import a CSV export (W&B, spreadsheets); no extra.

The callbacks record the same trace rows as :class:`steplab.training.recorder.Recorder` (they drive
one); imported runs are ordinary trials, so ``steplab refine``, ``steplab predict fit`` and
``steplab runs show`` work on them. Importing this package imports no optional dependency.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SteplabLightningCallback", "SteplabTrainerCallback"]


def __getattr__(name: str) -> Any:
    """Lazy access to the callbacks, so ``import steplab.integrations`` needs no extra."""
    if name == "SteplabLightningCallback":
        from steplab.integrations.lightning import SteplabLightningCallback

        return SteplabLightningCallback
    if name == "SteplabTrainerCallback":
        from steplab.integrations.hf import SteplabTrainerCallback

        return SteplabTrainerCallback
    raise AttributeError(f"module 'steplab.integrations' has no attribute {name!r}")
