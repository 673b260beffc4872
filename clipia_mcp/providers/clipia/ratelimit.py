"""The account's own rate limit, read from the ``RateLimit-*`` headers of every answer.

The official SDK returns parsed bodies only, so the headers are observed in the HTTP transport
it is given. The engine sizes its poll budget from what is seen here (keeping headroom) instead
of a fixed guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from clipia_mcp.core import metrics


@dataclass
class RateLimitState:
    """The last ``RateLimit-Limit/Remaining/Reset`` seen (None until an answer carried them)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # monotonic time when the window resets
    observed: int = 0

    def update(self, headers: httpx.Headers) -> None:
        limit = _int(headers.get("ratelimit-limit"))
        if limit is None:
            return
        self.limit = limit
        self.remaining = _int(headers.get("ratelimit-remaining"))
        reset = _int(headers.get("ratelimit-reset"))
        self.reset_at = time.monotonic() + reset if reset is not None else None
        self.observed += 1


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw.strip().split(",")[0].split(";")[0])
    except ValueError:
        return None
    return value if value >= 0 else None


class ObservingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport and records rate-limit headers of every response."""

    def __init__(self, inner: httpx.AsyncBaseTransport, state: RateLimitState) -> None:
        self._inner = inner
        self.state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.state.update(response.headers)
        metrics.inc("clipia_mcp_upstream_calls_total", method=request.method, status=f"{response.status_code // 100}xx")
        if response.status_code == 429:
            metrics.inc("clipia_mcp_upstream_429_total")
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
