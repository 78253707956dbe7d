"""Shared fixtures: a throwaway PostgreSQL 15 server for the store suite, and one
Hypothesis profile: every property test runs derandomized (a fixed seed, no example
database), so CI sees the same examples on every run and a red CI is never luck.

The server is started once per test session in a temp directory, listening on 127.0.0.1 on
a free port (``initdb`` refuses root, so as root it runs under ``runuser -u postgres``),
and stopped and removed at the end. Each test gets a fresh database on it. Where
PostgreSQL or its Python driver is absent the PostgreSQL tests skip with the reason; set
``STEPLAB_REQUIRE_POSTGRES=1`` (``.ci/run`` does) to make that a failure instead.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("steplab", derandomize=True, database=None)
settings.load_profile("steplab")

PG_BIN = Path(os.environ.get("STEPLAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
_counter = itertools.count()


def _missing() -> str | None:
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL binaries not found in {PG_BIN} (set STEPLAB_PG_BIN)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install 'steplab[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


class PostgresServer:
    """A running throwaway cluster; :meth:`new_database` gives a fresh database URL."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="steplab-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = _free_port()
        _as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                   str(self.root / "log"), "-w", "start"])
        self.base = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"{self.base}/{name}"

    def stop(self) -> None:
        try:
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread during the test (fast and deterministic on a shared 2-core machine);
    test modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("STEPLAB_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here: {reason}")
        pytest.skip(reason)
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A URL of a fresh, empty PostgreSQL database."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite-file", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend that several processes can share."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'steplab.db'}"
