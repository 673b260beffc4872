"""Webhooks replace polling, and one change wakes every waiter before anything is written.

A fake provider counts upstream calls; a counting store records how writes are batched.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import anyio
import pytest

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio
OUTPUT = {"images": [{"url": "https://cdn.example/a.png"}]}


class Upstream:
    name = "clipia"
    capabilities = Capabilities()

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        pass

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        raise AssertionError

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        self.calls["status"] += 1
        return StatusResponse(request_id=request_id, status="IN_PROGRESS", progress=10)

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        self.calls["result"] += 1
        return ResultResponse(request_id=request_id, status="COMPLETED", output=OUTPUT)

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None:
        raise AssertionError

    async def aclose(self) -> None:
        pass


class CountingStore(SqliteStore):
    def __init__(self) -> None:
        super().__init__(None)
        self.batches: list[int] = []
        self.gate = anyio.Event()

    async def upsert_many(self, records: list[RequestRecord]) -> None:
        await self.gate.wait()  # the journal is slow: waiters must not wait for it
        self.batches.append(len(records))
        await super().upsert_many(records)


def running(rid: str) -> RequestRecord:
    now = time.time()
    return RequestRecord(request_id=rid, owner="o", model="m", status="IN_PROGRESS", created_at=now, updated_at=now)


def done(record: RequestRecord, output: dict[str, Any] | None = OUTPUT) -> RequestRecord:
    return record.model_copy(update={"status": "COMPLETED", "output": output, "progress": 100})


async def test_with_webhooks_the_loop_does_not_poll_and_a_delivery_ends_every_wait() -> None:
    store = CountingStore()
    upstream = Upstream()
    tracker = Tracker(store, min_interval=0.001, max_interval=0.001, webhook_fallback=3600)
    answers: list[str] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tracker.bind(tg)
            item = tracker.track(upstream, running("r1"), webhook=True)

            async def waiter() -> None:
                answers.append((await tracker.wait(item, 3600)).status)

            async with anyio.create_task_group() as waits:
                for _ in range(1000):
                    waits.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                await tracker.apply(item, done(item.record))
            assert answers == ["COMPLETED"] * 1000  # all answered while the journal write is still held
            assert store.batches == []
            store.gate.set()
            await tracker.flush()
            tg.cancel_scope.cancel()
    assert upstream.calls == Counter()  # no status poll, no result fetch: the delivery carried the output
    assert store.batches == [1]
    assert (await store.get("o", "r1")).status == "COMPLETED"  # type: ignore[union-attr]


async def test_a_delivery_without_output_costs_one_result_fetch() -> None:
    upstream = Upstream()
    tracker = Tracker(SqliteStore(None), webhook_fallback=3600)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tracker.bind(tg)
            item = tracker.track(upstream, running("r2"), webhook=True)
            await tracker.apply(item, done(item.record, output=None))
            record = await tracker.wait(item, 3600)
            tg.cancel_scope.cancel()
    assert record.output == OUTPUT
    assert upstream.calls == Counter({"result": 1})


async def test_without_webhooks_the_loop_polls() -> None:
    upstream = Upstream()
    tracker = Tracker(SqliteStore(None), min_interval=0.001, max_interval=0.001)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tracker.bind(tg)
            tracker.track(upstream, running("r3"))
            while upstream.calls["status"] < 3:
                await anyio.sleep(0.001)
            tg.cancel_scope.cancel()


async def test_changes_arriving_together_are_written_in_one_batch() -> None:
    store = CountingStore()
    tracker = Tracker(store, webhook_fallback=3600)
    upstream = Upstream()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tracker.bind(tg)
            items = [tracker.track(upstream, running(f"b{i}"), webhook=True) for i in range(1000)]
            for item in items:
                await tracker.apply(item, done(item.record))
            store.gate.set()
            await tracker.flush()
            tg.cancel_scope.cancel()
    assert sum(store.batches) == 1000
    assert len(store.batches) <= 2
