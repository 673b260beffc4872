"""Who may call the HTTP transports, and as whom.

Modes (``--auth``):

* ``caller-key``: every caller sends its own Clipia key (``Authorization: Bearer clipia_…`` or
  ``X-Api-Key``). Its data (requests, resources, tasks, journal rows) is scoped to a hash of that key.
* ``token``: the operator configures the server's Clipia key plus static bearer tokens for the MCP
  endpoint (``CLIPIA_MCP_TOKENS``); each token is its own tenant (data scoped to a hash of the token).
* ``none``: single user (the server key or the sandbox), for loopback use.

Requests without valid credentials get 401 with ``WWW-Authenticate``. ``/healthz`` and the
webhook route (which has its own signature check) are not behind it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any, Literal

from mcp.server.mcpserver import Context
from starlette.types import ASGIApp, Receive, Scope, Send

from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.redaction import fingerprint, register_secret
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.runtime import shared_caller
from clipia_mcp.providers.clipia.client import ClipiaClient

AuthMode = Literal["none", "caller-key", "token", "oauth"]
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/webhooks/clipia"})
SCOPE_KEY = "clipia_credential"


def bearer(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "key") and value.strip():
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


class AuthMiddleware:
    """ASGI middleware: 401 unless the request carries a credential valid for the mode."""

    def __init__(self, app: ASGIApp, mode: AuthMode, tokens: Sequence[str] = ()) -> None:
        self.app = app
        self.mode = mode
        self._tokens = [t for t in tokens if t]
        for t in self._tokens:
            register_secret(t)

    def _valid(self, credential: str | None) -> bool:
        if credential is None:
            return False
        if self.mode == "caller-key":
            try:
                ApiKey(credential)
            except ConfigError:
                return False
            return True
        # Compare against every token so timing does not reveal which one nearly matched.
        return any([hmac.compare_digest(credential.encode(), t.encode()) for t in self._tokens])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.mode in ("none", "oauth") or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        credential = bearer(headers)
        if not self._valid(credential):
            what = "a Clipia API key" if self.mode == "caller-key" else "a bearer token"
            body = json.dumps({"error": "invalid_token", "error_description": f"Send {what} in Authorization."})
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="clipia-mcp", error="invalid_token"'),
            ]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


class CallerPool:
    """Maps a request's credential to its :class:`Caller`, one API client per distinct key."""

    def __init__(self, settings: Settings, mode: AuthMode, base_url: str, server_caller: Caller | None) -> None:
        self.settings = settings
        self.mode = mode
        self.base_url = base_url
        self.server_caller = server_caller
        self._clients: dict[str, ClipiaClient] = {}

    def __repr__(self) -> str:
        return f"CallerPool(mode={self.mode!r}, clients={len(self._clients)})"

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def __call__(self, ctx: Context[Any, Any]) -> Caller:
        if self.mode == "oauth":
            from mcp.server.auth.middleware.auth_context import get_access_token

            token = get_access_token()
            if token is None or self.server_caller is None:
                raise ConfigError("No authenticated principal for this request.")
            principal = token.subject or token.client_id
            return shared_caller(self.server_caller, fingerprint("oauth:" + principal))
        request = ctx.request_context.request
        headers = getattr(request, "headers", None)
        credential = bearer({k.lower(): v for k, v in headers.items()}) if headers is not None else None
        if credential is None:
            raise ConfigError("This server needs credentials on every request.")
        if self.mode == "token":
            if self.server_caller is None:
                raise ConfigError("The server has no Clipia API key configured.")
            return shared_caller(self.server_caller, fingerprint("token:" + credential))
        key = ApiKey(credential)
        owner = key.fingerprint
        client = self._clients.get(owner)
        if client is None:
            client = ClipiaClient(key, base_url=self.base_url, settings=self.settings)
            self._clients[owner] = client
        providers = self.server_caller.providers if self.server_caller is not None else {}
        # Webhooks only for the account whose signing secret the server holds: the server key's own.
        own_account = self.server_caller is not None and self.server_caller.owner == owner
        return Caller(clipia=client, owner=owner, sandbox=key.is_test, providers=providers,
                      server_webhooks=own_account)
