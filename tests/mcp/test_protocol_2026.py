"""Logging, completions, prompts and resources/list paging at protocol 2026-07-28 (mcp.Client over stdio).

The TypeScript client (tests/e2e/test_ts_client.py) speaks 2025-11-25; this covers the modern era:
no ``logging/setLevel`` (-32601), logs only for a request that opted in with
``_meta["io.modelcontextprotocol/logLevel"]``, and ``listChanged: false`` for tools and prompts.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from conftest import server_command, server_env
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.mcp import resources
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio


def _params(env: dict[str, str]) -> StdioServerParameters:
    cmd = server_command()
    return StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)


async def test_modern_logging_is_a_per_request_opt_in(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    got: list[Any] = []

    async def on_log(params: Any) -> None:
        got.append(params)

    env = server_env(emu, live_key, tmp_path)
    missing = str(uuid.uuid4())
    async with Client(_params(env), logging_callback=on_log) as quiet:
        assert quiet.protocol_version == "2026-07-28"
        caps = quiet.server_capabilities
        assert caps is not None and caps.tools is not None and caps.tools.list_changed is False
        assert caps.prompts is not None and caps.prompts.list_changed is False
        with pytest.raises(MCPError) as err:
            await quiet.set_logging_level("info")  # removed at 2026-07-28
        assert err.value.error.code == -32601
        await quiet.call_tool("get_status", {"request_id": missing})
    assert got == []  # no opt-in, no logs
    async with Client(_params(env), logging_callback=on_log, log_level="info") as loud:
        res = await loud.call_tool("get_status", {"request_id": missing})
        assert res.is_error
        with anyio.fail_after(5):
            while not got:
                await anyio.sleep(0.01)
    assert any(missing in str(p.data) and p.level == "info" for p in got)
    assert all(live_key.value not in str(p.data) for p in got)


async def test_modern_completions_prompts_and_cursors(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    other = emu.new_key()
    async with Client(_params(server_env(emu, other, tmp_path / "o"))) as someone_else:
        theirs = (await someone_else.call_tool("submit_generation", {
            "model": "nano-banana-2", "input": {"prompt": "not yours"}})).structured_content
    assert theirs is not None
    async with Client(_params(server_env(emu, live_key, tmp_path))) as client:
        ids = []
        for i in range(3):
            sub = (await client.call_tool("submit_generation", {
                "model": "nano-banana-2", "input": {"prompt": f"n{i}"}})).structured_content
            assert sub is not None
            ids.append(sub["request_id"])
        ref = ResourceTemplateReference(type="ref/resource", uri=resources.TEMPLATE)
        done = await client.complete(ref, {"name": "request_id", "value": ""})
        assert sorted(done.completion.values) == sorted(ids)  # the caller's ids only
        assert theirs["request_id"] not in done.completion.values
        slugs = await client.complete(PromptReference(type="ref/prompt", name="create_media"),
                                      {"name": "model", "value": "seedance"})
        assert slugs.completion.values and all(s.startswith("seedance") for s in slugs.completion.values)
        with pytest.raises(MCPError) as err:
            await client.get_prompt("no_such_prompt")
        assert err.value.error.code == -32602
        with pytest.raises(MCPError) as err:
            await client.list_resources(cursor="bm9wZQ")
        assert err.value.error.code == -32602
        assert (await client.list_resources()).next_cursor is None


async def test_resources_list_pages_follow_the_cursor() -> None:
    records = [RequestRecord(request_id=str(uuid.uuid4()), owner="o", status="IN_QUEUE", created_at=0.0,
                             updated_at=0.0) for _ in range(5)]

    class Service:
        async def list_requests(self, caller: Any, status: Any, limit: int) -> list[RequestRecord]:
            return records[:limit]

    rt: Any = SimpleNamespace(service=Service())
    seen, cursor = [], None
    while True:
        page, cursor = await resources.list_request_resources(
            rt, None, after=resources.decode_cursor(cursor) if cursor else None, page_size=2)  # type: ignore[arg-type]
        seen += [str(r.uri) for r in page]
        if cursor is None:
            break
    assert seen == [f"clipia://requests/{r.request_id}" for r in records]
    with pytest.raises(MCPError):
        resources.decode_cursor("garbage")
    with pytest.raises(MCPError):  # a well-formed cursor naming no listed request
        await resources.list_request_resources(rt, None, after=str(uuid.uuid4()))  # type: ignore[arg-type]
