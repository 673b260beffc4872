"""One bad answer, a short outage or a slow API must not break the server or charge twice (real stdio server
processes, the emulator's fault injection over loopback). Exact codes; upstream calls and charges counted."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from attack_helpers import stdio
from conftest import balance_of, error_of, server_env, structured
from mcp import Client

from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio
IMAGE = {"model": "nano-banana-2", "input": {"prompt": "adversarial"}}
PRICE = 4  # nano-banana-2 at its defaults


def created_by(emu: EmulatorServer, key: Key) -> list[str]:
    return [r.request_id for r in emu.emulator.requests.values() if r.key == key.value]


async def test_html_200_answers_are_retryable_errors_never_fake_data(
        emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    async with Client(stdio(server_env(emu, live_key, tmp_path, CLIPIA_MCP_DEADLINE="5"))) as client:
        with anyio.fail_after(30):
            for route, tool, args in (("models", "list_models", {}), ("account", "get_balance", {}),
                                      ("estimate", "estimate_cost", IMAGE)):
                emu.emulator.faults.add(Fault(route=route, kind="html", status=200, times=None))
                err = error_of(await client.call_tool(tool, args))
                assert err["code"] == "upstream_invalid_response", (tool, err)
                emu.emulator.faults.clear()
                assert not (await client.call_tool(tool, args)).is_error  # the next call works
            # HTML 200 on every status call while a wait is pending: the wait answers, the process lives on.
            sub = structured(await client.call_tool("submit_generation", IMAGE))
            emu.emulator.faults.add(Fault(route="status", kind="html", status=200, times=None))
            first = await client.call_tool("wait_for_result", {"request_id": sub["request_id"], "timeout_s": 2})
            if first.is_error:
                assert error_of(first)["code"] == "upstream_invalid_response"
            emu.emulator.faults.clear()
            done = structured(await client.call_tool("wait_for_result", {"request_id": sub["request_id"],
                                                                         "timeout_s": 4}))
            assert done["status"] == "COMPLETED"
    assert created_by(emu, live_key) == [sub["request_id"]] and balance_of(emu, live_key) == 1000 - PRICE


@pytest.mark.parametrize("fault", [
    Fault(route="status", status=503, code="service_unavailable", times=None),
    Fault(route="status", status=401, code="invalid_api_key", message="Invalid API key.", times=None),
], ids=["503-outage", "401"])
async def test_a_request_recovers_after_an_outage(
        emu: EmulatorServer, live_key: Key, tmp_path: Path, fault: Fault) -> None:
    emu.emulator.config.time_scale = 0.1  # long enough to be running when the outage starts
    async with Client(stdio(server_env(emu, live_key, tmp_path, CLIPIA_MCP_DEADLINE="3"))) as client:
        with anyio.fail_after(30):
            sub = structured(await client.call_tool("submit_generation", IMAGE))
            emu.emulator.faults.add(fault)
            during = await client.call_tool("wait_for_result", {"request_id": sub["request_id"], "timeout_s": 1})
            if during.is_error:
                assert error_of(during)["code"] in ("service_unavailable", "invalid_api_key")
            await client.call_tool("get_status", {"request_id": sub["request_id"]})
            emu.emulator.faults.clear()  # the outage ends: the very next calls see the request through
            while structured(await client.call_tool("wait_for_result", {
                    "request_id": sub["request_id"], "timeout_s": 2}))["status"] != "COMPLETED":
                pass
            assert structured(await client.call_tool("get_status", {"request_id": sub["request_id"]}))[
                "status"] == "COMPLETED"
    assert fault.hits >= 1 and balance_of(emu, live_key) == 1000 - PRICE


async def test_slow_api_submit_is_pending_then_deduplicated_without_a_time_window(
        emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    """The API takes longer than the call deadline to answer a submit (which it did create): the agent hears
    submit_pending, and a plain retry much later (no dedup window) returns the same request: one charge."""
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_DEADLINE="1", CLIPIA_MCP_DEDUP_WINDOW="0",
                     CLIPIA_MCP_HTTP_TIMEOUT="30")
    emu.emulator.faults.add(Fault(route="submit", kind="delay", seconds=3, times=1))
    async with Client(stdio(env)) as client:
        with anyio.fail_after(30):
            err = error_of(await client.call_tool("submit_generation", IMAGE))
            assert err["code"] == "submit_pending"
            while True:  # the agent keeps retrying the same arguments
                again = await client.call_tool("submit_generation", IMAGE)
                if not again.is_error:
                    break
                assert error_of(again)["code"] == "submit_pending"
                await anyio.sleep(0.2)
            got = structured(again)  # the pending submit's own request (replayed with its key), not a new one
    assert created_by(emu, live_key) == [got["request_id"]] and balance_of(emu, live_key) == 1000 - PRICE


async def test_429_storm_on_submit_answers_in_time_and_never_charges_twice(
        emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_DEADLINE="2", CLIPIA_MCP_RETRY_AFTER_CAP="30")
    # Retry-After (4 s) outlasts the 2 s deadline; the key's admission queue honours it after the storm too.
    storm = emu.emulator.faults.add(Fault(route="submit", status=429, code="rate_limit_exceeded", retry_after="4",
                                          times=None))
    async with Client(stdio(env)) as client:
        with anyio.fail_after(30):
            err = error_of(await client.call_tool("submit_generation", IMAGE))
            assert err["code"] in ("rate_limit_exceeded", "submit_pending", "deadline_exceeded"), err
            emu.emulator.faults.clear()
            while True:
                again = await client.call_tool("submit_generation", IMAGE)
                if not again.is_error:
                    break
                await anyio.sleep(0.2)
    assert storm.hits >= 1
    assert len(created_by(emu, live_key)) == 1 and balance_of(emu, live_key) == 1000 - PRICE


@pytest.mark.parametrize("url", [
    "https://example.com/hook\r\nX-Injected: 1", "https://example.com/a b", "https://user:pw@example.com/hook",
    "https://169.254.169.254/latest/meta-data", "https://10.0.0.7/hook", "https://[::1]/hook",
    "https://127.0.0.1/hook", "http://example.com/hook", "https://[fe80::1]/hook", "javascript:alert(1)",
])
async def test_hostile_webhook_urls_are_refused_before_any_call(
        emu: EmulatorServer, live_key: Key, tmp_path: Path, url: str) -> None:
    submits = emu.emulator.calls.get("submit", 0)
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        with anyio.fail_after(20):
            for tool, args in (("submit_generation", {**IMAGE, "webhook_url": url}),
                               ("generate", {**IMAGE, "options": {"webhook_url": url}, "confirm_cost": True})):
                assert error_of(await client.call_tool(tool, args))["code"] == "invalid_input"
            assert not (await client.call_tool("list_models", {})).is_error  # still serving
    assert emu.emulator.calls.get("submit", 0) == submits


@pytest.mark.parametrize("args", [
    {**IMAGE, "idempotency_key": "abc\n"}, {**IMAGE, "idempotency_key": " lead"}, {**IMAGE, "idempotency_key": "clé"},
    {**IMAGE, "idempotency_key": ""}, {**IMAGE, "idempotency_key": "k" * 256},
])
async def test_hostile_idempotency_keys(emu: EmulatorServer, live_key: Key, tmp_path: Path,
                                        args: dict[str, object]) -> None:
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        with anyio.fail_after(20):
            assert error_of(await client.call_tool("submit_generation", args))["code"] == "invalid_input"
    assert created_by(emu, live_key) == []


async def test_lone_surrogate_in_a_prompt_is_refused(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    """Sent as the JSON escape ``\\ud800`` over raw Streamable HTTP (a Python client would refuse to encode it)."""
    import httpx
    from procs import http_server

    hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        init = httpx.post(sp.url, headers=hdrs, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        session = {**hdrs, "Mcp-Session-Id": init.headers["mcp-session-id"], "Mcp-Protocol-Version": "2025-06-18"}
        httpx.post(sp.url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        raw = ('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"submit_generation","arguments":'
               '{"model":"nano-banana-2","input":{"prompt":"bad \\ud800 text"}}}}')
        r = httpx.post(sp.url, headers=session, content=raw.encode())
        # Refused before any tool runs: a JSON-RPC parse error from the transport (strict JSON), or, where a
        # surrogate gets through decoding, invalid_input from the argument check. Never an opaque failure.
        assert (r.status_code, '"code":-32700') == (400, '"code":-32700') and '"code":-32700' in r.text \
            or "invalid_input" in r.text and "surrogate" in r.text, r.text
        assert httpx.get(f"{sp.base}/healthz").status_code == 200
    assert created_by(emu, live_key) == []


def test_lone_surrogate_that_gets_through_decoding_is_invalid_input() -> None:
    from clipia_mcp.core import validation
    from clipia_mcp.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="surrogate"):
        validation.generation_input({"prompt": "bad \ud800 text"})


@pytest.mark.parametrize("url", [
    "https://example.com/hook\r\nX-Injected: 1", "https://user@example.com/hook", "https://169.254.169.254/x",
    "https://10.1.2.3/x", "https://[::1]/x", "https://localhost/x", "https://example.com:99999/x",
])
def test_the_emulator_refuses_hostile_webhook_urls_and_lives_on(emu: EmulatorServer, live_key: Key,
                                                                  url: str) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {live_key.value}"}
    r = httpx.post(f"{emu.base_url}/v1/models/nano-banana-2", headers=auth,
                   json={"input": {"prompt": "x"}, "webhook_url": url})
    assert r.status_code == 400 and r.json()["error"]["code"] == "webhook_url_invalid", r.text
    assert httpx.get(f"{emu.base_url}/v1/account", headers=auth).status_code == 200
    assert created_by(emu, live_key) == []
