"""HTTP hosting: the Streamable HTTP / SSE ASGI app with a process-wide runtime.

``create_app()`` is also an ASGI app factory for ``uvicorn --factory`` deployments.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp import __version__
from clipia_mcp.auth import AuthMiddleware, AuthMode, CallerPool
from clipia_mcp.config import Settings
from clipia_mcp.server import ClipiaMCPServer, build_server
from clipia_mcp.webhooks import WEBHOOK_PATH, WebhookReceiver

HttpTransport = Literal["streamable-http", "sse"]


def security_settings(host: str, allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = ()
                      ) -> TransportSecuritySettings:
    """DNS-rebinding protection on by default: loopback names, plus any hosts/origins given."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for h in allowed_hosts:
        hosts += [h, f"{h}:*"] if ":" not in h else [h]
    origins += list(allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


def build_http_app(mcp: ClipiaMCPServer, transport: HttpTransport, *, host: str = "127.0.0.1",
                   allowed_hosts: Sequence[str] = (), allowed_origins: Sequence[str] = (),
                   auth: AuthMode = "none", tokens: Sequence[str] = ()) -> Starlette:
    """The Starlette app for ``transport``; its lifespan opens the runtime once for the process."""
    security = security_settings(host, allowed_hosts, allowed_origins)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    mcp.custom_route("/healthz", methods=["GET"], include_in_schema=False)(healthz)

    if mcp.runtime_holder.settings.webhook_secret:

        async def webhook(request: Request) -> Response:
            rt = mcp.runtime_holder.runtime
            receiver = rt.extras.get("webhook_receiver") if rt is not None else None
            if not isinstance(receiver, WebhookReceiver):
                return JSONResponse({"ok": False, "error": "starting"}, status_code=503)
            return await receiver.handle(request)

        mcp.custom_route(WEBHOOK_PATH, methods=["POST"], include_in_schema=False)(webhook)

    if transport == "sse":
        app = mcp.sse_app(transport_security=security, host=host)
    else:
        app = mcp.streamable_http_app(transport_security=security, host=host)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[None]:
        async with mcp.runtime_holder.open() as rt, inner(a):
            if auth != "none":
                pool = CallerPool(rt.settings, auth, rt.sandbox_base_url or rt.settings.base_url, rt.caller)
                rt.extras["caller_resolver"] = pool
                try:
                    yield
                finally:
                    await pool.aclose()
            else:
                yield

    app.router.lifespan_context = lifespan
    if auth not in ("none", "oauth"):  # oauth: the SDK's bearer middleware does it
        app.add_middleware(AuthMiddleware, mode=auth, tokens=list(tokens))
    return app


def create_app(transport: HttpTransport = "streamable-http") -> Starlette:
    """ASGI factory: ``uvicorn --factory clipia_mcp.hosting:create_app`` (configured from the environment)."""
    settings = Settings.from_env()
    if settings.api_key is None:
        from dataclasses import replace

        settings = replace(settings, sandbox=True)
    return build_http_app(build_server(settings), transport)
