"""engine/tracker: one poll loop per request, its schedule, errors, settling, and per-key budgets.

A scripted in-memory provider stands in for the API: no network, no subprocess. Waits are bounded
by ``anyio.fail_after``; nothing asserts on wall-clock durations.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ClipiaMcpError, NotFoundError, RateLimitError
from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.engine.budget import PollBudget
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"
OUTPUT = {"images": [{"url": "https://cdn.example/x.png"}]}


class FakeProvider:
    """A QueueProvider whose answers the test scripts; ``gate`` (if set) holds every status call."""

    name = "fake"
    capabilities = Capabilities()

    def __init__(self, statuses: list[str | ClipiaMcpError] | None = None) -> None:
        self.statuses: list[str | ClipiaMcpError] = list(statuses or ["COMPLETED"])
        self.calls: Counter[str] = Counter()
        self.gate: anyio.Event | None = None
        self.in_status = anyio.Event()
        self.result_pending = 0
        self.pending_status = "IN_PROGRESS"
        self.result_failed = False

    def check_input(self, model: str, data: dict[str, Any]) -> None:
        pass

    async def submit(self, model: str, input: dict[str, Any], *,  # noqa: A002
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> SubmitResponse:
        raise AssertionError("the tracker never submits")

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        self.calls["status"] += 1
        assert retry is False  # the tracker owns the retry schedule
        self.in_status.set()
        if self.gate is not None:
            await self.gate.wait()
        step = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(step, ClipiaMcpError):
            raise step
        progress = 50 if step == "IN_PROGRESS" else (100 if step == "COMPLETED" else None)
        return StatusResponse(request_id=request_id, status=step, progress=progress,
                              queue_position=2 if step == "IN_QUEUE" else None)

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        self.calls["result"] += 1
        if self.result_pending > 0:
            self.result_pending -= 1
            return ResultResponse(request_id=request_id, status=self.pending_status, pending=True)
        if self.result_failed:
            return ResultResponse(request_id=request_id, status="FAILED", error={"code": "NSFW", "message": "no"},
                                  cost=0, created_at="2026-12-03T10:00:00Z", completed_at="2026-12-03T10:00:05Z")
        return ResultResponse(request_id=request_id, status="COMPLETED", model="m", output=OUTPUT, cost=4,
                              created_at="2026-12-03T10:00:00Z", completed_at="2026-12-03T10:00:40Z")


def rec(status: str = "IN_QUEUE", rid: str = RID, owner: str = "o1", **kw: Any) -> RequestRecord:
    return RequestRecord(request_id=rid, owner=owner, status=status, **{"created_at": 1.0, "updated_at": 1.0, **kw})


@pytest.fixture
async def tracker() -> AsyncIterator[Tracker]:
    store = SqliteStore(None)
    t = Tracker(store, min_interval=0.001, max_interval=0.01, budget_rpm=600_000)
    async with anyio.create_task_group() as tg:
        t.bind(tg)
        yield t
        tg.cancel_scope.cancel()
    await store.aclose()


async def test_concurrent_waits_and_polls_share_one_upstream_call(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.gate = anyio.Event()
    item = tracker.track(provider, rec())
    assert tracker.track(provider, rec()) is item  # tracking again is idempotent
    with anyio.fail_after(30):
        await provider.in_status.wait()  # the loop's first poll is in flight, held at the gate
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(tracker.poll_once, item)
            await anyio.wait_all_tasks_blocked()
            provider.statuses = ["COMPLETED"]
            provider.gate.set()
    assert provider.calls["status"] == 1  # ten callers piggybacked on the poll in flight
    assert item.record.settled and item.record.output == OUTPUT and provider.calls["result"] == 1


async def test_many_waiters_one_loop_until_done(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_QUEUE", "IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED"])
    item = tracker.track(provider, rec())
    results: list[RequestRecord] = []

    async def waiter() -> None:
        results.append(await tracker.wait(item, timeout=30))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(waiter)
    assert [r.status for r in results] == ["COMPLETED"] * 25
    assert provider.calls["status"] == 5 and provider.calls["result"] == 1  # one loop, not 25
    with anyio.fail_after(30):
        await tracker.flush()  # waiters are woken first; the store write follows in the background
    stored = await tracker.store.get("o1", RID)
    assert stored is not None and stored.output == OUTPUT


async def test_wait_reports_each_change(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"])
    item = tracker.track(provider, rec())
    seen: list[tuple[str, bool]] = []

    async def on_update(record: RequestRecord, heartbeat: bool) -> None:
        seen.append((record.status, heartbeat))

    with anyio.fail_after(30):
        done = await tracker.wait(item, timeout=30, on_update=on_update, heartbeat=30)
    assert done.status == "COMPLETED"
    statuses = [s for s, _ in seen]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED" and "IN_PROGRESS" in statuses
    assert not any(hb for _, hb in seen)


async def test_wait_times_out_with_the_current_state(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    item = tracker.track(provider, rec())
    with anyio.fail_after(30):
        got = await tracker.wait(item, timeout=0.05)
    assert got.status in ("IN_QUEUE", "IN_PROGRESS") and not got.terminal


async def test_an_error_is_recorded_then_retried_on_the_next_call(tracker: Tracker) -> None:
    gone = NotFoundError("Request not found.", http_status=404)
    provider = FakeProvider([gone, "COMPLETED"])
    item = tracker.track(provider, rec())
    with anyio.fail_after(30), pytest.raises(NotFoundError) as info:
        await tracker.wait(item, timeout=30)
    assert info.value.request_id == RID  # the recorded error names the request
    assert item.error is info.value and item.polling is False  # the loop stopped; nothing polls now
    calls = provider.calls["status"]
    tracker.track(provider, rec())  # tracking again does not restart a failed request...
    await anyio.wait_all_tasks_blocked()
    assert provider.calls["status"] == calls and item.error is not None
    with anyio.fail_after(30):
        done = await tracker.wait(item, timeout=30)  # ...the next wait does, with a fresh loop
    assert done.status == "COMPLETED" and item.error is None and provider.calls["status"] == calls + 1


async def test_transient_errors_back_off_and_recover(tracker: Tracker) -> None:
    busy = RateLimitError("slow down", http_status=429, retry_after=0)
    provider = FakeProvider([busy, busy, "IN_PROGRESS", "COMPLETED"])
    item = tracker.track(provider, rec())
    with anyio.fail_after(30):
        done = await tracker.wait(item, timeout=30)
    assert done.status == "COMPLETED" and item.error is None and provider.calls["status"] == 4


async def test_an_unexpected_exception_becomes_an_internal_error(tracker: Tracker) -> None:
    provider = FakeProvider()

    async def broken(request_id: str, *, retry: bool = True) -> StatusResponse:
        raise RuntimeError("bug in a provider")

    provider.status = broken  # type: ignore[method-assign]
    item = tracker.track(provider, rec())
    with anyio.fail_after(30), pytest.raises(ClipiaMcpError) as info:
        await tracker.wait(item, timeout=30)
    assert info.value.code == "internal_server_error" and "RuntimeError" in info.value.message


async def test_completed_without_output_is_settled_by_one_result_fetch(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.result_pending = 2  # the result endpoint lags the status briefly
    item = tracker.track(provider, rec("COMPLETED", cost=4))  # e.g. a webhook said COMPLETED, no output
    with anyio.fail_after(30):
        done = await tracker.wait(item, timeout=30)
    assert done.settled and done.output == OUTPUT
    assert provider.calls["status"] == 0 and provider.calls["result"] == 3


async def test_apply_wakes_waiters_and_never_overwrites_a_terminal_state(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.gate = anyio.Event()  # polls never return: only the out-of-band news can finish it
    item = tracker.track(provider, rec())
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            got: list[RequestRecord] = []

            async def waiter() -> None:
                got.append(await tracker.wait(item, timeout=30))

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            await tracker.apply(item, rec("COMPLETED", output=OUTPUT, progress=100))
    assert got[0].status == "COMPLETED" and got[0].output == OUTPUT
    await tracker.apply(item, rec("FAILED"))
    assert item.record.status == "COMPLETED"
    provider.gate.set()


async def test_a_waiter_hears_heartbeats_until_a_change_and_leaves_nothing_behind(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.gate = anyio.Event()  # no poll returns: only heartbeats until the change applied below
    item = tracker.track(provider, rec())
    seen: list[tuple[str, bool]] = []
    beats = anyio.Event()

    async def on_update(record: RequestRecord, heartbeat: bool) -> None:
        seen.append((record.status, heartbeat))
        if sum(hb for _, hb in seen) == 3:
            beats.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: tracker.wait(item, timeout=30, on_update=on_update, heartbeat=0.001))
            await beats.wait()
            await tracker.apply(item, rec("COMPLETED", output=OUTPUT, progress=100))
    assert seen[0] == ("IN_QUEUE", False) and seen[-1] == ("COMPLETED", False)
    assert [hb for _, hb in seen[1:4]] == [True, True, True]
    assert item.waiters == {} and tracker.waiting == 0
    provider.gate.set()


async def test_a_cancelled_waiter_is_forgotten_and_the_others_still_wake(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.gate = anyio.Event()
    item = tracker.track(provider, rec())
    got: list[str] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            async def waiter() -> None:
                got.append((await tracker.wait(item, timeout=30)).status)

            for _ in range(3):
                tg.start_soon(waiter)
            with anyio.CancelScope() as doomed:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(lambda: tracker.wait(item, timeout=30))
                    await anyio.wait_all_tasks_blocked()
                    assert len(item.waiters) == 4 and tracker.waiting == 4
                    doomed.cancel()
            assert doomed.cancelled_caught and len(item.waiters) == 3 and tracker.waiting == 3
            await tracker.apply(item, rec("COMPLETED", output=OUTPUT, progress=100))
    assert got == ["COMPLETED"] * 3 and item.waiters == {} and tracker.waiting == 0
    provider.gate.set()


def _fixed(value: float) -> Callable[[], float]:
    return lambda: value


def test_schedule_slow_in_the_queue_fast_near_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    t = Tracker(SqliteStore(None), min_interval=1.0, max_interval=100.0)
    monkeypatch.setattr(C, "POLL_JITTER", 0.0)
    assert t.interval(rec("IN_QUEUE", queue_position=0)) == 1.0
    assert t.interval(rec("IN_QUEUE", queue_position=4)) == 3.0
    assert t.interval(rec("IN_QUEUE", queue_position=50)) == 5.0  # depth counts up to 8
    assert t.interval(rec("IN_PROGRESS", progress=10)) == 2.0
    assert t.interval(rec("IN_PROGRESS", progress=80)) == 1.0
    # With a measured rate, poll at half the ETA: 40 % in 10 s -> 4 %/s; 50 % left -> 12.5 s ETA -> 6.25 s.
    monkeypatch.setattr("clipia_mcp.engine.tracker.time.monotonic", _fixed(110.0))
    assert t.interval(rec("IN_PROGRESS", progress=50), first_progress=(100.0, 10)) == 6.25
    capped = Tracker(SqliteStore(None), min_interval=1.0, max_interval=4.0)
    assert capped.interval(rec("IN_PROGRESS", progress=50), first_progress=(100.0, 10)) == 4.0
    monkeypatch.setattr(C, "POLL_JITTER", 0.2)
    t._rng = random.Random(7)
    jittered = [t.interval(rec("IN_QUEUE", queue_position=4)) for _ in range(200)]
    assert all(2.4 <= j <= 3.6 for j in jittered) and len(set(jittered)) > 100


async def test_a_429_on_one_key_never_delays_another(tracker: Tracker) -> None:
    limited = FakeProvider([RateLimitError("slow down", http_status=429, retry_after=3600)])
    healthy = FakeProvider(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"])
    stuck = tracker.track(limited, rec(rid="a" * 8))
    with anyio.fail_after(30):
        while limited.calls["status"] == 0:
            await anyio.sleep(0.001)
    assert stuck.budget.paused_until > 0  # key A is paused for an hour
    item = tracker.track(healthy, rec(rid="b" * 8, owner="o2"))
    assert item.budget is not stuck.budget
    with anyio.fail_after(30):  # an hour's pause on key A would blow this bound if it were shared
        done = await tracker.wait(item, timeout=30)
    assert done.status == "COMPLETED" and item.budget.paused_until == 0.0
    assert limited.calls["status"] == 1  # A did not poll again during its pause


async def test_requests_on_one_key_share_one_budget(tracker: Tracker) -> None:
    provider = FakeProvider(["COMPLETED"])
    a = tracker.track(provider, rec(rid="a" * 8))
    b = tracker.track(provider, rec(rid="b" * 8))
    assert a.budget is b.budget
    with anyio.fail_after(30):
        await tracker.wait(a, timeout=30)
        await tracker.wait(b, timeout=30)
    assert a.budget.granted >= 4  # two status polls and two result fetches drew from one bucket


async def test_confirm_replaces_a_delivered_output_with_the_apis(tracker: Tracker) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.gate = anyio.Event()
    item = tracker.track(provider, rec())
    await tracker.apply(item, rec("COMPLETED", output={"images": [{"url": "https://delivered"}]}, progress=100))
    with anyio.fail_after(30):
        await tracker.confirm(item)
        await tracker.flush()
    assert item.record.output == OUTPUT and provider.calls["result"] == 1
    stored = await tracker.store.get("o1", RID)
    assert stored is not None and stored.output == OUTPUT
    provider.result_pending = 1
    await tracker.confirm(item)  # still pending upstream: the record stands
    assert item.record.output == OUTPUT
    provider.gate.set()


def likely_done(tracker: Tracker, provider: FakeProvider) -> Any:
    """A request last seen at 90 % 100 s ago, rendering at 4 %/s: it should have finished 97 s ago."""
    now = time.monotonic()
    item = tracker.track(provider, rec("IN_PROGRESS", model="m", progress=90, created_at=time.time() - 200))
    item.first_progress, item.last_poll, item.progress_at, item.polls = (now - 110, 50), now - 100, now - 100, 2
    return item


@pytest.fixture
def contended_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every budget has other polls queued: each token should do as much as it can."""
    monkeypatch.setattr(PollBudget, "contended", property(lambda self: True))


