"""HTTP hosting: the Streamable HTTP / SSE ASGI app with a process-wide runtime.

:func:`create_app` is also an ASGI app factory for ``uvicorn --factory`` deployments: it goes
through the same settings and ``--auth auto`` decision as the CLI, so a deployment is never
silently open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from clipia_mcp import __version__
from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import WEBHOOK_PATH
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.server import ClipiaMCPServer, build_server
from clipia_mcp.transports.auth import AuthMiddleware, AuthMode, CallerPool
from clipia_mcp.transports.events import SSE_RETRY_MS, MemoryEventStore
from clipia_mcp.transports.metrics import endpoints

if TYPE_CHECKING:
    from clipia_mcp.transports.webhooks import WebhookReceiver

HttpTransport = Literal["streamable-http", "sse"]


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


def resolve_auth(settings: Settings, *, http: bool, sandbox_flag: bool = False) -> tuple[AuthMode, Settings]:
    """The auth mode (``auto`` decided) and the settings to run with (sandbox when there is no key).

    auto: OAuth if an introspection URL is set, token if tokens are set, caller-key if there is no
    server key and no sandbox was asked for, else none. stdio is always ``none``.
    """
    auth = settings.auth
    if auth == "auto":
        auth = "none" if not http else "oauth" if settings.oauth_introspection_url else "token" if settings.tokens \
            else "caller-key" if settings.api_key is None and not sandbox_flag and not settings.sandbox else "none"
    if auth == "oauth" and not (settings.oauth_introspection_url and settings.oauth_issuer_url
                                and settings.oauth_resource_url):
        raise ConfigError("--auth oauth needs CLIPIA_MCP_OAUTH_INTROSPECTION_URL, _ISSUER and _RESOURCE.")
    if auth == "token" and not settings.tokens:
        raise ConfigError("--auth token needs CLIPIA_MCP_TOKENS (comma-separated bearer tokens).")
    if auth != "caller-key" and (sandbox_flag or settings.api_key is None):
        settings = replace(settings, sandbox=True)
    if auth in ("token", "oauth") and settings.api_key is None and not settings.sandbox:
        raise ConfigError(f"--auth {auth} needs the server's CLIPIA_API_KEY (it pays for every tenant).")
    return auth, settings  # type: ignore[return-value]


def oauth_options(settings: Settings) -> dict[str, Any]:
    """The MCPServer arguments for OAuth resource-server mode (empty when OAuth is off)."""
    if not settings.oauth_introspection_url:
        return {}
    from mcp.server.auth.settings import AuthSettings

    from clipia_mcp.transports.oauth import IntrospectionVerifier

    return {
        "token_verifier": IntrospectionVerifier(
            settings.oauth_introspection_url, client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret, audience=settings.oauth_resource_url,
            issuer=settings.oauth_issuer_url),
        "auth": AuthSettings(issuer_url=settings.oauth_issuer_url,  # type: ignore[arg-type]
                             resource_server_url=settings.oauth_resource_url,  # type: ignore[arg-type]
                             required_scopes=list(settings.oauth_required_scopes) or None,
                             validate_token_resource=False),
    }


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

    app = mcp.sse_app(transport_security=security) if transport == "sse" \
        else mcp.streamable_http_app(transport_security=security, event_store=MemoryEventStore(),
                                     retry_interval=SSE_RETRY_MS, max_sessions=settings.max_sessions,
                                     session_idle_timeout=settings.session_idle_timeout)
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
