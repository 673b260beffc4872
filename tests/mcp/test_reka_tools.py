"""Reka Vision clip generation behind the same tools (in-memory MCP client, Reka emulator over loopback HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import error_of, in_memory, server_env, structured
from mcp import Client
from support import TasksClient

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.media import parse_boxes
from clipia_mcp.sandbox.reka import RekaConfig, RekaEmulator, RekaServer

pytestmark = pytest.mark.anyio
SOURCE = {"video_urls": ["https://www.youtube.com/watch?v=dQw4w9WgXcQ"], "prompt": "best moments"}


@pytest.fixture
def reka() -> Iterator[RekaServer]:
    """A Reka emulator per test: tests change its limits and count its calls."""
    server = RekaServer(RekaEmulator(RekaConfig(time_scale=0.005))).start_in_thread()
    yield server
    server.stop_thread()


def env_for(emu: EmulatorServer, key, reka: RekaServer, tmp_path: Path) -> dict[str, str]:
    return server_env(emu, key, tmp_path, REKA_API_KEY=reka.new_key(), REKA_BASE_URL=reka.base_url)


async def test_reka_clips_through_the_same_tools(emu: EmulatorServer, live_key, reka: RekaServer,
                                                 tmp_path: Path) -> None:
    env = env_for(emu, live_key, reka, tmp_path)
    async with Client(in_memory(env)) as client:
        models = structured(await client.call_tool("list_models", {"search": "reka"}))["models"]
        assert [m["slug"] for m in models] == ["reka/clips"]
        detail = structured(await client.call_tool("get_model", {"model": "reka/clips"}))
        assert detail["input_schema"]["parameters"][0]["name"] == "video_urls"
        sub = structured(await client.call_tool("submit_generation", {"model": "reka/clips", "input": {
            **SOURCE, "generation_config": {"template": "compilation", "num_generations": 2},
            "rendering_config": {"aspect_ratio": "9:16", "resolution": 720}}}))
        rid = sub["request_id"]
        assert sub["status"] == "IN_QUEUE" and sub["model"] == "reka/clips"
        with anyio.fail_after(60):
            done = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 45})
        data = structured(done)
        assert data["status"] == "COMPLETED" and [m["kind"] for m in data["media"]] == ["video", "video"]
        clips = data["output"]["clips"]
        assert {"title", "video_url", "caption", "hashtags", "ai_score"} <= set(clips[0])
        links = [b.uri for b in done.content if b.type == "resource_link"]
        assert links == [c["video_url"] for c in clips]
        assert parse_boxes(httpx.get(links[0]).content)[0][0] == b"ftyp"
        status = structured(await client.call_tool("get_status", {"request_id": rid}))
        assert status["status"] == "COMPLETED"
        assert structured(await client.call_tool("list_requests", {}))["requests"][0]["model"] == "reka/clips"
        resource = (await client.read_resource(f"clipia://requests/{rid}")).contents[0].text
        assert '"reka/clips"' in resource
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["delete_clip"].annotations.destructive_hint is True
        deleted = structured(await client.call_tool("delete_clip", {"request_id": rid}))
        assert deleted == {"request_id": rid, "deleted": True, "deleted_input_video": False}
        again = await client.call_tool("delete_clip", {"request_id": rid})
        assert again.is_error and error_of(again)["code"] == "not_found"
    assert rid not in reka.emulator.clips


async def test_reka_validation_failure_and_limits(emu: EmulatorServer, live_key, reka: RekaServer,
                                                  tmp_path: Path) -> None:
    env = env_for(emu, live_key, reka, tmp_path)
    before = dict(reka.emulator.calls)
    async with Client(in_memory(env)) as client:
        bad = await client.call_tool("submit_generation", {"model": "reka/clips", "input": {
            **SOURCE, "rendering_config": {"aspect_ratio": "21:9"}}})
        assert bad.is_error and error_of(bad)["code"] == "invalid_input"
        assert "rendering_config.aspect_ratio" in bad.content[0].text
        no_src = await client.call_tool("submit_generation", {"model": "reka/clips", "input": {"prompt": "x"}})
        assert "video_urls" in no_src.content[0].text
        assert reka.emulator.calls == before  # rejected locally
        failed = structured(await client.call_tool("generate", {"model": "reka/clips", "input": {
            **SOURCE, "prompt": "x [[fail]]"}, "options": {"wait_s": 45}}))
        assert failed["status"] == "FAILED" and failed["error"]["message"] == "Could not process the source video."
        reka.emulator.config.daily_limit = 1  # this key already used its one job today
        limited = await client.call_tool("submit_generation", {"model": "reka/clips", "input": {
            **SOURCE, "prompt": "one more"}})
        reka.emulator.config.daily_limit = 10
        err = error_of(limited)
        assert err["code"] == "rate_limit_exceeded" and err["retry_after"] > 3600
    no_reka = server_env(emu, live_key, tmp_path / "plain")
    async with Client(in_memory(no_reka)) as client:
        res = await client.call_tool("submit_generation", {"model": "reka/clips", "input": SOURCE})
        assert res.is_error and "REKA_API_KEY" in res.content[0].text


async def test_reka_as_a_task(emu: EmulatorServer, live_key, reka: RekaServer, tmp_path: Path) -> None:
    ext = TasksClient()
    async with Client(in_memory(env_for(emu, live_key, reka, tmp_path)), extensions=[ext]) as client:
        res = structured(await client.call_tool("generate", {"model": "reka/clips", "input": SOURCE}))
    assert res["status"] == "COMPLETED" and res["model"] == "reka/clips" and ext.handles
