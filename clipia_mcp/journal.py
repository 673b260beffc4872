"""The durable request journal (SQLite, WAL; every write off the event loop).

Two tables:

* ``intents``: one row per submit attempt, written *before* the API is called,
  keyed by (owner, idempotency key). If the process dies between the API
  accepting a submit and us recording its id, the intent is still there and
  can be replayed with the same key to recover the same ``request_id``
  without a second charge.
* ``requests``: one row per known request id, with its latest status/output.

Every row is scoped by ``owner``, a hash of the API key (never the key).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, Field

from clipia_mcp.models import TERMINAL_STATUSES, GenerationError

T = TypeVar("T")

SCHEMA = """
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
"""


class RequestRecord(BaseModel):
    """A request as the journal (and the tracker) knows it."""

    request_id: str
    owner: str
    model: str | None = None
    input: dict[str, Any] | None = None
    idempotency_key: str | None = None
    status: str
    queue_position: int | None = None
    progress: int | None = None
    logs: list[Any] = Field(default_factory=list)
    cost: int | None = None
    output: dict[str, Any] | None = None
    error: GenerationError | None = None
    created_at: float
    updated_at: float
    completed_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Intent(BaseModel):
    owner: str
    idempotency_key: str
    model: str
    input: dict[str, Any]
    input_hash: str
    webhook_url: str | None = None
    request_id: str | None = None
    created_at: float


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


class Journal:
    """Async facade over one SQLite connection; calls run in a worker thread, serialised by a lock."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path) if path is not None else ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        if path is not None:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"Journal(path={str(self.path) if self.path else ':memory:'!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await anyio.to_thread.run_sync(locked)

    # ------------------------------------------------------------------ intents

    async def add_intent(self, intent: Intent) -> None:
        def op(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT OR IGNORE INTO intents VALUES (?,?,?,?,?,?,?,?)",
                (intent.owner, intent.idempotency_key, intent.model, _dumps(intent.input), intent.input_hash,
                 intent.webhook_url, intent.request_id, intent.created_at),
            )

        await self._run(op)

    async def get_intent(self, owner: str, key: str) -> Intent | None:
        def op(c: sqlite3.Connection) -> Intent | None:
            row = c.execute("SELECT * FROM intents WHERE owner=? AND idempotency_key=?", (owner, key)).fetchone()
            return _intent(row) if row else None

        return await self._run(op)

    async def recent_same_input(self, owner: str, model: str, input_hash: str, since: float) -> Intent | None:
        """The newest intent for the same model and input at or after ``since``."""

        def op(c: sqlite3.Connection) -> Intent | None:
            row = c.execute(
                "SELECT * FROM intents WHERE owner=? AND model=? AND input_hash=? AND created_at>=? "
                "ORDER BY created_at DESC LIMIT 1",
                (owner, model, input_hash, since),
            ).fetchone()
            return _intent(row) if row else None

        return await self._run(op)

    async def pending_intents(self, since: float) -> list[Intent]:
        """Intents whose submit never recorded a request id (the process died mid-submit)."""

        def op(c: sqlite3.Connection) -> list[Intent]:
            rows = c.execute(
                "SELECT * FROM intents WHERE request_id IS NULL AND created_at>=? ORDER BY created_at", (since,)
            ).fetchall()
            return [_intent(r) for r in rows]

        return await self._run(op)

    async def drop_intent(self, owner: str, key: str) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM intents WHERE owner=? AND idempotency_key=? AND request_id IS NULL", (owner, key)
            )
        )

    # ------------------------------------------------------------------ requests

    async def record_submit(self, intent: Intent, record: RequestRecord) -> None:
        """Atomically link the intent to its request id and store the request."""

        def op(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute(
                    "UPDATE intents SET request_id=? WHERE owner=? AND idempotency_key=?",
                    (record.request_id, intent.owner, intent.idempotency_key),
                )
                _upsert(c, record)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

        await self._run(op)

    async def upsert(self, record: RequestRecord) -> None:
        await self._run(lambda c: _upsert(c, record))

    async def get(self, owner: str, request_id: str) -> RequestRecord | None:
        def op(c: sqlite3.Connection) -> RequestRecord | None:
            row = c.execute("SELECT * FROM requests WHERE owner=? AND request_id=?", (owner, request_id)).fetchone()
            return _record(row) if row else None

        return await self._run(op)

    async def list_recent(
        self, owner: str, *, status: str | None = None, limit: int = 20
    ) -> list[RequestRecord]:
        def op(c: sqlite3.Connection) -> list[RequestRecord]:
            if status:
                rows = c.execute(
                    "SELECT * FROM requests WHERE owner=? AND status=? ORDER BY created_at DESC LIMIT ?",
                    (owner, status, limit),
                ).fetchall()
            else:
                rows = c.execute(
                    "SELECT * FROM requests WHERE owner=? ORDER BY created_at DESC LIMIT ?", (owner, limit)
                ).fetchall()
            return [_record(r) for r in rows]

        return await self._run(op)

    async def unfinished(self) -> list[RequestRecord]:
        """Every non-terminal request, for every owner (resumed after a restart)."""

        def op(c: sqlite3.Connection) -> list[RequestRecord]:
            rows = c.execute(
                "SELECT * FROM requests WHERE status NOT IN ('COMPLETED','FAILED','CANCELED') ORDER BY created_at"
            ).fetchall()
            return [_record(r) for r in rows]

        return await self._run(op)


class TaskRecord(BaseModel):
    """An MCP task (tasks extension) bound to one Clipia request."""

    task_id: str
    owner: str
    request_id: str
    created_at: float
    cancelled_at: float | None = None


class TaskStore:
    """Tasks live in the journal so that any process (or a restarted one) can answer ``tasks/get``."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def create(self, task: TaskRecord) -> None:
        await self.journal._run(lambda c: c.execute(  # noqa: SLF001 - same connection and lock
            "INSERT INTO tasks VALUES (?,?,?,?,?)",
            (task.task_id, task.owner, task.request_id, task.created_at, task.cancelled_at)))

    async def get(self, task_id: str) -> TaskRecord | None:
        def op(c: sqlite3.Connection) -> TaskRecord | None:
            row = c.execute("SELECT * FROM tasks WHERE task_id=?", (task_id,)).fetchone()
            return TaskRecord(**dict(row)) if row else None

        return await self.journal._run(op)  # noqa: SLF001

    async def cancel(self, task_id: str, when: float) -> None:
        await self.journal._run(lambda c: c.execute(  # noqa: SLF001
            "UPDATE tasks SET cancelled_at=COALESCE(cancelled_at, ?) WHERE task_id=?", (when, task_id)))


def _upsert(c: sqlite3.Connection, r: RequestRecord) -> None:
    c.execute(
        """INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
        ON CONFLICT(owner, request_id) DO UPDATE SET
          model=COALESCE(excluded.model, requests.model),
          input_json=COALESCE(excluded.input_json, requests.input_json),
          idempotency_key=COALESCE(excluded.idempotency_key, requests.idempotency_key),
          status=excluded.status, queue_position=excluded.queue_position, progress=excluded.progress,
          cost=COALESCE(excluded.cost, requests.cost), output_json=COALESCE(excluded.output_json, requests.output_json),
          error_json=COALESCE(excluded.error_json, requests.error_json), updated_at=excluded.updated_at,
          completed_at=COALESCE(excluded.completed_at, requests.completed_at)""",
        (
            r.request_id, r.owner, r.model, _dumps(r.input), r.idempotency_key, r.status, r.queue_position,
            r.progress, r.cost, _dumps(r.output), _dumps(r.error.model_dump() if r.error else None),
            r.created_at, r.updated_at or time.time(), r.completed_at,
        ),
    )


def _record(row: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        request_id=row["request_id"],
        owner=row["owner"],
        model=row["model"],
        input=json.loads(row["input_json"]) if row["input_json"] else None,
        idempotency_key=row["idempotency_key"],
        status=row["status"],
        queue_position=row["queue_position"],
        progress=row["progress"],
        cost=row["cost"],
        output=json.loads(row["output_json"]) if row["output_json"] else None,
        error=GenerationError.model_validate(json.loads(row["error_json"])) if row["error_json"] else None,
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
    )
