"""Property-based: malformed and hostile arguments to every tool, over the real client.

No crash, a clear error, and no upstream call for arguments rejected locally.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import pytest
from conftest import error_of, start_emulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError

from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer

TOOLS = ["submit_generation", "get_status", "get_result", "wait_for_result", "list_models", "get_model",
         "estimate_cost", "get_balance", "list_requests", "generate", "delete_clip"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=300))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                                st.dictionaries(st.text(max_size=20), kids,
                                                                                max_size=5)), max_leaves=30)
hostile_strings = st.one_of(
    st.text(max_size=500),
    st.sampled_from(["../../v1/account", "nano-banana-2/../../x", "%2e%2e%2f", "a" * 10_000, "\x00", "' OR 1=1 --",
                     "<script>", "clipia://requests/../../etc/passwd", "NANO-BANANA-2", " ", "\u202e",
                     str(uuid.uuid4()).upper() + "x", "file:///etc/passwd", "javascript:alert(1)"]),
)
arguments = st.dictionaries(
    st.sampled_from(["model", "input", "request_id", "timeout_s", "include_preview", "webhook_url",
                     "idempotency_key", "type", "search", "status", "limit", "options", "confirm_cost", "junk"]),
    st.one_of(hostile_strings, json_values), max_size=6)


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[Any, Any, EmulatorServer]]:
    emulator_server = start_emulator()  # its own: the tests compare its call counts
    key = emulator_server.new_key(balance=100)
    s = Settings.from_env({"CLIPIA_API_KEY": key.value, "CLIPIA_BASE_URL": emulator_server.base_url,
                           "CLIPIA_MCP_JOURNAL": ":memory:", "CLIPIA_MCP_WAIT_MAX": "0.2",
                           "CLIPIA_MCP_CONFIRM_ABOVE": "off"})
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(Client(build_server(s))) as client:
        yield portal, client, emulator_server
    emulator_server.stop_thread()


def call(portal: Any, client: Any, name: str, args: dict[str, Any]) -> Any:
    try:
        return portal.call(lambda: client.call_tool(name, args))
    except MCPError as exc:  # a protocol-level refusal is an acceptable, clear answer
        assert exc.error.code in (-32602, -32600), exc
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(TOOLS), args=arguments)
def test_hostile_arguments_never_crash(harness: Any, name: str, args: dict[str, Any]) -> None:
    portal, client, _ = harness
    result = call(portal, client, name, args)
    if result is None:
        return
    assert result.content, result
    if result.is_error:
        text = result.content[0].text
        assert text and "Error executing tool" not in text.replace(f"Error executing tool {name}: ", ""), text
        assert "Traceback" not in text


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["get_status", "get_result", "wait_for_result", "delete_clip"]),
       rid=hostile_strings.filter(lambda s: _not_uuid(s)))
def test_invalid_request_ids_make_no_upstream_call(harness: Any, name: str, rid: str) -> None:
    portal, client, emu = harness
    before = dict(emu.emulator.calls)
    result = call(portal, client, name, {"request_id": rid})
    assert emu.emulator.calls == before
    if result is not None:
        assert error_of(result)["code"] == "invalid_input"
        assert "request_id" in result.content[0].text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=hostile_strings.filter(lambda s: not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,127}", s.strip())
                                    and s.strip() != "reka/clips"))
def test_invalid_model_slugs_never_reach_a_url(harness: Any, model: str) -> None:
    portal, client, emu = harness
    before = dict(emu.emulator.calls)
    result = call(portal, client, "submit_generation", {"model": model, "input": {"prompt": "x"}})
    assert emu.emulator.calls == before
    if result is not None:
        assert result.is_error


def _not_uuid(s: str) -> bool:
    try:
        uuid.UUID(s.strip())
    except (ValueError, AttributeError):
        return True
    return False
