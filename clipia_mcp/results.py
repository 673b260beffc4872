"""Turning records and errors into MCP tool results.

Every result carries ``structuredContent`` (validated against the tool's
``outputSchema``) and a text block mirroring it. Media become
``resource_link`` blocks; bytes never go into ``structuredContent``. An
optional inline preview is added for images when it is small enough.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone

import httpx
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel

from clipia_mcp import constants as C
from clipia_mcp.errors import ClipiaMcpError
from clipia_mcp.journal import RequestRecord
from clipia_mcp.models import ErrorView, MediaFile, RequestView, extract_media

log = logging.getLogger(__name__)
RESOURCE_PREFIX = "clipia://requests/"

_ADVICE = {
    "invalid_api_key": "Check CLIPIA_API_KEY: it is missing, wrong or revoked.",
    "insufficient_credits": "Top up the Clipia balance, or pick a cheaper model/input (see estimate_cost).",
    "subscription_required": "This needs an active Clipia plan; topping up does not help.",
    "insufficient_scope": "The API key lacks the 'generate' scope; create a key with it.",
    "model_not_found": "Call list_models to find a valid slug.",
    "model_input_invalid": "Fix the input (call get_model for the input schema) and submit again.",
    "rate_limit_exceeded": "Wait retry_after seconds, then call again.",
    "concurrency_limit_exceeded": "Wait for a running generation to finish, then submit again.",
    "idempotency_key_reuse": "Use a new idempotency_key for a different generation.",
    "request_in_progress": "The same submit is still being processed; call again in a moment.",
    "network_error": "The Clipia API could not be reached; call again shortly. No request was lost.",
    "not_found": "Check the request_id, or call list_requests to find recent requests.",
}


def resource_uri(request_id: str) -> str:
    return f"{RESOURCE_PREFIX}{request_id}"


def iso_time(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def next_step(record: RequestRecord) -> str:
    rid = record.request_id
    if record.status == "COMPLETED":
        return "Done. Open the media links; the files are also in this result's resource links."
    if record.status == "FAILED":
        return "The generation failed and its credits were refunded. Adjust the input and submit again."
    if record.status == "CANCELED":
        return "The generation was cancelled outside the API; its credits were refunded."
    return f"Still running. Call wait_for_result(request_id='{rid}') to wait for it, or get_status to check."


def view(record: RequestRecord) -> RequestView:
    media = extract_media(record.output) if record.status == "COMPLETED" else []
    return RequestView(
        request_id=record.request_id,
        status=record.status,
        done=record.terminal,
        model=record.model,
        queue_position=record.queue_position,
        progress=record.progress,
        logs=[item if isinstance(item, dict) else {"message": str(item)} for item in record.logs[-10:]],
        cost=record.cost,
        media=media,
        output=record.output,
        error=record.error,
        created_at=iso_time(record.created_at),
        completed_at=iso_time(record.completed_at),
        resource_uri=resource_uri(record.request_id),
        next_step=next_step(record),
    )


def structured(model: BaseModel, extra: list[ContentBlock] | None = None) -> CallToolResult:
    """A successful result: structured content plus a text block with the same JSON."""
    data = model.model_dump(mode="json")
    content: list[ContentBlock] = [TextContent(type="text", text=json.dumps(data, indent=1, ensure_ascii=False))]
    content.extend(extra or [])
    return CallToolResult(content=content, structured_content=data)


def error_result(exc: ClipiaMcpError) -> CallToolResult:
    """An ``isError`` result the model can act on: stable code, message, retry_after, advice."""
    err = ErrorView(**exc.to_dict())
    advice = _ADVICE.get(exc.code, "")
    text = f"Error {err.code}: {err.message}"
    if err.retry_after is not None:
        text += f" (retry after {err.retry_after:g} s)"
    if err.request_id:
        text += f" [request_id {err.request_id}]"
    if advice:
        text += f"\n{advice}"
    data = {"error": err.model_dump(mode="json", exclude_none=True)}
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data, is_error=True)


def media_links(media: list[MediaFile]) -> list[ContentBlock]:
    return [
        ResourceLink(type="resource_link", uri=m.url, name=m.name, title=f"{m.kind} output", mime_type=m.mime_type,
                     size=m.size_bytes, description=_describe(m))
        for m in media
    ]


def _describe(m: MediaFile) -> str:
    bits: list[str] = [m.kind]
    if m.width and m.height:
        bits.append(f"{m.width}x{m.height}")
    if m.duration:
        bits.append(f"{m.duration:g}s")
    return " ".join(bits)


async def preview(http: httpx.AsyncClient, media: list[MediaFile]) -> list[ContentBlock]:
    """A small inline preview of the first image, if it fits in ``PREVIEW_MAX_BYTES``."""
    image = next((m for m in media if m.kind == "image"), None)
    if image is None:
        return []
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
    except httpx.HTTPError as exc:
        log.info("preview fetch failed: %s", type(exc).__name__)
        return []
    return [ImageContent(type="image", data=base64.b64encode(bytes(data)).decode(), mime_type=ctype)]
