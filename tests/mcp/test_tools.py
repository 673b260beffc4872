"""The tools through the real mcp.Client connected in memory (no subprocess: the transport is not the point here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import balance_of, error_of, in_memory, server_env, structured
from mcp import Client
from mcp.shared.exceptions import MCPError

from clipia_mcp.sandbox import EmulatorServer, Fault

pytestmark = pytest.mark.anyio
UNKNOWN = "764cabcf-b745-4b3e-ae38-1200304cf45b"


async def test_wait_timeout_returns_status_then_second_call_finishes(frozen_emu: EmulatorServer,
                                                                     tmp_path: Path) -> None:
    key = frozen_emu.new_key(balance=1000)
    async with Client(in_memory(server_env(frozen_emu, key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "slow"}}))["request_id"]
        with anyio.fail_after(30):
            first = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 0.2})
        d1 = structured(first)
        assert first.is_error is not True
        assert (d1["done"], d1["status"]) == (False, "IN_QUEUE")  # emulated time stands still
        assert "wait_for_result" in d1["next_step"]
        frozen_emu.emulator.clock.advance(3600)
        with anyio.fail_after(30):
            d2 = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20}))
        assert d2["status"] == "COMPLETED"


async def test_error_results_carry_stable_codes(own_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = own_emu
    poor = emu.new_key(balance=1)
    async with Client(in_memory(server_env(emu, poor, tmp_path))) as client:
        r402 = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "x"}})
        assert error_of(r402) == {"code": "insufficient_credits", "http_status": 402, "type": "billing_error",
                                  "message": "Not enough credits for this generation. Please top up your balance."}
        r404 = await client.call_tool("get_status", {"request_id": UNKNOWN})
        assert error_of(r404)["code"] == "not_found"
        assert error_of(await client.call_tool("get_model", {"model": "no-such-model"}))["code"] == "model_not_found"
        emu.emulator.faults.add(Fault(route="account", status=429, code="rate_limit_exceeded", retry_after="7",
                                      times=None))
        r429 = await client.call_tool("get_balance", {})
        assert error_of(r429)["code"] == "rate_limit_exceeded" and error_of(r429)["retry_after"] == 7
        emu.emulator.faults.clear()
        calls = dict(emu.emulator.calls)
        bad = await client.call_tool("get_status", {"request_id": "not-a-uuid"})
        assert error_of(bad)["code"] == "invalid_input"
        bad_model = await client.call_tool("submit_generation", {"model": "../../account", "input": {"prompt": "x"}})
        assert error_of(bad_model)["code"] == "invalid_input"
        bad_hook = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "x"},
                                                                "webhook_url": "https://169.254.169.254/latest"})
        assert error_of(bad_hook)["code"] == "invalid_input"
        bad_key = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "x"},
                                                               "idempotency_key": "abc\n"})
        assert error_of(bad_key)["code"] == "invalid_input"
        assert emu.emulator.calls == calls  # rejected locally: no upstream call
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
        assert info.value.error.code == -32602
    revoked = emu.new_key()
    revoked.revoked = True
    submits = emu.emulator.calls.get("submit", 0)
    async with Client(in_memory(server_env(emu, revoked, tmp_path / "r"))) as client:
        r401 = await client.call_tool("get_balance", {})
        assert error_of(r401)["code"] == "invalid_api_key"
        assert revoked.value not in r401.content[0].text
    assert emu.emulator.calls.get("submit", 0) == submits


async def test_resources_list_read_and_templates(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    async with Client(in_memory(server_env(emu, live_key, tmp_path))) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["clipia://requests/{request_id}"]
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "a lighthouse"}}))["request_id"]
        with anyio.fail_after(30):
            await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20})
        listed = (await client.list_resources()).resources
        listed = [r for r in listed if r.uri != "clipia://spend"]  # the spending summary is listed too
        assert [r.uri for r in listed] == [f"clipia://requests/{rid}"]
        assert listed[0].description == "a lighthouse"
        body = json.loads((await client.read_resource(f"clipia://requests/{rid}")).contents[0].text)
        assert body["status"] == "COMPLETED" and body["media"][0]["mime_type"] == "image/png"
        with pytest.raises(MCPError) as info:
            await client.read_resource(f"clipia://requests/{UNKNOWN}")
        assert info.value.error.code == -32602


async def test_get_result_links_and_inline_preview(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    key = frozen_emu.new_key(balance=1000)
    async with Client(in_memory(server_env(frozen_emu, key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "two", "num_images": 2}}))["request_id"]
        pending = structured(await client.call_tool("get_result", {"request_id": rid}))
        assert pending["done"] is False and pending["media"] == []
        frozen_emu.emulator.clock.advance(60)
        with anyio.fail_after(30):
            await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20})
        res = await client.call_tool("get_result", {"request_id": rid})
        kinds = [b.type for b in res.content]
        assert kinds == ["text", "image", "resource_link", "resource_link"]
        preview = res.content[1]
        assert preview.mime_type == "image/png" and len(preview.data) < 256 * 1024 * 4 / 3 + 4
        urls = [b.uri for b in res.content if b.type == "resource_link"]
        assert all(u.endswith("/original.png") for u in urls)
        assert httpx.get(urls[0]).content.startswith(b"\x89PNG")
        no_preview = await client.call_tool("get_result", {"request_id": rid, "include_preview": False})
        assert [b.type for b in no_preview.content] == ["text", "resource_link", "resource_link"]


async def test_other_tools(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    async with Client(in_memory(server_env(emu, live_key, tmp_path))) as client:
        videos = structured(await client.call_tool("list_models", {"type": "video"}))
        assert {m["slug"] for m in videos["models"]} == {"seedance-2-fast-t2v", "seedance-2-fast-i2v",
                                                         "video-upscale"}
        found = structured(await client.call_tool("list_models", {"search": "SUNO"}))
        assert [m["slug"] for m in found["models"]] == ["suno-music"]
        detail = structured(await client.call_tool("get_model", {"model": "seedance-2-fast-i2v"}))
        names = [p["name"] for p in detail["input_schema"]["parameters"]]
        assert "image_url" in names and detail["pricing"]["credits"] == 47
        est = structured(await client.call_tool(
            "estimate_cost", {"model": "seedance-2-fast-t2v", "input": {"prompt": "x", "duration": 10}}))
        assert (est["credits"], est["balance"], est["affordable"]) == (94, 1000, True)
        bal = structured(await client.call_tool("get_balance", {}))
        assert bal["credits"] == 1000 and bal["sandbox"] is False
        lst = structured(await client.call_tool("list_requests", {}))
        assert lst == {"count": 0, "requests": []}


async def test_identical_submits_are_deduplicated(own_emu: EmulatorServer, tmp_path: Path) -> None:
    key = own_emu.new_key(balance=1000)
    args: dict[str, Any] = {"model": "nano-banana-2", "input": {"prompt": "same"}}
    async with Client(in_memory(server_env(own_emu, key, tmp_path))) as client:
        a = structured(await client.call_tool("submit_generation", args))
        b = structured(await client.call_tool("submit_generation", args))
        k1 = structured(await client.call_tool("submit_generation", {**args, "idempotency_key": "job-1"}))
        k2 = structured(await client.call_tool("submit_generation", {**args, "idempotency_key": "job-1"}))
        reuse = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "other"},
                                                             "idempotency_key": "job-1"})
    assert a["request_id"] == b["request_id"] and b["deduplicated"] is True
    assert k1["request_id"] == k2["request_id"] != a["request_id"] and k2["deduplicated"] is True
    assert error_of(reuse)["code"] == "idempotency_key_reuse"
    assert balance_of(own_emu, key) == 1000 - 2 * 4
    # The duplicates never reached the API as new submits: two requests exist upstream, two charges were made.
    # (HTTP attempts are not counted: a retry of one submit under load reuses its key and creates nothing.)
    created = [r.request_id for r in own_emu.emulator.requests.values() if r.key == key.value]
    assert sorted(created) == sorted([a["request_id"], k1["request_id"]])
    assert [rid for rid, _ in own_emu.emulator.charges] == created
