"""The retry policy of the API layer, in one place.

Transient = HTTP 429/500/502/503/504, ``request_in_progress`` and transport
errors. Delays are capped exponential backoff with full jitter; a server
``Retry-After`` is honoured but capped. Submits are retried only by the caller
passing the same idempotency key on every attempt (see :mod:`clipia_mcp.providers.clipia.client`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from clipia_mcp.core.errors import ClipiaMcpError

T = TypeVar("T")
#: How the policy waits between attempts (a module attribute so tests can record the waits without sleeping).
sleep = anyio.sleep
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 30.0

    def delay(self, attempt: int, error: ClipiaMcpError, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based) after ``error``."""
        if error.retry_after is not None:
            return max(0.0, min(error.retry_after, self.retry_after_cap))
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        r = rng or random
        return float(ceiling * (0.5 + r.random() / 2))  # jitter in [ceiling/2, ceiling]

    async def run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` until it succeeds, fails permanently, or attempts run out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except ClipiaMcpError as exc:
                if not exc.transient or attempt >= self.max_attempts:
                    raise
                wait = self.delay(attempt, exc)
                log.info("%s: transient %s, retry %d in %.2fs", op, exc.code, attempt, wait)
                await sleep(wait)
