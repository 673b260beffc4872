"""The account's own rate limit, read from the ``RateLimit-*`` headers of every answer.

The official SDK returns parsed bodies only, so the headers are observed in the HTTP transport
it is given. The engine sizes its poll budget from what is seen here (keeping headroom) instead
of a fixed guess.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clipia_mcp.core import metrics

if TYPE_CHECKING:
    import httpx


@dataclass(eq=False, repr=False)  # live state, compared by identity (fewer generated methods at start)
class RateLimitState:
    """The last ``RateLimit-Limit/Remaining/Reset`` seen (None until an answer carried them)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # monotonic time when the window resets
    observed: int = 0
    #: Monotonic time before which a 429 (``Retry-After``) asked this key to hold off.
    blocked_until: float = 0.0

    def update(self, headers: httpx.Headers, status_code: int = 200) -> None:
        if status_code == 429:
            retry_after = _int(headers.get("retry-after"))
            self.blocked_until = max(self.blocked_until, time.monotonic() + (retry_after if retry_after else 1))
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


def observing_transport(inner: httpx.AsyncBaseTransport, state: RateLimitState) -> httpx.AsyncBaseTransport:
    """Wrap the real transport so that every response's rate-limit headers land in ``state``."""
    return _observing_class()(inner, state)


@functools.cache
def _observing_class() -> Callable[[httpx.AsyncBaseTransport, RateLimitState], httpx.AsyncBaseTransport]:
    """Defined on first use: httpx is imported when the first client is built, not at server start."""
    import httpx

    class ObservingTransport(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport, state: RateLimitState) -> None:
            self._inner = inner
            self.state = state

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            self.state.update(response.headers, response.status_code)
            metrics.inc("clipia_mcp_upstream_calls_total", method=request.method,
                        status=f"{response.status_code // 100}xx")
            if response.status_code == 429:
                metrics.inc("clipia_mcp_upstream_429_total")
            return response

        async def aclose(self) -> None:
            await self._inner.aclose()

    return ObservingTransport
