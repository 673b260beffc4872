"""Caller-key mode under attack: invented keys are never served and cost (almost) no memory; real keys are
confirmed once; a caller's interrupted submit is recovered on its first call after a restart."""

from __future__ import annotations

import secrets
from pathlib import Path

import anyio
import httpx
import pytest
from attack_helpers import client_as, hosted_env, rss_kib
from conftest import error_of, structured
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.faults import Fault

pytestmark = pytest.mark.anyio
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}



async def hammer(url: str, keys: list[str]) -> dict[int, int]:
    statuses: dict[int, int] = {}
    limit = anyio.Semaphore(32)

    async def one(http: httpx.AsyncClient, key: str) -> None:
        async with limit:
            r = await http.post(url, json=LIST, headers={**HEADERS, "Authorization": f"Bearer {key}"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    async with httpx.AsyncClient(timeout=30) as http, anyio.create_task_group() as tg:
        for key in keys:
            tg.start_soon(one, http, key)
    return statuses


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_invented_keys_are_refused_and_cost_no_memory(emu: EmulatorServer, tmp_path: Path) -> None:
    real = emu.new_key(balance=100)
    with http_server("streamable-http", hosted_env(emu, tmp_path), "--auth", "caller-key") as sp:
        with anyio.fail_after(120):
            warm = await hammer(sp.url, [f"clipia_live_{secrets.token_hex(16)}" for _ in range(50)])
            assert set(warm) <= {401, 429}
            before = rss_kib(sp.proc.pid)
            invented = await hammer(sp.url, [f"clipia_live_{secrets.token_hex(16)}" for _ in range(2000)])
            after = rss_kib(sp.proc.pid)
            assert set(invented) <= {401, 429} and sum(invented.values()) == 2000, invented
            assert invented.get(429, 0) > 0  # new identities are rate-limited
            print(f"RSS {before} KiB -> {after} KiB after 2000 invented keys: {invented}")
            assert after - before < 16 * 1024, (before, after)  # KiB; unbounded caching took ~700 KiB per key
            # A real key still gets in (after the bucket refills), and is confirmed once.
            calls = emu.emulator.calls.get("account", 0)
            status = 429
            while status == 429:
                r = httpx.post(sp.url, json=LIST, headers={**HEADERS, "Authorization": f"Bearer {real.value}"})
                status = r.status_code
                if status == 429:
                    await anyio.sleep(float(r.headers["retry-after"]))
            assert status not in (401, 429, 503)  # admitted (the MCP layer answers this bare call itself)
            for _ in range(5):
                r = httpx.post(sp.url, json=LIST, headers={**HEADERS, "X-Api-Key": real.value})
                assert r.status_code == status
            assert emu.emulator.calls.get("account", 0) - calls == 1
    assert real.value not in "".join(sp.stderr)


async def test_caller_key_recovery_on_first_call(emu: EmulatorServer, tmp_path: Path) -> None:
    """A submit whose answer was lost before a kill is found again on the caller's first call after restart."""
    key = emu.new_key(balance=1000)
    env = hosted_env(emu, tmp_path)
    with http_server("streamable-http", env, "--auth", "caller-key") as sp:
        emu.emulator.faults.add(Fault(route="submit", kind="drop", times=None))
        async with client_as(sp.url, key.value) as c:
            with anyio.fail_after(60):
                res = await c.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "lost"}})
                assert error_of(res)["code"] == "submit_pending"
        sp.proc.kill()  # kill -9: the background resolution never ran to the end
        sp.proc.wait(10)
    emu.emulator.faults.clear()
    charged = [rid for rid, req in emu.emulator.requests.items() if req.key == key.value]
    assert len(charged) == 1  # the API created (and charged) it once
    with http_server("streamable-http", env, "--auth", "caller-key") as sp:
        async with client_as(sp.url, key.value) as c:
            with anyio.fail_after(60):
                while structured(await c.call_tool("list_requests", {}))["count"] == 0:
                    await anyio.sleep(0.05)
                listed = structured(await c.call_tool("list_requests", {}))["requests"]
                assert [r["request_id"] for r in listed] == charged
    assert [rid for rid, req in emu.emulator.requests.items() if req.key == key.value] == charged


async def test_one_keys_429_never_stalls_another_key(emu: EmulatorServer, tmp_path: Path) -> None:
    """Caller A's key gets a 429 with Retry-After 30 s: only A's polls pause; B is answered at once."""
    emu.emulator.config.time_scale = 0.5  # renders outlast the test
    a, b = emu.new_key(balance=100), emu.new_key(balance=100)
    env = hosted_env(emu, tmp_path, CLIPIA_MCP_RETRY_AFTER_CAP="30", CLIPIA_MCP_DEADLINE="40")
    with http_server("streamable-http", env, "--auth", "caller-key") as sp:
        async with client_as(sp.url, a.value) as ca, client_as(sp.url, b.value) as cb:
            with anyio.fail_after(30):
                structured(await ca.call_tool("submit_generation", {
                    "model": "nano-banana-2", "input": {"prompt": "A"}}))["request_id"]
                limit = emu.emulator.faults.add(Fault(route="status", status=429, code="rate_limit_exceeded",
                                                      retry_after="30", times=1))
                while limit.hits == 0:  # A's poll loop meets the 429: A's key pauses for 30 s
                    await anyio.sleep(0.02)
                before = emu.emulator.calls.get("status", 0)  # A's key is paused: later polls are B's
                rb = structured(await cb.call_tool("submit_generation", {
                    "model": "nano-banana-2", "input": {"prompt": "B"}}))["request_id"]
            with anyio.fail_after(10):  # far below A's 30 s pause
                got = await cb.call_tool("get_status", {"request_id": rb})
            assert structured(got)["status"] in ("IN_QUEUE", "IN_PROGRESS")
            # B really polled upstream (its own loop or this call: whichever came first under load).
            assert emu.emulator.calls.get("status", 0) > before


async def test_the_caller_pool_is_bounded_and_confirms_once(emu: EmulatorServer, tmp_path: Path) -> None:
    from clipia_mcp.core.settings import Settings
    from clipia_mcp.transports.auth import CallerPool

    class Service:
        recovered: list[str] = []

        def recover_later(self, caller: object) -> None:
            self.recovered.append(getattr(caller, "owner", ""))

    keys = [emu.new_key() for _ in range(3)]
    pool = CallerPool(Settings(), "caller-key", size=2)
    pool.start(Settings(retry_base_delay=0.01), emu.base_url, None, Service())  # type: ignore[arg-type]
    try:
        with anyio.fail_after(30):
            for key in keys + keys[-1:]:
                assert (await pool.admit(key.value)).status == 200
            assert pool.confirmations == 3 and len(pool._callers) == 2  # noqa: SLF001 - the bound
            assert (await pool.admit(keys[0].value)).status == 200  # evicted: confirmed again
            assert pool.confirmations == 4
            assert (await pool.admit("clipia_live_" + "0" * 32)).status == 401
            assert (await pool.admit("clipia_live_" + "0" * 32)).status == 401
            assert pool.confirmations == 5  # the refusal is remembered
            assert (await pool.admit("not-a-key")).status == 401
    finally:
        await pool.aclose()
