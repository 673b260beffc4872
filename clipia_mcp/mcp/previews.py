"""A small inline preview of the first image, fetched with bounded bytes (never in structuredContent)."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from mcp.types import ContentBlock, ImageContent

from clipia_mcp.core import constants as C
from clipia_mcp.core.media import MediaFile

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


async def preview(http: httpx.AsyncClient, media: list[MediaFile]) -> list[ContentBlock]:
    """An ``image`` content block of the first image, if it fits in ``PREVIEW_MAX_BYTES``."""
    image = next((m for m in media if m.kind == "image"), None)
    if image is None:
        return []
    import httpx  # loaded on the first preview, not at startup

    url = image.preview_url or image.url
    try:
        async with http.stream("GET", url, timeout=C.PREVIEW_FETCH_TIMEOUT) as resp:
            if resp.status_code != 200:
                return []
            ctype = resp.headers.get("content-type", "").split(";")[0].strip()
            if not ctype.startswith("image/"):
                return []
            data = bytearray()
            async for chunk in resp.aiter_bytes():
                data += chunk
                if len(data) > C.PREVIEW_MAX_BYTES:
                    return []
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # unreachable, refused, or no valid URL
        log.info("preview fetch failed: %s", type(exc).__name__)
        return []
    return [ImageContent(type="image", data=base64.b64encode(bytes(data)).decode(), mime_type=ctype)]
