"""The Reka emulator and client against Reka's own "Get Clip Status" page and the contract's §16.

The shapes are parsed from ``shared/reference/source-docs/reka-get-clip-status.txt`` and
``shared/reference/clipia-api.md`` §16.2, never from the emulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipia_mcp.providers.reka.catalogue import CATALOGUE_ENTRY
from clipia_mcp.providers.reka.client import map_output
from clipia_mcp.sandbox.reka import RekaConfig, RekaEmulator, RekaServer

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
STATUS_PAGE = REFERENCE / "source-docs" / "reka-get-clip-status.txt"
CONTRACT = REFERENCE / "clipia-api.md"
pytestmark = pytest.mark.skipif(not STATUS_PAGE.exists(), reason=f"Reka's page is not at {STATUS_PAGE}")


def documented_example() -> dict[str, Any]:
    """The 200 example of the status page (its lines carry line numbers: ``12 "source_start_time": 0,``)."""
    text = STATUS_PAGE.read_text()
    block = text.split("200Retrieved", 1)[1].split("Get the status and output", 1)[0]
    example: dict[str, Any] = json.loads("\n".join(re.sub(r"^\d+ ?", "", line) for line in block.splitlines()))
    return example


def documented_defaults() -> dict[str, dict[str, Any]]:
    """``generation_config`` / ``rendering_config`` defaults from the create-body table of §16.2."""
    out: dict[str, dict[str, Any]] = {"generation_config": {}, "rendering_config": {}}
    for group, name, default in re.findall(
            r"^\| `(generation_config|rendering_config)\.(\w+)` \|[^|]*\| ([^|]*?) \|",
            CONTRACT.read_text().replace("\\|", "/"), re.M):  # "\|" inside a cell is not a column
        default = default.strip().strip("`")
        if default in ("—", ""):
            continue
        try:
            out[group][name] = json.loads(default)
        except ValueError:
            out[group][name] = default
    return out


@pytest.fixture(scope="module")
def reka() -> Iterator[RekaServer]:
    server = RekaServer(RekaEmulator(RekaConfig(time_scale=0.005))).start_in_thread()
    yield server
    server.stop_thread()


def test_the_emulators_clip_status_matches_rekas_page(reka: RekaServer) -> None:
    example = documented_example()
    defaults = documented_defaults()
    assert defaults["generation_config"]["template"] == "moments" and defaults["rendering_config"]["resolution"] == 720
    key = reka.new_key()
    auth = {"X-Api-Key": key}
    created = httpx.post(f"{reka.base_url}/v1/clips", headers=auth,
                         json={"video_urls": ["https://example.com/source-video.mp4"]})
    assert created.status_code == 200 and created.headers.get("X-Request-ID")
    clip_id = created.json()["id"]
    reka.emulator.clips[clip_id].created -= 10_000  # finished, without waiting (the emulator's monotonic clock)
    first = httpx.get(f"{reka.base_url}/v1/clips/{clip_id}", headers=auth)
    second = httpx.get(f"{reka.base_url}/v1/clips/{clip_id}", headers=auth)
    assert first.headers.get("X-Request-ID") and first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    body = first.json()
    assert body["status"] == "completed"
    assert set(example) <= set(body), set(example) - set(body)
    # updated_at is when the status last changed, not the time of each read
    assert body["updated_at"] == second.json()["updated_at"] >= body["created_at"]
    # the resolved configs: every documented default filled in, though the request sent none
    for group, values in defaults.items():
        for name, value in values.items():
            assert body[group][name] == value, (group, name, body[group])
    item = body["output"][0]
    assert set(example["output"][0]) <= set(item), set(example["output"][0]) - set(item)
    assert all(not tag.startswith("#") for tag in item["hashtags"])  # as on Reka's page
    assert all(not tag.startswith("#") for tag in example["output"][0]["hashtags"])
    assert isinstance(item["signed_s3_video_url"], str) and item["signed_s3_video_url"].startswith("http")


def test_the_client_reads_a_clip_with_only_a_signed_url() -> None:
    item = {k: v for k, v in documented_example()["output"][0].items() if k != "video_url"}
    item["signed_s3_video_url"] = "https://bucket.s3.amazonaws.com/reel.mp4?X-Amz-Signature=abc"
    videos = map_output([item])["videos"]
    assert [v["url"] for v in videos] == [item["signed_s3_video_url"]]


def test_video_urls_are_typed_as_urls_in_the_catalogue() -> None:
    params = {p["name"]: p for p in CATALOGUE_ENTRY["input_schema"]["parameters"]}
    assert params["video_urls"]["type"] == "urls"
