"""A real PostgreSQL server for tests: the Debian package's initdb/pg_ctl on a temp dir and a free port.

``pg_server`` (session) starts one server; ``pg_dsn`` gives each test its own fresh database.
Without PostgreSQL the fixtures skip, unless ``CLIPIA_REQUIRE_PG=1`` (CI), where they fail.
As root the server runs as the ``postgres`` user (``runuser``); PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "pg-test-Secret-4f9c2"  # noqa: S105 - a throwaway test server's password


@dataclass
class PgServer:
    host: str
    port: int
    bindir: Path
    datadir: Path
    run_as: str | None
    opts: str = ""

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORD}@{self.host}:{self.port}/{dbname}"

    def ctl(self, *args: str) -> None:
        _run(self.run_as, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "30", *args])

    def start(self) -> None:
        self.ctl("start", "-o", self.opts, "-l", str(self.datadir.parent / "server.log"))

    def restart(self) -> None:
        self.ctl("stop", "-m", "fast")
        self.start()

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _missing(what: str) -> None:
    if os.environ.get("CLIPIA_REQUIRE_PG") == "1":
        pytest.fail(f"CLIPIA_REQUIRE_PG=1 but {what}")
    pytest.skip(what)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run(run_as: str | None, cmd: list[str]) -> None:
    full = ["runuser", "-u", run_as, "--", *cmd] if run_as else cmd
    res = subprocess.run(full, capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


def start_server(root: Path) -> PgServer:
    """initdb + pg_ctl start on ``root`` (a fresh directory); stop it with ``server.ctl('stop')``."""
    bindir = _bindir()
    if bindir is None:
        _missing("PostgreSQL (initdb/pg_ctl) is not installed: apt-get install -y postgresql")
    assert bindir is not None
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            shutil.chown(root, user=run_as)
        except LookupError:
            _missing("running as root and there is no 'postgres' user to run the server as")
    datadir, sockdir = root / "data", root / "sock"
    for d in (datadir, sockdir):
        d.mkdir()
        if run_as:
            shutil.chown(d, user=run_as)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if run_as:
        shutil.chown(pwfile, user=run_as)
    _run(run_as, [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"])
    port = free_port()
    opts = (f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")
    server = PgServer("127.0.0.1", port, bindir, datadir, run_as, opts)
    server.start()
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    root = Path(tempfile.mkdtemp(prefix="clipia-pg-"))
    os.chmod(root, 0o755)
    server = start_server(root)
    try:
        yield server
    finally:
        try:
            server.ctl("stop", "-m", "immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.new_database()
