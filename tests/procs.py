"""Spawning clipia-mcp HTTP servers on loopback for tests, with stderr captured."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conftest import server_command


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str = ""
    stderr: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]


@contextmanager
def http_server(transport: str, env: dict[str, str], *extra: str) -> Iterator[ServerProcess]:
    """Start ``clipia-mcp --transport <transport> --port 0`` and yield once it listens."""
    cmd = [*server_command(), "--transport", transport, "--port", "0", *extra]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    sp = ServerProcess(proc)
    found = threading.Event()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sp.stderr.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                sp.url = m.group(1)
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while not found.is_set():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + "".join(sp.stderr))
            found.wait(0.05)
        wait_healthy(sp.base, sp.stderr)
        try:
            yield sp
        except BaseException:
            # Shown with the failure: whether the server was still alive and what it last said.
            print(f"server exit code: {proc.poll()}; its last stderr lines:\n" + "".join(sp.stderr[-40:]))
            raise
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[Any]) -> None:
    """Terminate ``proc``, killing it if it has not exited within 10 s (bounded either way)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_healthy(base: str, log: list[str] | None = None, timeout: float = 30) -> None:
    """Block until ``{base}/healthz`` answers 200 (bounded)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server never became healthy:\n" + "".join(log or []))
