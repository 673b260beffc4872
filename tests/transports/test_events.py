"""transports/events: one process-wide SSE event store, seen by each session through its own view."""

from __future__ import annotations

import pytest
from mcp.server.streamable_http import EventMessage
from mcp.types import JSONRPCNotification

from clipia_mcp.transports.events import UNBOUND, MemoryEventStore, SessionEvents

pytestmark = pytest.mark.anyio


def note(n: int) -> JSONRPCNotification:
    return JSONRPCNotification(jsonrpc="2.0", method="notifications/message", params={"n": n})


async def test_a_session_replays_its_own_stream_only_and_forgetting_a_session_frees_its_events() -> None:
    events = MemoryEventStore(max_events=100)
    a, b = SessionEvents(events, "sa"), SessionEvents(events, "sb")
    a_first = await a.store_event("1", None)
    b_first = await b.store_event("1", None)
    for n in range(3):
        await a.store_event("1", note(n))
        await b.store_event("1", note(10 + n))
        await a.store_event("2", note(20 + n))  # another stream of A's
    got: list[EventMessage] = []

    async def collect(event: EventMessage) -> None:
        got.append(event)

    assert await a.replay_events_after(a_first, collect) == "1"
    assert [m.message.params for m in got] == [{"n": 0}, {"n": 1}, {"n": 2}]  # type: ignore[union-attr]
    got.clear()
    assert await a.replay_events_after(b_first, collect) is None and got == []  # B's id in A's session
    events.forget("sb")
    assert len(events) == 1 + 3 + 3
    assert await b.replay_events_after(b_first, collect) is None and got == []


async def test_the_managers_placeholder_store_fails_closed() -> None:
    with pytest.raises(RuntimeError):
        await UNBOUND.store_event("1", None)

    async def collect(event: EventMessage) -> None:
        raise AssertionError(event)

    assert await UNBOUND.replay_events_after("1", collect) is None


def test_eviction_keeps_each_sessions_index_in_step() -> None:
    events = MemoryEventStore(max_events=3)
    ids = [events.store("sa" if i % 2 else "sb", "1", note(i)) for i in range(7)]
    assert len(events) == 3
    events.forget("sa")  # only sa's surviving events go; the evicted ones are not looked for
    events.forget("sb")
    events.forget("never-opened")
    assert len(events) == 0 and ids == [str(i) for i in range(1, 8)]
