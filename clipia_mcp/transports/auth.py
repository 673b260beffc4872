"""Who may call the HTTP transports, and as whom.

Modes (``--auth``):

* ``caller-key``: every caller sends its own Clipia key (``Authorization: Bearer clipia_…`` or
  ``X-Api-Key``). Its data (requests, resources, tasks, journal rows) is scoped to a hash of that key.
  A key is confirmed with the API once (``GET /v1/account``) before it is served; confirmed keys are
  kept in a bounded LRU, refusals are remembered briefly, and new identities are rate-limited (429),
  so invented keys cost neither memory nor the operator's other keys (e.g. ``REKA_API_KEY``).
  All callers' API clients share one connection pool. A caller's first call in this process
  replays its interrupted submits with its own key (hosted recovery).
* ``token``: the operator configures the server's Clipia key plus static bearer tokens for the MCP
  endpoint (``CLIPIA_MCP_TOKENS``); each token is its own tenant (data scoped to a hash of the token).
* ``none``: single user (the server key or the sandbox), for loopback use.

Requests without valid credentials get 401 with ``WWW-Authenticate``. ``/healthz`` and the
webhook route (which has its own signature check) are not behind it.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from starlette.types import ASGIApp, Receive, Scope, Send

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import AuthenticationError, ClipiaMcpError, ConfigError, ScopeError
from clipia_mcp.core.redaction import fingerprint, register_secret
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.runtime import shared_caller
from clipia_mcp.engine.service import QueueService
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.transports.auth_mode import AuthMode

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/webhooks/clipia"})
SCOPE_KEY = "clipia_caller"
log = logging.getLogger(__name__)


def bearer(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "key") and value.strip():
        return value.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


@dataclass(frozen=True)
class Admission:
    """The answer to "may this credential be served": HTTP status 200, 401, 429 or 503."""

    status: int
    caller: Caller | None = None
    retry_after: float | None = None
    #: Who is served (a hash of the credential, never the credential): sessions are bound to it.
    principal: str | None = None


class _SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool (and one TLS context) for every caller's client; closing a client keeps it open."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Owned by the pool: see :meth:`CallerPool.aclose`."""


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class AuthMiddleware:
    """ASGI middleware: 401 unless the request carries a credential valid for the mode.

    caller-key mode asks the pool, which confirms a new key with the API (429 when too many new
    identities arrive at once, 503 when the API cannot say); the admitted caller rides in the scope.
    """

    def __init__(self, app: ASGIApp, mode: AuthMode, tokens: Sequence[str] = (),
                 pool: CallerPool | None = None) -> None:
        self.app = app
        self.mode = mode
        self.pool = pool
        self._tokens = [t for t in tokens if t]
        for t in self._tokens:
            register_secret(t)

    async def _admit(self, credential: str | None) -> Admission:
        if credential is None:
            return Admission(401)
        if self.mode == "caller-key":
            if self.pool is None:
                return Admission(503, retry_after=1.0)
            return await self.pool.admit(credential)
        # Compare against every token so timing does not reveal which one nearly matched.
        ok = any([hmac.compare_digest(credential.encode(), t.encode()) for t in self._tokens])
        return Admission(200, principal=fingerprint("token:" + credential)) if ok else Admission(401)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.mode in ("none", "oauth") or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        admission = await self._admit(bearer(headers))
        if admission.status != 200:
            await _refuse(send, self.mode, admission)
            return
        if admission.caller is not None:
            scope[SCOPE_KEY] = admission.caller
        principal = admission.principal or (admission.caller.owner if admission.caller is not None else None)
        if principal is not None:
            # The SDK binds a session (Streamable HTTP and SSE) to the user that opened it and answers any
            # other credential's use of its id as an unknown session (404). The token field holds the hash:
            # the credential itself never goes into the scope.
            scope["user"] = AuthenticatedUser(AccessToken(token=principal, client_id=principal, scopes=[]))
        await self.app(scope, receive, send)


