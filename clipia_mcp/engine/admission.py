"""Submit admission: a FIFO queue per upstream key in front of the paid ``submit`` call.

A burst of submits (an agent fanning out 1,000 generations) must neither exhaust the HTTP
connection pool (``PoolTimeout``) nor run into the account's rate limit. Each upstream key has one
:class:`Admission`; a submit enters it after cost confirmation and after its intent is durable,
and is sent once

* a send slot is free: at most half the client's connection pool is spent on submits, the other
  half stays free for polls, results and the agent's other calls;
* the account's window allows it: ``RateLimit-Remaining`` (less the submits already in flight and a
  small reserve) is above zero, or the window (``RateLimit-Reset``) has rolled over;
* no 429 on this key asked us to hold off (``Retry-After``).

A submit still queued when its call's deadline passes stays queued (the caller gets
``submit_pending`` with its idempotency key); it is sent when its turn comes, with the same key,
so a later call returns the created request and nothing is paid twice. A queued submit that has
not been sent within ``submit_queue_ttl`` expires: it was never sent, so its intent is dropped and
a later identical call simply submits again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

import anyio

#: Submits kept back from ``RateLimit-Remaining`` for polls and the agent's own calls.
RESERVE = 2


class AdmissionExpired(Exception):
    """The submit waited longer than its expiry and was never sent."""


class RateWindow(Protocol):
    """What admission reads of the account's limits (``providers.clipia.ratelimit.RateLimitState``)."""

    limit: int | None
    remaining: int | None
    reset_at: float | None
    blocked_until: float


class Admission:
    """The submit queue of one upstream key."""

    def __init__(self, max_in_flight: int, window: RateWindow | None = None, reserve: int = RESERVE) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self.window = window
        self.reserve = reserve
        self._slots = anyio.CapacityLimiter(self.max_in_flight)
        self._gate = anyio.Lock()  # FIFO: the oldest queued submit goes first
        self._answered = anyio.Event()  # set whenever a submit in flight is answered
        self.in_flight = 0
        self.queued = 0
        self.admitted = 0
        self.expired = 0

    def _room(self, now: float) -> float:
        """0 if a submit may go now, else seconds until the window (or a 429's pause) may allow one."""
        w = self.window
        if w is None:
            return 0.0
        if now < w.blocked_until:
            return w.blocked_until - now
        if w.remaining is None:
            return 0.0
        rolled = w.reset_at is None or now >= w.reset_at
        remaining = (w.limit if rolled and w.limit is not None else w.remaining)
        if remaining - self.in_flight > self.reserve:
            return 0.0
        if rolled:
            # The window rolled over but nothing has told us the new count yet: one at a time until an answer does.
            return 0.0 if self.in_flight == 0 else 1.0
        assert w.reset_at is not None
        return max(0.001, w.reset_at - now)

    def estimated_wait(self) -> float | None:
        """Seconds a submit queued now might wait for the rate window (None: only the send slots)."""
        w = self.window
        now = time.monotonic()
        if w is not None and now < w.blocked_until:
            return w.blocked_until - now
        if w is not None and w.reset_at is not None and w.limit and now < w.reset_at:
            windows = self.queued // max(1, w.limit - self.reserve)
            return (w.reset_at - now) + windows * 60.0
        return None

    @contextlib.asynccontextmanager
    async def slot(self, expires_in: float) -> AsyncIterator[None]:
        """Wait for this submit's turn (raising :class:`AdmissionExpired` after ``expires_in`` s), then hold a slot."""
        self.queued += 1
        admitted = False
        try:
            with anyio.move_on_after(expires_in):
                await self._slots.acquire()
                try:
                    async with self._gate:
                        while (wait := self._room(time.monotonic())) > 0:
                            answered = self._answered
                            with anyio.move_on_after(wait):
                                await answered.wait()
                        self.in_flight += 1
                        admitted = True
                except BaseException:
                    self._slots.release()
                    raise
        finally:
            self.queued -= 1
        if not admitted:
            self.expired += 1
            raise AdmissionExpired
        self.admitted += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
            self._answered.set()
            self._answered = anyio.Event()


class Admissions:
    """One :class:`Admission` per upstream client object (one client per key), created on first use."""

    def __init__(self) -> None:
        self._by_client: dict[int, tuple[object, Admission]] = {}

    def for_client(self, client: object) -> Admission:
        entry = self._by_client.get(id(client))
        if entry is None or entry[0] is not client:
            pool = getattr(client, "max_connections", None)
            window = getattr(client, "rate_limit", None)
            admission = Admission(max(1, (pool if isinstance(pool, int) else 20) // 2), window)
            entry = (client, admission)
            self._by_client[id(client)] = entry
        return entry[1]
