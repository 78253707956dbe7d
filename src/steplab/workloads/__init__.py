"""Workload registry: ``get(name, variant)`` builds one, ``names()`` lists them."""

from __future__ import annotations

from collections.abc import Callable

from steplab.errors import WorkloadError
from steplab.workloads.base import Target, Workload

_REGISTRY: dict[str, type[Workload]] = {}


def register(cls: type[Workload]) -> type[Workload]:
    """Class decorator adding a workload family to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    # Imported lazily so that `import steplab.workloads` stays cheap.
    from steplab.workloads import (  # noqa: F401
        charlm,
        digits,
        logreg,
        modarith,
        stream,
        teacher_student,
    )


def names() -> list[str]:
    """Names of all registered workloads, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def workload_class(name: str) -> type[Workload]:
    """The class registered as ``name``; ``WorkloadError`` when unknown."""
    _load_builtins()
    if name not in _REGISTRY:
        raise WorkloadError(
            f"unknown workload {name!r}; known: {', '.join(sorted(_REGISTRY))} "
            "(see `steplab workloads list`)"
        )
    return _REGISTRY[name]


def get(name: str, variant: str | None = None, **overrides: object) -> Workload:
    """Build workload ``name`` (``"name:variant"`` also accepted) with optional
    ``budget_steps=``/``target=`` overrides."""
    if ":" in name and variant is None:
        name, variant = name.split(":", 1)
    cls = workload_class(name)
    return cls(variant or "base", **overrides)  # type: ignore[arg-type]


WorkloadFactory = Callable[..., Workload]

__all__ = ["Target", "Workload", "get", "names", "register", "workload_class"]