@pytest.fixture
def unbound() -> Tracker:
    """A tracker without a task group: no poll loop runs, each poll is the test's own call."""
    return Tracker(SqliteStore(None), min_interval=0.001, max_interval=0.01, budget_rpm=600_000)


async def test_a_likely_done_request_on_a_busy_budget_is_polled_through_its_result(
        unbound: Tracker, contended_budget: None) -> None:
    provider = FakeProvider(["COMPLETED"])
    item = likely_done(unbound, provider)
    with anyio.fail_after(30):
        await unbound.poll_once(item)
    assert provider.calls == {"result": 1}  # one call answers and fetches
    assert item.record.settled and item.record.output == OUTPUT and item.record.progress == 100


async def test_on_a_free_budget_the_status_is_polled_for_its_progress(unbound: Tracker) -> None:
    provider = FakeProvider(["COMPLETED"])
    item = likely_done(unbound, provider)
    with anyio.fail_after(30):
        await unbound.poll_once(item)
    assert provider.calls == {"status": 1, "result": 1}
    assert item.record.settled


async def test_a_result_still_running_sends_the_next_poll_to_the_status(
        unbound: Tracker, contended_budget: None) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.result_pending = 1
    item = likely_done(unbound, provider)
    with anyio.fail_after(30):
        await unbound.poll_once(item)
        assert provider.calls == {"result": 1} and item.record.status == "IN_PROGRESS" and item.result_polled
        await unbound.poll_once(item)
    assert provider.calls == {"result": 1, "status": 1} and not item.result_polled  # a fresh progress figure


