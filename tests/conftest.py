"""Shared fixtures and helpers.

* ``emulator_server`` / ``emu``: one emulator on a loopback port per session (per xdist worker), knobs reset
  after each test; fine for tests that only read their own key's requests.
* ``own_emu``: a fresh emulator for one test: use it when a test changes emulator-wide config
  (limits, catalogue behaviour) or counts upstream calls.
* ``stdio(env)``: parameters that spawn clipia-mcp over stdio, as a user runs it.
* ``in_memory(env)``: the same server built in this process (``mcp.Client(server)``), for tests where
  the transport is not the point.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import StdioServerParameters
from pgserver import pg_dsn, pg_server  # noqa: F401 - fixtures: one PostgreSQL server per test session

from clipia_mcp.sandbox import Emulator, EmulatorConfig, EmulatorServer
from clipia_mcp.sandbox.state import Clock, Key

# "60 s" of scripted render takes 0.3 s here.
TIME_SCALE = 0.005


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    # Tests poll far faster than a real client, so the per-key RPM limit is lifted unless a test lowers it.
    server = start_emulator()
    yield server
    server.stop_thread()


def start_emulator(*, frozen: bool = False, **config: Any) -> EmulatorServer:
    """A new emulator on its own loopback port, configured for tests (``config`` overrides).

    ``frozen=True``: emulated time stands still until the test calls ``emulator.clock.advance()``.
    """
    options: dict[str, Any] = {"time_scale": TIME_SCALE, "webhook_base_delay": 0.01, "rpm": 100_000, **config}
    return EmulatorServer(Emulator(EmulatorConfig(**options), clock=Clock(frozen=frozen))).start_in_thread()


@pytest.fixture
def own_emu() -> Iterator[EmulatorServer]:
    """A fresh emulator for this test only: its config, faults and call counts are the test's own."""
    server = start_emulator()
    yield server
    server.stop_thread()


@pytest.fixture
def frozen_emu() -> Iterator[EmulatorServer]:
    """A fresh emulator whose clock moves only when the test advances it (``emulator.clock.advance``)."""
    server = start_emulator(frozen=True, time_scale=1.0)
    yield server
    server.stop_thread()


@pytest.fixture
def emu(emulator_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The shared emulator with its knobs reset after each test."""
    em = emulator_server.emulator
    saved = dict(vars(em.config))
    yield emulator_server
    em.faults.clear()
    em.clock.offset = 0.0
    emulator_server.app.sender.faults.clear()
    for name, value in saved.items():
        setattr(em.config, name, value)


@pytest.fixture
def live_key(emu: EmulatorServer) -> Key:
    return emu.new_key(balance=1000)


@pytest.fixture
def no_leftover_log_forwarding() -> Iterator[None]:
    """build_server attaches the client log handler to the package logger; later tests expect none."""
    root = logging.getLogger("clipia_mcp")
    before = list(root.handlers)
    yield
    root.handlers[:] = before


def balance_of(emu: EmulatorServer, key: Key) -> int:
    emu.emulator.settle_all()
    return emu.emulator.accounts[key.account_id].balance


def server_env(emu: EmulatorServer, key: Key, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a spawned clipia-mcp pointed at the emulator, with fast polling."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "CLIPIA_API_KEY": key.value,
        "CLIPIA_BASE_URL": emu.base_url,
        "CLIPIA_MCP_JOURNAL": str(tmp_path / "journal.sqlite3"),
        "CLIPIA_MCP_POLL_MIN": "0.02",
        "CLIPIA_MCP_POLL_MAX": "0.2",
        "CLIPIA_MCP_POLL_BUDGET_RPM": "6000",
        "CLIPIA_MCP_HEARTBEAT": "0.2",
        "CLIPIA_MCP_RETRY_BASE": "0.01",
        "CLIPIA_MCP_RETRY_AFTER_CAP": "0.2",
        "PYTHONUNBUFFERED": "1",
        "CLIPIA_MCP_OUTPUT_DIR": "off",  # tests that save outputs turn it on (tests/engine/test_outputs.py)
    }
    env.update(extra)
    return env


def server_command() -> list[str]:
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).with_name("clipia-mcp")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "clipia_mcp"]


def stdio(env: dict[str, str]) -> StdioServerParameters:
    """Spawn clipia-mcp over stdio with ``env`` (for ``mcp.Client``)."""
    cmd = server_command()
    return StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)


def in_memory(env: dict[str, str], transport: str = "stdio") -> Any:
    """The server ``env`` describes, built in this process: ``Client(in_memory(env))`` connects without a spawn.

    ``transport``: whose defaults apply (as ``clipia-mcp --transport`` would fill them in).
    """
    from clipia_mcp.core.settings import Settings
    from clipia_mcp.mcp.server import build_server

    return build_server(Settings.from_env(env).for_transport(transport))


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that must know their URL up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def structured(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    data: dict[str, Any] = result.structured_content
    return data


def error_of(result: Any) -> dict[str, Any]:
    """The error object of an ``isError`` tool result (``_meta["io.clipia/error"]``; no structuredContent)."""
    assert result.is_error is True, result
    assert result.structured_content is None, result
    meta = result.meta or {}
    err: dict[str, Any] = meta["io.clipia/error"]
    assert result.content[0].text.startswith(f"Error {err['code']}: "), result.content[0].text
    return err
