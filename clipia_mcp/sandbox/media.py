"""Real media files the emulator serves itself: PNG images, WAV audio, an H.264 MP4 clip.

Everything is generated in memory from the standard library, deterministic in
its seed, so outputs are stable across runs and need no network.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
import zlib
from functools import lru_cache
from importlib import resources as importlib_resources


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _colour(seed: str) -> tuple[int, int, int]:
    h = hashlib.sha256(seed.encode()).digest()
    return h[0], h[1], h[2]


@lru_cache(maxsize=64)
def png(seed: str, width: int = 256, height: int = 256) -> bytes:
    """A real RGB PNG: a diagonal gradient tinted by ``seed``."""
    r0, g0, b0 = _colour(seed)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            t = (x + y) / max(1, width + height - 2)
            rows += bytes((int(r0 * (1 - t) + 255 * t) & 255, int(g0 * (1 - t)) & 255, int(b0 + (255 - b0) * t) & 255))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + _chunk(
        b"IEND", b""
    )


@lru_cache(maxsize=16)
def wav(seed: str, seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A real mono 16-bit PCM WAV: a sine tone whose pitch depends on ``seed``."""
    freq = 220 + _colour(seed)[0] * 2
    frames = bytearray()
    for i in range(int(seconds * rate)):
        frames += struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()


@lru_cache(maxsize=1)
def mp4(seed: str = "", duration_s: float = 5.0) -> bytes:
    """A real, playable MP4: H.264 (Main, 1280x720, 24 fps, 5 s) with AAC audio, ``faststart``.

    One shipped sample for every video (the real sandbox also returns "one fixed sample per type"),
    made once with ffmpeg (``gradients`` + ``sine`` sources, see tests/sandbox/test_media.py); the
    server never needs ffmpeg. ``seed`` and ``duration_s`` are accepted for the old call shape.
    """
    return importlib_resources.files("clipia_mcp.sandbox").joinpath("sample.mp4").read_bytes()


def parse_boxes(data: bytes) -> list[tuple[bytes, int]]:
    """Top-level ISO-BMFF boxes as (type, size); raises ValueError when malformed."""
    boxes = []
    pos = 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("truncated box header")
        size, tag = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > len(data):
            raise ValueError("bad box size")
        boxes.append((tag, size))
        pos += size
    return boxes


CONTENT_TYPES = {"png": "image/png", "wav": "audio/wav", "mp4": "video/mp4"}


def render(name: str) -> tuple[bytes, str] | None:
    """Bytes and content type for a media path like ``<seed>/original.png``."""
    seed, _, file = name.rpartition("/")
    stem, _, ext = file.rpartition(".")
    if ext not in CONTENT_TYPES or not seed:
        return None
    if ext == "png":
        data = png(seed, 256, 256)  # the preview rendition is large enough to judge
    elif ext == "wav":
        data = wav(seed)
    else:
        data = mp4(seed)
    return data, CONTENT_TYPES[ext]
