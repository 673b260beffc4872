"""Session caps for the legacy SSE transport: each open ``GET /sse`` stream is a session.

The SDK's SSE app caps nothing, so one caller could hold streams until the process runs out of memory or file
descriptors. Like the Streamable HTTP manager (``bind_sessions``), a stream beyond ``total`` open ones, or beyond
``per_caller`` for one authenticated principal, is refused with 503 before any session is made; a closed
stream frees its place.
"""

from __future__ import annotations

import logging
from collections import Counter

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware, authorization_context
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


class SseSessionCap:
    """Wraps the SSE endpoint: admits a stream only under both caps and counts it until it closes."""

    def __init__(self, app: ASGIApp, *, total: int, per_caller: int | None) -> None:
        self.app = app
        self.total = total
        self.per_caller = per_caller
        self.open: Counter[tuple[str, str | None, str | None] | None] = Counter()  # principal -> open streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        who = _principal(scope)
        share_used = who is not None and self.per_caller is not None and self.open[who] >= self.per_caller
        if share_used or sum(self.open.values()) >= self.total:
            log.warning("refusing an SSE session: %s", "the caller's share is open" if share_used else "all are open")
            await JSONResponse({"error": "Too many open sessions"}, status_code=503)(scope, receive, send)
            return
        self.open[who] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open[who] -= 1
            if not self.open[who]:
                del self.open[who]


def _principal(scope: Scope) -> tuple[str, str | None, str | None] | None:
    """Who opens the stream, as the SDK compares session owners (None: unauthenticated)."""
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        return None
    ctx = authorization_context(user)
    return ctx["client_id"], ctx["issuer"], ctx["subject"]


def cap_sse_sessions(app: Starlette, sse_path: str, *, total: int, per_caller: int | None) -> SseSessionCap:
    """Put :class:`SseSessionCap` around ``app``'s SSE route (inside its authentication, so the caller is known)."""
    for route in app.router.routes:
        if isinstance(route, Route) and route.path == sse_path:
            # OAuth: inside the SDK's check, so a stream without a valid token gets its 401 (and the way to
            # authorize) even when the server is full, and never counts.
            guard = route.app if isinstance(route.app, RequireAuthMiddleware) else None
            cap = SseSessionCap(guard.app if guard is not None else route.app, total=total, per_caller=per_caller)
            if guard is not None:
                guard.app = cap
            else:
                route.app = cap
            return cap
    raise RuntimeError(f"the SSE app has no route {sse_path}")
