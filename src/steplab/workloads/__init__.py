"""Workload registry: ``get(name, variant)`` builds one, ``names()`` lists them.

The families are listed here, one way: this package imports its family modules (lazily, so
that ``import steplab.workloads`` stays cheap), and no family module imports it back. A
workload of your own is named by reference instead, ``path/file.py:Class`` or
``package.module:Class`` (:mod:`steplab.workloads.references`); nothing is registered."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from steplab.errors import WorkloadError
from steplab.workloads import references
from steplab.workloads.target import Target

if TYPE_CHECKING:
    from steplab.workloads.base import Workload


@functools.cache
def _registry() -> dict[str, type[Workload]]:
    from steplab.workloads.charlm import CharLM
    from steplab.workloads.digits import DigitsMLP
    from steplab.workloads.logreg import LogReg
    from steplab.workloads.mnist1d import MNIST1D
    from steplab.workloads.mnist1d_tasks import MNIST1DTasks
    from steplab.workloads.modarith import ModArith
    from steplab.workloads.modarith_tasks import ModArithSkills
    from steplab.workloads.shakespeare import ShakespeareChar
    from steplab.workloads.stream import StreamWorkload
    from steplab.workloads.teacher_student import TeacherStudent
    from steplab.workloads.teacher_student_tasks import TeacherStudentNoise

    families: tuple[type[Workload], ...] = (CharLM, DigitsMLP, LogReg, MNIST1D, ModArith, ShakespeareChar, StreamWorkload,
                                           TeacherStudent, MNIST1DTasks, ModArithSkills, TeacherStudentNoise)
    return {cls.name: cls for cls in families}


def names() -> list[str]:
    """Names of all registered workloads, sorted."""
    return sorted(_registry())


def task_workload_names() -> list[str]:
    """The registered workloads with task structure (``has_tasks``: a task parameter per
    example that a curriculum can choose from; :mod:`steplab.workloads.curriculum_data`)."""
    return [n for n, cls in sorted(_registry().items()) if getattr(cls, "has_tasks", False)]


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name``, or loaded from a reference ``path/file.py:Class`` /
    ``package.module:Class`` (:mod:`steplab.workloads.references`); ``WorkloadError`` when
    unknown or when the class breaks the contract."""
    if references.is_reference(name):
        return references.load(references.parse(name)).cls
    registry = _registry()
    if name not in registry:
        raise WorkloadError(
            f"unknown workload {name!r}; known: {', '.join(sorted(registry))} "
            "(see `steplab workloads list`)"
        )
    return registry[name]


def get(name: str, variant: str | None = None, **overrides: object) -> Workload:
    """Build workload ``name`` (``"name:variant"`` also accepted; or a reference
    ``path/file.py:Class[:variant]``, ``package.module:Class[:variant]``) with optional
    ``budget_steps=``/``target=`` overrides."""
    if references.is_reference(name):
        return references.build(name, variant, **overrides)
    if ":" in name and variant is None:
        name, variant = name.split(":", 1)
    cls = workload_class(name)
    return cls(variant or "base", **overrides)  # type: ignore[arg-type]


__all__ = ["Target", "TorchWorkload", "Workload", "from_torch", "get", "names", "references", "task_workload_names",
           "workload_class"]


def __getattr__(name: str) -> Any:
    """``Workload``, ``TorchWorkload`` and ``from_torch`` on first use (PEP 562): they
    import torch, ``Target`` does not."""
    if name == "Workload":
        from steplab.workloads.base import Workload

        return Workload
    if name in ("TorchWorkload", "from_torch"):
        from steplab.workloads import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module 'steplab.workloads' has no attribute {name!r}")