async def test_an_unseen_request_is_expected_when_its_model_has_been_quickest(
        unbound: Tracker, contended_budget: None) -> None:
    provider = FakeProvider(["COMPLETED"])
    fresh = unbound.track(provider, rec("IN_QUEUE", rid="first", model="m", created_at=time.time() - 40))
    old = unbound.track(provider, rec("IN_QUEUE", rid="second", model="m", created_at=time.time() - 3600))
    other = unbound.track(provider, rec("IN_QUEUE", rid="third", model="other", created_at=time.time() - 3600))
    assert unbound.expected_done(old) is None  # nothing of model m has finished yet
    with anyio.fail_after(30):
        await unbound.poll_once(fresh)  # status, then the result: the API says m rendered in 40 s
        expected = unbound.expected_done(old)
        assert expected is not None and expected < time.time()
        assert unbound.expected_done(other) is None
        await unbound.poll_once(old)
    assert provider.calls == {"status": 1, "result": 2}
    assert old.record.settled


async def test_a_result_that_failed_but_lags_is_fetched_until_its_error_is_there(
        unbound: Tracker, contended_budget: None) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.result_pending, provider.pending_status, provider.result_failed = 1, "FAILED", True
    item = likely_done(unbound, provider)
    with anyio.fail_after(30):
        await unbound.poll_once(item)
    assert provider.calls == {"result": 2}
    assert item.record.status == "FAILED" and item.record.error is not None and item.record.error.code == "NSFW"


