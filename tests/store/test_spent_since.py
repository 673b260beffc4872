"""Store.spent_since (spend limits) on both backends: costs of requests, estimates of pending intents,
refunds of failed and cancelled generations, one owner only, from a point in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clipia_mcp.core.records import Intent, RequestRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import open_store
from clipia_mcp.store.base import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = str(tmp_path / "journal.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    async with open_store(Settings(store_url=url)) as s:
        yield s


async def test_spent_since(store: Store) -> None:
    now = time.time()
    owner, other = f"spend-{now}", f"other-{now}"

    async def submit(key: str, estimate: int | None, *, status: str | None = None, cost: int | None = None,
                     who: str = owner, at: float = now) -> None:
        intent = await store.claim_intent(Intent(owner=who, idempotency_key=key, model="m", input={"k": key},
                                                 input_hash=key, created_at=at, cost=estimate))
        assert intent.cost == estimate
        if status is not None:
            await store.record_submit(intent, RequestRecord(request_id=f"r-{key}-{now}", owner=who, status=status,
                                                            cost=cost, created_at=at, updated_at=at))

    await submit("done", 10, status="COMPLETED", cost=12)       # the request's own cost wins: 12
    await submit("running", 5, status="IN_QUEUE", cost=None)    # no cost known yet: the estimate, 5
    await submit("pending", 7)                                  # outcome unknown: the estimate, 7
    await submit("failed", 9, status="FAILED", cost=9)          # refunded: 0
    await submit("cancelled", 9, status="CANCELED", cost=9)     # refunded: 0
    await submit("no-limits", None, status="COMPLETED", cost=4)  # submitted while no limit was set: 4
    await submit("theirs", 100, status="COMPLETED", cost=100, who=other)
    await submit("old", 50, status="COMPLETED", cost=50, at=now - 90_000)
    assert await store.spent_since(owner, now - 1) == 12 + 5 + 7 + 4
    assert await store.spent_since(owner, now - 100_000) == 12 + 5 + 7 + 4 + 50
    assert await store.spent_since("nobody", 0) == 0
