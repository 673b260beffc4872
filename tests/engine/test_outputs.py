"""Media that stays: outputs saved once into --output-dir, with type/size checks and atomic writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import structured
from mcp import Client

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.settings import Settings, default_output_dir
from clipia_mcp.engine.media_client import MediaClient
from clipia_mcp.engine.outputs import OutputSaver
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox import media as sandbox_media
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def _settings(emu: EmulatorServer, key: str, tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({
        "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base_url, "CLIPIA_MCP_JOURNAL": str(tmp_path / "j.sqlite3"),
        "CLIPIA_MCP_POLL_MIN": "0.02", "CLIPIA_MCP_POLL_MAX": "0.1", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000",
        "CLIPIA_MCP_OUTPUT_DIR": str(tmp_path / "media"), **env,
    })


def test_defaults_follow_the_transport(tmp_path: Path) -> None:
    stdio = Settings.from_env({}).for_transport("stdio")
    assert stdio.save_outputs is True and stdio.output_dir == default_output_dir()
    assert default_output_dir({"HOME": "/home/u"}) == Path("/home/u/Pictures/Clipia")
    assert default_output_dir({"XDG_PICTURES_DIR": "/data/pics"}) == Path("/data/pics/Clipia")
    http = Settings.from_env({}).for_transport("streamable-http")
    assert http.save_outputs is False
    forced = Settings.from_env({"CLIPIA_MCP_OUTPUT_DIR": str(tmp_path)}).for_transport("streamable-http")
    assert forced.save_outputs is True and forced.output_dir == tmp_path
    off = Settings.from_env({"CLIPIA_MCP_OUTPUT_DIR": "off"}).for_transport("stdio")
    assert off.save_outputs is False


async def test_finished_outputs_are_saved_once_and_survive_a_restart(
        emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.01
    settings = _settings(emu, live_key.value, tmp_path)
    async with Client(build_server(settings)) as client:
        rid = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "keep me", "num_images": 2}}))[
            "request_id"]
        with anyio.fail_after(20):
            first = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15})
        media = structured(first)["media"]
        assert len(media) == 2
        for index, m in enumerate(media):
            path = Path(m["local_path"])
            assert path.parent == tmp_path / "media" and path.suffix == ".png"
            assert path.name.startswith(time.strftime("%Y-%m-%d")) and rid[:8] in path.name
            assert m["file_url"] == path.as_uri()
            assert path.read_bytes() == sandbox_media.png(f"{rid}-{index}", 256, 256)
        links = [c.uri for c in first.content if c.type == "resource_link"]
        assert [m["file_url"] for m in media] == [str(u) for u in links if str(u).startswith("file://")]
        mtimes = [Path(m["local_path"]).stat().st_mtime_ns for m in media]
        again = structured(await client.call_tool("get_result", {"request_id": rid}))
        assert [m["local_path"] for m in again["media"]] == [m["local_path"] for m in media]
        assert [Path(m["local_path"]).stat().st_mtime_ns for m in media] == mtimes  # not downloaded twice
        body = json.loads((await client.read_resource(f"clipia://requests/{rid}")).contents[0].text)
        assert [m["local_path"] for m in body["media"]] == [m["local_path"] for m in media]
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == sorted(Path(m["local_path"]).name for m in media)

    # A new process with saving off still knows where the files are (the journal recorded them).
    off = _settings(emu, live_key.value, tmp_path, CLIPIA_MCP_OUTPUT_DIR="off")
    async with Client(build_server(off)) as client:
        later = structured(await client.call_tool("get_result", {"request_id": rid}))
        assert [m["local_path"] for m in later["media"]] == [m["local_path"] for m in media]


def _record(url_path: str = "/x.png") -> RequestRecord:
    now = time.time()
    return RequestRecord(request_id="0b7c2c1e-1111-4222-8333-944455556666", owner="o", model="nano-banana-2",
                         status="COMPLETED", output={"images": [{"url": f"https://media.clipia.ai{url_path}"}]},
                         created_at=now, updated_at=now)


async def _save_with(tmp_path: Path, handler: httpx.MockTransport, url_path: str = "/x.png") -> dict[str, object]:
    store = SqliteStore(None)
    settings = Settings(save_outputs=True, output_dir=tmp_path / "out")
    async with httpx.AsyncClient(transport=handler) as http:
        saved = await OutputSaver(settings, store, MediaClient(5.0, client=http)).saved(_record(url_path))
    store.close()
    return dict(saved)


async def test_wrong_type_oversize_and_errors_are_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    html = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>expired</html>",
                                                        headers={"content-type": "text/html"}))
    assert await _save_with(tmp_path, html) == {}
    gone = httpx.MockTransport(lambda r: httpx.Response(403, content=b"denied", headers={"content-type": "image/png"}))
    assert await _save_with(tmp_path, gone) == {}
    from clipia_mcp.core import constants as C
    monkeypatch.setitem(C.SAVE_MAX_BYTES, "image", 1000)
    big = httpx.MockTransport(lambda r: httpx.Response(200, content=b"\x89PNG" + b"0" * 5000,
                                                       headers={"content-type": "image/png"}))
    assert await _save_with(tmp_path, big) == {}
    streamed = httpx.MockTransport(lambda r: httpx.Response(
        200, stream=httpx.ByteStream(b"\x89PNG" + b"0" * 5000), headers={"content-type": "image/png"}))
    assert await _save_with(tmp_path, streamed) == {}  # no Content-Length: the cap stops the stream
    assert not list((tmp_path / "out").iterdir())  # nothing half-written is left behind
    octet = httpx.MockTransport(lambda r: httpx.Response(200, content=b"\x89PNGok",
                                                         headers={"content-type": "application/octet-stream"}))
    saved = await _save_with(tmp_path, octet)
    (only,) = saved.values()
    assert Path(only.path).read_bytes() == b"\x89PNGok" and only.mime_type == "image/png"  # type: ignore[attr-defined]


async def test_a_stalled_download_never_holds_up_the_answer_and_finishes_in_the_background(
        tmp_path: Path) -> None:
    release = anyio.Event()
    started = anyio.Event()

    fetches: list[str] = []

    async def stalled(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        started.set()
        await release.wait()  # the CDN sends nothing until the test says so
        return httpx.Response(200, content=sandbox_media.png("x", 8, 8), headers={"content-type": "image/png"})

    store = SqliteStore(None)
    settings = Settings(save_outputs=True, output_dir=tmp_path / "out")
    async with httpx.AsyncClient(transport=httpx.MockTransport(stalled)) as http:
        saver = OutputSaver(settings, store, MediaClient(5.0, client=http))
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                saver.bind(tg)
                assert await saver.saved(_record(), budget=0) == {}  # the answer goes out without the copy
                await started.wait()
                assert await saver.saved(_record(), budget=0) == {}  # a second answer: still one download
                release.set()
                files = await saver.saved(_record())  # waits for the running download, starts no other
                assert [f.size_bytes for f in files.values()] == [len(sandbox_media.png("x", 8, 8))]
    assert len(fetches) == 1
    store.close()


async def test_an_output_url_httpx_cannot_parse_is_skipped_and_the_engine_goes_on(tmp_path: Path) -> None:
    store = SqliteStore(None)
    settings = Settings(save_outputs=True, output_dir=tmp_path / "out")
    bad = _record().model_copy(update={"output": {"images": [{"url": "https://[::1/x.png"}]}})
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as http:
        saver = OutputSaver(settings, store, MediaClient(5.0, client=http))
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:  # would end with an ExceptionGroup if the task raised
                saver.bind(tg)
                assert await saver.saved(bad) == {}
    store.close()
