"""A bounded in-memory SSE event store for Streamable HTTP (handshake-era sessions, 2025-11-25+).

With an event store the SDK opens every SSE response with a *priming event* (an event id and empty
data) carrying the ``retry`` field, and a client whose stream broke can reconnect with
``Last-Event-ID`` and receive what it missed. The store is per process and keeps the newest
``max_events`` events; an evicted id simply replays nothing. (2026-07-28 removed resumability: the
modern leg does not use it.)
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage

#: How long a client should wait before reconnecting a broken SSE stream (milliseconds).
SSE_RETRY_MS = 1000


class MemoryEventStore(EventStore):
    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self._events: OrderedDict[EventId, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)
        return event_id

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id = self._events[last_event_id][0]
        after = False
        for event_id, (sid, message) in list(self._events.items()):
            if event_id == last_event_id:
                after = True
            elif after and sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id
