"""The Store contract against both backends (SQLite and a real PostgreSQL), plus what only PostgreSQL does."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest
from pgserver import PASSWORD, PgServer

from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.records import GenerationError, Intent, RequestRecord, TaskRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import open_store
from clipia_mcp.store.base import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = str(tmp_path / "journal.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_dsn")
    async with open_store(Settings(store_url=url)) as s:
        yield s


def intent(owner: str = "o1", key: str | None = None, *, digest: str = "h1", created: float | None = None) -> Intent:
    return Intent(owner=owner, idempotency_key=key or uuid.uuid4().hex, model="nano-banana-2",
                  input={"prompt": "a fox", "n": [1, 2]}, input_hash=digest, created_at=created or time.time())


def record(rid: str, owner: str = "o1", status: str = "IN_QUEUE", **kw: object) -> RequestRecord:
    now = time.time()
    return RequestRecord(request_id=rid, owner=owner, status=status, created_at=kw.pop("created_at", now),  # type: ignore[arg-type]
                         updated_at=now, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- the contract


async def test_claim_intent_returns_the_stored_row(store: Store) -> None:
    first = await store.claim_intent(intent(key="k1", digest="a"))
    second = await store.claim_intent(intent(key="k1", digest="b"))
    assert second.input_hash == first.input_hash == "a"
    assert second.input == {"prompt": "a fox", "n": [1, 2]}
    assert await store.get_intent("o1", "k1") == first
    assert await store.get_intent("o2", "k1") is None


async def test_concurrent_claims_see_one_intent(store: Store) -> None:
    seen: list[Intent] = []

    async def claim(i: int) -> None:
        seen.append(await store.claim_intent(intent(key="same", digest=f"d{i}")))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(claim, i)
    assert len({s.input_hash for s in seen}) == 1


async def test_intents_by_input_pending_and_drop(store: Store) -> None:
    now = time.time()
    old = await store.claim_intent(intent(key="old", created=now - 100))
    new = await store.claim_intent(intent(key="new", created=now - 1))
    assert (await store.recent_same_input("o1", "nano-banana-2", "h1", now - 10)) == new
    assert await store.recent_same_input("o1", "nano-banana-2", "h1", now + 10) is None
    assert await store.recent_same_input("o1", "other", "h1", 0) is None
    assert [i.idempotency_key for i in await store.pending_intents(0, "o1")] == [old.idempotency_key,
                                                                                 new.idempotency_key]
    await store.claim_intent(intent("o2", key="x"))
    assert len(await store.pending_intents(0)) == 3
    await store.record_submit(new, record("req-new"))
    assert [i.idempotency_key for i in await store.pending_intents(0, "o1")] == ["old"]
    await store.drop_intent("o1", "new")  # linked: kept
    await store.drop_intent("o1", "old")
    assert await store.get_intent("o1", "old") is None
    assert (await store.get_intent("o1", "new")).request_id == "req-new"  # type: ignore[union-attr]


async def test_upsert_keeps_stored_fields_and_lists(store: Store) -> None:
    now = time.time()
    await store.upsert(record("r1", model="nano-banana-2", input={"prompt": "p"}, cost=5, created_at=now - 3))
    await store.upsert(record("r1", status="COMPLETED", output={"images": [{"url": "u"}]}, progress=100,
                              completed_at=now, created_at=now - 3))
    got = await store.get("o1", "r1")
    assert got is not None
    assert (got.status, got.model, got.input, got.cost, got.output) == (
        "COMPLETED", "nano-banana-2", {"prompt": "p"}, 5, {"images": [{"url": "u"}]})
    await store.upsert(record("r2", status="FAILED", error=GenerationError(code="X", message="m"), created_at=now - 2))
    await store.upsert(record("r3", created_at=now - 1))
    await store.upsert(record("r4", owner="o2"))
    assert (await store.get("o1", "r2")).error == GenerationError(code="X", message="m")  # type: ignore[union-attr]
    assert await store.get("o2", "r1") is None
    assert [r.request_id for r in await store.list_recent("o1")] == ["r3", "r2", "r1"]
    assert [r.request_id for r in await store.list_recent("o1", status="FAILED")] == ["r2"]
    assert [r.request_id for r in await store.list_recent("o1", limit=1)] == ["r3"]
    assert [r.request_id for r in await store.unfinished("o1")] == ["r3"]
    await store.upsert(record("r3", owner="o2"))
    assert sorted(r.owner for r in await store.find("r3")) == ["o1", "o2"]
    assert await store.find("nope") == []
    assert [(r.owner, r.request_id) for r in await store.unfinished()] == [("o1", "r3"), ("o2", "r4"), ("o2", "r3")]


async def test_tasks(store: Store) -> None:
    await store.create_task(TaskRecord(task_id="t1", owner="o1", request_id="r1", created_at=1.0))
    await store.cancel_task("t1", 5.0)
    await store.cancel_task("t1", 9.0)
    assert await store.get_task("t1") == TaskRecord(task_id="t1", owner="o1", request_id="r1", created_at=1.0,
                                                    cancelled_at=5.0)
    assert await store.get_task("nope") is None
    with pytest.raises(StoreError):
        await store.create_task(TaskRecord(task_id="t1", owner="o2", request_id="r2", created_at=1.0))


async def test_leases_are_exclusive_renewable_and_expire(store: Store) -> None:
    assert await store.acquire_lease("poll:r1", "a", 30)
    assert not await store.acquire_lease("poll:r1", "b", 30)
    assert await store.acquire_lease("poll:r1", "a", 30)  # renew
    await store.release_lease("poll:r1", "b")  # not b's: no-op
    assert not await store.acquire_lease("poll:r1", "b", 30)
    await store.release_lease("poll:r1", "a")
    assert await store.acquire_lease("poll:r1", "b", 0.05)
    with anyio.fail_after(10):
        while not await store.acquire_lease("poll:r1", "a", 30):  # b's short lease runs out
            await anyio.sleep(0.02)


async def test_heartbeat_counts_live_replicas(store: Store) -> None:
    assert await store.heartbeat("a", 30) == 1
    assert await store.heartbeat("b", 30) == 2
    assert await store.heartbeat("a", 30) == 2
    await store.heartbeat("c", 0.05)
    with anyio.fail_after(10):
        while await store.heartbeat("a", 30) != 2:  # c stopped beating
            await anyio.sleep(0.02)
    await store.ping()


# ------------------------------------------------------------------------------------- PostgreSQL only


async def test_notifications_reach_other_stores_not_self(pg_dsn: str) -> None:
    async with AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(open_store(Settings(store_url=pg_dsn))) for _ in range(3)]
        got: list[tuple[int, str, str]] = []
        done = anyio.Event()

        def handler(i: int):  # type: ignore[no-untyped-def]
            async def on_change(owner: str, rid: str) -> None:
                got.append((i, owner, rid))
                if len(got) == 2:
                    done.set()
            return on_change

        for i, s in enumerate(stores):
            s.subscribe(handler(i))
        await stores[0].publish("o1", "r9")
        with anyio.fail_after(10):
            await done.wait()
        assert sorted(got) == [(1, "o1", "r9"), (2, "o1", "r9")]


async def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    import psycopg

    dsn = pg_server.new_database()
    opened: list[str] = []

    async def replica() -> None:
        async with open_store(Settings(store_url=dsn)) as s:
            opened.append(s.describe())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(replica)
    assert len(opened) == 4
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    from clipia_mcp.store.postgres import SCHEMA_VERSION

    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))  # each version once


async def test_password_never_shown(pg_server: PgServer) -> None:
    from clipia_mcp.store.postgres import PostgresStore

    dsn = pg_server.new_database()
    async with open_store(Settings(store_url=dsn)) as s:
        assert PASSWORD not in s.describe() and PASSWORD not in repr(s)
        assert s.describe() == f"postgresql://postgres@127.0.0.1:{pg_server.port}/{dsn.rsplit('/', 1)[1]}"
    wrong = dsn.replace(PASSWORD, "Wrong-Password-123")
    with pytest.raises(StoreError) as info:
        async with PostgresStore(wrong, connect_timeout=5):
            pass
    assert info.value.code == "journal_error"
    assert "Wrong-Password-123" not in str(info.value) and PASSWORD not in str(info.value)
    closed = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/x"
    with pytest.raises(StoreError) as info:
        async with PostgresStore(closed, connect_timeout=2):
            pass
    assert PASSWORD not in str(info.value)


async def test_survives_a_database_restart(pg_server: PgServer) -> None:
    dsn = pg_server.new_database()
    async with open_store(Settings(store_url=dsn)) as a, open_store(Settings(store_url=dsn)) as b:
        await a.upsert(record("r1"))
        pg_server.restart()
        with anyio.fail_after(30):
            while True:  # the pool replaces broken connections; the first calls may fail transiently
                try:
                    assert (await b.get("o1", "r1")) is not None
                    break
                except StoreError:
                    await anyio.sleep(0.1)
        got = anyio.Event()

        async def on_change(owner: str, rid: str) -> None:
            got.set()

        b.subscribe(on_change)
        with anyio.fail_after(30):
            while not got.is_set():  # the listener reconnects after the restart
                await a.publish("o1", "r1")
                with anyio.move_on_after(0.2):
                    await got.wait()
