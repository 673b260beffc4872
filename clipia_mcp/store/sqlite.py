"""The embedded store: one SQLite file (WAL), every call off the event loop.

Tables (versioned by ``PRAGMA user_version``; older journals are migrated forward at open):

* ``intents``: one row per submit attempt, written *before* the API is called, keyed by
  (owner, idempotency key). If the process dies between the API accepting a submit and us
  recording its id, the intent is still there and is replayed with the same key to recover the
  same ``request_id`` without a second charge.
* ``requests``: one row per known request id, with its latest status and output.
* ``tasks``: MCP tasks bound to a request.
* ``leases``: who polls which request (single-flight across processes sharing the file).

SQLite serves one process well; replicas share a PostgreSQL store instead. Change notification
is therefore in-process only here.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic_core import from_json

from clipia_mcp.core import metrics
from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.jsonutil import dumps_canonical
from clipia_mcp.core.records import Forgotten, GenerationError, Intent, RequestRecord, SavedFile, SpendRow, TaskRecord
from clipia_mcp.store.base import ChangeHandler

T = TypeVar("T")

#: Each entry upgrades the schema by one version; never edit a shipped entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the first journal (intents, requests, tasks); "IF NOT EXISTS" adopts pre-versioned files.
    """
    CREATE TABLE IF NOT EXISTS intents (
        owner TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        model TEXT NOT NULL,
        input_json TEXT NOT NULL,
        input_hash TEXT NOT NULL,
        webhook_url TEXT,
        request_id TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (owner, idempotency_key)
    );
    CREATE INDEX IF NOT EXISTS intents_by_input ON intents (owner, model, input_hash, created_at);
    CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        model TEXT,
        input_json TEXT,
        idempotency_key TEXT,
        status TEXT NOT NULL,
        queue_position INTEGER,
        progress INTEGER,
        cost INTEGER,
        output_json TEXT,
        error_json TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        completed_at REAL,
        PRIMARY KEY (owner, request_id)
    );
    CREATE INDEX IF NOT EXISTS requests_by_time ON requests (owner, created_at);
    CREATE TABLE IF NOT EXISTS tasks (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        cancelled_at REAL
    );
    """,
    # 2: leases for single-flight polling; an index for "pending intents".
    """
    CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS intents_pending ON intents (created_at) WHERE request_id IS NULL;
    """,
    # 3: the estimate of a submit (spend limits count it until the request's own cost is known).
    """
    ALTER TABLE intents ADD COLUMN cost INTEGER;
    CREATE INDEX IF NOT EXISTS intents_by_time ON intents (owner, created_at);
    """,
    # 4: outputs saved locally (--output-dir).
    """
    CREATE TABLE IF NOT EXISTS files (
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        url TEXT NOT NULL,
        path TEXT NOT NULL,
        mime_type TEXT,
        size_bytes INTEGER,
        sha256 TEXT,
        saved_at REAL NOT NULL,
        PRIMARY KEY (owner, request_id, url)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_REQUEST_COLUMNS = ("request_id, owner, model, input_json, idempotency_key, status, queue_position, progress, "
                    "cost, output_json, error_json, created_at, updated_at, completed_at")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; returns the version it had."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StoreError(f"The journal was written by a newer clipia-mcp (schema {found} > {SCHEMA_VERSION}).")
    for version in range(found, SCHEMA_VERSION):
        conn.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[version]} PRAGMA user_version = {version + 1}; COMMIT;")
    return found


