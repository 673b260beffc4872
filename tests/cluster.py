"""N clipia-mcp replicas on one PostgreSQL store behind a real nginx (rendered from examples/hosted/nginx.conf).

Without nginx the fixtures skip, unless ``CLIPIA_REQUIRE_NGINX=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pgserver import free_port
from procs import ServerProcess, http_server, stop

TEMPLATE = Path(__file__).resolve().parent.parent / "examples" / "hosted" / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                           if os.path.exists(p)), None)
    if found is None:
        if os.environ.get("CLIPIA_REQUIRE_NGINX") == "1":
            pytest.fail("CLIPIA_REQUIRE_NGINX=1 but nginx is not installed: apt-get install -y nginx")
        pytest.skip("nginx is not installed: apt-get install -y nginx")
    return found


def render_nginx(upstreams: Sequence[str], port: int, *, sticky: bool = True) -> str:
    """The shipped config with our replicas (``host:port``) and a plain-HTTP loopback listener."""
    text = TEMPLATE.read_text()
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
    text, n = re.subn(r"# replicas:begin\n.*?# replicas:end", servers, text, flags=re.S)
    assert n == 1, "examples/hosted/nginx.conf lost its '# replicas:begin/end' markers"
    text, n = re.subn(r"# listen:begin\n.*?# listen:end", f"listen 127.0.0.1:{port};", text, flags=re.S)
    assert n == 1, "examples/hosted/nginx.conf lost its '# listen:begin/end' markers"
    if not sticky:
        text, n = re.subn(r"\n\s*hash \$clipia_route consistent;[^\n]*", "", text)
        assert n == 1
    return text


@contextmanager
def nginx(upstreams: Sequence[str], root: Path, *, sticky: bool = True) -> Iterator[str]:
    """Run nginx (prefix ``root``) in front of ``upstreams``; yields its base URL."""
    binary = nginx_binary()
    for d in ("logs", "tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / d, 0o777)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(render_nginx(upstreams, port, sticky=sticky))
    cmd = [binary, "-p", str(root), "-c", str(conf), "-e", str(root / "logs" / "error.log"), "-g", "daemon off;"]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start: " + (root / "logs" / "error.log").read_text())
            time.sleep(0.05)
        yield base
    finally:
        stop(proc)


@dataclass
class Cluster:
    replicas: list[ServerProcess]
    base: str  # nginx

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def metric(self, replica: ServerProcess, name: str) -> float:
        """Sum of a metric's samples on one replica (its own /metrics, not through nginx)."""
        text = httpx.get(f"{replica.base}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def cluster(n: int, env: dict[str, str], dsn: str, root: Path, *, sticky: bool = True,
            first_port: int | None = None, extra: Sequence[str] = ()) -> Iterator[Cluster]:
    """``n`` replicas (``--store dsn``) behind nginx; replica 0 listens on ``first_port`` if given."""
    with ExitStack() as stack:
        replicas = []
        for i in range(n):
            args = ["--store", dsn, *extra]
            if i == 0 and first_port is not None:
                args += ["--port", str(first_port)]
            replicas.append(stack.enter_context(http_server("streamable-http", env, *args)))
        upstreams = [r.base.removeprefix("http://") for r in replicas]
        base = stack.enter_context(nginx(upstreams, root / "nginx", sticky=sticky))
        yield Cluster(replicas, base)
