"""HTTP hosting: the Streamable HTTP / SSE ASGI app with a process-wide runtime.

:func:`create_app` is also an ASGI app factory for ``uvicorn --factory`` deployments: it goes
through the same settings and ``--auth auto`` decision as the CLI, so a deployment is never
silently open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Literal

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp import __version__
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import WEBHOOK_PATH
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.server import ClipiaMCPServer, build_server
from clipia_mcp.transports.auth import AuthMiddleware, CallerPool
from clipia_mcp.transports.auth_mode import AuthMode, oauth_options, resolve_auth
from clipia_mcp.transports.events import SSE_RETRY_MS, UNBOUND, MemoryEventStore, bind_sessions
from clipia_mcp.transports.metrics import endpoints
from clipia_mcp.transports.sse_sessions import cap_sse_sessions

if TYPE_CHECKING:
    from clipia_mcp.transports.webhooks import WebhookReceiver

HttpTransport = Literal["streamable-http", "sse"]
#: The legacy SSE transport's stream endpoint (the SDK's default path).
SSE_PATH = "/sse"


def security_settings(allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
                      ) -> TransportSecuritySettings:
    """DNS-rebinding protection on by default: loopback names, plus any hosts/origins given."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for h in allowed_hosts:
        hosts += [h, f"{h}:*"] if ":" not in h else [h]
    origins += list(allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def build_http_app(mcp: ClipiaMCPServer, transport: HttpTransport, *, auth: AuthMode = "none") -> Starlette:
    """The Starlette app for ``transport``; its lifespan opens the runtime once for the process."""
    settings = mcp.runtime_holder.settings
    security = security_settings(settings.allowed_hosts, settings.allowed_origins)
    receiver: list[WebhookReceiver] = []

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    mcp.custom_route("/healthz", methods=["GET"], include_in_schema=False)(healthz)
    live: list[Runtime] = []
    metrics_endpoint, readyz = endpoints(lambda: live[0] if live else None)
    mcp.custom_route("/metrics", methods=["GET"], include_in_schema=False)(metrics_endpoint)
    mcp.custom_route("/readyz", methods=["GET"], include_in_schema=False)(readyz)

    if settings.webhook_secret:

        async def webhook(request: Request) -> Response:
            if not receiver:
                return JSONResponse({"ok": False, "error": "starting"}, status_code=503)
            return await receiver[0].handle(request)

        mcp.custom_route(WEBHOOK_PATH, methods=["POST"], include_in_schema=False)(webhook)

    if transport == "sse":
        app = mcp.sse_app(transport_security=security)
        cap_sse_sessions(app, SSE_PATH, total=settings.max_sessions, per_caller=settings.max_sessions_per_caller)
    else:
        app = mcp.streamable_http_app(transport_security=security, event_store=UNBOUND, retry_interval=SSE_RETRY_MS,
                                      max_sessions=settings.max_sessions,
                                      session_idle_timeout=settings.session_idle_timeout)
        bind_sessions(mcp.session_manager, MemoryEventStore(), settings.max_sessions_per_caller)
    inner = app.router.lifespan_context

    pool = CallerPool(settings, auth)

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[None]:
        async with mcp.runtime_holder.open(recover_all_owners=auth in ("token", "oauth")) as rt, inner(a):
            live.append(rt)
            if settings.webhook_secret:
                from clipia_mcp.transports.webhooks import WebhookReceiver

                receiver.append(WebhookReceiver(settings.webhook_secret, rt.service))
            if auth == "none":
                yield
                return
            pool.start(rt.settings, rt.engine.clipia_url, rt.caller, rt.service)
            rt.caller_resolver = pool
            try:
                yield
            finally:
                await pool.aclose()

    app.router.lifespan_context = lifespan
    if auth not in ("none", "oauth"):  # oauth: the SDK's bearer middleware does it
        app.add_middleware(AuthMiddleware, mode=auth, tokens=list(settings.tokens), pool=pool)
    return app


def create_app(transport: HttpTransport = "streamable-http") -> Starlette:
    """ASGI factory: ``uvicorn --factory clipia_mcp.transports.http:create_app`` (configured from the environment)."""
    auth, settings = resolve_auth(Settings.from_env().for_transport(transport), http=True)
    return build_http_app(build_server(settings, **oauth_options(settings)), transport, auth=auth)
