"""The embedded sandbox is a place: a fresh process per call (as the MCP Inspector starts) reads back
earlier requests, running generations finish across restarts, and earlier media URLs keep working."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import server_command, structured
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from clipia_mcp.sandbox.place import SandboxPlace
from clipia_mcp.sandbox.state import Emulator, EmulatorConfig

pytestmark = pytest.mark.anyio


def sandbox(tmp_path: Path) -> StdioServerParameters:
    cmd = server_command()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "CLIPIA_MCP_DATA_DIR": str(tmp_path / "data"),
           "CLIPIA_SANDBOX_TIME_SCALE": "0.05", "CLIPIA_MCP_POLL_MIN": "0.02", "CLIPIA_MCP_POLL_MAX": "0.2",
           "CLIPIA_MCP_POLL_BUDGET_RPM": "6000", "CLIPIA_MCP_OUTPUT_DIR": "off", "PYTHONUNBUFFERED": "1"}
    return StdioServerParameters(command=cmd[0], args=[*cmd[1:], "--sandbox"], env=env)


async def test_a_fresh_process_per_call_reads_back_earlier_requests(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with Client(sandbox(tmp_path)) as client:  # 1st process: submit a video (~2 s) and exit at once
            sub = structured(await client.call_tool(
                "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "kept"}}))
        rid = sub["request_id"]
        assert sub["status"] == "IN_QUEUE"

        async with Client(sandbox(tmp_path)) as client:  # 2nd process: it is listed and finishes on time
            listed = structured(await client.call_tool("list_requests", {}))["requests"]
            assert [r["request_id"] for r in listed] == [rid]
            done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 30}))
            assert done["status"] == "COMPLETED"
            url = done["media"][0]["url"]
            assert httpx.get(url).headers["content-type"] == "video/mp4"

        async with Client(sandbox(tmp_path)) as client:  # 3rd process: history, status and the same media URL
            assert structured(await client.call_tool("get_status", {"request_id": rid}))["status"] == "COMPLETED"
            again = structured(await client.call_tool("get_result", {"request_id": rid}))
            assert again["media"][0]["url"] == url
            assert httpx.get(url).status_code == 200  # the sandbox came back on its port
            second = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "[[instant]] second"}}))
            listed = structured(await client.call_tool("list_requests", {}))["requests"]
            assert [r["request_id"] for r in listed] == [second["request_id"], rid]
            balance = structured(await client.call_tool("get_balance", {}))
            assert balance["usage_30d_requests"] == 2

    state = json.loads((tmp_path / "data" / "sandbox" / "emulator.json").read_text())
    assert {r["request_id"] for r in state["requests"]} == {rid, second["request_id"]}


def test_the_timeline_resumes_in_another_process_clock(tmp_path: Path) -> None:
    first = Emulator(EmulatorConfig(time_scale=1.0))
    place = SandboxPlace(tmp_path)
    key = place.restore(first, balance=100)
    rid = first.submit(key, "seedance-2-fast-t2v", {"input": {"prompt": "x"}})["request_id"]
    assert first.accounts[key.account_id].balance == 100 - first.requests[rid].cost

    second = Emulator(EmulatorConfig(time_scale=1.0))
    again = SandboxPlace(tmp_path).restore(second, balance=100)
    assert again.value == key.value and second.accounts[again.account_id].balance == 100 - second.requests[rid].cost
    assert second.status_of(second.requests[rid]) == "IN_QUEUE"
    second.clock.advance(60)  # video: 4 s queue + 40 s render
    assert second.status_of(second.requests[rid]) == "COMPLETED"
    third = Emulator(EmulatorConfig(time_scale=1.0))
    SandboxPlace(tmp_path).restore(third, balance=100)
    assert third.requests[rid].settled == "COMPLETED"


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "emulator.json").write_text("{not json")
    key = SandboxPlace(tmp_path).restore(Emulator(), balance=10)
    assert key.value.startswith("clipia_live_sandbox")
