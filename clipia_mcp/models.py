"""Typed shapes of the Clipia API and of our tool results.

The API models parse raw JSON leniently (unknown fields are ignored, optional
fields may be absent). The tool output models double as MCP ``outputSchema``.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})
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


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InputWarning(_Lenient):
    """An ``input`` key the model will not apply (the request is still accepted)."""

    code: str = ""
    parameter: str = ""
    message: str = ""


class SubmitResponse(_Lenient):
    """``POST /v1/models/{model}``."""

    request_id: str
    status: str
    queue_position: int | None = None
    status_url: str | None = None
    response_url: str | None = None
    cost: int | None = None
    warnings: list[InputWarning] = Field(default_factory=list)


class StatusResponse(_Lenient):
    """``GET /v1/requests/{id}/status``."""

    request_id: str
    status: str
    queue_position: int | None = None
    progress: int | None = None
    logs: list[Any] = Field(default_factory=list)


class GenerationError(_Lenient):
    code: str = "GENERATION_FAILED"
    message: str = ""


class ResultResponse(_Lenient):
    """``GET /v1/requests/{id}``; ``pending`` is True for a 202."""

    request_id: str
    status: str
    model: str | None = None
    output: dict[str, Any] | None = None
    error: GenerationError | None = None
    cost: int | None = None
    created_at: str | None = None
    completed_at: str | None = None
    pending: bool = False


class EstimateResponse(_Lenient):
    credits: int
    warnings: list[InputWarning] = Field(default_factory=list)


class AccountResponse(_Lenient):
    account_id: str | None = None
    balance: dict[str, Any] = Field(default_factory=dict)
    usage_30d: dict[str, Any] = Field(default_factory=dict)


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
    """Every media file in an ``output`` object, whatever its model type (§7 of the contract)."""
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


# --------------------------------------------------------------------------- tool outputs


class RequestView(BaseModel):
    """A generation request as this server knows it: status, progress and (when done) its files."""

    request_id: str = Field(description="Clipia request id (UUID); the handle for every later call.")
    status: str = Field(description="IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED or CANCELED.")
    done: bool = Field(description="True once the status is terminal (COMPLETED, FAILED, CANCELED).")
    model: str | None = None
    queue_position: int | None = None
    progress: int | None = Field(default=None, description="0-100 while IN_PROGRESS.")
    logs: list[dict[str, Any]] = Field(default_factory=list, description="Recent log entries (opaque objects).")
    cost: int | None = Field(
        default=None, description="Credits: reserved while running, charged when COMPLETED, 0 if FAILED/CANCELED."
    )
    media: list[MediaFile] = Field(default_factory=list, description="Output files (COMPLETED only).")
    output: dict[str, Any] | None = Field(default=None, description="The raw API output object.")
    error: GenerationError | None = None
    created_at: str | None = None
    completed_at: str | None = None
    resource_uri: str
    next_step: str


class SubmitView(BaseModel):
    """What ``submit_generation`` returns at once."""

    request_id: str
    status: str
    model: str
    queue_position: int | None = None
    cost: int | None = Field(default=None, description="Credits reserved (price fixed at submit).")
    warnings: list[InputWarning] = Field(default_factory=list)
    deduplicated: bool = Field(
        default=False, description="True when an earlier identical submit was returned instead of charging again."
    )
    idempotency_key: str
    resource_uri: str
    next_step: str


class ModelSummary(BaseModel):
    slug: str
    type: str | None = None
    name: str | None = None
    description: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    credits: int | None = Field(default=None, description="Price at default parameters (None: call estimate_cost).")
    available: bool = True
    estimate_required: bool = False


class ModelList(BaseModel):
    count: int
    models: list[ModelSummary]


class ModelDetail(BaseModel):
    slug: str
    type: str | None = None
    name: str | None = None
    description: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    pricing: dict[str, Any] = Field(default_factory=dict)
    input_schema: dict[str, Any] | None = None
    text_limits: dict[str, Any] | None = None


class EstimateView(BaseModel):
    model: str
    credits: int
    warnings: list[InputWarning] = Field(default_factory=list)
    balance: int | None = Field(default=None, description="Current balance, when it could be read.")
    affordable: bool | None = None


class BalanceView(BaseModel):
    account_id: str | None = None
    credits: int | None = None
    usage_30d_requests: int | None = None
    usage_30d_credits_spent: int | None = None
    sandbox: bool = Field(description="True when the key is a clipia_test_ key or the embedded sandbox is used.")


class RequestSummary(BaseModel):
    request_id: str
    model: str
    status: str
    cost: int | None = None
    prompt: str | None = Field(default=None, description="First 200 characters of input.prompt, if any.")
    created_at: str
    updated_at: str
    resource_uri: str


class RequestListView(BaseModel):
    count: int
    requests: list[RequestSummary]


class DeleteView(BaseModel):
    request_id: str
    deleted: bool
    deleted_input_video: bool


class ErrorView(BaseModel):
    code: str
    message: str
    http_status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
