"""Media files in a generation's output: extraction from any output shape, with mime types."""

from __future__ import annotations

import posixpath
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel

MediaKind = Literal["image", "video", "audio", "file"]

_MIME_BY_EXT = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
}
_DEFAULT_MIME = {"image": "image/png", "video": "video/mp4", "audio": "audio/mpeg", "file": "application/octet-stream"}


class MediaFile(BaseModel):
    """One output file. ``url`` is the full-quality file (``original_url`` when the API gives one)."""

    kind: MediaKind
    url: str
    preview_url: str | None = None
    mime_type: str
    name: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    format: str | None = None
    size_bytes: int | None = None


def _mime_for(url: str, kind: MediaKind, fmt: str | None = None) -> str:
    ext = posixpath.splitext(urlparse(url).path)[1].lower()
    if ext in _MIME_BY_EXT:
        return _MIME_BY_EXT[ext]
    if fmt and f".{fmt.lower()}" in _MIME_BY_EXT:
        return _MIME_BY_EXT[f".{fmt.lower()}"]
    return _DEFAULT_MIME[kind]


def _media(kind: MediaKind, item: dict[str, Any]) -> MediaFile | None:
    url = item.get("original_url") or item.get("url")
    if not isinstance(url, str) or not url:
        return None
    preview = item.get("url") if item.get("original_url") and item.get("url") != url else None
    fmt = item.get("format") if isinstance(item.get("format"), str) else None
    name = posixpath.basename(urlparse(url).path) or kind

    def _int(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    dur = item.get("duration")
    return MediaFile(
        kind=kind,
        url=url,
        preview_url=preview if isinstance(preview, str) else None,
        mime_type=_mime_for(url, kind, fmt),
        name=name,
        width=_int(item.get("width")),
        height=_int(item.get("height")),
        duration=float(dur) if isinstance(dur, int | float) and not isinstance(dur, bool) else None,
        format=fmt,
    )


def extract_media(output: dict[str, Any] | None) -> list[MediaFile]:
    """Every media file in an ``output`` object, whatever its model type.

    Shapes: API contract, shared/reference/clipia-api.md §7.
    """
    if not isinstance(output, dict):
        return []
    files: list[MediaFile] = []
    seen: set[str] = set()

    def add(kind: MediaKind, item: Any) -> None:
        if isinstance(item, dict):
            media = _media(kind, item)
            if media and media.url not in seen:
                seen.add(media.url)
                files.append(media)

    for item in output.get("images") or []:
        add("image", item)
    add("image", output.get("image"))
    add("video", output.get("video"))
    for item in output.get("videos") or []:
        add("video", item)
    add("audio", output.get("audio"))
    for item in output.get("audios") or []:
        add("audio", item)
    return files
