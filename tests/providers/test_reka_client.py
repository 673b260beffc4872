"""providers/reka: the client against the in-memory Reka emulator (httpx.ASGITransport), and local validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from clipia_mcp.core.errors import (
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UpstreamInvalidResponse,
)
from clipia_mcp.core.settings import Settings
from clipia_mcp.providers.reka.client import RekaClient, map_output
from clipia_mcp.providers.reka.validation import check_clip_input
from clipia_mcp.sandbox.reka import RekaApp, RekaConfig, RekaEmulator

pytestmark = pytest.mark.anyio
BASE = "https://reka.test"
FAST = Settings(retry_base_delay=0.0, retry_max_delay=0.0, retry_after_cap=0.0)
SOURCE: dict[str, Any] = {"video_urls": ["https://www.youtube.com/watch?v=dQw4w9WgXcQ"], "prompt": "best moments"}


def reka(**config: Any) -> tuple[RekaEmulator, str]:
    em = RekaEmulator(RekaConfig(public_base_url=BASE, **config))
    key = "reka_" + "k" * 32
    em.keys.add(key)
    return em, key


@pytest.fixture
async def instant() -> AsyncIterator[tuple[RekaEmulator, RekaClient]]:
    em, key = reka(queue_s=0.0, processing_s=0.0)  # every job is done as soon as it exists
    c = RekaClient(key, base_url=BASE, settings=FAST, transport=httpx.ASGITransport(app=RekaApp(em)))
    yield em, c
    await c.aclose()


async def test_submit_status_result_and_delete(instant: tuple[RekaEmulator, RekaClient]) -> None:
    em, c = instant
    sub = await c.submit("reka/clips", {**SOURCE, "generation_config": {"num_generations": 2}})
    assert sub.request_id in em.clips
    st = await c.status(sub.request_id)
    assert st.status == "COMPLETED" and st.logs == [{"message": "reka status: completed"}]
    res = await c.result(sub.request_id)
    assert (res.pending, res.status, res.model) == (False, "COMPLETED", "reka/clips")
    assert res.output is not None and [v["url"] for v in res.output["videos"]] == [
        clip["video_url"] for clip in res.output["clips"]]
    assert len(res.output["videos"]) == 2
    await c.delete(sub.request_id)
    assert sub.request_id not in em.clips
    with pytest.raises(NotFoundError):
        await c.status(sub.request_id)


async def test_a_running_job_is_pending_and_a_failed_one_says_why() -> None:
    em, key = reka(queue_s=3600.0)
    c = RekaClient(key, base_url=BASE, settings=FAST, transport=httpx.ASGITransport(app=RekaApp(em)))
    sub = await c.submit("reka/clips", SOURCE)
    assert sub.status == "IN_QUEUE"
    assert (await c.status(sub.request_id)).status == "IN_QUEUE"
    assert (await c.result(sub.request_id)).pending is True
    em.config.queue_s = em.config.processing_s = 0.0
    em.clips[sub.request_id].queue_s = em.clips[sub.request_id].processing_s = 0.0
    em.clips[sub.request_id].fail = True
    res = await c.result(sub.request_id)
    assert res.status == "FAILED" and res.error is not None
    assert res.error.message == "Could not process the source video."
    await c.aclose()


async def test_upstream_validation_names_the_field_and_submits_are_never_retried() -> None:
    em, key = reka(daily_limit=1)
    c = RekaClient(key, base_url=BASE, settings=FAST, transport=httpx.ASGITransport(app=RekaApp(em)))
    bad = {**SOURCE, "rendering_config": {"aspect_ratio": "21:9"}}
    with pytest.raises(InvalidRequestError) as info:
        await c.submit("reka/clips", bad)
    assert info.value.code == "model_input_invalid" and info.value.message.startswith("rendering_config.aspect_ratio:")
    await c.submit("reka/clips", SOURCE)
    with pytest.raises(RateLimitError) as limited:
        await c.submit("reka/clips", SOURCE)
    assert limited.value.retry_after is not None and limited.value.retry_after > 3600
    assert c.calls["submit"] == 3  # a create is never retried (Reka has no idempotency keys)
    with pytest.raises(InvalidInputError):
        await c.submit("reka/clips", SOURCE, webhook_url="https://hooks.example.com/x")
    await c.aclose()


async def test_a_non_json_answer_is_upstream_invalid_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>", headers={"x-request-id": "trace-1"})

    c = RekaClient("reka_x", base_url=BASE, settings=FAST, transport=httpx.MockTransport(handler))
    with pytest.raises(UpstreamInvalidResponse) as info:
        await c.status("job-1")
    assert "trace-1" in info.value.message and c.calls["status"] == FAST.retry_max_attempts
    await c.aclose()


def test_map_output_skips_entries_without_a_video() -> None:
    out = map_output([{"video_url": "https://v/1.mp4", "title": "a"}, {"signed_s3_video_url": "https://v/2.mp4"},
                      {"title": "no url"}, "junk"])
    assert [v["url"] for v in out["videos"]] == ["https://v/1.mp4", "https://v/2.mp4"]
    assert len(out["clips"]) == 3


@pytest.mark.parametrize(("patch", "field"), [
    ({"video_urls": []}, "video_urls"),
    ({"video_urls": ["ftp://x"]}, "video_urls[0]"),
    ({"video_urls": ["https://ok", 7]}, "video_urls[1]"),
    ({"prompt": 5}, "prompt"),
    ({"generation_config": []}, "generation_config"),
    ({"generation_config": {"template": "best"}}, "generation_config.template"),
    ({"generation_config": {"num_generations": 4}}, "generation_config.num_generations"),
    ({"generation_config": {"num_generations": True}}, "generation_config.num_generations"),
    ({"generation_config": {"min_duration_seconds": -1}}, "generation_config.min_duration_seconds"),
    ({"generation_config": {"max_duration_seconds": 601}}, "generation_config.max_duration_seconds"),
    ({"generation_config": {"min_duration_seconds": 50, "max_duration_seconds": 40}},
     "generation_config.max_duration_seconds"),
    ({"generation_config": {"source_start_time": -3}}, "generation_config.source_start_time"),
    ({"rendering_config": "x"}, "rendering_config"),
    ({"rendering_config": {"aspect_ratio": "21:9"}}, "rendering_config.aspect_ratio"),
    ({"rendering_config": {"resolution": 2160}}, "rendering_config.resolution"),
    ({"rendering_config": {"subtitles": "yes"}}, "rendering_config.subtitles"),
    ({"rendering_config": {"caption_style": {"desired_font_size": 20}}},
     "rendering_config.caption_style.desired_font_size"),
    ({"rendering_config": {"caption_style": {"text_transform": "title"}}},
     "rendering_config.caption_style.text_transform"),
])
def test_validation_names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_clip_input({**SOURCE, **patch})
    assert info.value.message.startswith(f"{field}: ") and info.value.code == "invalid_input"


def test_validation_accepts_a_full_body() -> None:
    check_clip_input({**SOURCE, "generation_config": {"template": "compilation", "num_generations": 3,
                                                      "min_duration_seconds": 10, "max_duration_seconds": 60},
                      "rendering_config": {"aspect_ratio": "1:1", "resolution": 1080, "subtitles": True,
                                           "caption_style": {"desired_font_size": 90, "text_transform": "initial"}}})
