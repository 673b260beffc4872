"""Media files in a generation's output: extraction from any output shape, with mime types."""

from typing import Any, Literal, TypeGuard

from clipia_mcp.core import constants as C
from clipia_mcp.core.model import Model

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


class MediaFile(Model):
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
    #: A still for a video: the API's thumbnail when it sends one, else an image-to-video start frame.
    poster_url: str | None = None
    #: Where the file was saved (``--output-dir``), and the same as a ``file://`` URL.
    local_path: str | None = None
    file_url: str | None = None


def _web(url: Any) -> TypeGuard[str]:
    """An http(s) URL (what the fetcher may try; it decides whether the host is public)."""
    return isinstance(url, str) and url[:8].lower().startswith(("https://", "http://"))


_POSTER_KEYS = ("thumbnail_url", "poster_url", "cover_url")


def _media(kind: MediaKind, item: dict[str, Any]) -> dict[str, Any] | None:
    """One output item as a ``MediaFile``-shaped object, or None when it has no web URL.

    Written out in one function (no helper per field): every waiter's answer runs it, and in a fan-out of a
    thousand answers each Python call is a measurable share.
    """
    original = item.get("original_url")
    url = original or item.get("url")
    if not _web(url):
        return None  # a file:, javascript:, data: or ftp: "output" is no file an agent should open
    m: dict[str, Any] = {"kind": kind, "url": url}
    if original:
        preview = item.get("url")
        if preview != url and _web(preview):
            m["preview_url"] = preview
    fmt = item.get("format")
    fmt = fmt if isinstance(fmt, str) else None
    # The URL's path (urlsplit(url).path for the URLs outputs carry, without its cost), then its last part.
    rest = url.partition("://")[2] or url
    slash = rest.find("/")
    path = "" if slash < 0 else rest[slash:].partition("?")[0].partition("#")[0]
    name = path[path.rfind("/") + 1:]
    stem, dot, ext = name.rpartition(".")
    mime = _MIME_BY_EXT.get(f".{ext.lower()}") if dot and stem else None
    if mime is None:
        mime = (_MIME_BY_EXT.get(f".{fmt.lower()}") if fmt else None) or _DEFAULT_MIME[kind]
    m["mime_type"] = mime
    m["name"] = name or kind
    width, height, dur = item.get("width"), item.get("height"), item.get("duration")
    if isinstance(width, int) and not isinstance(width, bool):
        m["width"] = width
    if isinstance(height, int) and not isinstance(height, bool):
        m["height"] = height
    if isinstance(dur, (int, float)) and not isinstance(dur, bool):
        m["duration"] = float(dur)
    if fmt is not None:
        m["format"] = fmt
    if kind == "video":
        for key in _POSTER_KEYS:
            if _web(item.get(key)):
                m["poster_url"] = item[key]
                break
    return m


def media_items(output: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every media file in an ``output`` object, whatever its model type, as ``MediaFile``-shaped JSON objects
    (the fields that have a value, in the model's order; ``size_bytes``, ``local_path`` and ``file_url`` are
    never known here).

    Plain dicts of checked values (no model): every waiter's answer is built from these, so this stays on
    the fan-out's critical path. Shapes: API contract, shared/reference/clipia-api.md §7.
    """
    if not isinstance(output, dict):
        return []
    files: list[dict[str, Any]] = []
    seen: set[str] = set()
    for kind, key, is_list in _SHAPES:
        value = output.get(key)
        if value is None:
            continue
        for item in (value if isinstance(value, list) else ()) if is_list else (value,):
            if isinstance(item, dict):
                media = _media(kind, item)
                if media is not None and media["url"] not in seen:
                    seen.add(media["url"])
                    files.append(media)
                    if len(files) == C.MAX_OUTPUT_FILES:
                        return files  # past any real generation: links, previews and saved copies stay bounded
    return files


def extract_media(output: dict[str, Any] | None) -> list[MediaFile]:
    """:func:`media_items` as validated :class:`MediaFile` models."""
    return [MediaFile(**m) for m in media_items(output)]


#: (kind, output key, whether it holds a list), in the order files are listed.
_SHAPES: tuple[tuple[MediaKind, str, bool], ...] = (
    ("image", "images", True), ("image", "image", False), ("video", "video", False), ("video", "videos", True),
    ("audio", "audio", False), ("audio", "audios", True))