class SqliteStore:
    """:class:`~clipia_mcp.store.base.Store` on one SQLite connection, serialised by a lock."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path) if path is not None else ":memory:", check_same_thread=False, isolation_level=None,
                timeout=5.0,
            )
            self._conn.row_factory = sqlite3.Row
            if path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            migrate(self._conn)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"Cannot open the journal at {self.describe()}: {_reason(exc)}") from None
        self._lock = threading.Lock()
        self._handlers: list[ChangeHandler] = []

    def __repr__(self) -> str:
        return f"SqliteStore({self.describe()!r})"

    def describe(self) -> str:
        return str(self.path) if self.path is not None else ":memory:"

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return fn(self._conn)
                except sqlite3.Error as exc:
                    raise StoreError(f"The journal at {self.describe()} failed: {_reason(exc)}") from None

        started = time.monotonic()
        try:
            return await anyio.to_thread.run_sync(locked)
        finally:
            metrics.observe("clipia_mcp_store_seconds", time.monotonic() - started, backend="sqlite")

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A small read: inline when the connection is free (a local page read costs less than a thread hop)."""
        if not self._lock.acquire(blocking=False):
            return await self._run(fn)
        try:
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise StoreError(f"The journal at {self.describe()} failed: {_reason(exc)}") from None
        finally:
            self._lock.release()

    # ---------------------------------------------------------------- intents

    async def claim_intent(self, intent: Intent) -> Intent:
        def op(c: sqlite3.Connection) -> Intent:
            c.execute(
                "INSERT OR IGNORE INTO intents (owner, idempotency_key, model, input_json, input_hash, webhook_url, "
                "request_id, created_at, cost) VALUES (?,?,?,?,?,?,?,?,?)",
                (intent.owner, intent.idempotency_key, intent.model, dumps_canonical(intent.input),
                 intent.input_hash, intent.webhook_url, intent.request_id, intent.created_at, intent.cost),
            )
            row = c.execute("SELECT * FROM intents WHERE owner=? AND idempotency_key=?",
                            (intent.owner, intent.idempotency_key)).fetchone()
            return _intent(row)

        return await self._run(op)

    async def get_intent(self, owner: str, key: str) -> Intent | None:
        def op(c: sqlite3.Connection) -> Intent | None:
            row = c.execute("SELECT * FROM intents WHERE owner=? AND idempotency_key=?", (owner, key)).fetchone()
            return _intent(row) if row else None

        return await self._read(op)

    async def recent_same_input(self, owner: str, model: str, input_hash: str, since: float) -> Intent | None:
        def op(c: sqlite3.Connection) -> Intent | None:
            row = c.execute(
                "SELECT * FROM intents WHERE owner=? AND model=? AND input_hash=? AND created_at>=? "
                "ORDER BY created_at DESC LIMIT 1",
                (owner, model, input_hash, since),
            ).fetchone()
            return _intent(row) if row else None

        return await self._run(op)

    async def pending_intents(self, since: float, owner: str | None = None) -> list[Intent]:
        def op(c: sqlite3.Connection) -> list[Intent]:
            sql = "SELECT * FROM intents WHERE request_id IS NULL AND created_at>=?"
            args: tuple[Any, ...] = (since,)
            if owner is not None:
                sql += " AND owner=?"
                args += (owner,)
            return [_intent(r) for r in c.execute(sql + " ORDER BY created_at", args).fetchall()]

        return await self._run(op)

    async def spent_since(self, owner: str, since: float) -> int:
        def op(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT COALESCE(SUM(CASE WHEN r.request_id IS NULL THEN COALESCE(i.cost, 0) "
                "WHEN r.status IN ('FAILED','CANCELED') THEN 0 ELSE COALESCE(r.cost, i.cost, 0) END), 0) "
                "FROM intents i LEFT JOIN requests r ON r.owner=i.owner AND r.request_id=i.request_id "
                "WHERE i.owner=? AND i.created_at>=?", (owner, since)).fetchone()
            return int(row[0])

        return await self._run(op)

    async def drop_intent(self, owner: str, key: str) -> None:
        await self._run(lambda c: c.execute(
            "DELETE FROM intents WHERE owner=? AND idempotency_key=? AND request_id IS NULL", (owner, key)))

    # ---------------------------------------------------------------- requests

    async def record_submit(self, intent: Intent, record: RequestRecord) -> None:
        def op(c: sqlite3.Connection) -> None:
            with _immediate(c):
                c.execute("UPDATE intents SET request_id=? WHERE owner=? AND idempotency_key=?",
                          (record.request_id, intent.owner, intent.idempotency_key))
                _upsert(c, record)

        await self._run(op)

    async def upsert(self, record: RequestRecord) -> None:
        await self._run(lambda c: _upsert(c, record))

    async def upsert_many(self, records: list[RequestRecord]) -> None:
        """Several changes in one transaction (the tracker batches changes that arrive together)."""
        def op(c: sqlite3.Connection) -> None:
            with _immediate(c):
                for record in records:
                    _upsert(c, record)

        await self._run(op)

    async def get(self, owner: str, request_id: str) -> RequestRecord | None:
        def op(c: sqlite3.Connection) -> RequestRecord | None:
            row = c.execute("SELECT * FROM requests WHERE owner=? AND request_id=?", (owner, request_id)).fetchone()
            return _record(row) if row else None

        return await self._read(op)

    async def find(self, request_id: str) -> list[RequestRecord]:
        def op(c: sqlite3.Connection) -> list[RequestRecord]:
            return [_record(r) for r in c.execute("SELECT * FROM requests WHERE request_id=?", (request_id,))]

        return await self._run(op)

    async def list_recent(self, owner: str, *, status: str | None = None, limit: int = 20, model: str | None = None,
                          since: float | None = None, until: float | None = None) -> list[RequestRecord]:
        def op(c: sqlite3.Connection) -> list[RequestRecord]:
            sql = "SELECT * FROM requests WHERE owner=?"
            args: list[Any] = [owner]
            for clause, value in (("status=?", status), ("model=?", model), ("created_at>=?", since),
                                  ("created_at<?", until)):
                if value is not None:
                    sql += f" AND {clause}"
                    args.append(value)
            rows = c.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
            return [_record(r) for r in rows]

        return await self._read(op)

    async def spend(self, owner: str, since: float, until: float) -> list[SpendRow]:
        def op(c: sqlite3.Connection) -> list[SpendRow]:
            rows = c.execute(
                "SELECT strftime('%Y-%m-%d', created_at, 'unixepoch') AS day, COALESCE(model, 'unknown') AS model, "
                "COUNT(*) AS requests, SUM(status IN ('FAILED','CANCELED')) AS failed, "
                "SUM(CASE WHEN status='COMPLETED' THEN COALESCE(cost, 0) ELSE 0 END) AS credits, "
                "SUM(CASE WHEN status IN ('IN_QUEUE','IN_PROGRESS') THEN COALESCE(cost, 0) ELSE 0 END) AS reserved "
                "FROM requests WHERE owner=? AND created_at>=? AND created_at<? "
                "GROUP BY day, model ORDER BY day, model",
                (owner, since, until)).fetchall()
            return [SpendRow(**dict(r)) for r in rows]

        return await self._run(op)

    async def unfinished(self, owner: str | None = None) -> list[RequestRecord]:
        def op(c: sqlite3.Connection) -> list[RequestRecord]:
            sql = "SELECT * FROM requests WHERE status NOT IN ('COMPLETED','FAILED','CANCELED')"
            args: tuple[Any, ...] = ()
            if owner is not None:
                sql += " AND owner=?"
                args = (owner,)
            return [_record(r) for r in c.execute(sql + " ORDER BY created_at", args).fetchall()]

        return await self._run(op)

    # ---------------------------------------------------------------- saved output files

    async def add_file(self, saved: SavedFile) -> None:
        await self._run(lambda c: c.execute(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)",
            (saved.owner, saved.request_id, saved.url, saved.path, saved.mime_type, saved.size_bytes, saved.sha256,
             saved.saved_at)))

    async def files_for(self, owner: str, request_id: str) -> list[SavedFile]:
        def op(c: sqlite3.Connection) -> list[SavedFile]:
            rows = c.execute("SELECT * FROM files WHERE owner=? AND request_id=? ORDER BY saved_at, rowid",
                             (owner, request_id)).fetchall()
            return [SavedFile(**dict(r)) for r in rows]

        return await self._run(op)

    # ---------------------------------------------------------------- privacy

    async def forget(self, owner: str | None, *, request_id: str | None = None,
                     before: float | None = None) -> Forgotten:
        def op(c: sqlite3.Connection) -> Forgotten:
            where: list[str] = ["status IN ('COMPLETED','FAILED','CANCELED')"]
            args: list[Any] = []
            if owner is not None:
                where.append("owner=?")
                args.append(owner)
            if request_id is not None:
                where.append("request_id=?")
                args.append(request_id)
            if before is not None:
                where.append("created_at<?")
                args.append(before)
            with _immediate(c):
                rows = c.execute("SELECT owner, request_id FROM requests WHERE " + " AND ".join(where),  # noqa: S608
                                 args).fetchall()
                pairs = [(r["owner"], r["request_id"]) for r in rows]
                files: list[SavedFile] = []
                for o, rid in pairs:
                    files += [SavedFile(**dict(f)) for f in c.execute(
                        "SELECT * FROM files WHERE owner=? AND request_id=?", (o, rid)).fetchall()]
                    c.execute("DELETE FROM files WHERE owner=? AND request_id=?", (o, rid))
                    c.execute("DELETE FROM tasks WHERE owner=? AND request_id=?", (o, rid))
                    c.execute("DELETE FROM intents WHERE owner=? AND request_id=?", (o, rid))
                    c.execute("DELETE FROM requests WHERE owner=? AND request_id=?", (o, rid))
            return Forgotten(request_ids=[rid for _, rid in pairs], files=files)

        return await self._run(op)

    # ---------------------------------------------------------------- tasks

    async def create_task(self, task: TaskRecord) -> None:
        await self._run(lambda c: c.execute(
            "INSERT INTO tasks VALUES (?,?,?,?,?)",
            (task.task_id, task.owner, task.request_id, task.created_at, task.cancelled_at)))

    async def get_task(self, task_id: str) -> TaskRecord | None:
        def op(c: sqlite3.Connection) -> TaskRecord | None:
            row = c.execute("SELECT * FROM tasks WHERE task_id=?", (task_id,)).fetchone()
            return TaskRecord(**dict(row)) if row else None

        return await self._read(op)

    async def cancel_task(self, task_id: str, when: float) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE tasks SET cancelled_at=COALESCE(cancelled_at, ?) WHERE task_id=?", (when, task_id)))

    # ---------------------------------------------------------------- coordination

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        def op(c: sqlite3.Connection) -> bool:
            now = time.time()
            cur = c.execute(
                "INSERT INTO leases VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, "
                "expires_at=excluded.expires_at WHERE leases.holder=excluded.holder OR leases.expires_at<?",
                (name, holder, now + ttl, now))
            return cur.rowcount == 1

        return await self._run(op)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._run(lambda c: c.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder)))

    async def heartbeat(self, holder: str, ttl: float) -> int:
        def op(c: sqlite3.Connection) -> int:
            now = time.time()
            c.execute("INSERT INTO leases VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, "
                      "expires_at=excluded.expires_at", (f"replica:{holder}", holder, now + ttl))
            row = c.execute("SELECT count(*) FROM leases WHERE name LIKE 'replica:%' AND expires_at>=?",
                            (now,)).fetchone()
            return max(1, int(row[0]))

        return await self._run(op)

    async def ping(self) -> None:
        """One round trip (readiness)."""
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    async def publish(self, owner: str, request_id: str) -> None:
        """In-process only: a SQLite store has no other processes to tell."""

    def subscribe(self, handler: ChangeHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


@contextlib.contextmanager
def _immediate(c: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``: no upgrade deadlock with a second writer);
    rolled back on any exception, the caller's cancellation included."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
        c.execute("COMMIT")  # inside: a failed commit (a full disk) must roll back too, not leave it open
    except BaseException:
        c.execute("ROLLBACK")
        raise


def _upsert(c: sqlite3.Connection, r: RequestRecord) -> None:
    c.execute(
        f"""INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
        ON CONFLICT(owner, request_id) DO UPDATE SET
          model=COALESCE(excluded.model, requests.model),
          input_json=COALESCE(excluded.input_json, requests.input_json),
          idempotency_key=COALESCE(excluded.idempotency_key, requests.idempotency_key),
          status=excluded.status, queue_position=excluded.queue_position, progress=excluded.progress,
          cost=COALESCE(excluded.cost, requests.cost), output_json=COALESCE(excluded.output_json, requests.output_json),
          error_json=COALESCE(excluded.error_json, requests.error_json), updated_at=excluded.updated_at,
          completed_at=COALESCE(excluded.completed_at, requests.completed_at)""",  # noqa: S608 - constant columns
        (
            r.request_id, r.owner, r.model, dumps_canonical(r.input), r.idempotency_key, r.status, r.queue_position,
            r.progress, r.cost, dumps_canonical(r.output),
            dumps_canonical(r.error.model_dump() if r.error else None),
            r.created_at, r.updated_at or time.time(), r.completed_at,
        ),
    )


def _record(row: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        request_id=row["request_id"],
        owner=row["owner"],
        model=row["model"],
        input=from_json(row["input_json"]) if row["input_json"] else None,
        idempotency_key=row["idempotency_key"],
        status=row["status"],
        queue_position=row["queue_position"],
        progress=row["progress"],
        cost=row["cost"],
        output=from_json(row["output_json"]) if row["output_json"] else None,
        error=GenerationError.model_validate(from_json(row["error_json"])) if row["error_json"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
    )


def _intent(row: sqlite3.Row) -> Intent:
    return Intent(
        owner=row["owner"],
        idempotency_key=row["idempotency_key"],
        model=row["model"],
        input=json.loads(row["input_json"]),
        input_hash=row["input_hash"],
        webhook_url=row["webhook_url"],
        request_id=row["request_id"],
        created_at=row["created_at"],
        cost=row["cost"],
    )
