"""Reka's ``/v1/clips`` API over httpx (no official Reka SDK is among our dependencies).

Reka's statuses and outputs are mapped onto ours (``queued/processing/completed/failed`` →
``IN_QUEUE/IN_PROGRESS/COMPLETED/FAILED``; each clip a video), so the engine, store and tools
treat a Reka job like any other request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import InvalidInputError, NetworkError, UpstreamInvalidResponse, api_error_from
from clipia_mcp.core.records import GenerationError
from clipia_mcp.core.redaction import register_secret
from clipia_mcp.core.retry import RetryPolicy
from clipia_mcp.core.settings import Settings
from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.providers.bounded import AnswerTooLarge, bounded_transport, wrap_transports
from clipia_mcp.providers.reka.catalogue import REKA_MODEL
from clipia_mcp.providers.reka.validation import check_clip_input

STATUS_MAP = {"queued": "IN_QUEUE", "processing": "IN_PROGRESS", "completed": "COMPLETED", "failed": "FAILED"}
#: Reka's error ``type`` → our stable code.
CODE_MAP = {400: "model_input_invalid", 401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def map_output(clips: list[Any]) -> dict[str, Any]:
    """Reka's ``output`` list → our output object: ``videos[]`` for media plus the raw ``clips``."""
    videos = []
    for c in clips:
        if not isinstance(c, dict):
            continue
        url = c.get("video_url") if isinstance(c.get("video_url"), str) else c.get("signed_s3_video_url")
        if not isinstance(url, str):
            continue
        videos.append({"url": url, "title": c.get("title"), "caption": c.get("caption"),
                       "hashtags": c.get("hashtags", []), "ai_score": c.get("ai_score")})
    return {"videos": videos, "clips": [c for c in clips if isinstance(c, dict)]}


def _retry_after(headers: httpx.Headers) -> float | None:
    for name in ("retry-after", "x-ratelimit-requests-reset"):
        raw = headers.get(name)
        try:
            value = float(raw) if raw is not None else None
        except ValueError:
            value = None
        if value is not None and value > 0:
            return value
    return None


class RekaClient:
    """A :class:`~clipia_mcp.providers.base.QueueProvider` for Reka clip jobs."""

    name = "reka"
    capabilities = Capabilities(idempotency_keys=False, webhooks=False, credits=False, delete=True)

    def __init__(self, api_key: str, *, base_url: str, settings: Settings | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        s = settings or Settings()
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self.policy = RetryPolicy(max_attempts=s.retry_max_attempts, base_delay=s.retry_base_delay,
                                  max_delay=s.retry_max_delay, retry_after_cap=s.retry_after_cap)
        self._http = wrap_transports(
            httpx.AsyncClient(base_url=self.base_url, headers={"X-Api-Key": api_key}, timeout=s.http_timeout,
                              transport=transport),
            lambda inner, _: bounded_transport(inner, C.MAX_API_ANSWER_BYTES))
        self.calls: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"RekaClient(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        check_clip_input(data)

    async def _request(self, op: str, method: str, path: str, *, retry: bool = True, **kw: Any) -> dict[str, Any]:
        async def once() -> dict[str, Any]:
            self.calls[op] += 1
            try:
                resp = await self._http.request(method, path, **kw)
            except httpx.TransportError as exc:
                raise NetworkError(f"Could not reach the Reka API at {self.base_url} ({type(exc).__name__}).") \
                    from None
            except AnswerTooLarge as exc:
                raise UpstreamInvalidResponse(f"Reka answered {op} with a body that could not be read ({exc}).") \
                    from None
            trace = resp.headers.get("x-request-id")
            where = f" (Reka X-Request-ID {trace})" if trace else ""
            if resp.status_code >= 400:
                try:
                    body = resp.json()
                    err = body.get("error", {}) if isinstance(body, dict) else {}
                    err = err if isinstance(err, dict) else {}
                except ValueError:
                    err = {}
                message = str(err.get("message", "")) or f"Reka answered HTTP {resp.status_code}."
                if err.get("param"):
                    message = f"{err['param']}: {message}"
                raise api_error_from(resp.status_code, CODE_MAP.get(resp.status_code, ""), message + where,
                                     retry_after=_retry_after(resp.headers))
            try:
                data = resp.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise UpstreamInvalidResponse(f"Reka answered {op} with a body that is not a JSON object{where}.")
            return data

        # Reka has no idempotency keys: a create is never retried.
        return await (self.policy.run(op, once) if retry and method != "POST" else once())

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        """Create clips (once: Reka has no idempotency keys)."""
        if webhook_url:
            raise InvalidInputError("Reka clip jobs do not support webhooks.")
        data = await self._request("submit", "POST", "/v1/clips", json=input)
        job_id = data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise UpstreamInvalidResponse("Reka created a clip job but its answer has no id.")
        return SubmitResponse(request_id=job_id, status=STATUS_MAP.get(str(data.get("status")), "IN_QUEUE"))

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        data = await self._request("status", "GET", f"/v1/clips/{request_id}", retry=retry)
        raw = str(data.get("status"))
        return StatusResponse(request_id=request_id, status=STATUS_MAP.get(raw, "IN_PROGRESS"),
                              logs=[{"message": f"reka status: {raw}"}])

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        data = await self._request("result", "GET", f"/v1/clips/{request_id}", retry=retry)
        status = STATUS_MAP.get(str(data.get("status")), "IN_PROGRESS")
        if status not in ("COMPLETED", "FAILED"):
            return ResultResponse(request_id=request_id, status=status, pending=True)
        raw_output = data.get("output")
        return ResultResponse(
            request_id=request_id, status=status, model=REKA_MODEL,
            output=map_output(raw_output if isinstance(raw_output, list) else []) if status == "COMPLETED" else None,
            error=GenerationError(code="GENERATION_FAILED", message=str(data.get("error_message") or ""))
            if status == "FAILED" else None,
            created_at=data.get("created_at") if isinstance(data.get("created_at"), str) else None,
            completed_at=data.get("updated_at") if isinstance(data.get("updated_at"), str) else None)

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None:
        await self._request("delete", "DELETE", f"/v1/clips/{request_id}", retry=False,
                            json={"delete_input_video": delete_input})
