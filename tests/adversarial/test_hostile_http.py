"""Hostile HTTP against a real server process: slow headers and slow bodies are cut, sessions are bounded."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from attack_helpers import rss_kib
from conftest import server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "0"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def open_slow(url: str, body: bool) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    if body:
        sock.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{".encode())
    else:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Slow: ".encode())
    sock.setblocking(False)
    return sock


def closed(sock: socket.socket) -> bool:
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or b"HTTP/1.1" in data and closed_after(sock)


def closed_after(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


async def test_slow_headers_and_bodies_are_cut(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_READ_TIMEOUT="1")
    with http_server("streamable-http", env) as sp:
        socks = [open_slow(sp.url, body=n % 4 == 0) for n in range(200)]
        try:
            with anyio.fail_after(30):
                while True:
                    for s in socks:  # keep trickling: each byte resets nothing
                        try:
                            s.send(b"a")
                        except OSError:
                            pass
                    open_now = [s for s in socks if not closed(s)]
                    if not open_now:
                        break
                    await anyio.sleep(0.2)
            # The server still serves everyone else.
            assert httpx.get(f"{sp.base}/healthz", timeout=5).status_code == 200
        finally:
            for s in socks:
                s.close()


def http_get(sock: socket.socket, netloc: str) -> bytes:
    """One keep-alive GET /healthz on a blocking socket; returns the raw response (headers and body)."""
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {netloc}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


async def test_an_idle_kept_alive_connection_outlives_the_read_deadline(
        emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    """The read deadline times a request from its first byte, not the idle time before it: a client that
    reuses its connection after a pause (httpx keeps one 5 s) must not find it closed under its request."""
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_READ_TIMEOUT="1")
    with http_server("streamable-http", env) as sp:
        parts = urlsplit(sp.url)
        netloc = parts.netloc
        idle = socket.create_connection((parts.hostname, parts.port), timeout=10)
        slow = None
        try:
            assert http_get(idle, netloc).startswith(b"HTTP/1.1 200")
            slow = open_slow(sp.url, body=False)  # its deadline starts after the idle one's last answer
            with anyio.fail_after(30):
                while not closed(slow):
                    await anyio.sleep(0.05)
            # A full read deadline has passed since the idle connection's answer: it still serves.
            assert http_get(idle, netloc).startswith(b"HTTP/1.1 200")
        finally:
            idle.close()
            if slow is not None:
                slow.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_never_closed_sessions_are_bounded(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_MAX_SESSIONS="200")
    with http_server("streamable-http", env) as sp:
        statuses: dict[int, int] = {}
        async with httpx.AsyncClient(timeout=30) as http:
            async def burst(n: int) -> None:
                limit = anyio.Semaphore(32)

                async def one() -> None:
                    async with limit:
                        r = await http.post(sp.url, json=INIT, headers=HEADERS)
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

                async with anyio.create_task_group() as tg:
                    for _ in range(n):
                        tg.start_soon(one)

            with anyio.fail_after(120):
                await burst(250)  # fills the table
                before = rss_kib(sp.proc.pid)
                await burst(2000)
                after = rss_kib(sp.proc.pid)
        print(f"sessions: RSS {before} KiB -> {after} KiB; {statuses}")
        assert statuses.get(200, 0) == 200 and statuses.get(503, 0) == 2050
        assert after - before < 16 * 1024


