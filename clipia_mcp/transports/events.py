"""A bounded in-memory SSE event store for Streamable HTTP (handshake-era sessions, 2025-11-25+).

With an event store the SDK opens every SSE response with a *priming event* (an event id and empty
data) carrying the ``retry`` field, and a client whose stream broke can reconnect with
``Last-Event-ID`` and receive what it missed. The store is per process and keeps the newest
``max_events`` events; an evicted id simply replays nothing. (2026-07-28 removed resumability: the
modern leg does not use it.)

The SDK hands one event store to every session and names a stream by its JSON-RPC request id, which
every session reuses (1, 2, 3, …). So each session gets its own :class:`SessionEvents` view: events are
stored under the session that sent them, and a ``Last-Event-ID`` replays only that session's own events.
Another session's event id replays nothing, exactly like an unknown one.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Any

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import JSONRPCMessage

#: How long a client should wait before reconnecting a broken SSE stream (milliseconds).
SSE_RETRY_MS = 1000


class MemoryEventStore:
    """The process's recent SSE events, each under the session that sent it (use it through
    :class:`SessionEvents`). Every operation costs what the one session's own events cost: closing
    many sessions at once (idle reaping) never walks the whole store."""

    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self._events: OrderedDict[EventId, tuple[str, StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._by_session: dict[str, dict[EventId, None]] = {}  # each session's event ids, oldest first
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._events)

    def store(self, session_id: str, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events[event_id] = (session_id, stream_id, message)
        self._by_session.setdefault(session_id, {})[event_id] = None
        while len(self._events) > self.max_events:
            old, (sid, _, _) = self._events.popitem(last=False)
            own = self._by_session[sid]
            del own[old]
            if not own:
                del self._by_session[sid]
        return event_id

    async def replay(self, session_id: str, last_event_id: EventId, send: EventCallback) -> StreamId | None:
        """Send ``session_id``'s events on the stream of ``last_event_id`` that came after it; None (nothing
        replayed) when that id is unknown, evicted or another session's."""
        event = self._events.get(last_event_id)
        if event is None or event[0] != session_id:
            return None
        stream_id = event[1]
        after = False
        for event_id in list(self._by_session.get(session_id, ())):
            if event_id == last_event_id:
                after = True
                continue
            found = self._events.get(event_id)
            if after and found is not None and found[1] == stream_id and found[2] is not None:
                await send(EventMessage(found[2], event_id))
        return stream_id

    def forget(self, session_id: str) -> None:
        """Drop a closed session's events (nothing can replay them any more)."""
        for event_id in self._by_session.pop(session_id, {}):
            del self._events[event_id]


class SessionEvents(EventStore):
    """One session's view of the :class:`MemoryEventStore`: what the SDK's transport of that session uses."""

    def __init__(self, events: MemoryEventStore, session_id: str) -> None:
        self.events = events
        self.session_id = session_id

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        return self.events.store(self.session_id, stream_id, message)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return await self.events.replay(self.session_id, last_event_id, send_callback)


class _Unbound(EventStore):
    """Stands in for the store in the SDK's manager (which must see one to enable resumability); every
    session's transport gets its own :class:`SessionEvents` instead, so this is never asked anything."""

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        raise RuntimeError("SSE events must be stored through a session's SessionEvents")

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return None  # fail closed: nothing to replay


UNBOUND = _Unbound()


def bind_sessions(manager: StreamableHTTPSessionManager, events: MemoryEventStore,
                  max_per_principal: int | None) -> None:
    """Give each new session of ``manager`` its own view of ``events``, drop its events when it closes, and
    refuse a principal (an authenticated caller) a new session while it holds ``max_per_principal`` of them,
    so one tenant cannot take the whole session cap from the others (refused like the cap: 503).

    The SDK has no hook for either, so this wraps the manager's session admission and discard.
    """
    admit = manager._admit_session  # noqa: SLF001
    discard = manager._discard_session  # noqa: SLF001
    owners: dict[str, Any] = manager._session_owners  # noqa: SLF001 - session id -> principal (authenticated)

    def admit_session(requestor: Any) -> Any:
        if requestor is not None and max_per_principal is not None and \
                sum(1 for owner in owners.values() if owner == requestor) >= max_per_principal:
            return None
        transport = admit(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            transport._event_store = SessionEvents(events, transport.mcp_session_id)  # noqa: SLF001
        return transport

    async def discard_session(session_id: str, transport: Any) -> None:
        await discard(session_id, transport)
        events.forget(session_id)  # after: the terminated transport stores nothing more

    manager._admit_session = admit_session  # type: ignore[method-assign]  # noqa: SLF001
    manager._discard_session = discard_session  # type: ignore[method-assign]  # noqa: SLF001
