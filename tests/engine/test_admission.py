"""Submit admission: bursts queue instead of failing, a queued submit outlives its call, expiry, rate window.

A fake provider stands in for the API so every step is driven by events, not by time.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import anyio
import pytest

from clipia_mcp.core.errors import SubmitPending
from clipia_mcp.core.settings import Settings
from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.engine.admission import Admission
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.service import QueueService
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.providers.clipia.ratelimit import RateLimitState
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


class FakeQueue:
    """A provider whose submits block until ``gate`` is set; counts concurrency and keys."""

    name = "clipia"
    capabilities = Capabilities()

    def __init__(self, max_connections: int = 8) -> None:
        self.max_connections = max_connections
        self.rate_limit = RateLimitState()
        self.calls: Counter[str] = Counter()
        self.gate = anyio.Event()
        self.in_flight = 0
        self.peak = 0
        self.keys: Counter[str] = Counter()
        self.created: dict[str, str] = {}
        self.entered = anyio.Event()

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        pass

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        assert idempotency_key is not None
        self.calls["submit"] += 1
        self.keys[idempotency_key] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.entered.set()
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        rid = self.created.setdefault(idempotency_key, str(uuid.uuid4()))
        return SubmitResponse(request_id=rid, status="IN_QUEUE", queue_position=1, cost=1)

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        await anyio.sleep_forever()
        raise AssertionError

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        raise AssertionError

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None:
        raise AssertionError

    async def aclose(self) -> None:
        pass


def service(deadline: float = 30.0, ttl: float = 600.0) -> tuple[QueueService, FakeQueue, Caller]:
    store = SqliteStore(None)
    settings = replace(Settings(), call_deadline=deadline, submit_queue_ttl=ttl, dedup_window=0)
    provider = FakeQueue()
    caller = Caller(clipia=provider, owner="o")  # type: ignore[arg-type]
    return QueueService(settings, store, Tracker(store), None), provider, caller


async def test_burst_is_admitted_through_the_queue_with_no_errors() -> None:
    svc, fake, caller = service()
    results: list[str] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            svc.bind(tg)

            async def one(i: int) -> None:
                results.append((await svc.submit(caller, "m", {"prompt": f"p{i}"})).record.request_id)

            async with anyio.create_task_group() as burst:
                for i in range(200):
                    burst.start_soon(one, i)
                await fake.entered.wait()
                fake.gate.set()
            tg.cancel_scope.cancel()
    assert len(set(results)) == 200
    assert fake.peak <= fake.max_connections // 2  # half the pool, never all of it
    assert max(fake.keys.values()) == 1  # each paid exactly once


async def test_a_submit_queued_past_its_deadline_is_pending_then_resolved_once() -> None:
    svc, fake, caller = service(deadline=0.05)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            svc.bind(tg)
            with pytest.raises(SubmitPending) as first:
                await svc.submit(caller, "m", {"prompt": "x"}, idempotency_key="k1")
            assert "k1" in first.value.message
            with pytest.raises(SubmitPending):  # a repeat joins the same send: still one call upstream
                await svc.submit(caller, "m", {"prompt": "x"}, idempotency_key="k1")
            fake.gate.set()
            while True:
                try:
                    again = await svc.submit(caller, "m", {"prompt": "x"}, idempotency_key="k1")
                    break
                except SubmitPending:
                    await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert again.deduplicated
    assert again.record.request_id == fake.created["k1"]
    assert fake.keys["k1"] == 1


async def test_a_pending_submit_without_a_key_is_the_answer_to_its_retry_even_once_resolved() -> None:
    """submit_pending tells the agent to call again with the same arguments: that call gets the pending submit's
    request even when it comes after the submit resolved and no dedup window covers it (it paid a second
    generation before); a later identical call is a new generation, as the window of 0 says."""
    svc, fake, caller = service(deadline=0.05)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            svc.bind(tg)
            with pytest.raises(SubmitPending):
                await svc.submit(caller, "m", {"prompt": "x"})
            fake.gate.set()
            while not fake.created or svc._flights:  # the send resolves in the background, nobody waiting
                await anyio.wait_all_tasks_blocked()
            (key, rid), = fake.created.items()
            again = await svc.submit(caller, "m", {"prompt": "x"})
            later = await svc.submit(caller, "m", {"prompt": "x"})
            tg.cancel_scope.cancel()
    assert again.record.request_id == rid and again.deduplicated
    assert fake.keys[key] == 1 and later.record.request_id != rid and fake.calls["submit"] == 2


async def test_a_queued_submit_expires_unsent_and_its_intent_is_dropped() -> None:
    svc, fake, caller = service(deadline=0.05, ttl=0.05)
    admission = svc.admission.for_client(fake)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            svc.bind(tg)
            hold = anyio.Event()

            async def hog() -> None:  # every send slot taken by a submit that never ends
                async with admission.slot(60):
                    await hold.wait()

            for _ in range(admission.max_in_flight):
                tg.start_soon(hog)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(SubmitPending):
                await svc.submit(caller, "m", {"prompt": "late"}, idempotency_key="k2")
            while admission.expired == 0:
                await anyio.sleep(0.01)
            while await svc.store.get_intent("o", "k2") is not None:
                await anyio.sleep(0.01)
            hold.set()
            tg.cancel_scope.cancel()
    assert fake.keys["k2"] == 0  # never sent, never paid


async def test_the_rate_window_holds_submits_until_it_resets() -> None:
    window = RateLimitState(limit=10, remaining=2, reset_at=time.monotonic() + 3600)
    admission = Admission(4, window)
    sent: list[int] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def one(i: int) -> None:
                async with admission.slot(3600):
                    sent.append(i)

            for i in range(3):
                tg.start_soon(one, i)
            await anyio.wait_all_tasks_blocked()
            assert sent == []  # 2 left, all of them reserved for polls and the agent
            window.reset_at = time.monotonic() - 1  # the window rolls over
            window.remaining = 10
            admission._answered.set()  # noqa: SLF001 - what an answer on the key does
    assert sorted(sent) == [0, 1, 2]


async def test_a_429_holds_the_queue_until_retry_after() -> None:
    window = RateLimitState(blocked_until=time.monotonic() + 3600)
    admission = Admission(4, window)
    sent: list[int] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def one() -> None:
                async with admission.slot(3600):
                    sent.append(1)

            tg.start_soon(one)
            await anyio.wait_all_tasks_blocked()
            assert sent == []
            window.blocked_until = 0.0
            admission._answered.set()  # noqa: SLF001
    assert sent == [1]


async def test_without_a_task_group_the_submit_runs_inline_and_a_timeout_is_pending() -> None:
    svc, fake, caller = service(deadline=0.05)
    with anyio.fail_after(30), pytest.raises(SubmitPending):
        await svc.submit(caller, "m", {"prompt": "inline"}, idempotency_key="k3")
    assert fake.keys["k3"] == 1
    fake.gate.set()
    with anyio.fail_after(30):
        again = await svc.submit(caller, "m", {"prompt": "inline"}, idempotency_key="k3")
    assert again.record.request_id == fake.created["k3"]
