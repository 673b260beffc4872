"""core/retry: one policy for every upstream call (backoff, jitter, Retry-After, attempts)."""

from __future__ import annotations

import random

import anyio
import pytest

from clipia_mcp.core.errors import (
    ClipiaMcpError,
    InvalidInputError,
    NetworkError,
    RateLimitError,
    ServerError,
)
from clipia_mcp.core.retry import RetryPolicy

pytestmark = pytest.mark.anyio


def test_backoff_is_capped_jittered_and_retry_after_wins() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, retry_after_cap=10.0)
    err = ServerError("x", http_status=500)
    rng = random.Random(1)
    delays = [policy.delay(n, err, rng) for n in range(1, 8)]
    assert all(0.25 <= d <= 4.0 for d in delays) and delays[-1] >= 2.0
    for n in range(1, 8):  # full jitter in [ceiling/2, ceiling]
        ceiling = min(4.0, 0.5 * 2 ** (n - 1))
        assert ceiling / 2 <= policy.delay(n, err, rng) <= ceiling
    assert policy.delay(1, RateLimitError("x", http_status=429, retry_after=3), rng) == 3
    assert policy.delay(1, RateLimitError("x", http_status=429, retry_after=999), rng) == 10.0
    assert policy.delay(1, RateLimitError("x", http_status=429, retry_after=-5), rng) == 0.0


class Script:
    """A call that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: ClipiaMcpError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the policy's sleeps instead of sleeping (no wall-clock time in these tests)."""
    seen: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        seen.append(seconds)

    # Only the policy's own sleep: patching anyio.sleep itself would reach every other loop in the process.
    monkeypatch.setattr("clipia_mcp.core.retry.sleep", fake_sleep)
    return seen


async def test_transient_errors_are_retried_until_success(sleeps: list[float]) -> None:
    call = Script(NetworkError("down"), ServerError("boom", http_status=503),
                  RateLimitError("slow", http_status=429, retry_after=2))
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1.0, retry_after_cap=5)
    assert await policy.run("op", call) == "ok"
    assert call.calls == 4
    assert len(sleeps) == 3 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2 and sleeps[2] == 2


async def test_attempts_run_out_with_the_last_error(sleeps: list[float]) -> None:
    call = Script(*(ServerError(f"boom {i}", http_status=500) for i in range(10)))
    with pytest.raises(ServerError) as info:
        await RetryPolicy(max_attempts=3).run("op", call)
    assert call.calls == 3 and len(sleeps) == 2 and "boom 2" in info.value.message


async def test_permanent_errors_are_not_retried(sleeps: list[float]) -> None:
    call = Script(InvalidInputError("bad"))
    with pytest.raises(InvalidInputError):
        await RetryPolicy(max_attempts=5).run("op", call)
    assert call.calls == 1 and sleeps == []


async def test_non_api_exceptions_propagate_at_once() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("bug")

    with anyio.fail_after(30), pytest.raises(RuntimeError):
        await RetryPolicy().run("op", broken)
    assert calls == 1
