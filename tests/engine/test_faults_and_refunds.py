"""Nothing lost under faults, refunds, out-of-band cancels, and one poll loop for many waiters.

Through the real mcp.Client connected in memory; each test has its own emulator (faults and call
counts are emulator-wide).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from conftest import balance_of, in_memory, server_env, structured
from mcp import Client

from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio


def mine(emu: EmulatorServer, key: Key) -> list[str]:
    return [r.request_id for r in emu.emulator.requests.values() if r.key == key.value]


@pytest.mark.parametrize("fault", [
    Fault(route="status", status=429, code="rate_limit_exceeded", retry_after="0", times=3),
    Fault(route="status", status=503, code="service_unavailable", times=3),
    Fault(route="status", kind="html", status=504, times=3),
    Fault(route="status", kind="html", status=200, times=3),
    Fault(route="status", kind="drop", times=3),
    Fault(route="status", kind="delay", seconds=0.5, times=2),
    Fault(route="result", kind="stale_result", times=1),
    Fault(route="submit", status=500, code="internal_error", times=2),
    Fault(route="submit", kind="drop", times=1),
], ids=lambda f: f"{f.route}-{f.kind}-{f.status}")
async def test_faults_end_completed_with_one_charge(own_emu: EmulatorServer, tmp_path: Path, fault: Fault) -> None:
    emu = own_emu
    key = emu.new_key(balance=1000)
    emu.emulator.faults.add(fault)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_HTTP_TIMEOUT="2")
    async with Client(in_memory(env)) as client:
        sub = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "faulty"}}))
        with anyio.fail_after(60):
            done = structured(await client.call_tool("wait_for_result",
                                                     {"request_id": sub["request_id"], "timeout_s": 50}))
    assert fault.hits >= 1
    assert done["status"] == "COMPLETED" and done["request_id"] == sub["request_id"]
    assert mine(emu, key) == [sub["request_id"]]
    assert balance_of(emu, key) == 1000 - 4


@pytest.mark.parametrize(("prompt", "status"), [("x [[fail]]", "FAILED"), ("x [[cancel]]", "CANCELED")])
async def test_failed_and_canceled_end_with_refund(own_emu: EmulatorServer, tmp_path: Path, prompt: str,
                                                   status: str) -> None:
    emu = own_emu  # changes emulator-wide config (time_scale)
    live_key = emu.new_key(balance=1000)
    emu.emulator.config.time_scale = 0.02
    async with Client(in_memory(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": prompt}}))["request_id"]
        with anyio.fail_after(60):
            res = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50})
    data = structured(res)
    assert res.is_error is not True  # a failed generation is a result, not a tool error
    assert (data["status"], data["cost"], data["done"], data["media"]) == (status, 0, True, [])
    assert balance_of(emu, live_key) == 1000


async def test_out_of_band_cancel_mid_run(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=1000)
    async with Client(in_memory(server_env(emu, key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "cancel me"}}))["request_id"]
        emu.emulator.clock.advance(10)  # rendering
        result: dict[str, object] = {}

        async def waiter() -> None:
            result.update(structured(await client.call_tool("wait_for_result",
                                                            {"request_id": rid, "timeout_s": 50})))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                polls = emu.emulator.calls.get("status", 0)
                while emu.emulator.calls.get("status", 0) == polls:  # the wait is being served by polls
                    await anyio.sleep(0.01)
                async with httpx.AsyncClient() as http:
                    r = await http.post(f"{emu.base_url}/_emulator/requests/{rid}/cancel")
                assert r.json()["status"] == "CANCELED"
    assert result["status"] == "CANCELED" and result["cost"] == 0
    assert balance_of(emu, key) == 1000


async def test_concurrent_waits_share_one_poll_loop(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu
    key = emu.new_key(balance=1000)
    # One poll a second at most: 25 independent pollers would make 25 polls at once; one loop makes a few.
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_POLL_MIN="1", CLIPIA_MCP_POLL_MAX="1")
    async with Client(in_memory(env)) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "shared"}}))["request_id"]
        results: list[str] = []

        async def waiter() -> None:
            data = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50}))
            results.append(data["status"])

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(25):
                    tg.start_soon(waiter)
                emu.emulator.clock.advance(100)  # done at the loop's next poll
    assert results == ["COMPLETED"] * 25
    assert emu.emulator.calls.get("status", 0) < 25, emu.emulator.calls
