"""The MCP Apps generation card in a real headless Chromium, hosted by the official AppBridge.

`tests/e2e/apps_host/host.mjs` is a small host: an MCP client (TypeScript SDK) connected to a running
clipia-mcp over Streamable HTTP, and a page with `AppBridge` (`@modelcontextprotocol/ext-apps`) rendering
the card's `ui://` resource in a sandboxed iframe under the CSP its `_meta.ui.csp` declares. The card
must render, progress through the queue on its app-only refresh tool, and show the finished media;
the screenshot of the media element must carry the generated image's pixels.

Needs Node with `.ci/node` (ext-apps, the MCP TypeScript SDK, playwright-core, esbuild; `.ci/run`
installs them) and Chromium (`/usr/bin/chromium`, Debian package `chromium`). Missing tools skip the
tests, unless CLIPIA_REQUIRE_NODE_TOOLS=1 or CLIPIA_REQUIRE_BROWSER=1, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import server_env
from pngread import read_png
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox import media as sandbox_media

ROOT = Path(__file__).resolve().parents[2]
HOST = Path(__file__).with_name("apps_host") / "host.mjs"
NODE_DIR = Path(os.environ.get("CLIPIA_NODE_DIR") or os.environ.get("CLIPIA_INSPECTOR_DIR") or ROOT / ".ci" / "node")
CHROMIUM = os.environ.get("CLIPIA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or ""
NEEDED = ["@modelcontextprotocol/ext-apps", "@modelcontextprotocol/sdk", "playwright-core", "esbuild"]


def _missing() -> list[str]:
    missing = [p for p in NEEDED if not (NODE_DIR / "node_modules" / p / "package.json").exists()]
    if shutil.which("node") is None:
        missing.append("node")
    if not CHROMIUM:
        missing.append("chromium")
    return missing


MISSING = _missing()
if MISSING and (os.environ.get("CLIPIA_REQUIRE_NODE_TOOLS") or os.environ.get("CLIPIA_REQUIRE_BROWSER")):
    raise RuntimeError(f"the MCP Apps browser tests are required here but these are missing: {MISSING} "
                       f"(node packages in {NODE_DIR}; .ci/run installs them)")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"missing {MISSING} (.ci/run installs them)")


def run_host(tmp_path: Path, mcp_url: str, **config: Any) -> dict[str, Any]:
    cfg = {"nodeDir": str(NODE_DIR), "chromium": CHROMIUM, "mcpUrl": mcp_url, "outDir": str(tmp_path),
           "timeoutMs": 60_000, **config}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run(["node", str(HOST), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _mean_abs_diff(a: list[list[tuple[int, int, int]]], b: list[list[tuple[int, int, int]]]) -> float:
    total = count = 0
    for row_a, row_b in zip(a, b, strict=True):
        for pa, pb in zip(row_a, row_b, strict=True):
            total += sum(abs(x - y) for x, y in zip(pa, pb, strict=True))
            count += 3
    return total / count


def test_card_renders_progresses_and_shows_the_image(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 2.0  # an image queues ~2 s and renders ~4 s: the card must show both
    env = server_env(emu, live_key, tmp_path)
    with http_server("streamable-http", env) as sp:
        out = run_host(tmp_path, sp.url, tool="get_result", arguments={},
                       submit={"model": "nano-banana-2", "input": {"prompt": "a lighthouse at dawn"}})

    # The tools the model sees link the card; the refresh tool is app-only.
    card = "ui://clipia/generation-card.html"
    for name in ("generate", "wait_for_result", "get_result"):
        assert out["toolUi"][name] == {"resourceUri": card}
    assert out["toolUi"]["card_refresh"] == {"resourceUri": card, "visibility": ["app"]}
    assert out["resourceMime"] == "text/html;profile=mcp-app"
    assert "https://media.clipia.ai" in out["csp"]["resourceDomains"]

    # It started unfinished, showed the request moving (queue and/or rendering: on a loaded machine the card's
    # refreshes may fall between the emulator's phases), and ended done with the cost shown. What it rendered is
    # its own trail (``seen``); the host's DOM samples may start late on a loaded machine (Chromium's start).
    assert out["initial"] in ("IN_QUEUE", "IN_PROGRESS")
    statuses = [s["status"] for s in out["states"]]
    seen = out["states"][-1]["seen"].split(",")
    assert seen[0] == out["initial"] and seen[-1] == "COMPLETED" and statuses[-1] == "COMPLETED", out["states"]
    # A sample taken before the card's first render has no progress yet (undefined is dropped from the JSON).
    progress = [int(s["progress"]) for s in out["states"] if s.get("progress")]
    assert progress == sorted(progress) and progress[-1] == 100, out["states"]
    unfinished = [s for s in out["states"] if s["status"] != "COMPLETED" and s.get("progress")]
    assert all("Rendering" in s["line"] or "queue" in s["line"] for s in unfinished), unfinished
    assert out["states"][-1]["cost"].startswith("4 credits")
    assert out["refreshCalls"] >= 1
    assert not out["consoleErrors"], out["consoleErrors"]

    # The media element shows the real image, pixel for pixel (not just a DOM node).
    media = out["media"]
    assert media["tag"] == "IMG" and media["naturalWidth"] == 256 and media["naturalHeight"] == 256, media
    width, height, pixels = read_png(Path(out["screenshot"]).read_bytes())
    assert 256 <= width <= 257 and 256 <= height <= 257, (width, height)  # the box may round up a pixel
    pixels = [row[:256] for row in pixels[:256]]
    seed = media["src"].rsplit("/", 2)[-2]
    _, _, expected = read_png(sandbox_media.png(seed, 256, 256))
    diff = _mean_abs_diff(pixels, expected)
    assert diff < 6.0, diff
    corners = {pixels[10][10], pixels[-10][-10], pixels[10][-10]}  # inside the rounded corners
    assert len(corners) == 3 and (255, 255, 255) not in corners, corners  # a gradient, not a blank box


def test_card_plays_the_audio(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.2
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        out = run_host(tmp_path, sp.url, tool="wait_for_result", arguments={"timeout_s": 0}, mediaKind="audio",
                       submit={"model": "gemini-3-1-flash-tts", "input": {"prompt": "hello"}})
    assert out["states"][-1]["status"] == "COMPLETED"
    media = out["media"]
    assert media["tag"] == "AUDIO" and media["error"] is None and abs(media["duration"] - 1.0) < 0.05, media


def test_card_plays_the_video_and_shows_its_first_frame(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        out = run_host(tmp_path, sp.url, tool="wait_for_result", arguments={"timeout_s": 0}, mediaKind="video",
                       submit={"model": "seedance-2-fast-t2v", "input": {"prompt": "waves"}})
    assert out["states"][-1]["status"] == "COMPLETED"
    media = out["media"]
    # Chromium decoded the H.264 sample: real dimensions and duration, no media error.
    assert media["tag"] == "VIDEO" and media["error"] is None, media
    assert (media["videoWidth"], media["videoHeight"]) == (1280, 720) and abs(media["duration"] - 5.0) < 0.1
    assert media["readyState"] >= 2
    # The element shows a picture (the first frame), not an empty black or white box.
    width, height, pixels = read_png(Path(out["screenshot"]).read_bytes())
    assert width > 300 and height > 150
    inner = [p for row in pixels[height // 4: 3 * height // 4: 8] for p in row[width // 4: 3 * width // 4: 8]]
    assert len(set(inner)) > 20, set(inner)
    assert sum(sum(p) for p in inner) / (3 * len(inner)) > 30  # not black
