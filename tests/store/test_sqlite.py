"""store/sqlite: every Store method, uniqueness, leases, and migration of older journal files."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.records import GenerationError, Intent, RequestRecord, TaskRecord
from clipia_mcp.store.base import Store
from clipia_mcp.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

pytestmark = pytest.mark.anyio
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "j" / "journal.sqlite3")
    yield s
    await s.aclose()


def intent(key: str = "k1", owner: str = "o1", created: float = 100.0, **kw: object) -> Intent:
    fields: dict[str, object] = {"owner": owner, "idempotency_key": key, "model": "nano-banana-2",
                                 "input": {"prompt": "x"}, "input_hash": "h1", "created_at": created, **kw}
    return Intent(**fields)  # type: ignore[arg-type]


def record(rid: str = RID, owner: str = "o1", status: str = "IN_QUEUE", created: float = 100.0,
           **kw: object) -> RequestRecord:
    fields: dict[str, object] = {"request_id": rid, "owner": owner, "status": status, "created_at": created,
                                 "updated_at": created, **kw}
    return RequestRecord(**fields)  # type: ignore[arg-type]


def test_sqlite_store_satisfies_the_protocol(tmp_path: Path) -> None:
    s: Store = SqliteStore(None)
    assert s.describe() == ":memory:"
    assert SqliteStore(tmp_path / "x.sqlite3").describe() == str(tmp_path / "x.sqlite3")


async def test_claim_intent_is_unique_per_owner_and_key(store: SqliteStore) -> None:
    first = await store.claim_intent(intent(input={"prompt": "first"}))
    assert first.input == {"prompt": "first"}
    again = await store.claim_intent(intent(input={"prompt": "second"}, created=200.0))
    assert again == first  # the stored row wins, whatever the second claim carried
    other_owner = await store.claim_intent(intent(owner="o2", input={"prompt": "second"}))
    assert other_owner.owner == "o2" and other_owner.input == {"prompt": "second"}
    assert await store.get_intent("o1", "k1") == first
    assert await store.get_intent("o1", "nope") is None


async def test_concurrent_claims_see_one_intent(store: SqliteStore) -> None:
    got: list[Intent] = []

    async def claim(i: int) -> None:
        got.append(await store.claim_intent(intent(input={"prompt": f"p{i}"}, created=float(i))))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(claim, i)
    assert len({g.model_dump_json() for g in got}) == 1


async def test_recent_same_input_pending_and_drop(store: SqliteStore) -> None:
    await store.claim_intent(intent("a", created=100.0))
    await store.claim_intent(intent("b", created=150.0))
    await store.claim_intent(intent("c", created=120.0, input_hash="other"))
    await store.claim_intent(intent("d", owner="o2", created=130.0))
    newest = await store.recent_same_input("o1", "nano-banana-2", "h1", since=90.0)
    assert newest is not None and newest.idempotency_key == "b"
    assert await store.recent_same_input("o1", "nano-banana-2", "h1", since=151.0) is None
    assert await store.recent_same_input("o1", "other-model", "h1", since=0.0) is None
    assert [i.idempotency_key for i in await store.pending_intents(0.0)] == ["a", "c", "d", "b"]
    assert [i.idempotency_key for i in await store.pending_intents(125.0, owner="o1")] == ["b"]
    await store.record_submit(intent("a"), record())
    assert [i.idempotency_key for i in await store.pending_intents(0.0, owner="o1")] == ["c", "b"]
    await store.drop_intent("o1", "a")  # linked to a request: kept
    await store.drop_intent("o1", "c")  # outcome known to be nothing: gone
    assert (await store.get_intent("o1", "a")) is not None and (await store.get_intent("o1", "c")) is None


async def test_record_submit_links_the_intent_and_stores_the_request(store: SqliteStore) -> None:
    it = await store.claim_intent(intent())
    await store.record_submit(it, record(model="nano-banana-2", input={"prompt": "x"}, idempotency_key="k1", cost=4))
    linked = await store.get_intent("o1", "k1")
    assert linked is not None and linked.request_id == RID
    got = await store.get("o1", RID)
    assert got is not None and (got.model, got.input, got.cost, got.status) == ("nano-banana-2", {"prompt": "x"}, 4,
                                                                                "IN_QUEUE")


async def test_upsert_keeps_stored_fields_that_an_update_leaves_empty(store: SqliteStore) -> None:
    await store.upsert(record(model="m", input={"prompt": "x"}, idempotency_key="k", cost=4))
    done = record(status="COMPLETED", created=100.0, updated_at=300.0, progress=100, output={"images": [1]},
                  completed_at=299.0)
    await store.upsert(done)
    got = await store.get("o1", RID)
    assert got is not None
    assert (got.model, got.input, got.idempotency_key, got.cost) == ("m", {"prompt": "x"}, "k", 4)
    assert (got.status, got.progress, got.output, got.updated_at, got.completed_at) == (
        "COMPLETED", 100, {"images": [1]}, 300.0, 299.0)
    failed = record("f" * 8, status="FAILED", error=GenerationError(code="GENERATION_FAILED", message="no"))
    await store.upsert(failed)
    got_failed = await store.get("o1", "f" * 8)
    assert got_failed is not None and got_failed.error == GenerationError(code="GENERATION_FAILED", message="no")
    assert await store.get("o2", RID) is None  # rows are scoped by owner


async def test_list_recent_and_unfinished(store: SqliteStore) -> None:
    for i, status in enumerate(["IN_QUEUE", "COMPLETED", "IN_PROGRESS", "FAILED", "CANCELED"]):
        await store.upsert(record(f"r{i}", status=status, created=100.0 + i))
    await store.upsert(record("theirs", owner="o2", status="IN_QUEUE", created=50.0))
    assert [r.request_id for r in await store.list_recent("o1")] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.request_id for r in await store.list_recent("o1", limit=2)] == ["r4", "r3"]
    assert [r.request_id for r in await store.list_recent("o1", status="COMPLETED")] == ["r1"]
    assert [r.request_id for r in await store.unfinished("o1")] == ["r0", "r2"]
    assert [r.request_id for r in await store.unfinished()] == ["theirs", "r0", "r2"]


async def test_tasks(store: SqliteStore) -> None:
    task = TaskRecord(task_id="t" * 32, owner="o1", request_id=RID, created_at=100.0)
    await store.create_task(task)
    assert await store.get_task("t" * 32) == task
    assert await store.get_task("nope") is None
    await store.cancel_task("t" * 32, 200.0)
    await store.cancel_task("t" * 32, 300.0)  # the first cancellation time stays
    got = await store.get_task("t" * 32)
    assert got is not None and got.cancelled_at == 200.0
    with pytest.raises(StoreError):  # ids are unique
        await store.create_task(task)


async def test_leases(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("clipia_mcp.store.sqlite.time.time", lambda: now[0])
    assert await store.acquire_lease("poll:r1", "a", ttl=10) is True
    assert await store.acquire_lease("poll:r1", "b", ttl=10) is False  # a's lease is live
    assert await store.acquire_lease("poll:r1", "a", ttl=10) is True  # renewal by the holder
    assert await store.acquire_lease("poll:r2", "b", ttl=10) is True  # another lease is independent
    now[0] += 9.9
    assert await store.acquire_lease("poll:r1", "b", ttl=10) is False  # renewed at 1000: live until 1010
    now[0] += 0.2
    assert await store.acquire_lease("poll:r1", "b", ttl=10) is True  # expired: b takes over
    await store.release_lease("poll:r1", "a")  # not a's any more: no-op
    assert await store.acquire_lease("poll:r1", "a", ttl=10) is False
    await store.release_lease("poll:r1", "b")
    assert await store.acquire_lease("poll:r1", "a", ttl=10) is True


async def test_publish_and_subscribe_are_in_process_only(store: SqliteStore) -> None:
    seen: list[tuple[str, str]] = []

    async def handler(owner: str, rid: str) -> None:
        seen.append((owner, rid))

    unsubscribe = store.subscribe(handler)
    await store.publish("o1", RID)  # nobody else shares a SQLite store: nothing to deliver
    unsubscribe()
    unsubscribe()  # idempotent
    assert seen == []


async def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = SqliteStore(path)
    await first.claim_intent(intent())
    await first.upsert(record(status="COMPLETED", output={"images": []}))
    await first.aclose()
    second = SqliteStore(path)
    try:
        assert (await second.get_intent("o1", "k1")) is not None
        got = await second.get("o1", RID)
        assert got is not None and got.output == {"images": []}
    finally:
        await second.aclose()


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_a_pre_versioned_journal_migrates_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)  # a journal as the first release wrote it: tables, no user_version
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO intents VALUES (?,?,?,?,?,?,?,?)",
                 ("o1", "k1", "nano-banana-2", '{"prompt":"old"}', "h1", None, RID, 100.0))
    conn.execute("INSERT INTO requests (request_id, owner, model, input_json, status, created_at, updated_at) "
                 "VALUES (?,?,?,?,?,?,?)", (RID, "o1", "nano-banana-2", '{"prompt":"old"}', "IN_PROGRESS", 100.0,
                                            101.0))
    conn.commit()
    conn.close()
    assert _version(path) == 0
    store = SqliteStore(path)
    try:
        assert _version(path) == SCHEMA_VERSION
        old = await store.get("o1", RID)
        assert old is not None and old.input == {"prompt": "old"} and old.status == "IN_PROGRESS"
        got_intent = await store.get_intent("o1", "k1")
        assert got_intent is not None and got_intent.request_id == RID
        assert await store.acquire_lease("poll", "me", ttl=5) is True  # the table a later version added
        assert [r.request_id for r in await store.unfinished()] == [RID]
    finally:
        await store.aclose()
    again = SqliteStore(path)  # opening a current file changes nothing
    await again.aclose()
    assert _version(path) == SCHEMA_VERSION


async def test_a_version_1_journal_gets_only_the_later_migrations(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.close()
    store = SqliteStore(path)
    await store.aclose()
    assert _version(path) == SCHEMA_VERSION


def test_a_newer_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert "newer clipia-mcp" in info.value.message and info.value.code == "journal_error"


def test_an_unopenable_journal_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert str(path) in info.value.message


async def test_failures_after_close_are_store_errors(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.sqlite3")
    await store.aclose()
    with pytest.raises(StoreError):
        await store.get("o1", RID)
