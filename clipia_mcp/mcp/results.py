"""Turning records and errors into MCP tool results.

A success carries ``structuredContent`` (validated by clients against the tool's
``outputSchema``) and a compact text block mirroring it. Media become
``resource_link`` blocks; bytes never go into ``structuredContent``.

An error is ``isError: true`` **without** ``structuredContent`` — clients such as the
TypeScript SDK validate any structured content against the output schema, error or not —
so the error object travels in ``_meta["io.clipia/error"]`` (``code``, ``message``,
``retry_after``, …) and its code leads the text: ``Error <code>: <message>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.types import CallToolResult, ContentBlock, ResourceLink, TextContent
from pydantic import BaseModel

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.jsonutil import dumps_compact
from clipia_mcp.core.media import MediaFile, media_items
from clipia_mcp.core.model import trusted
from clipia_mcp.core.records import RequestRecord, SavedFile
from clipia_mcp.core.timeutil import iso_seconds
from clipia_mcp.engine.outputs import OutputSaver
from clipia_mcp.mcp.previews import preview
from clipia_mcp.mcp.views import ErrorView, RequestView

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
RESOURCE_PREFIX = "clipia://requests/"
#: Where an error result carries its machine-readable error object.
ERROR_META_KEY = "io.clipia/error"

_ADVICE = {
    "spend_limit_exceeded": "Nothing was charged. Pick a cheaper model or input (estimate_cost), or wait for the "
                            "allowance to reset; get_balance shows what remains.",
    "invalid_api_key": "Check CLIPIA_API_KEY: it is missing, wrong or revoked.",
    "insufficient_credits": "Top up the Clipia balance, or pick a cheaper model/input (see estimate_cost).",
    "subscription_required": "This needs an active Clipia plan; topping up does not help.",
    "insufficient_scope": "The API key lacks the 'generate' scope; create a key with it.",
    "model_not_found": "Call list_models to find a valid slug.",
    "model_input_invalid": "Fix the input (call get_model for the input schema) and submit again.",
    "invalid_input": "Fix the named argument and call again; nothing was sent upstream.",
    "rate_limit_exceeded": "Wait retry_after seconds, then call again.",
    "concurrency_limit_exceeded": "Wait for a running generation to finish, then submit again.",
    "idempotency_key_reuse": "Use a new idempotency_key for a different generation.",
    "request_in_progress": "The same submit is still being processed; call again in a moment.",
    "network_error": "The API could not be reached; call again shortly. Submits are journaled: a repeat never "
                     "pays twice.",
    "upstream_invalid_response": "The API answered something unreadable; call again shortly.",
    "submit_pending": "Call submit_generation again with the same arguments shortly: it returns the same request "
                      "once the API has answered, without paying twice.",
    "journal_error": "The server's journal failed; tell the operator. Nothing was submitted after the failure.",
    "not_found": "Check the request_id, or call list_requests to find recent requests.",
    "confirmation_required": "Ask the user; if they agree, call generate again with confirm_cost=true.",
    "deadline_exceeded": "The call ran out of time; call again (submits are journaled and never pay twice).",
    "invalid_request": "The API refused the request as sent; check the model (list_models) and the arguments, "
                       "then call again.",
    "webhook_url_invalid": "Pass a public https:// webhook_url, or leave it out: the server tracks the request "
                           "anyway.",
    "internal_error": "The API failed on its side; call again shortly (submits are journaled and never pay twice).",
    "service_unavailable": "The API is temporarily unavailable; call again after retry_after or in a minute.",
    "api_error": "The API refused the call without saying why; call again, and tell the operator if it repeats.",
    "config_error": "The server is not set up for this; tell the operator (the message says what is missing).",
    "cost_declined": "Nothing was submitted. Pick a cheaper model or input (estimate_cost), or ask again.",
    "internal_server_error": "Call again; if it repeats, tell the operator the reference.",
}


def resource_uri(request_id: str) -> str:
    """The MCP resource URI of a request."""
    return f"{RESOURCE_PREFIX}{request_id}"


def next_step(record: RequestRecord, is_test: bool = False) -> str:
    """What the agent should do next with this request."""
    rid = record.request_id
    if record.status == "COMPLETED":
        if record.output is None:
            return f"Done; the output is being fetched. Call get_result(request_id='{rid}') in a moment."
        return "Done. Open the media links; the files are also in this result's resource links."
    if record.status == "FAILED":
        refund = "nothing was charged (test key)" if is_test else "its credits were refunded"
        return f"The generation failed and {refund}. Adjust the input and submit again."
    if record.status == "CANCELED":
        return "The generation was cancelled outside the API; its credits were refunded."
    return f"Still running. Call wait_for_result(request_id='{rid}') to wait for it, or get_status to check."


def view_data(record: RequestRecord, *, is_test: bool = False, saved: Mapping[str, SavedFile] | None = None
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``view(record).model_dump(mode="json", exclude_none=True)`` built directly (no model round trip), with
    the media files.

    Every waiter's answer is built with this, so it stays on the fan-out's critical path: keep it cheap.
    """
    media = _media_of(record, saved)
    # Only the fields with a value, in the model's order (what the dump with exclude_none gives).
    data: dict[str, Any] = {"request_id": record.request_id, "status": record.status, "done": record.terminal}
    if record.model is not None:
        data["model"] = record.model
    if record.queue_position is not None:
        data["queue_position"] = record.queue_position
    if record.progress is not None:
        data["progress"] = record.progress
    logs = record.logs
    data["logs"] = [item if isinstance(item, dict) else {"message": str(item)} for item in logs[-10:]] if logs else []
    if record.cost is not None:
        data["cost"] = record.cost
    if is_test:
        data["test_key"] = True
    data["media"] = media
    if record.output is not None:
        data["output"] = record.output
    if record.error is not None:
        data["error"] = record.error.model_dump(mode="json")
    data["created_at"] = iso_seconds(record.created_at)
    if record.completed_at is not None:
        data["completed_at"] = iso_seconds(record.completed_at)
    data["resource_uri"] = resource_uri(record.request_id)
    data["next_step"] = next_step(record, is_test)
    return data, media


