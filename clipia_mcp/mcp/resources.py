"""Per-request resources ``clipia://requests/{request_id}`` and their change notifications.

Notifications reach both protocol eras: 2026 clients through
``subscriptions/listen`` (the SDK's subscription bus), legacy clients through
``resources/subscribe`` (served here, since ``MCPServer`` does not).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
)
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    EmptyResult,
    Resource,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from clipia_mcp.core import constants as C
from clipia_mcp.core import validation as check
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.records import RequestRecord
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.progress import human_status
from clipia_mcp.mcp.results import RESOURCE_PREFIX, media_budget, resource_uri, view
from clipia_mcp.mcp.runtime import Runtime, runtime_of
from clipia_mcp.mcp.spend import SPEND_URI, spend_view

log = logging.getLogger(__name__)
TEMPLATE = RESOURCE_PREFIX + "{request_id}"
#: resources/list pages, and how far back the listing reaches (the newest requests of the journal).
PAGE_SIZE = 50
LIST_WINDOW = 1000
#: The owner of the ``subscriptions/listen`` stream being opened (set by :func:`listen_guard`).
_listener_owner: ContextVar[str | None] = ContextVar("clipia_listener_owner", default=None)


@dataclasses.dataclass(frozen=True)
class TenantListChanged(ResourcesListChanged):
    """``resources/list_changed`` for one tenant's list: other tenants' streams never hear it."""

    owner: str = ""


class TenantBus(InMemorySubscriptionBus):
    """The subscription bus, aware of tenants: each listen stream is tagged with its caller's owner
    when it subscribes, and a :class:`TenantListChanged` reaches only that owner's streams."""

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        owner = _listener_owner.get()

        def scoped(event: ServerEvent) -> None:
            if isinstance(event, TenantListChanged) and event.owner != owner:
                return
            listener(event)

        return super().subscribe(scoped)


class LegacySubscriptions:
    """``resources/subscribe`` for handshake-era sessions: uri → sessions."""

    def __init__(self) -> None:
        # Strong references: the session object handed to a request handler is not kept alive by the SDK
        # between requests. A session whose send fails (connection gone) is dropped.
        self._subs: dict[str, list[ServerSession]] = {}

    async def subscribe(self, ctx: ServerRequestContext[Any], params: SubscribeRequestParams) -> EmptyResult:
        # Someone else's request answers exactly like an unknown one: accepted, and silent.
        if await owns(ctx, str(params.uri)):
            subs = self._subs.setdefault(str(params.uri), [])
            if ctx.session not in subs:
                subs.append(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any], params: UnsubscribeRequestParams) -> EmptyResult:
        subs = self._subs.get(str(params.uri))
        if subs is not None and ctx.session in subs:
            subs.remove(ctx.session)
        return EmptyResult()

    def forget(self, uri: str) -> None:
        self._subs.pop(uri, None)

    async def notify(self, uri: str) -> None:
        for session in list(self._subs.get(uri, ())):
            try:
                await session.send_resource_updated(uri)
            except Exception:  # noqa: BLE001 - a closed session just drops out
                self._subs[uri].remove(session)


async def owns(ctx: ServerRequestContext[Any], uri: str) -> bool:
    """Whether ``uri`` names a request of the caller of ``ctx`` (journal or tracker)."""
    if not uri.startswith(RESOURCE_PREFIX):
        return False
    rt = ctx.lifespan_context
    if not isinstance(rt, Runtime):
        return False
    try:
        owner = rt.caller_for(Context(request_context=ctx)).owner
        rid = check.request_id(uri[len(RESOURCE_PREFIX):])
    except ClipiaMcpError:
        return False
    return await rt.service.owns(owner, rid)


