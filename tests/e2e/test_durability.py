"""Nothing lost: journal across restarts, single-flight polling, webhooks, and behaviour under faults."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import balance_of, error_of, server_env, structured
from mcp import Client
from procs import http_server
from test_mcp_stdio import stdio

from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.webhooks import sign

pytestmark = pytest.mark.anyio


def mine(emu: EmulatorServer, key) -> list[str]:
    return [r.request_id for r in emu.emulator.requests.values() if r.key == key.value]


async def test_restart_mid_wait_keeps_the_request(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02  # video ~0.9 s
    env = server_env(emu, live_key, tmp_path)
    async with Client(stdio(env)) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "restart me [[slow]]"}}))[
            "request_id"]
        with anyio.move_on_after(0.5):  # the server is killed while this wait is in flight
            await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 30})
    async with Client(stdio(env)) as client:
        listed = structured(await client.call_tool("list_requests", {}))
        assert [r["request_id"] for r in listed["requests"]] == [rid]
        assert [r.uri for r in (await client.list_resources()).resources] == [f"clipia://requests/{rid}"]
        status = structured(await client.call_tool("get_status", {"request_id": rid}))
        assert status["status"] in ("IN_QUEUE", "IN_PROGRESS")
        with anyio.fail_after(30):
            done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 25}))
        assert done["status"] == "COMPLETED" and done["model"] == "seedance-2-fast-t2v"
        again = structured(await client.call_tool("get_result", {"request_id": rid, "include_preview": False}))
        assert again["media"] == done["media"]
    assert mine(emu, live_key) == [rid]
    assert balance_of(emu, live_key) == 1000 - 47


async def test_lost_submit_is_recovered_on_restart_with_one_charge(
        emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path)
    emu.emulator.faults.add(Fault(route="submit", kind="drop", times=None))
    async with Client(stdio(env)) as client:
        res = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "lost"}})
        assert res.is_error is True and error_of(res)["code"] == "submit_pending"
        assert "without paying twice" in res.content[0].text
    emu.emulator.faults.clear()
    created = mine(emu, live_key)
    assert len(created) == 1  # the API did create it; only the responses were lost
    async with Client(stdio(env)) as client:
        with anyio.fail_after(10):
            while True:
                listed = structured(await client.call_tool("list_requests", {}))
                if listed["count"]:
                    break
                await anyio.sleep(0.05)
        assert listed["requests"][0]["request_id"] == created[0]
        # An agent retrying the same submit now gets the recovered request, not a new charge.
        again = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "lost"}}))
        assert again["request_id"] == created[0] and again["deduplicated"] is True
    assert mine(emu, live_key) == created
    assert balance_of(emu, live_key) == 1000 - 4


@pytest.mark.parametrize("fault", [
    Fault(route="status", status=429, code="rate_limit_exceeded", retry_after="0", times=3),
    Fault(route="status", status=503, code="service_unavailable", times=3),
    Fault(route="status", kind="html", status=504, times=3),
    Fault(route="status", kind="drop", times=3),
    Fault(route="status", kind="delay", seconds=0.5, times=2),
    Fault(route="result", kind="stale_result", times=1),
    Fault(route="submit", status=500, code="internal_error", times=2),
    Fault(route="submit", kind="drop", times=1),
])
async def test_faults_end_completed_with_one_charge(
        emu: EmulatorServer, live_key, tmp_path: Path, fault: Fault) -> None:
    emu.emulator.config.time_scale = 0.05
    emu.emulator.faults.add(fault)
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_HTTP_TIMEOUT="2")
    async with Client(stdio(env)) as client:
        sub = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "faulty"}}))
        with anyio.fail_after(20):
            done = structured(await client.call_tool("wait_for_result",
                                                     {"request_id": sub["request_id"], "timeout_s": 15}))
    assert fault.hits >= 1
    assert done["status"] == "COMPLETED" and done["request_id"] == sub["request_id"]
    assert mine(emu, live_key) == [sub["request_id"]]
    assert balance_of(emu, live_key) == 1000 - 4


@pytest.mark.parametrize(("prompt", "status", "cost"), [("x [[fail]]", "FAILED", 0), ("x [[cancel]]", "CANCELED", 0)])
async def test_failed_and_canceled_end_with_refund(
        emu: EmulatorServer, live_key, tmp_path: Path, prompt: str, status: str, cost: int) -> None:
    emu.emulator.config.time_scale = 0.02
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": prompt}}))["request_id"]
        with anyio.fail_after(20):
            res = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15})
    data = structured(res)
    assert res.is_error is not True  # a failed generation is a result, not a tool error
    assert (data["status"], data["cost"], data["done"], data["media"]) == (status, cost, True, [])
    assert balance_of(emu, live_key) == 1000


async def test_out_of_band_cancel_mid_run(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.05
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "cancel me"}}))["request_id"]
        async with anyio.create_task_group() as tg:
            result: dict[str, object] = {}

            async def waiter() -> None:
                result.update(structured(await client.call_tool("wait_for_result",
                                                                {"request_id": rid, "timeout_s": 20})))

            tg.start_soon(waiter)
            await anyio.sleep(0.3)
            httpx.post(f"{emu.base_url}/_emulator/requests/{rid}/cancel")
    assert result["status"] == "CANCELED" and result["cost"] == 0
    assert balance_of(emu, live_key) == 1000


async def test_concurrent_waits_share_one_poll_loop(emu: EmulatorServer, live_key) -> None:
    emu.emulator.config.time_scale = 0.02
    settings = Settings.from_env({
        "CLIPIA_API_KEY": live_key.value, "CLIPIA_BASE_URL": emu.base_url, "CLIPIA_MCP_JOURNAL": ":memory:",
        "CLIPIA_MCP_POLL_MIN": "0.05", "CLIPIA_MCP_POLL_MAX": "0.2", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000",
    })
    async with Client(build_server(settings)) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "shared"}}))["request_id"]
        before = emu.emulator.calls.get("status", 0)
        started = time.monotonic()
        results: list[str] = []

        async def waiter() -> None:
            data = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20}))
            results.append(data["status"])

        with anyio.fail_after(25):
            async with anyio.create_task_group() as tg:
                for _ in range(25):
                    tg.start_soon(waiter)
        elapsed = time.monotonic() - started
    polls = emu.emulator.calls.get("status", 0) - before
    assert results == ["COMPLETED"] * 25
    # One loop at >= 0.04 s per poll; 25 independent pollers would need ~25x this.
    assert polls <= elapsed / 0.04 + 3, (polls, elapsed)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_webhook_wakes_waiters_without_polling(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.2  # image ~0.6 s
    secret = emu.emulator.accounts[live_key.account_id].webhook_secret
    port = _free_port()
    env = server_env(emu, live_key, tmp_path, CLIPIA_WEBHOOK_SECRET=secret, CLIPIA_MCP_POLL_MIN="30",
                     CLIPIA_MCP_POLL_MAX="60")
    with http_server("streamable-http", env, "--port", str(port), "--public-url", f"http://127.0.0.1:{port}") as sp:
        async with Client(sp.url) as client:
            rid = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "hooked"}}))["request_id"]
            assert emu.emulator.requests[rid].webhook_url == f"http://127.0.0.1:{port}/webhooks/clipia"
            before = emu.emulator.calls.get("status", 0)
            started = time.monotonic()
            with anyio.fail_after(10):
                done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20}))
            assert time.monotonic() - started < 5  # the poll interval is 30 s: only the webhook can explain this
            assert done["status"] == "COMPLETED" and done["media"]
            assert emu.emulator.calls.get("status", 0) - before <= 1
        hook = f"{sp.base}/webhooks/clipia"
        deliveries = [d for d in emu.emulator.webhook_log if d["request_id"] == rid]
        assert deliveries and deliveries[-1]["status_code"] == 200
        body = json.dumps({"request_id": rid, "status": "OK", "payload": {}}).encode()
        t = int(time.time())
        ok_headers = {"X-Clipia-Webhook-Id": "dup-1", "X-Clipia-Signature": f"t={t},v1={sign(secret, t, body)}",
                      "Content-Type": "application/json"}
        assert httpx.post(hook, content=body, headers=ok_headers).status_code == 200
        replay = httpx.post(hook, content=body, headers=ok_headers)  # a redelivery changes nothing
        assert (replay.status_code, replay.json()) == (200, {"ok": True, "duplicate": True})
        bad = dict(ok_headers, **{"X-Clipia-Webhook-Id": "x2", "X-Clipia-Signature": f"t={t},v1={'0' * 64}"})
        assert httpx.post(hook, content=body, headers=bad).status_code == 401
        old = t - 301
        stale = dict(ok_headers, **{"X-Clipia-Webhook-Id": "x3",
                                    "X-Clipia-Signature": f"t={old},v1={sign(secret, old, body)}"})
        assert httpx.post(hook, content=body, headers=stale).status_code == 401
        tampered = body.replace(b'"OK"', b'"ERROR"')
        assert httpx.post(hook, content=tampered, headers=dict(ok_headers, **{"X-Clipia-Webhook-Id": "x4"})
                          ).status_code == 401
        async with Client(sp.url) as client:  # the duplicate OK did not change the stored result
            again = structured(await client.call_tool("get_result", {"request_id": rid, "include_preview": False}))
            assert again["media"] == done["media"]
    assert secret not in "".join(sp.stderr)
