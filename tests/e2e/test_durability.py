"""Nothing lost across real process restarts, and webhooks into a real HTTP server (subprocesses).

Faults, refunds and single-flight polling are tested in memory (tests/engine/test_durability.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import balance_of, error_of, free_port, server_env, stdio, structured
from mcp import Client
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.webhooks import sign

pytestmark = pytest.mark.anyio


def mine(emu: EmulatorServer, key) -> list[str]:
    return [r.request_id for r in emu.emulator.requests.values() if r.key == key.value]


async def test_restart_mid_wait_keeps_the_request(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu  # emulated time stands still: the request is still running whatever the load
    key = emu.new_key(balance=1000)
    env = server_env(emu, key, tmp_path)
    async with Client(stdio(env)) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "restart me"}}))[
            "request_id"]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:  # the server is killed while this wait is in flight
                tg.start_soon(client.call_tool, "wait_for_result", {"request_id": rid, "timeout_s": 50})
                polls = emu.emulator.calls.get("status", 0)
                while emu.emulator.calls.get("status", 0) < polls + 2:  # the wait is live: the server polls
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    async with Client(stdio(env)) as client:
        listed = structured(await client.call_tool("list_requests", {}))
        assert [r["request_id"] for r in listed["requests"]] == [rid]
        assert [r.uri for r in (await client.list_resources()).resources
                if r.uri.startswith("clipia://requests/")] == [f"clipia://requests/{rid}"]
        status = structured(await client.call_tool("get_status", {"request_id": rid}))
        assert status["status"] == "IN_QUEUE"
        emu.emulator.clock.advance(3600)
        with anyio.fail_after(60):
            done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50}))
        assert done["status"] == "COMPLETED" and done["model"] == "seedance-2-fast-t2v"
        again = structured(await client.call_tool("get_result", {"request_id": rid, "include_preview": False}))
        assert again["media"] == done["media"]
    assert mine(emu, key) == [rid]
    assert balance_of(emu, key) == 1000 - 47


async def test_lost_submit_is_recovered_on_restart_with_one_charge(own_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = own_emu
    live_key = emu.new_key(balance=1000)
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
        with anyio.fail_after(60):
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


async def test_webhook_wakes_waiters_without_polling(own_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = own_emu  # counts status calls
    live_key = emu.new_key(balance=1000)
    emu.emulator.config.time_scale = 0.2  # image ~0.6 s
    secret = emu.emulator.accounts[live_key.account_id].webhook_secret
    port = free_port()
    env = server_env(emu, live_key, tmp_path, CLIPIA_WEBHOOK_SECRET=secret, CLIPIA_MCP_POLL_MIN="30",
                     CLIPIA_MCP_POLL_MAX="60")
    with http_server("streamable-http", env, "--port", str(port), "--public-url", f"http://127.0.0.1:{port}") as sp:
        async with Client(sp.url) as client:
            rid = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "hooked"}}))["request_id"]
            assert emu.emulator.requests[rid].webhook_url == f"http://127.0.0.1:{port}/webhooks/clipia"
            before = emu.emulator.calls.get("status", 0)
            with anyio.fail_after(25):  # well under the 30 s poll interval: only the webhook can finish it
                done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20}))
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
