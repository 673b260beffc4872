"""Reka Vision clip generation behind the same tools (provider ``reka``, model ``reka/clips``).

:class:`RekaClient` speaks Reka's ``/v1/clips`` API (plain httpx: there is no official Reka SDK among our
dependencies) and presents the same small surface as :class:`~clipia_mcp.client.ClipiaClient` (submit,
status, result), mapping Reka's statuses and outputs onto ours, so the journal, tracker, resources and tasks
work unchanged for Reka ids.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from clipia_mcp.config import Settings
from clipia_mcp.emulator.reka import validate
from clipia_mcp.errors import ClipiaMcpError, NetworkError, api_error_from
from clipia_mcp.models import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.redaction import register_secret
from clipia_mcp.retry import RetryPolicy

REKA_MODEL = "reka/clips"
DEFAULT_REKA_URL = "https://vision-agent.api.reka.ai"
REKA_CATALOGUE_ENTRY: dict[str, Any] = {
    "slug": REKA_MODEL,
    "type": "video",
    "name": "Reka Vision clips",
    "description": "Short highlight clips cut from source videos (YouTube, Twitch or MP4 links), with titles, "
                   "captions and hashtags. Minutes per job; about 10 jobs per day per key.",
    "capabilities": ["video-to-video", "highlights"],
    "pricing": {"available": True, "note": "Metered by Reka, not in Clipia credits."},
    "input_schema": {"parameters": [
        {"name": "video_urls", "type": "images", "required": True, "label": "Source video URLs"},
        {"name": "prompt", "type": "text", "required": False, "maxLength": 5000},
        {"name": "generation_config", "type": "object", "required": False,
         "hint": "template moments|compilation, num_generations 1-3, min/max_duration_seconds (max 1-600)"},
        {"name": "rendering_config", "type": "object", "required": False,
         "hint": "aspect_ratio 9:16|16:9|4:5|1:1, resolution 240|360|480|720|1080, subtitles, show_watermark"},
    ], "parameterGroups": []},
}
STATUS_MAP = {"queued": "IN_QUEUE", "processing": "IN_PROGRESS", "completed": "COMPLETED", "failed": "FAILED"}
CODE_MAP = {400: "model_input_invalid", 401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def is_reka(model: str | None) -> bool:
    return bool(model) and str(model).startswith("reka/")


def check_input(data: dict[str, Any]) -> None:
    """Validate ``generation_config``/``rendering_config`` locally, with the field named in the error."""
    problem = validate(data)
    if problem is not None:
        from clipia_mcp.errors import InvalidInputError

        raise InvalidInputError(f"{problem[0]}: {problem[1]}")


def map_output(clips: list[dict[str, Any]]) -> dict[str, Any]:
    """Reka's ``output`` list → our output object: ``videos[]`` for media plus the raw ``clips``."""
    videos = [{"url": c["video_url"], "title": c.get("title"), "caption": c.get("caption"),
               "hashtags": c.get("hashtags", []), "ai_score": c.get("ai_score")}
              for c in clips if isinstance(c, dict) and isinstance(c.get("video_url"), str)]
    return {"videos": videos, "clips": clips}


class RekaClient:
    """Async access to Reka's clip API with our retry policy and error tree."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_REKA_URL, settings: Settings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        s = settings or Settings()
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.policy = RetryPolicy(max_attempts=s.retry_max_attempts, base_delay=s.retry_base_delay,
                                  max_delay=s.retry_max_delay, retry_after_cap=s.retry_after_cap)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers={"X-Api-Key": api_key},
                                       timeout=s.http_timeout, transport=transport)
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"RekaClient(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, op: str, method: str, path: str, *, retry: bool = True, **kw: Any) -> Any:
        async def once() -> Any:
            self.calls[op] += 1
            try:
                resp = await self._http.request(method, path, **kw)
            except httpx.TransportError as exc:
                raise NetworkError(f"Could not reach the Reka API ({type(exc).__name__}).") from None
            if resp.status_code >= 400:
                try:
                    err = resp.json().get("error", {})
                except ValueError:
                    err = {}
                ra = resp.headers.get("retry-after")
                message = str(err.get("message", ""))
                if err.get("param"):
                    message = f"{err['param']}: {message}"
                raise api_error_from(resp.status_code, CODE_MAP.get(resp.status_code, ""), message,
                                     retry_after=float(ra) if ra and ra.replace(".", "").isdigit() else None)
            return resp.json()

        return await (self.policy.run(op, once) if retry and method != "POST" else once())

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        """Create clips. Reka has no idempotency keys, so a create is never retried automatically."""
        if webhook_url:
            raise ClipiaMcpError("Reka clip jobs do not support webhooks.", code="invalid_input")
        data = await self._request("submit", "POST", "/v1/clips", json=input)
        return SubmitResponse(request_id=data["id"], status=STATUS_MAP.get(data.get("status", ""), "IN_QUEUE"),
                              queue_position=None, cost=None)

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        data = await self._request("status", "GET", f"/v1/clips/{request_id}", retry=retry)
        status = STATUS_MAP.get(data.get("status", ""), "IN_PROGRESS")
        return StatusResponse(request_id=request_id, status=status,
                              logs=[{"message": f"reka status: {data.get('status')}"}])

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        data = await self._request("result", "GET", f"/v1/clips/{request_id}", retry=retry)
        status = STATUS_MAP.get(data.get("status", ""), "IN_PROGRESS")
        if status not in ("COMPLETED", "FAILED"):
            return ResultResponse(request_id=request_id, status=status, pending=True)
        return ResultResponse(
            request_id=request_id, status=status, model=REKA_MODEL,
            output=map_output(data.get("output") or []) if status == "COMPLETED" else None,
            error={"code": "GENERATION_FAILED", "message": str(data.get("error_message", ""))}  # type: ignore[arg-type]
            if status == "FAILED" else None,
            created_at=data.get("created_at"), completed_at=data.get("updated_at"))

    async def delete(self, request_id: str, *, delete_input_video: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = await self._request("delete", "DELETE", f"/v1/clips/{request_id}", retry=False,
                                                   json={"delete_input_video": delete_input_video})
        return data
