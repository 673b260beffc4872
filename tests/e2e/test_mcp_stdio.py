"""clipia-mcp spawned as a user runs it (stdio), driven by the real mcp.Client, against the emulator over HTTP.

Only what needs the real process and pipe lives here: the console script starts, both protocol eras
negotiate, progress notifications and error results cross the wire intact. The tools' behaviour is
tested in memory (tests/mcp).
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from conftest import balance_of, error_of, server_env, stdio, structured
from mcp import Client
from mcp.shared.exceptions import MCPError

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio

TOOLS = {"submit_generation", "get_status", "get_result", "wait_for_result", "list_models", "get_model",
         "estimate_cost", "get_balance", "list_requests", "generate", "forget", "spend_summary"}
# delete_clip is offered only where a provider that deletes jobs (Reka) is configured: tests/mcp/test_reka_tools.py


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_schemas_and_a_full_generation_with_progress(
        frozen_emu: EmulatorServer, tmp_path: Path, mode: str) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=1000)
    async with Client(stdio(server_env(emu, key, tmp_path)), mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for t in tools.values():
            assert t.description and t.output_schema and t.annotations is not None
            assert t.input_schema["type"] == "object"
        assert tools["get_status"].annotations.read_only_hint is True
        assert tools["submit_generation"].annotations.idempotent_hint is False
        assert "maximum" not in tools["wait_for_result"].input_schema["properties"]["timeout_s"]
        assert set(tools["get_result"].output_schema["properties"]) >= {"request_id", "status", "media", "done"}

        sub = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "waves at dusk"}}))
        assert sub["status"] == "IN_QUEUE" and sub["cost"] == 47 and sub["deduplicated"] is False
        rid = sub["request_id"]
        assert sub["resource_uri"] == f"clipia://requests/{rid}"

        events: list[tuple[float, float | None, str | None]] = []
        rendering = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            events.append((progress, total, message))
            if "rendering" in (message or ""):
                rendering.set()

        result: list[object] = []

        async def wait() -> None:
            result.append(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50},
                                                 progress_callback=on_progress))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                emu.emulator.clock.advance(10)  # 4 s queue, then 6 s of a 40 s render
                await rendering.wait()
                emu.emulator.clock.advance(100)  # done
        res = result[0]
        data = structured(res)
        assert res.is_error is not True  # type: ignore[attr-defined]
        assert (data["status"], data["done"], data["cost"], data["progress"]) == ("COMPLETED", True, 47, 100)
        assert data["media"][0]["kind"] == "video" and data["media"][0]["mime_type"] == "video/mp4"
        links = [b for b in res.content if b.type == "resource_link"]  # type: ignore[attr-defined]
        assert [(b.uri, b.mime_type) for b in links] == [(data["media"][0]["url"], "video/mp4")]
        assert "base64" not in json.dumps(data)
        assert json.loads(res.content[0].text) == data  # type: ignore[attr-defined]
        with anyio.fail_after(30):  # the final notification may trail the result
            while not events or events[-1][0] != 100:
                await anyio.sleep(0.01)
        values = [p for p, _, _ in events]
        assert values == sorted(values) and len(set(values)) == len(values)
        assert all(total == 100 for _, total, _ in events)
        assert events[-1][2] == f"completed ({rid[:8]})"
    assert balance_of(emu, key) == 1000 - 47


async def test_error_results_cross_the_pipe(emu: EmulatorServer, tmp_path: Path) -> None:
    poor = emu.new_key(balance=1)
    async with Client(stdio(server_env(emu, poor, tmp_path))) as client:
        r402 = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "x"}})
        assert error_of(r402) == {"code": "insufficient_credits", "http_status": 402, "type": "billing_error",
                                  "message": "Not enough credits for this generation. Please top up your balance."}
        bad = await client.call_tool("get_status", {"request_id": "not-a-uuid"})
        assert error_of(bad)["code"] == "invalid_input"
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
        assert info.value.error.code == -32602
