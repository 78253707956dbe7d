"""steplab: benchmark, refine and predict training algorithms by time-to-result."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("steplab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