async def _refuse(send: Send, mode: AuthMode, admission: Admission) -> None:
    what = "a Clipia API key" if mode == "caller-key" else "a bearer token"
    headers = [(b"content-type", b"application/json")]
    if admission.status == 401:
        body = {"error": "invalid_token", "error_description": f"Send {what} in Authorization."}
        headers.append((b"www-authenticate", b'Bearer realm="clipia-mcp", error="invalid_token"'))
    elif admission.status == 429:
        body = {"error": "too_many_new_callers", "error_description": "Too many new API keys at once; retry shortly."}
    else:
        body = {"error": "temporarily_unavailable",
                "error_description": "The API could not confirm this key right now; retry shortly."}
    if admission.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(admission.retry_after))).encode()))
    await send({"type": "http.response.start", "status": admission.status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class CallerPool:
    """Maps a request's credential to its :class:`Caller`.

    caller-key mode: a key is served only once the API confirmed it (``GET /v1/account``); confirmed
    callers live in an LRU of :data:`~clipia_mcp.core.constants.CALLER_POOL_SIZE`, refused keys are
    remembered (by hash) for a minute, and confirmations of new keys are rate-limited.
    """

    def __init__(self, settings: Settings, mode: AuthMode, base_url: str = "", server_caller: Caller | None = None,
                 service: QueueService | None = None, *, size: int = C.CALLER_POOL_SIZE) -> None:
        self.settings = settings
        self.mode = mode
        self.base_url = base_url
        self.server_caller = server_caller
        self.service = service
        self.size = size
        self._callers: OrderedDict[str, Caller] = OrderedDict()
        self._refused: OrderedDict[str, float] = OrderedDict()
        self._confirming: dict[str, anyio.Lock] = {}
        self._bucket = _TokenBucket(C.NEW_CALLERS_PER_SECOND, C.NEW_CALLERS_BURST)
        self._transport: _SharedTransport | None = None
        #: Confirmations asked of the API (tests and benchmarks).
        self.confirmations = 0

    def __repr__(self) -> str:
        return f"CallerPool(mode={self.mode!r}, callers={len(self._callers)})"

    def start(self, settings: Settings, base_url: str, server_caller: Caller | None, service: QueueService) -> None:
        """Attach the running engine (the pool exists before it, for the middleware)."""
        self.settings, self.base_url, self.server_caller, self.service = settings, base_url, server_caller, service

    async def aclose(self) -> None:
        callers = list(self._callers.values())
        self._callers.clear()
        for caller in callers:
            await caller.clipia.aclose()
        if self._transport is not None:
            await self._transport.inner.aclose()

    async def admit(self, credential: str) -> Admission:
        """Whether to serve ``credential`` (caller-key mode), confirming it with the API the first time."""
        try:
            key = ApiKey(credential, register=False)
        except ConfigError:
            return Admission(401)
        owner = key.fingerprint
        known = self._known(owner)
        if known is not None:
            return known
        lock = self._confirming.setdefault(owner, anyio.Lock())
        try:
            async with lock:
                known = self._known(owner)  # another request confirmed (or refused) it meanwhile
                if known is not None:
                    return known
                wait = self._bucket.take()
                if wait:
                    return Admission(429, retry_after=wait)
                return await self._confirm(key, owner)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._confirming.pop(owner, None)

    def _known(self, owner: str) -> Admission | None:
        caller = self._callers.get(owner)
        if caller is not None:
            self._callers.move_to_end(owner)
            return Admission(200, caller)
        until = self._refused.get(owner)
        if until is not None:
            if until > time.monotonic():
                return Admission(401)
            del self._refused[owner]
        return None

    async def _confirm(self, key: ApiKey, owner: str) -> Admission:
        if self.service is None:
            return Admission(503, retry_after=1.0)
        if self._transport is None:
            self._transport = _SharedTransport()
        client = ClipiaClient(key, base_url=self.base_url, settings=self.settings, transport=self._transport)
        self.confirmations += 1
        try:
            with anyio.fail_after(min(10.0, self.settings.call_deadline)):
                await client.account()
        except ScopeError:
            pass  # authenticated (the key exists), only not allowed this read: the key is real
        except AuthenticationError:
            await client.aclose()
            self._refused[owner] = time.monotonic() + C.CALLER_REFUSED_TTL
            while len(self._refused) > C.CALLER_REFUSED_CACHE:
                self._refused.popitem(last=False)
            return Admission(401)
        except (ClipiaMcpError, TimeoutError) as exc:
            await client.aclose()
            log.info("could not confirm a caller key yet: %s", getattr(exc, "code", "timeout"))
            return Admission(503, retry_after=getattr(exc, "retry_after", None) or 2.0)
        register_secret(key.reveal(), encoded=False)  # a real key now: masked wherever it might be echoed
        providers = self.server_caller.providers if self.server_caller is not None else {}
        # Webhooks only for the account whose signing secret the server holds: the server key's own.
        own_account = self.server_caller is not None and self.server_caller.owner == owner
        caller = Caller(clipia=client, owner=owner, sandbox=key.is_test, providers=providers,
                        server_webhooks=own_account)
        self._callers[owner] = caller
        while len(self._callers) > self.size:
            # The evicted client shares the pool's transport: dropping it frees it once no poll holds it;
            # it is not closed because a running poll loop may still use it.
            self._callers.popitem(last=False)
        # Hosted recovery: this caller's interrupted submits, replayed with its own key (idempotent, so a
        # caller confirmed again after eviction simply finds nothing left to do).
        self.service.recover_later(caller)
        return Admission(200, caller)

    def __call__(self, ctx: Context[Any, Any]) -> Caller:
        if self.mode == "oauth":
            from mcp.server.auth.middleware.auth_context import get_access_token

            token = get_access_token()
            if token is None or self.server_caller is None:
                raise ConfigError("No authenticated principal for this request.")
            principal = token.subject or token.client_id
            return shared_caller(self.server_caller, fingerprint("oauth:" + principal))
        request = ctx.request_context.request
        scope = getattr(request, "scope", None)
        admitted = scope.get(SCOPE_KEY) if isinstance(scope, dict) else None
        if isinstance(admitted, Caller):
            return admitted
        headers = getattr(request, "headers", None)
        credential = bearer({k.lower(): v for k, v in headers.items()}) if headers is not None else None
        if credential is None:
            raise ConfigError("This server needs credentials on every request.")
        if self.mode == "token":
            if self.server_caller is None:
                raise ConfigError("The server has no Clipia API key configured.")
            return shared_caller(self.server_caller, fingerprint("token:" + credential))
        try:
            caller = self._callers.get(ApiKey(credential, register=False).fingerprint)
        except ConfigError:
            caller = None
        if caller is None:
            raise ConfigError("This API key is not confirmed on this server; send the request again.")
        return caller
