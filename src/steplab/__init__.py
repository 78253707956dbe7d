"""steplab: benchmark, refine and predict training algorithms by time-to-result.

The names below are the public API the README uses; each is imported on first use, so
``import steplab`` stays light (no torch) and ``steplab --help`` starts fast.

>>> import steplab
>>> steplab.schedules.build({"name": "cosine"}, budget_steps=10)(0)
1.0
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it (a module itself when the name is the module's)
_PUBLIC: dict[str, str] = {
    "schedules": "steplab.schedules",
    "algorithms": "steplab.algorithms",
    "workloads": "steplab.workloads",
    "refine": "steplab.analysis.refine",
    "laws": "steplab.analysis.laws",
    "scoring": "steplab.analysis.scoring",
    "Recorder": "steplab.training.recorder",
    "run_trial": "steplab.training.loop",
    "TrainConfig": "steplab.training.loop",
    "open_store": "steplab.store",
    "TrialSpec": "steplab.results",
    "TrialResult": "steplab.results",
    "SteplabError": "steplab.errors",
    "SpecError": "steplab.errors",
    "WorkloadError": "steplab.errors",
    "StoreError": "steplab.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562); ``__version__`` reads the package
    metadata only when asked for (it costs start-up time)."""
    if name == "__version__":
        from steplab.version import __version__

        return __version__
    if name not in _PUBLIC:
        raise AttributeError(f"module 'steplab' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value
