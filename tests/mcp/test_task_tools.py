"""The tasks extension, cost confirmation and host-aware waits, through the real mcp.Client in memory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from conftest import balance_of, error_of, in_memory, server_env, structured
from mcp import Client
from support import TASKS, TasksClient

from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.waits import plan_wait
from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio


async def test_generate_returns_a_task_and_polls_to_the_result(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=1000)

    async def step(status: str) -> None:
        # Emulated time moves only from here: into the render first, and to the end once a poll saw it.
        if status.startswith("rendering"):
            emu.emulator.clock.advance(100)
        elif status.startswith("queued"):
            emu.emulator.clock.advance(10)

    ext = TasksClient(on_status=step)
    async with Client(in_memory(server_env(emu, key, tmp_path)), extensions=[ext]) as client:
        caps = client.server_capabilities
        assert caps is not None and TASKS in (caps.extensions or {})
        with anyio.fail_after(60):
            res = await client.call_tool("generate", {"model": "seedance-2-fast-t2v", "input": {"prompt": "task me"}})
    data = structured(res)
    assert data["status"] == "COMPLETED" and data["media"][0]["kind"] == "video"
    handle = ext.handles[0]
    assert handle.status == "working" and len(handle.task_id) >= 32
    assert handle.status_message and handle.status_message.startswith("queued")
    assert handle.poll_interval_ms is not None and handle.poll_interval_ms > 0
    assert any(s.startswith("rendering") for s in ext.statuses), ext.statuses  # progress reached the client
    assert ext.statuses[-1] == "completed"
    assert balance_of(emu, key) == 1000 - 47


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
        async with Client(in_memory(env), mode=mode, elicitation_callback=accept) as client:
            res = structured(await client.call_tool("generate", args))
            assert res["cost"] == 141
        assert "costs 141 credits" in asked[-1]
    assert len(asked) == 2
    async with Client(in_memory(env), elicitation_callback=decline) as client:
        no = await client.call_tool("generate", args)
        assert no.is_error and error_of(no)["code"] == "cost_declined"
    async with Client(in_memory(env)) as client:  # cannot elicit
        refused = await client.call_tool("generate", args)
        assert refused.is_error and error_of(refused)["code"] == "confirmation_required"
        assert "confirm_cost=true" in refused.content[0].text
        ok = structured(await client.call_tool("generate", {**args, "confirm_cost": True}))
        assert ok["cost"] == 141
    assert balance_of(emu, key) == 1000 - 141  # identical submits within the dedup window pay once
    async with Client(in_memory({**env, "CLIPIA_MCP_CONFIRM_ABOVE": "off"})) as client:
        assert structured(await client.call_tool("generate", args))["cost"] == 141


def ctx(name: str = "", progress: bool = False) -> Any:
    """The parts of an MCP request context that plan_wait reads."""
    meta: dict[str, Any] = {"progressToken": "p1"} if progress else {}
    if name:
        meta["io.modelcontextprotocol/clientInfo"] = {"name": name}
    return SimpleNamespace(request_context=SimpleNamespace(meta=meta, session=None))


def test_wait_plan_is_host_aware() -> None:
    s = Settings.from_env({"CLIPIA_MCP_WAIT_DEFAULT": "30", "CLIPIA_MCP_WAIT_MAX": "50"})
    assert plan_wait(ctx(), s, None).budget == 20.0  # no progress token: nothing keeps the host's timer alive
    assert plan_wait(ctx(progress=True), s, None).budget == 30.0
    assert s.wait_max == 48.0  # the call deadline less a margin for building the answer
    long = plan_wait(ctx("claude-code", progress=True), s, None)
    assert (long.budget, long.client, long.progress) == (48.0, "claude-code", True)
    assert plan_wait(ctx("claude-code"), s, None).budget == 20.0  # a long-wait client still needs a token
    asked = plan_wait(ctx(), s, 5)
    assert (asked.budget, asked.note) == (5, None)
    clamped = plan_wait(ctx(), s, 500)
    assert clamped.budget == 48.0 and clamped.note is not None and "waited at most 48 s" in clamped.note
    running = RequestRecord(request_id="r", owner="o", status="IN_PROGRESS", created_at=1, updated_at=1)
    assert clamped.note_for(running) == clamped.note
    # A finished request has nothing left to wait for: no "call again to keep waiting".
    assert clamped.note_for(running.model_copy(update={"status": "COMPLETED"})) is None
    for bad in (-1, float("nan")):
        with pytest.raises(InvalidInputError):
            plan_wait(ctx(), s, bad)


async def test_host_aware_wait_budget(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_WAIT_DEFAULT="0.3", CLIPIA_MCP_WAIT_MAX="1")
    async with Client(in_memory(env)) as client:
        rid = structured(await client.call_tool("submit_generation", {
            "model": "nano-banana-2", "input": {"prompt": "never [[stuck]]"}}))["request_id"]
        with anyio.fail_after(30):
            quick = structured(await client.call_tool("wait_for_result", {"request_id": rid}))
        assert quick["done"] is False

        async def on_progress(p: float, t: float | None, m: str | None) -> None:
            pass

        with anyio.fail_after(30):
            capped = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50},
                                                       progress_callback=on_progress))
        assert capped["done"] is False
        assert "Asked to wait 50 s; waited at most 0.9 s" in capped["next_step"]  # clamped: CLIPIA_MCP_WAIT_MAX
