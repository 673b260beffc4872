"""The tasks extension across a process restart and over Streamable HTTP (real subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import server_env, stdio, structured
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import Result
from procs import http_server
from support import TASKS, CreateTaskResult, TaskCancel, TaskGet, TaskIdParams, TaskResult, TasksClient

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio
async def test_task_survives_a_restart_and_cancel_is_honest(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    env = server_env(frozen_emu, frozen_emu.new_key(balance=1000), tmp_path)  # emulated time stands still
    ext = TasksClient()
    async with Client(stdio(env), extensions=[ext]) as client:
        raw = await client.session.call_tool("generate", {"model": "seedance-2-fast-t2v",
                                                         "input": {"prompt": "restart"}}, allow_claimed=True)
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


async def test_tasks_over_streamable_http_and_legacy_fallback(own_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = own_emu  # changes emulator-wide config (time_scale)
    live_key = emu.new_key(balance=1000)
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
