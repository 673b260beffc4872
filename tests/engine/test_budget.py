"""engine/budget: a busy budget grants the poll most likely to find its request done first."""

from __future__ import annotations

import time

import anyio
import pytest

from clipia_mcp.engine.budget import PollBudget

pytestmark = pytest.mark.anyio


def empty_budget() -> PollBudget:
    budget = PollBudget(1, burst=3)  # one token a minute: nothing refills while the test runs
    budget.tokens, budget.stamp = 0.0, time.monotonic()
    return budget


async def test_a_busy_budget_grants_the_lowest_priority_first() -> None:
    budget = empty_budget()
    granted: list[float] = []

    async def poll(priority: float) -> None:
        await budget.acquire(priority)
        granted.append(priority)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for priority in (3.0, 1.0, 2.0, 1.0):
                tg.start_soon(poll, priority)
            await anyio.wait_all_tasks_blocked()
            assert budget.contended and granted == []
            budget.tokens, budget.stamp = 3.0, time.monotonic()
            budget.look_again()
            while len(granted) < 3:
                await anyio.sleep(0)
            assert granted == [1.0, 1.0, 2.0] and budget.tokens < 1
            tg.cancel_scope.cancel()
    assert budget.granted == 3


async def test_a_waiter_cancelled_at_the_head_hands_its_turn_on() -> None:
    budget = empty_budget()
    granted: list[str] = []

    async def poll(name: str, priority: float) -> None:
        await budget.acquire(priority)
        granted.append(name)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with anyio.create_task_group() as first:
                first.start_soon(poll, "cancelled", 0.0)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(poll, "next", 5.0)
                await anyio.wait_all_tasks_blocked()
                first.cancel_scope.cancel()
            budget.tokens, budget.stamp = 1.0, time.monotonic()
            budget.look_again()
            while not granted:
                await anyio.sleep(0)
            tg.cancel_scope.cancel()
    assert granted == ["next"] and not budget.contended
