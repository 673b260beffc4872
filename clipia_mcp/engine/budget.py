"""The poll budget of one upstream key: a token bucket plus a pause after that key's 429.

Every request polled with the same upstream key shares one budget, so one key's limit never
stalls another key (hosted tenants with their own keys). The rate is the configured maximum,
lowered to half the account's own limit once the API has told us that limit (``RateLimit-Limit``),
leaving the other half for submits, results and the agent's own calls. Replicas sharing a store
split that budget evenly by their live count (:attr:`PollBudget.share`, from the store's heartbeats).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

#: Share of the account's own per-minute limit the poller may use.
HEADROOM = 0.5


class PollBudget:
    """Token bucket shared by every poll loop of one upstream key."""

    def __init__(self, per_minute: int, burst: int | None = None,
                 account_limit: Callable[[], int | None] | None = None) -> None:
        self.configured = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self._lock = anyio.Lock()
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

    def pause(self, seconds: float) -> None:
        """Stop granting for ``seconds`` (a 429 on this key)."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def take(self) -> None:
        """Take a token without queueing (the one result fetch after a terminal status)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate) - 1
        self.stamp = now
        self.granted += 1

    async def acquire(self) -> None:
        """Wait for a token (and for any pause to end)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await anyio.sleep(self.paused_until - now)
                    continue
                rate = self.rate
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    self.granted += 1
                    return
                await anyio.sleep((1 - self.tokens) / rate)
