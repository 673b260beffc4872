"""The poll budget of one upstream key: a token bucket plus a pause after that key's 429.

Every request polled with the same upstream key shares one budget, so one key's limit never
stalls another key (hosted tenants with their own keys). The rate is the configured maximum,
lowered to half the account's own limit once the API has told us that limit (``RateLimit-Limit``),
leaving the other half for submits, results and the agent's own calls. Replicas sharing a store
split that budget evenly by their live count (:attr:`PollBudget.share`, from the store's heartbeats).

When more polls wait than the budget grants, the one with the lowest priority goes first (the tracker
passes each request's estimated completion time): the tokens go to the requests most likely done.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

import anyio

#: Share of the account's own per-minute limit the poller may use.
HEADROOM = 0.5


class _Waiter:
    """One caller queued in :meth:`PollBudget.acquire`."""

    __slots__ = ("turn",)

    def __init__(self) -> None:
        #: Set when the queue's head may have changed: the waiter looks again.
        self.turn = anyio.Event()


class PollBudget:
    """Token bucket shared by every poll loop of one upstream key."""

    def __init__(self, per_minute: int, burst: int | None = None,
                 account_limit: Callable[[], int | None] | None = None) -> None:
        self.configured = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self._queue: list[tuple[float, int, _Waiter]] = []  # a heap: (priority, arrival, waiter)
        self._arrivals = itertools.count()
        self._account_limit = account_limit
        self.granted = 0
        #: Live replicas sharing this key's budget (replicas on one PostgreSQL store split it evenly).
        self.share = 1

    @property
    def rate(self) -> float:
        """Polls per second this process may make now (its share of the key's budget)."""
        limit = self._account_limit() if self._account_limit is not None else None
        rate = max(1 / 60, min(self.configured, HEADROOM * limit / 60.0)) if limit else self.configured
        return rate / max(1, self.share)

    @property
    def contended(self) -> bool:
        """Polls are queued for tokens right now (each token should then do as much as it can)."""
        return bool(self._queue)

    def look_again(self) -> None:
        """The rate or the tokens changed (a replica came or went): the first waiter recomputes its wait."""
        if self._queue:
            self._queue[0][2].turn.set()

    def pause(self, seconds: float) -> None:
        """Stop granting for ``seconds`` (a 429 on this key)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def take(self) -> None:
        """Take a token without queueing (the one result fetch after a terminal status)."""
        self._refill(time.monotonic(), self.rate)
        self.tokens -= 1
        self.granted += 1

    async def acquire(self, priority: float = 0.0) -> None:
        """Wait for a token (and for any pause to end).

        While several callers wait, the lowest ``priority`` is granted first; equal priorities in arrival order.
        """
        me = _Waiter()
        old_head = self._queue[0][2] if self._queue else None
        heapq.heappush(self._queue, (priority, next(self._arrivals), me))
        if old_head is not None and self._queue[0][2] is me:
            old_head.turn.set()  # it was waiting for a token that is now ours
        granted = False
        try:
            while True:
                if self._queue[0][2] is not me:
                    await me.turn.wait()
                    me.turn = anyio.Event()
                    continue
                wait = self._wait(time.monotonic())
                if wait <= 0:
                    heapq.heappop(self._queue)
                    self.tokens -= 1
                    self.granted += 1
                    granted = True
                    if self._queue:
                        self._queue[0][2].turn.set()
                    return
                with anyio.move_on_after(wait):
                    await me.turn.wait()
                me.turn = anyio.Event()
        finally:
            if not granted:  # cancelled while queued: leave the queue, and let the next one look
                was_head = self._queue[0][2] is me
                self._queue = [entry for entry in self._queue if entry[2] is not me]
                heapq.heapify(self._queue)
                if was_head and self._queue:
                    self._queue[0][2].turn.set()

    def _wait(self, now: float) -> float:
        """Seconds until a token may be granted (0 when one is there now); refills the bucket."""
        if now < self.paused_until:
            return self.paused_until - now
        rate = self.rate
        self._refill(now, rate)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / rate

    def _refill(self, now: float, rate: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