async def listen_guard(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
    """Middleware: a ``subscriptions/listen`` may only subscribe to the caller's own request resources."""
    if ctx.method != "subscriptions/listen":
        return await call_next(ctx)
    token = _listener_owner.set(_owner_of(ctx))
    try:
        if isinstance(ctx.params, dict):
            notes = ctx.params.get("notifications")
            if isinstance(notes, dict) and isinstance(notes.get("resourceSubscriptions"), list):
                kept = [u for u in notes["resourceSubscriptions"] if isinstance(u, str) and await owns(ctx, u)]
                params = {**ctx.params, "notifications": {**notes, "resourceSubscriptions": kept}}
                return await call_next(dataclasses.replace(ctx, params=params))
        return await call_next(ctx)
    finally:
        _listener_owner.reset(token)


def _owner_of(ctx: ServerRequestContext[Any]) -> str | None:
    rt = ctx.lifespan_context
    if not isinstance(rt, Runtime):
        return None
    try:
        return rt.caller_for(Context(request_context=ctx)).owner
    except ClipiaMcpError:
        return None


class Notifier:
    """Tracker listener: publishes a resource update to both eras when a request changes."""

    def __init__(self, bus: SubscriptionBus, legacy: LegacySubscriptions) -> None:
        self.bus = bus
        self.legacy = legacy

    async def __call__(self, record: RequestRecord) -> None:
        uri = resource_uri(record.request_id)
        await self.bus.publish(ResourceUpdated(uri=uri))
        await self.legacy.notify(uri)
        if record.terminal:
            self.legacy.forget(uri)  # a finished request never changes again

    async def list_changed(self, owner: str) -> None:
        """``owner``'s request list changed (a new submit): only that tenant's listen streams are told."""
        await self.bus.publish(TenantListChanged(owner=owner))


def register(mcp: MCPServer[Any], legacy: LegacySubscriptions) -> None:
    """Add the request template and the legacy subscribe handlers."""

    @mcp.resource(TEMPLATE, name="clipia-request", title="Clipia generation request",
                  description="Status and (when done) output links of one generation request, as JSON.",
                  mime_type="application/json")
    async def request_resource(request_id: str, ctx: Context) -> str:
        rt = runtime_of(ctx)
        try:
            with anyio.fail_after(rt.settings.call_deadline):  # a stalled API or file ends a read, as a call
                rid = check.request_id(request_id)
                caller = rt.caller_for(ctx)
                record = await rt.service.result(caller, rid)
                saved = await rt.engine.outputs.saved(record, media_budget(C.SAVE_WAIT_IN_CALL))
        except ClipiaMcpError as exc:
            if exc.code in ("not_found", "invalid_input"):
                raise ResourceNotFoundError(f"Unknown request {request_id[:64]!r}: {exc.message}") from None
            # Anything else (the API unreachable, a rate limit) is no verdict on the request: say what it was.
            raise MCPError(code=INTERNAL_ERROR, message=f"Error {exc.code}: {exc.message}") from None
        except TimeoutError:
            raise MCPError(code=INTERNAL_ERROR, message=f"Error deadline_exceeded: reading {request_id[:64]!r} "
                           f"took longer than {rt.settings.call_deadline:g} s; read it again.") from None
        return json.dumps(view(record, is_test=caller.sandbox, saved=saved).model_dump(mode="json", exclude_none=True),
                          separators=(",", ":"))

    lowlevel = mcp._lowlevel_server  # noqa: SLF001 - the documented way to add a raw handler
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, legacy.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, legacy.unsubscribe)


def encode_cursor(after_request_id: str) -> str:
    """An opaque ``resources/list`` cursor: the page continues after this request."""
    return base64.urlsafe_b64encode(f"after:{after_request_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The request id a cursor continues after; an unreadable cursor is -32602."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith("after:"):
            return check.request_id(raw[len("after:"):])
    except (ValueError, ClipiaMcpError):
        pass
    raise MCPError(code=INVALID_PARAMS, message="Invalid cursor")


async def list_request_resources(rt: Runtime, caller: Caller, *, after: str | None = None,
                                 page_size: int = PAGE_SIZE) -> tuple[list[Resource], str | None]:
    """One page of resources, one per request in the caller's journal, newest first, and the next cursor.

    The cursor names the last request of the page (stable while new requests arrive); a cursor whose
    request is no longer in the journal window is -32602.
    """
    records = await rt.service.list_requests(caller, None, LIST_WINDOW)
    start = 0
    if after is not None:
        ids = [r.request_id for r in records]
        if after not in ids:
            raise MCPError(code=INVALID_PARAMS, message="Invalid or expired cursor")
        start = ids.index(after) + 1
    page = records[start:start + page_size]
    more = start + page_size < len(records)
    return [
        Resource(uri=resource_uri(r.request_id), name=f"request-{r.request_id[:8]}",
                 title=f"{r.model or 'generation'}: {human_status(r)}",
                 description=(str((r.input or {}).get("prompt", ""))[:120] or None),
                 mime_type="application/json")
        for r in page
    ], (encode_cursor(page[-1].request_id) if more and page else None)


SPEND_RESOURCE = Resource(uri=SPEND_URI, name="clipia-spend", title="Clipia spending, last 30 days",
                          description="Credits per day and per model from the journal, with the account's "
                                      "30-day usage.", mime_type="application/json")


async def read_spend(ctx: Context[Any, Any]) -> str:
    """``clipia://spend``: the caller's last 30 days (a per-caller resource, so read through the server)."""
    try:
        rt = runtime_of(ctx)
        summary = await spend_view(rt, rt.caller_for(ctx))
    except ClipiaMcpError as exc:
        raise ResourceNotFoundError(f"No spending summary: {exc.message}") from None
    return json.dumps(summary.model_dump(mode="json", exclude_none=True), separators=(",", ":"))
