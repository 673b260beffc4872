"""mcp/resources: reading clipia://requests/{id} says why it failed: an unknown request is not found, an
unreachable API is an error with its code (not "unknown request"), and a read never outlasts the deadline."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from conftest import in_memory, server_env
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio
UNKNOWN = "clipia://requests/764cabcf-b745-4b3e-ae38-1200304cf45b"


async def test_an_unknown_request_is_not_found(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    async with Client(in_memory(server_env(emu, live_key, tmp_path))) as client:
        with anyio.fail_after(30), pytest.raises(MCPError) as info:
            await client.read_resource(UNKNOWN)
    assert info.value.error.code != INTERNAL_ERROR and "Unknown request" in info.value.error.message


async def test_an_unreachable_api_is_an_error_with_its_code(emu: EmulatorServer, live_key: Key,
                                                            tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_BASE_URL="http://127.0.0.1:9")  # nothing listens
    async with Client(in_memory(env)) as client:
        with anyio.fail_after(30), pytest.raises(MCPError) as info:
            await client.read_resource(UNKNOWN)
    assert info.value.error.code == INTERNAL_ERROR
    assert info.value.error.message.startswith("Error network_error:"), info.value.error.message
