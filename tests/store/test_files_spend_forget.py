"""The Store methods behind saved outputs, spend, filters and forget, on both backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clipia_mcp.core.records import RequestRecord, SavedFile, TaskRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import open_store
from clipia_mcp.store.base import Store

pytestmark = pytest.mark.anyio
DAY = 86_400


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = str(tmp_path / "journal.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    async with open_store(Settings(store_url=url)) as s:
        yield s


async def test_files_spend_filters_and_forget(store: Store) -> None:
    owner, other = f"o-{uuid.uuid4().hex}", f"o-{uuid.uuid4().hex}"
    now = time.time()
    rows = [("a", "nano-banana-2", "COMPLETED", 4, 12), ("b", "nano-banana-2", "FAILED", 4, 1),
            ("c", "seedance-2-fast-t2v", "COMPLETED", 47, 1), ("d", "seedance-2-fast-t2v", "IN_PROGRESS", 47, 0)]
    for rid, model, status, cost, age in rows:
        t = now - age * DAY
        await store.upsert(RequestRecord(request_id=f"{owner}-{rid}", owner=owner, model=model, status=status,
                                         cost=cost, input={"prompt": rid}, created_at=t, updated_at=t))
    await store.upsert(RequestRecord(request_id="x", owner=other, model="nano-banana-2", status="COMPLETED", cost=99,
                                     created_at=now, updated_at=now))

    recent = await store.list_recent(owner, model="seedance-2-fast-t2v", since=now - 2 * DAY)
    assert [r.request_id for r in recent] == [f"{owner}-d", f"{owner}-c"]
    old = await store.list_recent(owner, until=now - 10 * DAY)
    assert [r.request_id for r in old] == [f"{owner}-a"]

    spend = await store.spend(owner, now - 30 * DAY, now + 1)
    day = datetime.fromtimestamp(now - DAY, tz=timezone.utc).strftime("%Y-%m-%d")
    by = {(r.day, r.model): r for r in spend}
    assert sum(r.credits for r in spend) == 4 + 47 and sum(r.reserved for r in spend) == 47
    assert by[(day, "nano-banana-2")].failed == 1 and by[(day, "nano-banana-2")].credits == 0
    assert sum(r.requests for r in spend) == 4

    saved = SavedFile(owner=owner, request_id=f"{owner}-a", url="https://media.clipia.ai/a.png", path="/x/a.png",
                      mime_type="image/png", size_bytes=10, sha256="0" * 64, saved_at=now)
    await store.add_file(saved)
    await store.add_file(saved.model_copy(update={"path": "/x/a2.png"}))  # a repeat replaces
    assert [f.path for f in await store.files_for(owner, f"{owner}-a")] == ["/x/a2.png"]
    await store.create_task(TaskRecord(task_id=uuid.uuid4().hex, owner=owner, request_id=f"{owner}-a",
                                       created_at=now))

    gone = await store.forget(owner, before=now - 10 * DAY)
    assert gone.request_ids == [f"{owner}-a"] and [f.path for f in gone.files] == ["/x/a2.png"]
    assert await store.files_for(owner, f"{owner}-a") == []
    everything = await store.forget(owner)
    assert sorted(everything.request_ids) == [f"{owner}-b", f"{owner}-c"]  # the running one stays
    assert [r.request_id for r in await store.list_recent(owner)] == [f"{owner}-d"]
    assert [r.request_id for r in await store.list_recent(other)] == ["x"]
