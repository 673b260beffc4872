"""Tenants sharing the operator's key (token mode, a real HTTP server process): idempotency namespaces,
change notifications, and spend limits, counting what the emulator charged."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from attack_helpers import IMAGE, TOKENS, as_tenant
from conftest import balance_of, error_of, server_env, structured
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio



async def test_idempotency_keys_are_per_tenant(emu: EmulatorServer, tmp_path: Path) -> None:
    key = emu.new_key(balance=10_000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS))
    with http_server("streamable-http", env) as sp:
        async with as_tenant(sp.url, TOKENS[0]) as a, as_tenant(sp.url, TOKENS[1]) as b:
            with anyio.fail_after(60):
                before = balance_of(emu, key)
                mine = structured(await a.call_tool("submit_generation", {**IMAGE, "idempotency_key": "job-1"}))
                # B reuses A's key with another input: B's own request, no hint that A used the key.
                other = await b.call_tool("submit_generation", {
                    **IMAGE, "input": {"prompt": "something else"}, "idempotency_key": "job-1"})
                assert not other.is_error, other
                theirs = structured(other)
                assert theirs["request_id"] != mine["request_id"] and theirs["deduplicated"] is False
                assert theirs["idempotency_key"] == "job-1"
                # B repeating its own submit deduplicates within B only.
                again = structured(await b.call_tool("submit_generation", {
                    **IMAGE, "input": {"prompt": "something else"}, "idempotency_key": "job-1"}))
                assert again["request_id"] == theirs["request_id"] and again["deduplicated"] is True
                # A with the same key and a new input: reuse error for A (its own key), not B's.
                reuse = await a.call_tool("submit_generation", {
                    **IMAGE, "input": {"prompt": "a third"}, "idempotency_key": "job-1"})
                assert error_of(reuse)["code"] == "idempotency_key_reuse"
                # B reading A's request: exactly like an unknown id.
                res = await b.call_tool("get_status", {"request_id": mine["request_id"]})
                assert error_of(res)["code"] == "not_found"
                spent = before - balance_of(emu, key)
                assert spent == mine["cost"] + theirs["cost"]  # two generations, each paid once


async def test_list_changed_reaches_only_the_submitting_tenant(emu: EmulatorServer, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.05
    key = emu.new_key(balance=10_000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS))
    with http_server("streamable-http", env) as sp:
        async with as_tenant(sp.url, TOKENS[0]) as a, as_tenant(sp.url, TOKENS[1]) as b:
            with anyio.fail_after(60):
                own = structured(await b.call_tool("submit_generation", {
                    "model": "seedance-2-fast-t2v", "input": {"prompt": "B's sentinel"}}))["request_id"]
                own_uri = f"clipia://requests/{own}"
                async with a.listen(resources_list_changed=True) as a_sub, \
                        b.listen(resources_list_changed=True, resource_subscriptions=[own_uri]) as b_sub:
                    await a.call_tool("submit_generation", IMAGE)
                    assert await a_sub.__anext__() == ResourcesListChanged()  # A hears its own submit
                    # Events reach B in publish order: anything from A's submit would come before this update.
                    await b.call_tool("wait_for_result", {"request_id": own, "timeout_s": 20})
                    first = await b_sub.__anext__()
                    assert first == ResourceUpdated(uri=own_uri), first
                    await b.call_tool("submit_generation", {**IMAGE, "input": {"prompt": "B's own"}})
                    while (event := await b_sub.__anext__()) != ResourcesListChanged():
                        assert isinstance(event, ResourceUpdated)


async def test_spend_limits_per_call_and_per_tenant_day(emu: EmulatorServer, tmp_path: Path) -> None:
    key = emu.new_key(balance=10_000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS))
    with http_server("streamable-http", env) as sp:  # learn the price first
        async with as_tenant(sp.url, TOKENS[0]) as a:
            price = structured(await a.call_tool("estimate_cost", IMAGE))["credits"]
    assert price > 0
    env.update(CLIPIA_MCP_TENANT_DAILY_CREDITS=str(2 * price + price // 2),
               CLIPIA_MCP_MAX_COST_PER_CALL=str(price))
    with http_server("streamable-http", env) as sp:
        async with as_tenant(sp.url, TOKENS[0]) as a, as_tenant(sp.url, TOKENS[1]) as b:
            with anyio.fail_after(60):
                before = balance_of(emu, key)
                limits = structured(await a.call_tool("get_balance", {}))["spend_limits"]
                assert limits == {"max_cost_per_call": price, "remaining_today": 2 * price + price // 2}
                # (no monthly limit is set: the empty field is left out)
                for n in range(2):
                    structured(await a.call_tool("submit_generation", {**IMAGE, "input": {"prompt": f"a{n}"}}))
                over = error_of(await a.call_tool("submit_generation", {**IMAGE, "input": {"prompt": "a2"}}))
                assert over["code"] == "spend_limit_exceeded"
                assert over["remaining_credits"] == price // 2 and over["limit"] == "daily"
                # A repeat of a paid submit is not a new spend.
                again = structured(await a.call_tool("submit_generation", {**IMAGE, "input": {"prompt": "a1"}}))
                assert again["deduplicated"] is True
                # Tenant B has its own allowance.
                structured(await b.call_tool("submit_generation", {**IMAGE, "input": {"prompt": "b0"}}))
                # A call above the per-call maximum is refused for everyone, before any charge.
                big = error_of(await b.call_tool("submit_generation", {
                    "model": "seedance-2-fast-t2v", "input": {"prompt": "long video", "duration": 15}}))
                assert big["code"] == "spend_limit_exceeded" and big["limit"] == "per_call"
                assert before - balance_of(emu, key) == 3 * price


async def test_concurrent_submits_cannot_slip_under_a_cap(emu: EmulatorServer, tmp_path: Path) -> None:
    """Six different submits of one tenant at once against a cap of two: exactly two are paid."""
    key = emu.new_key(balance=10_000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS), CLIPIA_MCP_TENANT_MONTHLY_CREDITS="8")
    codes: list[str] = []
    with http_server("streamable-http", env) as sp:
        async with as_tenant(sp.url, TOKENS[0]) as a:
            with anyio.fail_after(60):
                before = balance_of(emu, key)

                async def one(n: int) -> None:
                    res = await a.call_tool("submit_generation", {**IMAGE, "input": {"prompt": f"race {n}"}})
                    codes.append(error_of(res)["code"] if res.is_error else "ok")

                async with anyio.create_task_group() as tg:
                    for n in range(6):
                        tg.start_soon(one, n)
                limits = structured(await a.call_tool("get_balance", {}))["spend_limits"]
    assert sorted(codes) == ["ok", "ok"] + ["spend_limit_exceeded"] * 4
    assert before - balance_of(emu, key) == 8 and limits["remaining_this_month"] == 0


async def test_the_key_shown_with_submit_pending_can_be_passed_back(emu: EmulatorServer, tmp_path: Path) -> None:
    """A tenant told "recorded under idempotency_key K" that retries with idempotency_key=K pays once."""
    import re

    from clipia_mcp.sandbox import Fault

    key = emu.new_key(balance=10_000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS))
    with http_server("streamable-http", env) as sp:
        async with as_tenant(sp.url, TOKENS[0]) as a, as_tenant(sp.url, TOKENS[1]) as b:
            with anyio.fail_after(60):
                emu.emulator.faults.add(Fault(route="submit", kind="drop", times=None))
                args = {**IMAGE, "input": {"prompt": "pending"}}
                err = error_of(await a.call_tool("submit_generation", args))
                assert err["code"] == "submit_pending"
                emu.emulator.faults.clear()
                shown = re.search(r"idempotency_key '([^']+)'", err["message"])
                assert shown is not None
                again = structured(await a.call_tool("submit_generation", {**args, "idempotency_key": shown[1]}))
                # Another tenant passing the same string gets its own request, not A's.
                other = structured(await b.call_tool("submit_generation", {**args, "idempotency_key": shown[1]}))
                assert other["request_id"] != again["request_id"]
    made = [r.request_id for r in emu.emulator.requests.values()
            if r.key == key.value and r.input.get("prompt") == "pending"]
    assert sorted(made) == sorted([again["request_id"], other["request_id"]])
