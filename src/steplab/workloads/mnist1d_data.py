"""MNIST-1D data (Greydanus 2020, "Scaling down deep learning", arXiv 2011.14439), generated
on this machine by the ``mnist1d`` package's ``make_dataset``: nothing is downloaded.

``make_dataset`` draws ``num_samples // 10`` signals per digit from ten hand-made 12-point
templates (pad, dilate, scale, translate, correlated and i.i.d. noise, shear, resample to 40
points), shuffles them once, standardises the whole set (train and test together) to mean 0,
std 1, and splits it 80/20 by position. Its defaults (:data:`GENERATOR_ARGS`, restated from
``mnist1d.data.get_dataset_args``) give 4,000 training and 1,000 test signals.

Three rules keep it safe inside steplab:

* only ``mnist1d.data.make_dataset`` is called, never ``get_dataset`` (which downloads a
  pickle by default and writes it to the current directory);
* ``make_dataset`` reseeds the global ``random`` and ``np.random`` generators
  (``mnist1d.utils.set_seed``); :func:`generate` saves and restores both, so a caller's
  random streams are the same with or without it;
* the package is imported lazily (``import mnist1d`` pulls in ``requests`` and
  ``matplotlib.pyplot``), and a set already in the disk cache does not import it at all.

Generated arrays are kept per process (:func:`dataset`) and on disk under
:func:`cache_dir` (``~/.cache/steplab/mnist1d``, or ``$STEPLAB_CACHE/mnist1d``), written
atomically (a temporary file, then ``os.replace``), so a 50,000-signal set (~10-20 s to
generate) is made once per machine.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CACHE_ENV = "STEPLAB_CACHE"
#: the generator's defaults (``mnist1d.data.get_dataset_args``, minus its download ``url``):
#: 5,000 signals split 4,000 / 1,000; the tests check this against the package
GENERATOR_ARGS: dict[str, object] = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": [36, 60],
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}
ARRAYS = ("x", "y", "x_test", "y_test")
_MEMORY: dict[tuple[int, int], dict[str, np.ndarray]] = {}


def cache_dir() -> Path:
    """steplab's cache folder: ``$STEPLAB_CACHE`` when set, else ``~/.cache/steplab``."""
    root = os.environ.get(CACHE_ENV, "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "steplab"


@contextlib.contextmanager
def global_rng_preserved() -> Iterator[None]:
    """Restore the global ``random`` and ``np.random`` states on exit (``make_dataset`` seeds
    both with ``args.seed``)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def generate(num_samples: int = 5000, seed: int = 42) -> dict[str, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` with the default arguments but ``num_samples`` and
    ``seed``: ``x`` (float32, ``(0.8 n, 40)``), ``y`` (int64), ``x_test``, ``y_test``. No
    cache, no network; the global random states are left as they were."""
    from steplab.errors import WorkloadError

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 10:
        raise WorkloadError(f"MNIST-1D num_samples must be an integer >= 10, got {num_samples!r}")
    try:
        from mnist1d.data import make_dataset
    except ImportError as err:
        raise WorkloadError(
            f"the MNIST-1D workload needs the mnist1d package ({err}); pip install 'mnist1d>=0.0.2'"
        ) from err
    args = SimpleNamespace(**{**GENERATOR_ARGS, "num_samples": num_samples, "seed": seed})
    with global_rng_preserved():
        data = make_dataset(args)
    return {
        "x": np.asarray(data["x"], dtype=np.float32),
        "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float32),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }


def _cache_file(num_samples: int, seed: int) -> Path | None:
    """Where this set is cached; None without the package (:func:`generate` then says so).
    The package version is in the name: another generator makes another file."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("mnist1d")
    except PackageNotFoundError:
        return None
    return cache_dir() / "mnist1d" / f"n{num_samples}-seed{seed}-mnist1d{release}.npz"


def _read(path: Path, num_samples: int) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path``, or None when absent or not a complete set of this size."""
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in ARRAYS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    n = len(data["y"]) + len(data["y_test"])
    length = GENERATOR_ARGS["final_seq_length"]
    ok = (n == num_samples - num_samples % 10 and data["x"].shape == (len(data["y"]), length)
          and data["x_test"].shape == (len(data["y_test"]), length))
    return data if ok else None


def _write(path: Path, data: dict[str, np.ndarray]) -> None:
    """Write atomically (a temporary file in the same folder, then ``os.replace``); a cache
    that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **data)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is readable like any file
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass


def dataset(num_samples: int = 5000, seed: int = 42) -> dict[str, np.ndarray]:
    """:func:`generate`'s arrays, made once per process and per machine (the disk cache)."""
    key = (num_samples, seed)
    if key not in _MEMORY:
        path = _cache_file(num_samples, seed)
        data = _read(path, num_samples) if path is not None else None
        if data is None:
            data = generate(num_samples, seed)
            if path is not None:
                _write(path, data)
        _MEMORY[key] = data
    return _MEMORY[key]
