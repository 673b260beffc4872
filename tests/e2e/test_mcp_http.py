"""Streamable HTTP and SSE: clipia-mcp started on loopback, driven by the real mcp.Client."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from conftest import server_env, structured
from mcp import Client
from mcp.client.sse import sse_client
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio


async def _full_flow(client: Client) -> list[float]:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert {"submit_generation", "wait_for_result", "get_result"} <= tools
    sub = structured(await client.call_tool(
        "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "over http"}}))
    seen: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        seen.append(p)

    with anyio.fail_after(60):
        res = structured(await client.call_tool(
            "wait_for_result", {"request_id": sub["request_id"], "timeout_s": 45}, progress_callback=on_progress))
    assert res["status"] == "COMPLETED" and res["media"][0]["kind"] == "video"
    listed = [r.uri for r in (await client.list_resources()).resources]
    assert f"clipia://requests/{sub['request_id']}" in listed
    with anyio.fail_after(30):
        while not seen or seen[-1] != 100:
            await anyio.sleep(0.01)
    return seen


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_streamable_http_both_eras(own_emu: EmulatorServer, tmp_path: Path, mode: str) -> None:
    emu = own_emu  # changes emulator-wide config (time_scale)
    live_key = emu.new_key(balance=1000)
    emu.emulator.config.time_scale = 0.02
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        assert sp.url.endswith("/mcp")
        async with Client(sp.url, mode=mode) as client:
            assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
            progress = await _full_flow(client)
        assert progress == sorted(progress) and len(progress) >= 2
        health = httpx.get(f"{sp.base}/healthz")
        assert health.json() == {"status": "ok", "version": "0.1.0"}
        assert live_key.value not in health.text
    assert live_key.value not in "".join(sp.stderr)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_sse_both_eras(own_emu: EmulatorServer, tmp_path: Path, mode: str) -> None:
    emu = own_emu  # changes emulator-wide config (time_scale)
    live_key = emu.new_key(balance=1000)
    emu.emulator.config.time_scale = 0.02
    with http_server("sse", server_env(emu, live_key, tmp_path)) as sp:
        assert sp.url.endswith("/sse")
        async with Client(sse_client(sp.url), mode=mode) as client:
            await _full_flow(client)
        # A second SSE connection shares the same process runtime (journal, tracker).
        async with Client(sse_client(sp.url), mode=mode) as client:
            lst = structured(await client.call_tool("list_requests", {}))
            assert lst["count"] == 1


async def test_dns_rebinding_protection_on_by_default(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        evil_host = httpx.post(sp.url, json=body, headers={**headers, "Host": "evil.example"})
        assert evil_host.status_code == 421
        evil_origin = httpx.post(sp.url, json=body, headers={**headers, "Origin": "http://evil.example"})
        assert evil_origin.status_code == 403