def lean_output(data: dict[str, Any], text: str) -> tuple[dict[str, Any], str]:
    """``data`` (a view's JSON) and its compact ``text``, without the raw ``output`` when that is larger than
    ``MAX_INLINE_OUTPUT`` bytes and its files are listed (``media``); the next step then says so and where it is
    whole. An output without files is the result itself and stays. Costs nothing for a small answer."""
    # A character is at most 4 bytes of UTF-8: a text this short holds no output over the bound.
    if len(text) * 4 <= C.MAX_INLINE_OUTPUT or "output" not in data or not data.get("media"):
        return data, text
    size = len(dumps_compact(data["output"]).encode())
    if size <= C.MAX_INLINE_OUTPUT:
        return data, text
    data = {k: v for k, v in data.items() if k != "output"}
    data["next_step"] = (f"The raw output object ({size:,} bytes) is left out of this result; read the resource "
                         f"{data['resource_uri']} for all of it. {data['next_step']}")
    return data, dumps_compact(data)


def status_result(record: RequestRecord, *, is_test: bool = False) -> CallToolResult:
    """A request's view as a result, without its files' links (get_status, a submit's answer)."""
    data, _ = view_data(record, is_test=is_test)
    data, text = lean_output(data, dumps_compact(data))
    return structured(data, text=text)


def summary_data(record: RequestRecord) -> dict[str, Any]:
    """``RequestSummary`` (one ``list_requests`` row) as its JSON dump, built directly: a list answer builds many."""
    prompt = (record.input or {}).get("prompt")
    data = {
        "request_id": record.request_id,
        "model": record.model or "unknown",
        "status": record.status,
        "cost": record.cost,
        "prompt": prompt[:200] if isinstance(prompt, str) else None,
        "created_at": iso_seconds(record.created_at) or "",
        "updated_at": iso_seconds(record.updated_at) or "",
        "resource_uri": resource_uri(record.request_id),
    }
    return {k: v for k, v in data.items() if v is not None}


def view(record: RequestRecord, *, is_test: bool = False, saved: Mapping[str, SavedFile] | None = None
         ) -> RequestView:
    """A request's whole view, its raw output included however large (the request's resource; tool results use
    :func:`view_data` and :func:`lean_output`), with local paths for outputs saved by ``--output-dir``."""
    media = _media_of(record, saved)
    return RequestView(
        request_id=record.request_id,
        status=record.status,
        done=record.terminal,
        model=record.model,
        queue_position=record.queue_position,
        progress=record.progress,
        logs=[item if isinstance(item, dict) else {"message": str(item)} for item in record.logs[-10:]],
        cost=record.cost,
        test_key=is_test or None,
        media=[MediaFile(**m) for m in media],
        output=record.output,
        error=record.error,
        created_at=iso_seconds(record.created_at),
        completed_at=iso_seconds(record.completed_at),
        resource_uri=resource_uri(record.request_id),
        next_step=next_step(record, is_test),
    )


