"""One tracker per request id: a single upstream poll loop shared by every waiter.

Any number of concurrent waits, resource reads and subscriptions on one request share one loop.
The schedule adapts to the request's state (slow deep in the queue, fast near completion,
jittered), a :class:`~clipia_mcp.engine.budget.PollBudget` per upstream key caps polls per minute,
a 429 pauses only that key's pollers, and a verified webhook wakes a request's loop at once.

A failing poll never poisons a request or the process: the loop records the error (waiters see
it), stops, and the next call on the request starts it again.

Replicas on a shared store (``shared=True``, PostgreSQL): a poll needs the request's lease
(``poll:<owner>:<id>``, renewed by each poll, lost within ``lease_ttl`` (≤ 10 s) when its holder dies),
so one replica polls while the others re-read the store; every stored change is published, and a
change published by another replica is re-read and applied here (:meth:`Tracker.on_remote_change`),
waking this replica's waiters and listeners. The poll budget is split by the live replica count.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ClipiaMcpError, RateLimitError, StoreError
from clipia_mcp.core.model import replaced
from clipia_mcp.core.records import TERMINAL_STATUSES, RequestRecord
from clipia_mcp.core.upstream import ResultResponse
from clipia_mcp.engine.budget import PollBudget
from clipia_mcp.providers.base import QueueProvider
from clipia_mcp.store.base import Store

log = logging.getLogger(__name__)

ChangeListener = Callable[[RequestRecord], Awaitable[None]]
UpdateCallback = Callable[[RequestRecord, bool], Awaitable[None]]
#: Seconds between a replica's heartbeats (which also size its share of the poll budget).
REPLICA_HEARTBEAT = 3.0
T = TypeVar("T")


@dataclass(eq=False, repr=False)  # live state, compared by identity (fewer generated methods at start)
class Tracked:
    """Live state of one request, shared by all its waiters."""

    record: RequestRecord
    client: QueueProvider
    budget: PollBudget
    #: The futures of the calls waiting for the next change (insertion-ordered: woken first come, first served).
    waiters: dict[asyncio.Future[bool], None] = field(default_factory=dict)
    wake: anyio.Event = field(default_factory=anyio.Event)
    poll_lock: anyio.Lock = field(default_factory=anyio.Lock)
    polling: bool = False
    first_progress: tuple[float, int] | None = None  # (monotonic time, progress) of the first IN_PROGRESS seen
    error: ClipiaMcpError | None = None
    last_poll: float = 0.0
    polls: int = 0
    #: The submit carried this server's verified webhook URL: polling is only a slow fallback.
    webhook: bool = False
    #: Another replica held the poll lease at the last attempt (we read the store instead).
    standby: bool = False
    #: The last poll asked the result endpoint and it was still running: the next one asks the status.
    result_polled: bool = False
    #: When the latest progress figure was seen (monotonic).
    progress_at: float = 0.0


class Tracker:
    """Owns every :class:`Tracked` request and their poll loops."""

    def __init__(self, store: Store, *, min_interval: float = C.POLL_MIN_INTERVAL,
                 max_interval: float = C.POLL_MAX_INTERVAL, budget_rpm: int = C.POLL_BUDGET_RPM,
                 shared: bool = False, lease_ttl: float = C.LEASE_TTL,
                 webhook_fallback: float = C.WEBHOOK_FALLBACK_INTERVAL) -> None:
        self.store = store
        self.webhook_fallback = webhook_fallback
        #: Other processes share the store: poll under leases, publish changes, split the budget.
        self.shared = shared
        self.replica_id = uuid.uuid4().hex
        self.lease_ttl = lease_ttl
        self.replicas = 1
        #: Calls blocked in :meth:`wait` right now.
        self.waiting = 0
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.budget_rpm = budget_rpm
        self._listeners: list[ChangeListener] = []
        self._items: dict[tuple[str, str], Tracked] = {}
        self._owners: dict[str, set[str]] = {}  # request id -> owners tracking it (webhooks look up by id)
        self._budgets: dict[object, PollBudget] = {}
        self._finished: deque[tuple[str, str]] = deque()
        self._tg: TaskGroup | None = None
        self._rng = random.Random()
        self._dirty: dict[tuple[str, str], tuple[Tracked, RequestRecord]] = {}
        #: The quickest render per (budget, model) the API reported: when an unobserved request may be done.
        self._quickest: dict[tuple[int, str], float] = {}
        self._writing = False
        self._flushed = anyio.Event()

    def bind(self, tg: TaskGroup) -> None:
        """Give the tracker the task group its poll loops live in (the server's lifespan)."""
        self._tg = tg
        if self.shared:
            self.store.subscribe(self.on_remote_change)
            tg.start_soon(self._heartbeat)

    async def _heartbeat(self) -> None:
        while True:
            try:
                self.replicas = await self.store.heartbeat(self.replica_id, 3 * REPLICA_HEARTBEAT)
                for budget in self._budgets.values():
                    budget.share = self.replicas
                    budget.look_again()
            except StoreError as exc:
                log.warning("replica heartbeat failed: %s", exc.code)
            await anyio.sleep(REPLICA_HEARTBEAT)

    async def on_remote_change(self, owner: str, request_id: str) -> None:
        """Another replica stored a change of this request: re-read it and wake local waiters.

        A request this replica does not track still reaches the listeners (subscriptions here may
        watch it); nothing starts polling it.
        """
        item = self._items.get((owner, request_id))
        if item is not None:
            await self.refresh(item)
        elif self._listeners:
            record = await self.store.get(owner, request_id)
            if record is not None:
                await self._notify(record)

    async def refresh(self, item: Tracked) -> None:
        """Adopt the stored state of ``item`` if it moved on (no upstream call, nothing re-published)."""
        record = await self.store.get(item.record.owner, item.record.request_id)
        old = item.record
        if record is None or (old.terminal and not record.terminal):
            return  # a terminal state never goes back
        if (old.status, old.queue_position, old.progress, old.output, old.error) == (
                record.status, record.queue_position, record.progress, record.output, record.error):
            return
        item.record = record
        self._changed(item, old)
        await self._notify(record)

    async def _notify(self, record: RequestRecord) -> None:
        for listener in list(self._listeners):
            try:
                await listener(record)
            except Exception:  # noqa: BLE001 - a broken listener must not stop a wake-up or a poll
                log.exception("change listener failed")

    async def _holds(self, item: Tracked) -> bool:
        """Whether this replica may poll ``item`` now (always, unless the store is shared)."""
        if not self.shared:
            return True
        item.standby = not await self.store.acquire_lease(_lease(item), self.replica_id, self.lease_ttl)
        return not item.standby

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(record)`` after every stored change of any request."""
        self._listeners.append(listener)

    def budget_for(self, client: QueueProvider) -> PollBudget:
        """The poll budget of ``client``'s upstream key (one client object per key)."""
        # By the key's fingerprint where the client has one: a client made again for the same key (hosted
        # caller pools) shares its budget, and an id() reused by another key's client never does.
        ident: object = getattr(client, "budget_key", None) or id(client)
        budget = self._budgets.get(ident)
        if budget is None:
            state = getattr(client, "rate_limit", None)
            budget = PollBudget(self.budget_rpm, account_limit=(lambda: state.limit) if state is not None else None)
            budget.share = self.replicas
            self._budgets[ident] = budget
        return budget

    def get(self, owner: str, request_id: str) -> Tracked | None:
        return self._items.get((owner, request_id))

    def find(self, request_id: str) -> list[Tracked]:
        """Every tracked copy of ``request_id`` (one per owner that knows it)."""
        return [self._items[(owner, request_id)] for owner in self._owners.get(request_id, ())]

    def track(self, client: QueueProvider, record: RequestRecord, *, webhook: bool = False) -> Tracked:
        """Register a request (idempotent) and start its poll loop if it is still running.

        ``webhook``: its submit carried this server's verified webhook URL, so the loop only polls as a
        slow fallback (every ``webhook_fallback`` s, doubling) in case a delivery is lost.
        """
        key = (record.owner, record.request_id)
        item = self._items.get(key)
        if item is None:
            item = Tracked(record=record, client=client, budget=self.budget_for(client), webhook=webhook)
            self._items[key] = item
            self._owners.setdefault(record.request_id, set()).add(record.owner)
        elif record.updated_at > item.record.updated_at:
            item.record = record
        self.ensure_loop(item)
        return item

    def ensure_loop(self, item: Tracked, *, retry_failed: bool = False) -> None:
        """Start the request's poll loop unless it runs, the request is done, or it failed (unless retrying)."""
        if retry_failed:
            item.error = None
        if item.record.settled or item.polling or self._tg is None or item.error is not None:
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

    def expected_done(self, item: Tracked) -> float | None:
        """When ``item`` is likely done (Unix time), or None when nothing observed says.

        From the progress seen: between two observations their rate; after one, the rate since the request
        was created (its queue time included: an estimate on the late side). Never looked at, or rendering
        without a progress figure: its creation plus the quickest render of its model on this key that the
        API reported (its own created/completed times).
        """
        record = item.record
        if record.status != "IN_PROGRESS" or item.first_progress is None or not record.progress:
            quickest = self._quickest.get((id(item.budget), record.model or ""))
            if quickest is None or (record.status == "IN_QUEUE" and item.polls):
                return None
            return record.created_at + quickest
        seen_at = _wall(item.progress_at)
        t0, p0 = item.first_progress
        if record.progress > p0 and item.progress_at > t0:
            rate = (record.progress - p0) / (item.progress_at - t0)
        else:
            rate = record.progress / max(1e-6, seen_at - record.created_at)
        return seen_at + (100 - record.progress) / rate

    def poll_priority(self, item: Tracked) -> float:
        """A poll's place in a busy budget, lowest first.

        The likely completion time (else the creation: oldest first), but never earlier than the last poll:
        requests past their estimate take turns instead of the oldest taking every token. A queued request
        waits behind its queue, counted from when it was last seen there.
        """
        record = item.record
        last = _wall(item.last_poll) if item.polls else record.created_at
        if record.status == "IN_QUEUE":
            return last + self.min_interval * (1 + (record.queue_position or 0))
        expected = self.expected_done(item)
        return max(expected if expected is not None else record.created_at, last)

    def _learn(self, item: Tracked, result: ResultResponse) -> None:
        """Remember the quickest render of a model on this key, from the API's own times for a finished result."""
        if result.status != "COMPLETED" or not result.created_at or not result.completed_at:
            return
        try:
            took = (datetime.fromisoformat(result.completed_at.replace("Z", "+00:00"))
                    - datetime.fromisoformat(result.created_at.replace("Z", "+00:00"))).total_seconds()
        except (ValueError, TypeError):
            return
        key = (id(item.budget), result.model or item.record.model or "")
        if 0 < took < self._quickest.get(key, float("inf")):
            self._quickest[key] = took

    # ------------------------------------------------------------------ polling

    async def _loop(self, item: Tracked) -> None:
        failures = 0
        try:
            while not item.record.settled:
                if item.record.terminal:
                    delay = (self.min_interval if item.standby else 0.0) if failures == 0 else min(
                        self.max_interval, self.min_interval * 2**failures)
                elif item.webhook and failures == 0:
                    # Webhooks replace polling: a rare look in case a delivery never comes.
                    delay = self.webhook_fallback * 2 ** min(6, item.polls)
                else:
                    delay = self.interval(item.record, item.first_progress) if failures == 0 else min(
                        self.max_interval, self.min_interval * 2**failures)
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await item.wake.wait()
                item.wake = anyio.Event()
                try:
                    if item.record.terminal:
                        await self.settle(item)  # done without output: one result fetch
                    else:
                        await self.poll_once(item)
                    failures = 0
                except ClipiaMcpError as exc:
                    failures += 1
                    if not exc.transient or failures >= C.POLL_MAX_CONSECUTIVE_ERRORS:
                        self._fail(item, exc)
                        return
                except Exception as exc:  # noqa: BLE001 - a poll must never take the process down
                    log.exception("poll of %s failed unexpectedly", item.record.request_id)
                    self._fail(item, ClipiaMcpError(
                        f"Polling failed unexpectedly ({type(exc).__name__}); the next call retries.",
                        code="internal_server_error", request_id=item.record.request_id))
                    return
        finally:
            item.polling = False

    def _fail(self, item: Tracked, exc: ClipiaMcpError) -> None:
        if exc.request_id is None:
            exc.request_id = item.record.request_id
        item.error = exc
        log.info("paused tracking %s: %s (the next call retries)", item.record.request_id, exc.code)
        self._signal(item)

    async def poll_once(self, item: Tracked) -> RequestRecord:
        """One single-flight status check: concurrent callers share the call in flight."""
        seen = item.polls
        async with item.poll_lock:
            if item.polls != seen or item.record.terminal:
                return item.record  # someone polled while we waited for the lock
            if not await self._holds(item):
                await self.refresh(item)  # another replica polls it: read what it stored
                item.last_poll = time.monotonic()
                return item.record
            await item.budget.acquire(self.poll_priority(item))
            if item.record.terminal:
                return item.record  # a webhook finished it while we queued for budget
            expected = self.expected_done(item)
            if expected is not None and expected <= time.time() and not item.result_polled and item.budget.contended:
                return await self._poll_result(item)
            item.result_polled = False
            status = await self._counted(item, item.client.status(item.record.request_id, retry=False))
            if status.status == "IN_PROGRESS" and status.progress is not None:
                item.progress_at = item.last_poll
                if item.first_progress is None:
                    item.first_progress = (item.progress_at, status.progress)
            record = replaced(
                item.record,
                status=status.status,
                queue_position=status.queue_position,
                progress=status.progress,
                logs=status.logs,
            )
            if status.status in TERMINAL_STATUSES:
                record = await self.fetch_final(item, record)
            if not item.record.terminal:  # never overwrite a terminal state learnt meanwhile
                await self._update(item, record)
            return item.record

    async def _counted(self, item: Tracked, call: Awaitable[T]) -> T:
        """One poll's upstream call: counted and stamped whatever it answers; a 429 pauses the key's budget."""
        try:
            return await call
        except RateLimitError as exc:
            item.budget.pause(exc.retry_after if exc.retry_after is not None else self.max_interval)
            raise
        finally:
            item.polls += 1
            item.last_poll = time.monotonic()

    async def _poll_result(self, item: Tracked) -> RequestRecord:
        """The poll of a request likely done: the result endpoint answers its status and, once done, its
        output, in one call where a status poll would need a result fetch after it. Still running (202): the
        next poll asks the status again (progress, a better estimate)."""
        result = await self._counted(item, item.client.result(item.record.request_id, retry=False))
        if not result.pending:
            self._learn(item, result)
            record = _finished(item.record, result)
        elif result.status == "FAILED":  # the result lags its status: fetch the error until it is there
            record = await self.fetch_final(item, replaced(item.record, status="FAILED"))
        elif result.status in TERMINAL_STATUSES:
            # COMPLETED whose output lags: stored without it, the loop settles it. CANCELED: nothing to fetch.
            record = replaced(item.record, status=result.status, queue_position=None)
        else:
            item.result_polled = True  # the next poll asks the status (progress, a better estimate)
            if result.status == item.record.status:
                return item.record  # nothing new: no change to store or announce
            record = replaced(item.record, status=result.status)
        if not item.record.terminal:
            await self._update(item, record)
        return item.record

    async def settle(self, item: Tracked) -> RequestRecord:
        """Fetch the result of a request known to be done but without its output (single-flight)."""
        async with item.poll_lock:
            if not item.record.settled and not await self._holds(item):
                await self.refresh(item)
                return item.record
            if not item.record.settled:
                record = await self.fetch_final(item, item.record)
                if record.terminal:
                    await self._update(item, record)
            return item.record

    async def fetch_final(self, item: Tracked, record: RequestRecord) -> RequestRecord:
        """Fetch the terminal result; the result endpoint can lag the status briefly."""
        for attempt in range(6):
            if attempt == 0:
                item.budget.take()  # the status said done: fetch the result now, ahead of the queue
            else:
                await item.budget.acquire()
            result = await item.client.result(record.request_id)
            if not result.pending:
                self._learn(item, result)
                return _finished(record, result)
            await anyio.sleep(min(self.max_interval, self.min_interval * (attempt + 1)))
        return replaced(record, status="IN_PROGRESS")  # not final yet; poll again

    async def _update(self, item: Tracked, record: RequestRecord, *, stamped: bool = False) -> None:
        """Adopt ``record``; on a real change wake the waiters first, then persist and notify off the critical path.

        ``stamped``: ``record`` is a fresh copy whose ``updated_at`` is already now (saves a copy per webhook).
        """
        if self._adopt(item, record, stamped) and self._tg is None:  # no background: write and notify inline
            await self._write([(item, item.record)])

    def _adopt(self, item: Tracked, record: RequestRecord, stamped: bool) -> bool:
        """:meth:`_update` up to the write (no await: a delivery wakes its waiters in one step); True when it
        changed something that must be written (queued for the background writer when there is one)."""
        old = item.record
        if not stamped:
            record = replaced(record, updated_at=time.time())
        item.record = record
        if (old.status, old.queue_position, old.progress, old.output is None) == (
                record.status, record.queue_position, record.progress, record.output is None
        ) and not record.terminal:
            return False
        self._changed(item, old)  # wake first
        if self._tg is not None:
            self._dirty[(record.owner, record.request_id)] = (item, record)
            if not self._writing:
                self._writing = True
                self._flushed = anyio.Event()
                self._tg.start_soon(self._writer)
        return True

    def _changed(self, item: Tracked, old: RequestRecord) -> None:
        if item.record.terminal and not old.terminal:
            self._retire((item.record.owner, item.record.request_id))
        self._signal(item)

    def drop(self, owner: str, request_id: str) -> None:
        """Forget a finished request held in memory (``forget``); a running one keeps its loop."""
        item = self._items.get((owner, request_id))
        if item is not None and item.record.terminal:
            del self._items[(owner, request_id)]

    async def _writer(self) -> None:
        """Write pending changes in batches (one transaction each), publish them, then tell the listeners."""
        try:
            while self._dirty:
                await anyio.sleep(0)  # let changes arriving together (a burst of webhooks) join this batch
                batch = list(self._dirty.values())
                self._dirty.clear()
                await self._write(batch)
        finally:
            self._writing = False
            self._flushed.set()

    async def _write(self, batch: list[tuple[Tracked, RequestRecord]]) -> None:
        records = [record for _, record in batch]
        try:
            many = getattr(self.store, "upsert_many", None)
            if many is not None:
                await many(records)
            else:
                for record in records:
                    await self.store.upsert(record)
            if self.shared:
                for item, record in batch:
                    await self.store.publish(record.owner, record.request_id)
                    if record.settled:
                        await self.store.release_lease(_lease(item), self.replica_id)
        except Exception:  # noqa: BLE001 - the store failing must not stop polling; recovery re-polls
            log.exception("could not write %d change(s) to the store", len(records))
        for record in records:
            await self._notify(record)

    async def flush(self) -> None:
        """Wait until every change made so far is in the store (readers of the store call this first)."""
        while self._writing:
            await self._flushed.wait()

    def _retire(self, key: tuple[str, str]) -> None:
        """Bound memory: forget the oldest finished requests (the journal still has them)."""
        self._finished.append(key)
        while len(self._finished) > C.TERMINAL_CACHE:
            old = self._finished.popleft()
            item = self._items.get(old)
            if item is not None and item.record.terminal:
                del self._items[old]
                owners = self._owners.get(old[1])
                if owners is not None:
                    owners.discard(old[0])
                    if not owners:
                        del self._owners[old[1]]

    def _signal(self, item: Tracked) -> None:
        waiters = item.waiters
        if waiters:
            item.waiters = {}
            for future in waiters:
                if not future.done():
                    future.set_result(True)

    async def apply(self, item: Tracked, record: RequestRecord, *, stamped: bool = False) -> None:
        """Store a state learnt out of band (a verified webhook, a result fetch); wakes waiters at once.

        A terminal state is never overwritten. It does not wait for a poll in flight: that poll
        sees the terminal record and stands down. ``stamped``: as for :meth:`_update`.
        """
        current = item.record
        if current.terminal and (not record.terminal or current.output is not None or record.output is None):
            return
        if self._adopt(item, record, stamped) and self._tg is None:
            await self._write([(item, item.record)])
        if not item.record.settled:
            item.wake.set()  # terminal without output: the loop fetches the result now
        # (settled: the loop sees it at its next tick and ends; waking it here would only add work to a burst)
        self.ensure_loop(item)

    async def confirm(self, item: Tracked) -> None:
        """One result fetch after an out-of-band terminal state (a webhook): the API's answer is the record."""
        try:
            # Paced like polls (a burst of confirmations must not crowd out submits), as due as a finished poll.
            await item.budget.acquire(time.time())
            async with item.poll_lock:
                result = await item.client.result(item.record.request_id)
        except ClipiaMcpError as exc:
            log.info("confirming fetch of %s failed: %s", item.record.request_id, exc.code)
            return
        if result.pending or result.status != item.record.status or result.output == item.record.output:
            return
        await self._update(item, replaced(item.record, output=result.output, error=result.error))

    # ------------------------------------------------------------------ waiting

    async def wait(self, item: Tracked, timeout: float, on_update: UpdateCallback | None = None,
                   heartbeat: float = C.HEARTBEAT_INTERVAL) -> RequestRecord:
        """Block until terminal or ``timeout``; ``on_update(record, is_heartbeat)`` on each change/heartbeat.

        A poll error recorded by an earlier loop is retried here (a fresh loop), not replayed.
        """
        self.waiting += 1
        try:  # one frame, not a helper's: a fan-out resumes a thousand of these at once
            self.ensure_loop(item, retry_failed=True)
            deadline = time.monotonic() + timeout
            if on_update is not None:
                await on_update(item.record, False)
            while not item.record.settled and item.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                changed = await _next_change(item, min(left, heartbeat))
                if on_update is not None and not item.record.settled:
                    await on_update(item.record, not changed)
            if item.error is not None and not item.record.settled:
                raise item.error
            if on_update is not None and item.record.settled:
                await on_update(item.record, False)
            return item.record
        finally:
            self.waiting -= 1

    def queue_depth(self) -> int:
        """Requests this process tracks that are not done yet."""
        return sum(1 for item in self._items.values() if not item.record.settled)


async def _next_change(item: Tracked, seconds: float) -> bool:
    """Wait for ``item``'s next change (True) or ``seconds`` (False); cancellable like any await.

    A bare future and a loop timer, not an anyio ``Event`` under ``move_on_after``: a fan-out wakes a thousand
    waiters at once, and the cancel scope made each wake-up cost 51 k instructions where this costs 41 k (and
    entering a wait, its task included, 177 k where this costs 135 k). The server runs on asyncio only (uvicorn,
    the SDK's transports).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()
    item.waiters[future] = None
    timer = loop.call_later(seconds, _time_up, future)
    try:
        return await future
    finally:
        timer.cancel()
        item.waiters.pop(future, None)


def _time_up(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


def _lease(item: Tracked) -> str:
    return f"poll:{item.record.owner}:{item.record.request_id}"


def _finished(record: RequestRecord, result: ResultResponse) -> RequestRecord:
    """``record`` as a terminal result (not pending) describes it."""
    return replaced(
        record,
        status=result.status,
        model=result.model or record.model,
        output=result.output,
        error=result.error,
        cost=result.cost if result.cost is not None else record.cost,
        progress=100 if result.status == "COMPLETED" else record.progress,
        queue_position=None,
        completed_at=record.completed_at or time.time(),
    )


def _wall(monotonic: float) -> float:
    """The Unix time of a ``time.monotonic()`` reading."""
    return time.time() - (time.monotonic() - monotonic)
