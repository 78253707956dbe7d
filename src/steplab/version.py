"""The steplab version. It is written in one place, ``pyproject.toml``'s ``[project]
version``: an installed steplab reads it from the package metadata, a source tree that is
not installed (``PYTHONPATH=src``) from that file."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _source_tree_version() -> str:
    """``[project] version`` of the ``pyproject.toml`` above ``src/steplab``, or
    ``"unknown"`` when there is none (a copied module)."""
    import re

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
    return "unknown"


try:
    __version__ = version("steplab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = _source_tree_version()