async def test_a_running_result_adopts_the_status_it_reports(
        unbound: Tracker, contended_budget: None) -> None:
    provider = FakeProvider(["IN_PROGRESS"])
    provider.result_pending, provider.pending_status = 1, "IN_QUEUE"
    item = likely_done(unbound, provider)
    with anyio.fail_after(30):
        await unbound.poll_once(item)
    assert item.record.status == "IN_QUEUE" and item.result_polled


def test_requests_past_their_estimate_take_turns(unbound: Tracker) -> None:
    provider = FakeProvider()
    now = time.monotonic()
    old = unbound.track(provider, rec("IN_PROGRESS", rid="old", model="m", created_at=time.time() - 3600))
    new = unbound.track(provider, rec("IN_PROGRESS", rid="new", model="m", created_at=time.time() - 60))
    assert unbound.poll_priority(old) < unbound.poll_priority(new)  # never polled: oldest first
    old.polls, old.last_poll = 1, now  # old was just polled: new goes next, however old old is
    assert unbound.poll_priority(new) < unbound.poll_priority(old)
    queued = unbound.track(provider, rec("IN_QUEUE", rid="queued", model="m", created_at=time.time() - 30,
                                         queue_position=3))
    assert unbound.poll_priority(queued) < unbound.poll_priority(old)  # seen in the queue 30 s ago: due by now