def _media_of(record: RequestRecord, saved: Mapping[str, SavedFile] | None) -> list[dict[str, Any]]:
    """The output files (``MediaFile``-shaped JSON objects without empty fields, fresh for each call) with
    posters and local copies."""
    if record.status != "COMPLETED":
        return []
    media = media_items(record.output)
    for m in media:
        if m["kind"] == "video" and "poster_url" not in m:
            start = (record.input or {}).get("image_url")
            if isinstance(start, str) and start.startswith("https://"):
                m["poster_url"] = start  # an image-to-video start frame is the clip's first picture
        local = saved.get(m["url"]) if saved else None
        if local is not None:
            path = Path(local.path)
            if local.size_bytes is not None:
                m["size_bytes"] = local.size_bytes
            m.update(local_path=str(path), file_url=path.as_uri())
    return media


def structured(model: BaseModel | dict[str, Any], extra: list[ContentBlock] | None = None, *,
               meta: dict[str, Any] | None = None, text: str | None = None) -> CallToolResult:
    """A successful result: structured content plus a compact text block with the same JSON.

    Optional fields without a value are left out (their schemas say so): nulls only cost context.
    """
    data = model if isinstance(model, dict) else model.model_dump(mode="json", exclude_none=True)
    if text is None:
        text = dumps_compact(data)
    content: list[ContentBlock] = [TextContent(type="text", text=text)]
    content.extend(extra or [])
    # Not validated again (``trusted``): the blocks are models already and the rest is this package's own JSON.
    return trusted(CallToolResult, content=content, structured_content=data, meta=meta)


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
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True,
                          _meta={ERROR_META_KEY: err.model_dump(mode="json", exclude_none=True)})


def media_links(media: list[dict[str, Any]]) -> list[ContentBlock]:
    """One ``resource_link`` per output file, and a ``file://`` link beside it when it was saved locally."""
    links: list[ContentBlock] = []
    for m in media:
        kind = m["kind"]
        links.append(trusted(ResourceLink, type="resource_link", uri=m["url"], name=m["name"], title=f"{kind} output",
                             mime_type=m["mime_type"], size=m.get("size_bytes"), description=_describe(m)))
        if m.get("file_url"):
            links.append(trusted(ResourceLink, type="resource_link", uri=m["file_url"],
                                 name=Path(m.get("local_path") or m["name"]).name,
                                 title=f"{kind} output (saved locally)", mime_type=m["mime_type"],
                                 size=m.get("size_bytes"),
                                 description=f"{_describe(m)} saved at {m.get('local_path')}"))
    return links


def _describe(m: dict[str, Any]) -> str:
    bits: list[str] = [m["kind"]]
    if m.get("width") and m.get("height"):
        bits.append(f"{m['width']}x{m['height']}")
    if m.get("duration"):
        bits.append(f"{m['duration']:g}s")
    return " ".join(bits)


async def request_result(record: RequestRecord, *, media_http: httpx.AsyncClient, include_preview: bool,
                         is_test: bool = False, note: str | None = None, outputs: OutputSaver | None = None
                         ) -> CallToolResult:
    """A request's result: its view, resource links per file (and its saved copy), an optional image preview.

    Many waiters on one request get the same answer: its JSON is built once per record version.
    """
    saved = await outputs.saved(record, media_budget(C.SAVE_WAIT_IN_CALL)) if outputs is not None else {}
    key = (id(record), is_test, note, tuple(sorted(f.path for f in saved.values())) if saved else ())
    hit = _built.get(key)
    if hit is None or hit[0] is not record:
        data, media = view_data(record, is_test=is_test, saved=saved)
        if note:
            data["next_step"] = f"{note} {data['next_step']}"
        data, text = lean_output(data, dumps_compact(data))
        hit = (record, data, text, media, media_links(media))
        _built[key] = hit
        while len(_built) > _BUILT_MAX:
            _built.pop(next(iter(_built)))
    _, data, text, media, links = hit
    extra = list(links)
    if include_preview and media:
        with anyio.move_on_after(media_budget(C.PREVIEW_FETCH_TIMEOUT)):  # a stalled file costs the preview only
            extra = [*await preview(media_http, [MediaFile(**m) for m in media]), *extra]
    return structured(data, extra, text=text)


def media_budget(cap: float) -> float:
    """Seconds media work may take in this call: ``cap``, less when the call's deadline is nearer (the answer
    must go out before it, with or without its preview and saved copies)."""
    return max(0.0, min(cap, anyio.current_effective_deadline() - anyio.current_time() - C.ANSWER_MARGIN))


#: Answers built recently, by record identity (records are replaced, never mutated, on every change).
_built: dict[tuple[int, bool, str | None, tuple[str, ...]], tuple[RequestRecord, dict[str, Any], str,
                                                                 list[dict[str, Any]], list[ContentBlock]]] = {}
_BUILT_MAX = 256


def wants_preview(settings_previews: bool | None, asked: bool | None) -> bool:
    """An explicit ``include_preview`` wins; otherwise the server's setting (on for desktop stdio use)."""
    return bool(settings_previews) if asked is None else asked
