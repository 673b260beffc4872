"""One tracker per request id: a single upstream poll loop shared by every waiter.

Any number of concurrent ``wait_for_result`` calls, resource reads and
subscriptions on one request share one loop. The schedule adapts to the
request's state (slow deep in the queue, fast near completion, jittered), a
global :class:`PollBudget` caps polls per minute across all requests, a 429's
``Retry-After`` pauses every poller, and a verified webhook wakes a request's
loop at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from clipia_mcp import constants as C
from clipia_mcp.client import QueueClient
from clipia_mcp.errors import ClipiaMcpError, RateLimitError
from clipia_mcp.journal import Journal, RequestRecord
from clipia_mcp.models import TERMINAL_STATUSES

log = logging.getLogger(__name__)

ChangeListener = Callable[[RequestRecord], Awaitable[None]]
UpdateCallback = Callable[[RequestRecord, bool], Awaitable[None]]


class PollBudget:
    """A token bucket shared by every poll loop, plus a global pause after a 429."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self._lock = anyio.Lock()
        self.granted = 0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def take(self) -> None:
        """Take a token without queueing (for the one result fetch after a terminal status)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate) - 1
        self.stamp = now
        self.granted += 1

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await anyio.sleep(self.paused_until - now)
                    continue
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    self.granted += 1
                    return
                await anyio.sleep((1 - self.tokens) / self.rate)


@dataclass
class Tracked:
    """Live state of one request, shared by all its waiters."""

    record: RequestRecord
    client: QueueClient
    changed: anyio.Event = field(default_factory=anyio.Event)
    wake: anyio.Event = field(default_factory=anyio.Event)
    poll_lock: anyio.Lock = field(default_factory=anyio.Lock)
    polling: bool = False
    first_progress: tuple[float, int] | None = None  # (monotonic time, progress) of the first IN_PROGRESS seen
    error: ClipiaMcpError | None = None
    last_poll: float = 0.0
    polls: int = 0


class Tracker:
    """Owns every :class:`Tracked` request and their poll loops."""

    def __init__(self, journal: Journal, *, min_interval: float = C.POLL_MIN_INTERVAL,
                 max_interval: float = C.POLL_MAX_INTERVAL, budget: PollBudget | None = None) -> None:
        self.journal = journal
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.budget = budget or PollBudget(C.POLL_BUDGET_RPM)
        self.listeners: list[ChangeListener] = []
        self._items: dict[tuple[str, str], Tracked] = {}
        self._finished: deque[tuple[str, str]] = deque()
        self._tg: TaskGroup | None = None
        self._rng = random.Random()

    def bind(self, tg: TaskGroup) -> None:
        """Give the tracker the task group its poll loops live in (the server's lifespan)."""
        self._tg = tg

    def get(self, owner: str, request_id: str) -> Tracked | None:
        return self._items.get((owner, request_id))

    def find(self, request_id: str) -> list[Tracked]:
        """Every tracked copy of ``request_id`` (one per owner that knows it)."""
        return [item for (_, rid), item in self._items.items() if rid == request_id]

    def track(self, client: QueueClient, record: RequestRecord) -> Tracked:
        """Register a request (idempotent) and start its poll loop if it is still running."""
        key = (record.owner, record.request_id)
        item = self._items.get(key)
        if item is None:
            item = Tracked(record=record, client=client)
            self._items[key] = item
        elif record.updated_at > item.record.updated_at:
            item.record = record
        self._ensure_loop(item)
        return item

    def _ensure_loop(self, item: Tracked) -> None:
        if item.record.terminal or item.polling or self._tg is None or item.error is not None:
            return
        item.polling = True
        self._tg.start_soon(self._loop, item)

    # ------------------------------------------------------------------ schedule

    def interval(self, record: RequestRecord, first_progress: tuple[float, int] | None = None) -> float:
        """Seconds until the next poll: slow deep in the queue, fast near the end, jittered.

        While rendering, the observed progress rate gives an ETA; polling at half the ETA
        lands most polls near completion instead of spreading them over a long render.
        """
        base = self.min_interval
        if record.status == "IN_QUEUE":
            base *= 1 + min(8, record.queue_position or 0) / 2
        elif record.status == "IN_PROGRESS":
            progress = record.progress or 0
            base *= 1.0 if progress >= 70 else 2.0
            if first_progress is not None:
                t0, p0 = first_progress
                rate = (progress - p0) / max(1e-6, time.monotonic() - t0)  # percent per second
                if rate > 0:
                    base = max(base, (100 - progress) / rate / 2)
        base = min(self.max_interval, base)
        return base * (1 + C.POLL_JITTER * (2 * self._rng.random() - 1))

    # ------------------------------------------------------------------ polling

    async def _loop(self, item: Tracked) -> None:
        failures = 0
        try:
            while not item.record.terminal:
                delay = self.interval(item.record, item.first_progress) if failures == 0 else min(
                    self.max_interval, self.min_interval * 2**failures)
                with anyio.move_on_after(delay):
                    await item.wake.wait()
                item.wake = anyio.Event()
                try:
                    await self.poll_once(item)
                    failures = 0
                except ClipiaMcpError as exc:
                    if not exc.transient:
                        item.error = exc
                        self._signal(item)
                        log.info("stopped tracking %s: %s", item.record.request_id, exc.code)
                        return
                    failures += 1
                    if failures >= C.POLL_MAX_CONSECUTIVE_ERRORS:
                        item.error = exc
                        self._signal(item)
                        return
        finally:
            item.polling = False

    async def poll_once(self, item: Tracked) -> RequestRecord:
        """One single-flight status check: concurrent callers share the call in flight."""
        seen = item.polls
        async with item.poll_lock:
            if item.polls != seen or item.record.terminal:
                return item.record  # someone polled while we waited for the lock
            await self.budget.acquire()
            if item.record.terminal:
                return item.record  # a webhook finished it while we queued for budget
            try:
                status = await item.client.status(item.record.request_id, retry=False)
            except RateLimitError as exc:
                self.budget.pause(exc.retry_after if exc.retry_after is not None else self.max_interval)
                raise
            finally:
                item.polls += 1
                item.last_poll = time.monotonic()
            if status.status == "IN_PROGRESS" and status.progress is not None and item.first_progress is None:
                item.first_progress = (time.monotonic(), status.progress)
            record = item.record.model_copy(update={
                "status": status.status,
                "queue_position": status.queue_position,
                "progress": status.progress,
                "logs": status.logs,
            })
            if status.status in TERMINAL_STATUSES:
                record = await self._final(item, record)
            if not item.record.terminal:  # never overwrite a terminal state learnt meanwhile
                await self._update(item, record)
            return item.record

    async def _final(self, item: Tracked, record: RequestRecord) -> RequestRecord:
        """Fetch the terminal result; the result endpoint can lag the status briefly."""
        for attempt in range(6):
            if attempt == 0:
                self.budget.take()  # the status said done: fetch the result now, ahead of the queue
            else:
                await self.budget.acquire()
            result = await item.client.result(record.request_id)
            if not result.pending:
                return record.model_copy(update={
                    "status": result.status,
                    "model": result.model or record.model,
                    "output": result.output,
                    "error": result.error,
                    "cost": result.cost if result.cost is not None else record.cost,
                    "progress": 100 if result.status == "COMPLETED" else record.progress,
                    "queue_position": None,
                    "completed_at": time.time(),
                })
            await anyio.sleep(min(self.max_interval, self.min_interval * (attempt + 1)))
        return record.model_copy(update={"status": "IN_PROGRESS"})  # not final yet; poll again

    async def _update(self, item: Tracked, record: RequestRecord) -> None:
        old = item.record
        record = record.model_copy(update={"updated_at": time.time()})
        item.record = record
        if (old.status, old.queue_position, old.progress) != (record.status, record.queue_position, record.progress) \
                or record.terminal:
            await self.journal.upsert(record)
            if record.terminal and not old.terminal:
                self._retire((record.owner, record.request_id))
            self._signal(item)
            for listener in list(self.listeners):
                try:
                    await listener(record)
                except Exception:  # noqa: BLE001 - a broken listener must not stop polling
                    log.exception("change listener failed")

    def _retire(self, key: tuple[str, str]) -> None:
        """Bound memory: forget the oldest finished requests (the journal still has them)."""
        self._finished.append(key)
        while len(self._finished) > C.TERMINAL_CACHE:
            old = self._finished.popleft()
            item = self._items.get(old)
            if item is not None and item.record.terminal:
                del self._items[old]

    def _signal(self, item: Tracked) -> None:
        item.changed.set()
        item.changed = anyio.Event()

    async def apply_terminal(self, item: Tracked, record: RequestRecord) -> None:
        """Store a terminal state learnt out of band (a verified webhook); wakes waiters at once.

        It does not wait for a poll in flight: that poll sees the terminal record and stands down.
        """
        if not item.record.terminal:
            await self._update(item, record)
            item.wake.set()

    def poke(self, owner: str, request_id: str) -> bool:
        """Wake a request's poll loop now (a webhook arrived). True if the request is tracked."""
        item = self._items.get((owner, request_id))
        if item is None:
            return False
        item.wake.set()
        self._ensure_loop(item)
        return True

    # ------------------------------------------------------------------ waiting

    async def wait(self, item: Tracked, timeout: float, on_update: UpdateCallback | None = None,
                   heartbeat: float = C.HEARTBEAT_INTERVAL) -> RequestRecord:
        """Block until terminal or ``timeout``; ``on_update(record, is_heartbeat)`` on each change/heartbeat."""
        self._ensure_loop(item)
        deadline = time.monotonic() + timeout
        if on_update is not None:
            await on_update(item.record, False)
        while not item.record.terminal and item.error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            changed = item.changed
            with anyio.move_on_after(min(left, heartbeat)) as scope:
                await changed.wait()
            if on_update is not None and not item.record.terminal:
                await on_update(item.record, scope.cancelled_caught)
        if item.error is not None and not item.record.terminal:
            raise item.error
        if on_update is not None and item.record.terminal:
            await on_update(item.record, False)
        return item.record


def progress_fraction(record: RequestRecord) -> float:
    """Map status to 0..100 for MCP progress: queue 0-10, rendering 10-99, terminal 100."""
    if record.terminal:
        return 100.0
    if record.status == "IN_QUEUE":
        pos = record.queue_position or 0
        return round(10.0 / (1 + pos) if pos else 10.0, 2)
    if record.status == "IN_PROGRESS":
        return round(10.0 + 0.89 * float(record.progress or 0), 2)
    return 0.0


def human_status(record: RequestRecord) -> str:
    """A one-line status like ``queued #3`` or ``rendering 40%``."""
    if record.status == "IN_QUEUE":
        pos = record.queue_position
        return f"queued #{pos + 1}" if pos is not None else "queued"
    if record.status == "IN_PROGRESS":
        return f"rendering {record.progress or 0}%" if record.progress is not None else "rendering"
    return {"COMPLETED": "completed", "FAILED": "failed", "CANCELED": "canceled"}.get(
        record.status, record.status.lower())
