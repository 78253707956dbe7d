"""The package people install: ``python -m build`` gives an sdist and a wheel that carry what
steplab needs, and the wheel installs into a fresh virtual environment and runs.

The fresh environment gets steplab from the wheel only; its dependencies (torch 2.13 CPU,
numpy, ...) come from this interpreter's site-packages through a ``.pth`` line (installing
torch again would take minutes). The test checks that ``steplab`` itself is imported from
the fresh environment, not from this source tree.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from steplab.version import __version__

ROOT = Path(__file__).resolve().parent.parent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An sdist and a wheel built from this tree (no isolation: offline, the installed
    setuptools builds them)."""
    pytest.importorskip("build", reason="the dev extra's `build` is not installed")
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = out.glob("steplab-*.whl")
    (sdist,) = out.glob("steplab-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_the_version_lives_in_pyproject_only():
    assert __version__ == PYPROJECT_VERSION
    for path in (ROOT / "src" / "steplab").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"__version__\s*=\s*['\"]\d", text), f"a second version in {path}"
        assert PYPROJECT_VERSION not in text, f"the version {PYPROJECT_VERSION} is written in {path}"


def test_wheel_and_sdist_carry_what_steplab_needs(dist):
    wheel = dist["wheel"]
    assert wheel.name == f"steplab-{PYPROJECT_VERSION}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "steplab/py.typed" in names
    sources = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src" / "steplab").rglob("*.py")}
    assert sources <= names, f"missing from the wheel: {sorted(sources - names)[:5]}"
    entry = zipfile.ZipFile(wheel).read(f"steplab-{PYPROJECT_VERSION}.dist-info/entry_points.txt").decode()
    assert "steplab = steplab.cli:app" in entry
    members = {m.split("/", 1)[1] for m in tarfile.open(dist["sdist"]).getnames() if "/" in m}
    for needed in ("pyproject.toml", "README.md", "CHANGELOG.md", "src/steplab/py.typed",
                   "examples/bench-quick.toml", "src/steplab/cli/__init__.py"):
        assert needed in members, f"{needed} is not in the sdist"


@pytest.mark.slow
def test_wheel_installs_and_runs_in_a_fresh_venv(dist, tmp_path):
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    py = fresh / "bin" / "python"
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        "--no-index", str(dist["wheel"])], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies only: a plain path line, so this tree's editable steplab (a .pth
    # finder there) is not activated in the fresh environment
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = subprocess.run([str(py), "-c", "import steplab, torch; print(steplab.__file__); print(torch.__version__)"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, torch_version = where.stdout.split()
    assert Path(module_file).is_relative_to(fresh), module_file
    assert torch_version.startswith("2.13.0")

    steplab = fresh / "bin" / "steplab"
    v = subprocess.run([str(steplab), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert v.returncode == 0 and v.stdout.split() == ["steplab", PYPROJECT_VERSION], v.stdout + v.stderr
    env = {k: v for k, v in os.environ.items() if k != "STEPLAB_BUDGET_SCALE"}
    run = subprocess.run([str(steplab), "run", "logreg", "--steps", "20", "--db", "tmp.db"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    with sqlite3.connect(tmp_path / "tmp.db") as conn:
        rows = conn.execute("SELECT workload, status, steps, budget_steps FROM trials").fetchall()
    assert rows == [("logreg", "budget", 20, 20)], rows
