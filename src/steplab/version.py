"""The installed steplab version, read from the package metadata (one place)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("steplab")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
