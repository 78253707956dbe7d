"""Workloads named by reference: ``path/to/file.py:Class`` or ``package.module:Class``, each
with an optional ``:variant`` (DESIGN.md, "workloads": user workloads load by
``module:Class`` / ``file.py:Class``).

:func:`parse` is the one place such a string is read. A built-in name (``logreg``,
``charlm:deeper``) has no ``/`` and no ``.`` before its first ``:``; a reference has one of
them: a *file* reference names a ``.py`` file (relative paths start at the current
directory, or at ``base``), a *module* reference a dotted module on ``sys.path``.

What is stored (the trial's ``workload``, a benchmark's suite entry, the job a worker runs)
is the reference's :attr:`WorkloadRef.name`: the file's absolute path (or the module) and
the class, without the variant, which is stored apart as for built-ins. Every process that
runs a trial imports that path again, so the file must be reachable at the same path from
every worker (the same folder on each Ray node); a module must be importable there.

A process imports each file once (later calls reuse the module, as ``import`` does), from
the bytes it hashes: :attr:`LoadedClass.sha256` is the SHA-256 of exactly the source that
defined the class. A trial stores it (``Workload.source_sha256``), so a study resumed after
the file changed is refused instead of mixing results of two versions
(:mod:`steplab.studies.resume`).

Nothing here imports torch until a class is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from steplab.errors import WorkloadError

if TYPE_CHECKING:
    from steplab.workloads.base import Workload

#: the members a workload class must have (the abstract ones of :class:`Workload`)
CONTRACT: tuple[str, ...] = ("init_model", "batches", "loss", "evaluate", "default_target",
                             "default_budget_steps", "batch_size")
HINT = "see docs/tutorials/workload.md"
_FILE_REF = re.compile(r"^(?P<path>.+?\.py):(?P<rest>.*)$", re.S)


@dataclasses.dataclass(frozen=True)
class WorkloadRef:
    """A parsed reference: ``kind`` ``"file"`` (``location`` an absolute path) or
    ``"module"`` (a dotted module name), the class name and the variant if one was given."""

    kind: Literal["file", "module"]
    location: str
    class_name: str
    variant: str | None = None

    @property
    def name(self) -> str:
        """The stored workload name: ``location:Class`` (the variant is stored apart)."""
        return f"{self.location}:{self.class_name}"

    def __str__(self) -> str:
        return self.name if self.variant is None else f"{self.name}:{self.variant}"


@dataclasses.dataclass(frozen=True)
class LoadedClass:
    """A loaded workload class, its reference and the SHA-256 of the source file that
    defined it (``None`` for a module without a ``.py`` file)."""

    ref: WorkloadRef
    cls: type[Workload]
    sha256: str | None
    source: str | None


def is_reference(text: object) -> bool:
    """Whether ``text`` is a reference rather than a built-in ``name[:variant]``: the part
    before the first ``:`` holds a ``/``, a ``\\`` or a ``.``."""
    if not isinstance(text, str):
        return False
    head = text.split(":", 1)[0]
    return any(c in head for c in "/\\.") or _FILE_REF.match(text) is not None


def parse(text: str, base: str | os.PathLike[str] | None = None) -> WorkloadRef:
    """``path/to/file.py:Class[:variant]`` or ``package.module:Class[:variant]`` as a
    :class:`WorkloadRef`; a relative path is resolved against ``base`` (default: the
    current directory). A malformed reference raises one ``WorkloadError`` line."""
    if not is_reference(text):
        raise WorkloadError(f"{text!r} is not a workload reference; write path/to/file.py:Class or "
                            "package.module:Class (built-in names: steplab workloads list)")
    m = _FILE_REF.match(text)
    if m is not None:
        kind: Literal["file", "module"] = "file"
        location, rest = m["path"], m["rest"].split(":")
    else:
        head, *rest = text.split(":")
        kind, location = ("file" if any(c in head for c in "/\\") else "module"), head
        if not rest:
            raise WorkloadError(f"workload reference {text!r} names no class; write {head + ':ClassName'!r}")
        if kind == "file":
            raise WorkloadError(f"workload reference {text!r}: {head!r} is not a .py file; "
                                "write path/to/file.py:Class or package.module:Class")
        if not all(part.isidentifier() for part in head.split(".")):
            raise WorkloadError(f"workload reference {text!r}: {head!r} is not a dotted module name; "
                                "write package.module:Class or path/to/file.py:Class")
    if not rest or not rest[0]:
        raise WorkloadError(f"workload reference {text!r} names no class; write {location + ':ClassName'!r}")
    if len(rest) > 2:
        raise WorkloadError(f"workload reference {text!r} has too many ':'; write {location + ':Class'!r} or "
                            f"{location + ':Class:variant'!r}")
    class_name, variant = rest[0], (rest[1] if len(rest) == 2 else None)
    if not class_name.isidentifier():
        raise WorkloadError(f"workload reference {text!r}: {class_name!r} is not a class name")
    if variant == "":
        raise WorkloadError(f"workload reference {text!r} has an empty variant; drop the last ':'")
    if kind == "file":
        path = Path(location).expanduser()
        location = str((Path(base) if base is not None else Path.cwd()).joinpath(path).resolve())
    return WorkloadRef(kind, location, class_name, variant)


def split(text: str, base: str | os.PathLike[str] | None = None) -> tuple[str, str | None]:
    """``(stored name, variant or None)`` of a built-in name or a reference, the one split
    of ``"name:variant"`` every caller shares (a reference's path made absolute)."""
    if is_reference(text):
        ref = parse(text, base)
        return ref.name, ref.variant
    name, sep, variant = text.partition(":")
    return name, (variant if sep else None)


# ----------------------------------------------------------------------------- loading
class _HashedSourceLoader(importlib.machinery.SourceFileLoader):
    """Imports a file from the bytes already read (and hashed), not from a second read."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_data(self, path: str) -> bytes:
        if path == self.path:
            return self._source
        raise OSError(f"no cached bytecode for {path}")  # always compile the source read above


_FILES: dict[str, tuple[ModuleType, str]] = {}
_MODULES: dict[str, str | None] = {}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _where_raised(e: BaseException, path: str) -> str:
    """``" at line N"`` of the deepest frame of ``e`` in the file ``path``, else ``""``."""
    if isinstance(e, SyntaxError) and e.filename == path and e.lineno:
        return f" at line {e.lineno}"
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
    return f" at line {lines[-1]}" if lines and lines[-1] else ""


def _import_file(ref: WorkloadRef) -> tuple[ModuleType, str]:
    """The module of the file ``ref.location`` (imported once per process) and its SHA-256."""
    if ref.location in _FILES:
        return _FILES[ref.location]
    try:
        source = Path(ref.location).read_bytes()
    except FileNotFoundError:
        raise WorkloadError(f"workload file {ref.location} not found; fix the path (a relative one starts "
                            "at the current directory)") from None
    except OSError as e:
        raise WorkloadError(f"workload file {ref.location} cannot be read ({e.strerror or e}); fix the path") from None
    sha = hashlib.sha256(source).hexdigest()
    # one name per file and version; registered so that dataclasses, pickle and
    # typing find the module as they would an imported one
    tag = hashlib.sha256(ref.location.encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", Path(ref.location).stem)
    module_name = f"steplab_user_workload_{stem}_{tag}_{sha[:12]}"
    loader = _HashedSourceLoader(module_name, ref.location, source)
    spec = importlib.util.spec_from_file_location(module_name, ref.location, loader=loader)
    if spec is None:  # pragma: no cover (a .py path always has a spec)
        raise WorkloadError(f"workload file {ref.location} cannot be imported; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)  # an import, of the very bytes that were hashed
    except (Exception, SystemExit) as e:
        del sys.modules[module_name]
        raise WorkloadError(f"importing workload file {ref.location} raised {_one_line(e)}"
                            f"{_where_raised(e, ref.location)}; fix the file") from None
    _FILES[ref.location] = module, sha
    return module, sha


def _import_module(ref: WorkloadRef) -> tuple[ModuleType, str | None]:
    """The module ``ref.location`` and the SHA-256 of its ``.py`` file (``None`` without one)."""
    name = ref.location
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise WorkloadError(f"workload module {name!r} not found on sys.path; install it, add its folder "
                                "to PYTHONPATH, or name the file: path/to/file.py:Class") from None
        raise WorkloadError(f"importing workload module {name!r} raised {_one_line(e)}; fix the module") from None
    except (Exception, SystemExit) as e:
        raise WorkloadError(f"importing workload module {name!r} raised {_one_line(e)}; fix the module") from None
    if name not in _MODULES:
        file = getattr(module, "__file__", None)
        try:
            digest = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file and file.endswith(".py") else None
        except OSError:
            digest = None
        _MODULES[name] = digest
    return module, _MODULES[name]


def _classes_of(module: ModuleType) -> list[str]:
    """The names of the classes ``module`` defines, the workload classes among them first."""
    from steplab.workloads.base import Workload

    own = {k: v for k, v in vars(module).items()
           if isinstance(v, type) and not k.startswith("_") and v.__module__ == module.__name__}
    workloads = [k for k, v in own.items() if issubclass(v, Workload)]
    return workloads + [k for k in own if k not in workloads]


def load(ref: WorkloadRef) -> LoadedClass:
    """Import ``ref``'s file or module and check that its class keeps the workload
    contract: a subclass of :class:`~steplab.workloads.base.Workload` with every abstract
    member implemented. Every failure is one ``WorkloadError`` line naming what is wrong."""
    from steplab.workloads.base import Workload

    module, sha = _import_file(ref) if ref.kind == "file" else _import_module(ref)
    where = f"workload file {ref.location}" if ref.kind == "file" else f"workload module {ref.location!r}"
    obj = getattr(module, ref.class_name, None)
    if obj is None:
        classes = _classes_of(module)
        have = f"its classes: {', '.join(classes)}" if classes else "it defines no class"
        raise WorkloadError(f"{where} has no class {ref.class_name!r}; {have}")
    if not isinstance(obj, type):
        raise WorkloadError(f"{ref.name} is a {type(obj).__name__}, not a class; name a Workload subclass")
    if not issubclass(obj, Workload):
        missing = [m for m in CONTRACT if not hasattr(obj, m)]
        lacks = f" (it lacks {', '.join(missing)})" if missing else ""
        raise WorkloadError(f"{ref.name} is not a steplab Workload{lacks}: subclass steplab.workloads.Workload, "
                            f"or wrap a model and datasets with steplab.workloads.TorchWorkload; {HINT}")
    abstract = sorted(getattr(obj, "__abstractmethods__", ()))
    if abstract:
        raise WorkloadError(f"{ref.name} does not implement {', '.join(abstract)} of the Workload contract; {HINT}")
    file = ref.location if ref.kind == "file" else getattr(module, "__file__", None)
    return LoadedClass(ref, obj, sha, file)


def _check_instance(wl: Workload, ref: WorkloadRef) -> None:
    """The members of the contract that only an instance can show: budget, batch and target."""
    from steplab.workloads.target import Target

    def read(member: str) -> Any:
        try:
            return getattr(wl, member)
        except WorkloadError:
            raise
        except Exception as e:
            raise WorkloadError(f"{ref.name}.{member} raised {_one_line(e)}; {HINT}") from None

    for member in ("default_budget_steps", "batch_size"):
        v = read(member)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise WorkloadError(f"{ref.name}.{member} must be an integer >= 1, got {v!r}; {HINT}")
    t = read("default_target")
    if not isinstance(t, Target) or t.mode not in ("max", "min") or not isinstance(t.metric, str):
        raise WorkloadError(f"{ref.name}.default_target must be a steplab Target(metric, value, mode), "
                            f"got {t!r}; {HINT}")


def build(text: str, variant: str | None = None, **overrides: Any) -> Workload:
    """The workload instance of reference ``text`` (variant from the reference unless
    ``variant`` is given; ``budget_steps``/``target`` overrides as for built-ins), its
    ``name`` set to the stored reference and ``source_sha256`` to its source's hash."""
    ref = parse(text)
    if variant is not None and ref.variant is not None and variant != ref.variant:
        raise WorkloadError(f"workload reference {text!r} names variant {ref.variant!r} but variant "
                            f"{variant!r} was asked for; give it once")
    variant = variant or ref.variant or "base"
    loaded = load(ref)
    variants = getattr(loaded.cls, "variants", {"base": ""})
    if not isinstance(variants, dict) or variant not in variants:
        known = ", ".join(sorted(variants)) if isinstance(variants, dict) else "none (variants is not a dict)"
        raise WorkloadError(f"unknown variant {variant!r} of workload {ref.name}; known: {known}")
    try:
        wl = loaded.cls(variant, **overrides)
    except WorkloadError:
        raise
    except Exception as e:
        raise WorkloadError(f"building {ref.name} raised {_one_line(e)}; its __init__ must accept "
                            f"(variant, *, budget_steps=None, target=None) as Workload's does") from None
    _check_instance(wl, ref)
    wl.name = ref.name
    wl.reference = ref.name
    wl.source_sha256 = loaded.sha256
    return wl


def source_sha256(name: str) -> str | None:
    """The SHA-256 of the source of the stored workload ``name`` as this process sees it
    (``None`` for a built-in, or a module without a ``.py`` file)."""
    if not is_reference(name):
        return None
    return load(parse(name)).sha256


def forget() -> None:
    """Drop this process's imported workload files, so the next load reads them again
    (tests that rewrite a file; a running study never needs it)."""
    for module, _ in _FILES.values():
        sys.modules.pop(module.__name__, None)
    _FILES.clear()
    _MODULES.clear()
