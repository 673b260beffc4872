"""The tasks extension, cost confirmation and host-aware waits, through the real mcp.Client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import balance_of, error_of, server_env, stdio, structured
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import Result
from procs import http_server
from support import TASKS, CreateTaskResult, TaskCancel, TaskGet, TaskIdParams, TaskResult, TasksClient

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio
async def test_generate_returns_a_task_and_polls_to_the_result(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    ext = TasksClient()
    async with Client(stdio(server_env(emu, live_key, tmp_path)), extensions=[ext]) as client:
        caps = client.server_capabilities
        assert caps is not None and TASKS in (caps.extensions or {})
        res = await client.call_tool("generate", {"model": "seedance-2-fast-t2v", "input": {"prompt": "task me"}})
    data = structured(res)
    assert data["status"] == "COMPLETED" and data["media"][0]["kind"] == "video"
    handle = ext.handles[0]
    assert handle.status == "working" and len(handle.task_id) >= 32
    assert handle.status_message and handle.status_message.startswith(("queued", "rendering"))
    assert handle.poll_interval_ms is not None and handle.poll_interval_ms > 0
    assert any(s.startswith("rendering") for s in ext.statuses) or ext.statuses[-1] == "completed"
    assert balance_of(emu, live_key) == 1000 - 47


async def test_task_survives_a_restart_and_cancel_is_honest(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    env = server_env(emu, live_key, tmp_path)
    ext = TasksClient()
    async with Client(stdio(env), extensions=[ext]) as client:
        raw = await client.session.call_tool("generate", {"model": "seedance-2-fast-t2v",
                                                         "input": {"prompt": "restart [[slow]]"}}, allow_claimed=True)
    assert isinstance(raw, CreateTaskResult)
    task_id = raw.task_id
    async with Client(stdio(env), extensions=[ext]) as client:  # a new process answers from the journal
        got = await client.session.send_request(TaskGet(params=TaskIdParams(task_id=task_id)), TaskResult)
        assert got.status == "working" and got.task_id == task_id
        with pytest.raises(MCPError) as info:
            await client.session.send_request(TaskGet(params=TaskIdParams(task_id="nope-" + "x" * 30)), TaskResult)
        assert info.value.error.code == -32602
        await client.session.send_request(TaskCancel(params=TaskIdParams(task_id=task_id)), Result)
        after = await client.session.send_request(TaskGet(params=TaskIdParams(task_id=task_id)), TaskResult)
        assert after.status == "cancelled" and "still charged" in (after.status_message or "")
        lst = structured(await client.call_tool("list_requests", {}))
        assert lst["count"] == 1  # the generation itself goes on and stays findable


async def test_tasks_over_streamable_http_and_legacy_fallback(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        ext = TasksClient()
        async with Client(sp.url, extensions=[ext]) as client:
            res = structured(await client.call_tool("generate", {"model": "nano-banana-2",
                                                                  "input": {"prompt": "http task"}}))
            assert res["status"] == "COMPLETED" and ext.handles
        async with Client(sp.url, mode="legacy") as client:  # no tasks: submit and wait inline
            res = structured(await client.call_tool("generate", {"model": "nano-banana-2",
                                                                  "input": {"prompt": "legacy"}}))
            assert res["status"] == "COMPLETED" and res["media"]
        import httpx

        body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {
            "taskId": ext.handles[0].task_id, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
                   "Mcp-Method": "tasks/get", "Mcp-Name": "some-other-task"}
        mismatch = httpx.post(sp.url, json=body, headers=headers).json()
        assert mismatch["error"]["code"] == -32020
        for method in ("tasks/result", "tasks/list"):
            gone = httpx.post(sp.url, json={**body, "method": method}, headers={**headers, "Mcp-Method": method,
                                                                                 "Mcp-Name": body["params"]["taskId"]})
            assert gone.json()["error"]["code"] == -32601


async def test_cost_confirmation_elicits_refuses_or_is_skipped(emu: EmulatorServer, tmp_path: Path) -> None:
    key = emu.new_key(balance=1000)
    args = {"model": "seedance-2-fast-t2v", "input": {"prompt": "pricey", "duration": 15},
            "options": {"wait_s": 0}}
    env = server_env(emu, key, tmp_path)
    asked: list[str] = []

    async def accept(ctx: Any, params: Any) -> Any:
        from mcp_types import ElicitResult

        asked.append(params.message)
        return ElicitResult(action="accept", content={"confirm": True})

    async def decline(ctx: Any, params: Any) -> Any:
        from mcp_types import ElicitResult

        return ElicitResult(action="accept", content={"confirm": False})

    for mode in ("auto", "legacy"):
        async with Client(stdio(env), mode=mode, elicitation_callback=accept) as client:
            res = structured(await client.call_tool("generate", args))
            assert res["cost"] == 141
        assert "costs 141 credits" in asked[-1]
    assert len(asked) == 2
    async with Client(stdio(env), elicitation_callback=decline) as client:
        no = await client.call_tool("generate", args)
        assert no.is_error and error_of(no)["code"] == "cost_declined"
    async with Client(stdio(env)) as client:  # cannot elicit
        refused = await client.call_tool("generate", args)
        assert refused.is_error and "confirmation_required" in refused.content[0].text
        assert "confirm_cost=true" in refused.content[0].text
        ok = structured(await client.call_tool("generate", {**args, "confirm_cost": True}))
        assert ok["cost"] == 141
    assert balance_of(emu, key) == 1000 - 141  # identical submits within the dedup window pay once
    async with Client(stdio({**env, "CLIPIA_MCP_CONFIRM_ABOVE": "off"})) as client:
        assert structured(await client.call_tool("generate", args))["cost"] == 141


async def test_host_aware_wait_budget(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_WAIT_DEFAULT="0.3", CLIPIA_MCP_WAIT_MAX="2")
    async with Client(stdio(env)) as client:
        rid = structured(await client.call_tool("submit_generation", {
            "model": "nano-banana-2", "input": {"prompt": "never [[stuck]]"}}))["request_id"]
        started = anyio.current_time()
        quick = structured(await client.call_tool("wait_for_result", {"request_id": rid}))
        assert quick["done"] is False and anyio.current_time() - started < 1.5  # no progress token: short

        async def on_progress(p: float, t: float | None, m: str | None) -> None:
            pass

        started = anyio.current_time()
        await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50}, progress_callback=on_progress)
        assert 1.8 <= anyio.current_time() - started < 4  # capped at CLIPIA_MCP_WAIT_MAX
