"""``notifications/tasks`` on ``subscriptions/listen`` (tasks extension, 2026-07-28), over Streamable HTTP.

Raw JSON-RPC: no client SDK speaks the extension's ``notifications.taskIds`` filter yet.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio
MODERN = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
SUB_ID = "io.modelcontextprotocol/subscriptionId"


def request(method: str, params: dict[str, Any], rid: int, name: str | None = None) -> tuple[dict, dict]:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name:
        headers["Mcp-Name"] = name
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}
    return headers, {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": meta}}


async def messages(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON-RPC messages of a response, JSON or SSE."""
    if response.headers["content-type"].startswith("application/json"):
        yield json.loads(await response.aread())
        return
    async for line in response.aiter_lines():
        if line.startswith("data:") and line[5:].strip():
            yield json.loads(line[5:])


async def test_listen_pushes_task_updates_until_the_result(emu: EmulatorServer, live_key: Key,
                                                           tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.05
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        async with httpx.AsyncClient(timeout=30) as http:
            headers, body = request("tools/call", {"name": "generate", "arguments": {
                "model": "nano-banana-2", "input": {"prompt": "a fox"}}}, 1, name="generate")
            async with http.stream("POST", sp.url, headers=headers, json=body) as res:
                created = [m async for m in messages(res) if m.get("id") == 1][0]["result"]
            assert created["resultType"] == "task", created
            task_id = created["taskId"]

            headers, body = request("subscriptions/listen",
                                    {"notifications": {"taskIds": [task_id, "someone-elses-or-no-task"]}}, 7)
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(20):
                async with http.stream("POST", sp.url, headers=headers, json=body) as res:
                    async for msg in messages(res):
                        seen.append(msg)
                        if msg.get("method") == "notifications/tasks" and msg["params"]["status"] == "completed":
                            break
    ack = seen[0]
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"]["taskIds"] == [task_id]  # only the caller's own, existing task
    pushes = [m["params"] for m in seen[1:] if m.get("method") == "notifications/tasks"]
    assert pushes and all(p["taskId"] == task_id and p["_meta"][SUB_ID] == 7 for p in pushes)
    assert [p["status"] for p in pushes[:-1]] == ["working"] * (len(pushes) - 1)
    final = pushes[-1]
    assert final["status"] == "completed"
    kinds = [block["type"] for block in final["result"]["content"]]
    assert "resource_link" in kinds  # the same content as the inline path
