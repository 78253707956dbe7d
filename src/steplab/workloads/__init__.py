"""Workload registry: ``get(name, variant)`` builds one, ``names()`` lists them.

The families are listed here, one way: this package imports its family modules (lazily, so
that ``import steplab.workloads`` stays cheap), and no family module imports it back."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from steplab.errors import WorkloadError
from steplab.workloads.target import Target

if TYPE_CHECKING:
    from steplab.workloads.base import Workload


@functools.cache
def _registry() -> dict[str, type[Workload]]:
    from steplab.workloads.charlm import CharLM
    from steplab.workloads.digits import DigitsMLP
    from steplab.workloads.logreg import LogReg
    from steplab.workloads.modarith import ModArith
    from steplab.workloads.stream import StreamWorkload
    from steplab.workloads.teacher_student import TeacherStudent

    families: tuple[type[Workload], ...] = (CharLM, DigitsMLP, LogReg, ModArith, StreamWorkload, TeacherStudent)
    return {cls.name: cls for cls in families}


def names() -> list[str]:
    """Names of all registered workloads, sorted."""
    return sorted(_registry())


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name``; ``WorkloadError`` when unknown."""
    registry = _registry()
    if name not in registry:
        raise WorkloadError(
            f"unknown workload {name!r}; known: {', '.join(sorted(registry))} "
            "(see `steplab workloads list`)"
        )
    return registry[name]


def get(name: str, variant: str | None = None, **overrides: object) -> Workload:
    """Build workload ``name`` (``"name:variant"`` also accepted) with optional
    ``budget_steps=``/``target=`` overrides."""
    if ":" in name and variant is None:
        name, variant = name.split(":", 1)
    cls = workload_class(name)
    return cls(variant or "base", **overrides)  # type: ignore[arg-type]


__all__ = ["Target", "Workload", "get", "names", "workload_class"]


def __getattr__(name: str) -> Any:
    """``Workload`` on first use (PEP 562): it imports torch, ``Target`` does not."""
    if name == "Workload":
        from steplab.workloads.base import Workload

        return Workload
    raise AttributeError(f"module 'steplab.workloads' has no attribute {name!r}")
