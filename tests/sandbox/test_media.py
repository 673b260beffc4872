"""The sandbox's media are real files: the MP4 is a playable H.264 clip that ffprobe reads.

The sample was made once with
``ffmpeg -f lavfi -i gradients=size=1280x720:rate=24:duration=5:speed=0.01 -f lavfi -i sine=frequency=440:duration=5
-c:v libx264 -profile:v main -pix_fmt yuv420p -preset veryslow -crf 36 -g 240 -c:a aac -b:a 24k -movflags +faststart``;
the server only reads the shipped bytes (no ffmpeg at runtime). ffprobe comes from the Debian package ``ffmpeg``
(.ci/run installs it); without it these checks skip, unless CLIPIA_REQUIRE_MEDIA_TOOLS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from clipia_mcp.sandbox.media import mp4, parse_boxes, png, render, wav

FFPROBE = shutil.which("ffprobe")
if FFPROBE is None and os.environ.get("CLIPIA_REQUIRE_MEDIA_TOOLS"):
    raise RuntimeError("ffprobe is required here (apt-get install ffmpeg)")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="ffprobe missing (apt-get install ffmpeg)")


def probe(data: bytes, tmp_path: Path, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run([str(FFPROBE), "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=30, check=True)
    result: dict = json.loads(out.stdout)
    return result


def test_mp4_is_small_and_well_formed() -> None:
    data, ctype = render("sample-video/video.mp4") or (b"", "")
    assert ctype == "video/mp4" and data == mp4("any seed")
    assert 10_000 < len(data) < 100_000
    boxes = [tag for tag, _ in parse_boxes(data)]
    assert boxes[0] == b"ftyp" and boxes.index(b"moov") < boxes.index(b"mdat")  # faststart: plays while loading


@needs_ffprobe
def test_mp4_is_a_playable_h264_clip_matching_what_results_claim(tmp_path: Path) -> None:
    info = probe(mp4(), tmp_path, "v.mp4")
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    assert len(video) == 1
    v = video[0]
    assert (v["codec_name"], v["width"], v["height"], v["pix_fmt"]) == ("h264", 1280, 720, "yuv420p")
    assert abs(float(info["format"]["duration"]) - 5.0) < 0.1  # the sandbox output says 1280x720, 5 s
    assert int(v["nb_frames"]) >= 100
    assert [s["codec_name"] for s in info["streams"] if s["codec_type"] == "audio"] == ["aac"]


@needs_ffprobe
def test_png_and_wav_are_real(tmp_path: Path) -> None:
    image = probe(png("seed", 256, 256), tmp_path, "i.png")["streams"][0]
    assert (image["codec_name"], image["width"], image["height"]) == ("png", 256, 256)
    audio = probe(wav("seed"), tmp_path, "a.wav")["streams"][0]
    assert audio["codec_name"] == "pcm_s16le" and abs(float(audio["duration"]) - 1.0) < 0.01
