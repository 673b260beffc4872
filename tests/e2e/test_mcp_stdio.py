"""clipia-mcp spawned as a user runs it (stdio), driven by the real mcp.Client, against the emulator over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import balance_of, error_of, server_command, server_env, structured
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from clipia_mcp.sandbox import EmulatorServer, Fault

pytestmark = pytest.mark.anyio

TOOLS = {"submit_generation", "get_status", "get_result", "wait_for_result", "list_models", "get_model",
         "estimate_cost", "get_balance", "list_requests", "generate", "delete_clip"}


def stdio(env: dict[str, str]) -> StdioServerParameters:
    cmd = server_command()
    return StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_schemas_and_a_full_generation_with_progress(
        emu: EmulatorServer, live_key, tmp_path: Path, mode: str) -> None:
    emu.emulator.config.time_scale = 0.02  # video: ~0.1 s queue, ~0.8 s render
    async with Client(stdio(server_env(emu, live_key, tmp_path)), mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for t in tools.values():
            assert t.description and t.output_schema and t.annotations is not None
            assert t.input_schema["type"] == "object"
        assert tools["get_status"].annotations.read_only_hint is True
        assert tools["submit_generation"].annotations.idempotent_hint is False
        assert "maximum" not in tools["wait_for_result"].input_schema["properties"]["timeout_s"]["anyOf"][0]
        assert set(tools["get_result"].output_schema["properties"]) >= {"request_id", "status", "media", "done"}

        sub = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "waves at dusk"}}))
        assert sub["status"] == "IN_QUEUE" and sub["cost"] == 47 and sub["deduplicated"] is False
        rid = sub["request_id"]
        assert sub["resource_uri"] == f"clipia://requests/{rid}"

        events: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            events.append((progress, total, message))

        with anyio.fail_after(20):
            res = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15},
                                         progress_callback=on_progress)
        data = structured(res)
        assert res.is_error is not True
        assert (data["status"], data["done"], data["cost"], data["progress"]) == ("COMPLETED", True, 47, 100)
        assert data["media"][0]["kind"] == "video" and data["media"][0]["mime_type"] == "video/mp4"
        links = [b for b in res.content if b.type == "resource_link"]
        assert [(b.uri, b.mime_type) for b in links] == [(data["media"][0]["url"], "video/mp4")]
        assert "base64" not in json.dumps(data)
        assert json.loads(res.content[0].text) == data  # the text block mirrors the structured result
        with anyio.fail_after(5):
            while not events or events[-1][0] != 100:
                await anyio.sleep(0.01)
        values = [p for p, _, _ in events]
        assert values == sorted(values) and len(set(values)) == len(values)
        assert all(total == 100 for _, total, _ in events)
        assert any("rendering" in (m or "") for _, _, m in events)
        assert events[-1][2] == f"completed ({rid[:8]})"
    assert balance_of(emu, live_key) == 1000 - 47


async def test_wait_timeout_returns_status_then_second_call_finishes(
        emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "seedance-2-fast-t2v", "input": {"prompt": "slow [[slow]]"}}))["request_id"]
        first = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 0.3})
        d1 = structured(first)
        assert first.is_error is not True
        assert d1["done"] is False and d1["status"] in ("IN_QUEUE", "IN_PROGRESS")
        assert "wait_for_result" in d1["next_step"]
        with anyio.fail_after(30):
            d2 = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20}))
        assert d2["status"] == "COMPLETED"


async def test_error_results_carry_stable_codes(emu: EmulatorServer, tmp_path: Path) -> None:
    poor = emu.new_key(balance=1)
    async with Client(stdio(server_env(emu, poor, tmp_path))) as client:
        r402 = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "x"}})
        assert r402.is_error is True
        assert error_of(r402) == {"code": "insufficient_credits", "http_status": 402, "type": "billing_error",
                                  "message": "Not enough credits for this generation. Please top up your balance."}
        assert r402.content[0].text.startswith("Error insufficient_credits:")
        r404 = await client.call_tool("get_status", {"request_id": "764cabcf-b745-4b3e-ae38-1200304cf45b"})
        assert r404.is_error is True and error_of(r404)["code"] == "not_found"
        r404m = await client.call_tool("get_model", {"model": "no-such-model"})
        assert error_of(r404m)["code"] == "model_not_found"
        emu.emulator.faults.add(Fault(route="account", status=429, code="rate_limit_exceeded", retry_after="7",
                                      times=None))
        r429 = await client.call_tool("get_balance", {})
        assert r429.is_error is True
        assert error_of(r429)["code"] == "rate_limit_exceeded"
        assert error_of(r429)["retry_after"] == 7
        emu.emulator.faults.clear()
        bad = await client.call_tool("get_status", {"request_id": "not-a-uuid"})
        assert bad.is_error is True and error_of(bad)["code"] == "invalid_input"
        bad_model = await client.call_tool("submit_generation", {"model": "../../account", "input": {"prompt": "x"}})
        assert error_of(bad_model)["code"] == "invalid_input"
        with pytest.raises(MCPError) as info:
            await client.call_tool("no_such_tool", {})
        assert info.value.error.code == -32602
    calls_before = dict(emu.emulator.calls)
    revoked = emu.new_key()
    revoked.revoked = True
    async with Client(stdio(server_env(emu, revoked, tmp_path / "r"))) as client:
        r401 = await client.call_tool("get_balance", {})
        assert error_of(r401)["code"] == "invalid_api_key"
        assert revoked.value not in r401.content[0].text
    assert emu.emulator.calls.get("submit", 0) == calls_before.get("submit", 0)


async def test_resources_list_read_and_templates(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["clipia://requests/{request_id}"]
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "a lighthouse"}}))["request_id"]
        await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 10})
        listed = (await client.list_resources()).resources
        assert [r.uri for r in listed] == [f"clipia://requests/{rid}"]
        assert listed[0].description == "a lighthouse"
        body = json.loads((await client.read_resource(f"clipia://requests/{rid}")).contents[0].text)
        assert body["status"] == "COMPLETED" and body["media"][0]["mime_type"] == "image/png"
        with pytest.raises(MCPError) as info:
            await client.read_resource("clipia://requests/764cabcf-b745-4b3e-ae38-1200304cf45b")
        assert info.value.error.code == -32602


async def test_get_result_links_and_inline_preview(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.2  # an image takes ~0.6 s
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "two", "num_images": 2}}))["request_id"]
        pending = structured(await client.call_tool("get_result", {"request_id": rid}))
        assert pending["done"] is False and pending["media"] == []
        await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 10})
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
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
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


async def test_identical_submits_are_deduplicated(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    args: dict[str, Any] = {"model": "nano-banana-2", "input": {"prompt": "same"}}
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        a = structured(await client.call_tool("submit_generation", args))
        b = structured(await client.call_tool("submit_generation", args))
        k1 = structured(await client.call_tool("submit_generation", {**args, "idempotency_key": "job-1"}))
        k2 = structured(await client.call_tool("submit_generation", {**args, "idempotency_key": "job-1"}))
        reuse = await client.call_tool("submit_generation", {"model": "nano-banana-2", "input": {"prompt": "other"},
                                                             "idempotency_key": "job-1"})
    assert a["request_id"] == b["request_id"] and b["deduplicated"] is True
    assert k1["request_id"] == k2["request_id"] != a["request_id"] and k2["deduplicated"] is True
    assert error_of(reuse)["code"] == "idempotency_key_reuse"
    assert balance_of(emu, live_key) == 1000 - 2 * 4
    assert emu.emulator.calls.get("submit") is not None
