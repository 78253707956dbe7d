"""The package layout keeps its promise (DESIGN.md, "Layers"): imports run only downward
through the layers, no module imports itself back through a circle, and no module grows
past ~450 lines. Read from the source with ``ast``, every import counted (also the ones
inside functions), so the picture cannot drift from the code."""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "steplab"

#: the layers from the ground up; a module may import only its own layer or lower ones
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "results", "version"),
    ("schedules",),
    ("curricula",),
    ("optim",),
    ("algorithms",),
    ("workloads",),
    ("monitors",),
    ("store",),
    ("analysis",),
    ("training",),
    ("studies",),
    ("report",),
    ("integrations",),
    ("cli",),
)
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_LINES = 450


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """The steplab modules that ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if full in modules else base)
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("steplab") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_every_module_belongs_to_a_layer():
    stray = sorted(m for m in _modules() if m != "steplab" and _rank(m) is None)
    assert not stray, f"modules outside every layer (add them to LAYERS or move them): {stray}"


def test_no_import_runs_upward():
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in _graph().items()
        for b in targets
        if a != "steplab" and _rank(b) is not None and _rank(b) > _rank(a)
    )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_circles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The walker itself: a planted circle and a planted upward import are found."""
    pkg = tmp_path / "steplab"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("from steplab.store import engine\n")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "engine.py").write_text("def f():\n    from steplab import errors\n")
    monkeypatch.setitem(globals(), "SRC", pkg)
    graph = _graph()
    assert graph["steplab.errors"] == {"steplab.store.engine"}
    assert graph["steplab.store.engine"] == {"steplab.errors"}
    with pytest.raises(AssertionError, match="up the layers"):
        test_no_import_runs_upward()
    with pytest.raises(AssertionError, match="circles"):
        test_no_import_circles()


def test_no_module_over_the_size_limit():
    big = sorted(
        (len(path.read_text().splitlines()), name)
        for name, path in _modules().items()
        if len(path.read_text().splitlines()) > MAX_LINES
    )
    assert not big, f"modules over {MAX_LINES} lines (split them by job): {big}"


#: modules allowed to call ``.backward()`` outside the loop, and why
BACKWARD_ELSEWHERE = {
    # the L-BFGS solve of the problem's optimum L* that sets logreg's target: a closed
    # problem solved once, not a training run
    "steplab.workloads.logreg",
}


def test_one_module_takes_optimizer_steps():
    """Only ``steplab.training.loop`` computes gradients for training: every other caller
    (benchmarks, AutoLRS, continual streams, the Ray Tune trainable) imports it."""
    offenders = []
    for name, path in _modules().items():
        if name in ("steplab.training.loop", *BACKWARD_ELSEWHERE):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward":
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, f"training steps outside steplab.training.loop: {offenders}"
    users = {m for m, targets in _graph().items() if "steplab.training.loop" in targets}
    for caller in ("steplab.studies.autolr.run", "steplab.studies.continual", "steplab.studies.tuning_ray"):
        assert caller in users, f"{caller} does not use the one loop"
