"""The shared store: PostgreSQL through psycopg 3 and a connection pool, for N replicas.

Same tables and meaning as :mod:`clipia_mcp.store.sqlite`, with what only a server database gives:

* **versioned migrations** in ``schema_version``, applied at start under an advisory lock, so N
  replicas starting together migrate once and the others wait;
* **uniqueness by constraint**: ``claim_intent`` is ``INSERT … ON CONFLICT DO NOTHING`` then a
  ``SELECT`` – two replicas claiming the same key get the same row;
* **leases** with an expiry measured on the database's clock (replica clocks may drift): a
  replica that dies stops renewing and loses its leases when they expire;
* **change notification** with ``LISTEN``/``NOTIFY`` on one dedicated connection; a payload is
  ``{"o": owner, "r": request_id, "s": sender}`` and a store ignores its own.

Every database error becomes a :class:`~clipia_mcp.core.errors.StoreError`; the DSN's password
is registered as a secret (redacted from every message) and :meth:`PostgresStore.describe`
never shows it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from psycopg import AsyncConnection, Error, OperationalError, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from clipia_mcp.core import metrics
from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.records import GenerationError, Intent, RequestRecord, TaskRecord
from clipia_mcp.core.redaction import redact, register_secret
from clipia_mcp.store.base import ChangeHandler

log = logging.getLogger(__name__)
T = TypeVar("T")

#: NOTIFY channel carrying "request changed" between replicas.
CHANNEL = "clipia_mcp_changes"
#: Advisory lock key serialising migrations across replicas (an arbitrary constant: "clipiamc").
MIGRATION_LOCK = 0x636C69706961_6D63

#: Each entry upgrades the schema by one version; never edit a shipped entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: intents, requests, tasks, leases (same meaning as the SQLite journal's version 2).
    """
    CREATE TABLE intents (
        owner TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        model TEXT NOT NULL,
        input JSONB NOT NULL,
        input_hash TEXT NOT NULL,
        webhook_url TEXT,
        request_id TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (owner, idempotency_key)
    );
    CREATE INDEX intents_by_input ON intents (owner, model, input_hash, created_at);
    CREATE INDEX intents_pending ON intents (created_at) WHERE request_id IS NULL;
    CREATE TABLE requests (
        request_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        model TEXT,
        input JSONB,
        idempotency_key TEXT,
        status TEXT NOT NULL,
        queue_position INTEGER,
        progress INTEGER,
        cost INTEGER,
        output JSONB,
        error JSONB,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        completed_at DOUBLE PRECISION,
        PRIMARY KEY (owner, request_id)
    );
    CREATE INDEX requests_by_time ON requests (owner, created_at);
    CREATE INDEX requests_unfinished ON requests (created_at)
        WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELED');
    CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        cancelled_at DOUBLE PRECISION
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: the estimate of a submit (spend limits count it until the request's own cost is known).
    """
    ALTER TABLE intents ADD COLUMN cost INTEGER;
    CREATE INDEX intents_by_time ON intents (owner, created_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_REQUEST_COLUMNS = ("request_id, owner, model, input, idempotency_key, status, queue_position, progress, "
                    "cost, output, error, created_at, updated_at, completed_at")


def safe_dsn(dsn: str) -> str:
    """``dsn`` without its password: ``postgresql://user@host:port/dbname``."""
    try:
        parts = conninfo_to_dict(dsn)
    except Error:
        return "postgresql://[unparsable DSN]"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


async def migrate(conn: AsyncConnection[DictRow]) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` under the migration lock; returns the version it had."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        cur = await conn.execute("SELECT max(version) AS v FROM schema_version")
        row = await cur.fetchone()
        found = int(row["v"]) if row and row["v"] is not None else 0
        if found > SCHEMA_VERSION:
            raise StoreError(f"The database was written by a newer clipia-mcp (schema {found} > {SCHEMA_VERSION}).")
        for version in range(found, SCHEMA_VERSION):
            async with conn.transaction():
                await conn.execute(MIGRATIONS[version])
                await conn.execute("INSERT INTO schema_version VALUES (%s)", (version + 1,))
            log.info("store schema migrated to version %d", version + 1)
        return found
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


class PostgresStore:
    """:class:`~clipia_mcp.store.base.Store` on PostgreSQL; use as ``async with PostgresStore(dsn) as store``."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._safe = safe_dsn(dsn)
        try:
            password = conninfo_to_dict(dsn).get("password")
        except Error:
            password = None
        register_secret(str(password) if password else None)
        self._min_size, self._max_size, self._connect_timeout = min_size, max_size, connect_timeout
        self._pool: AsyncConnectionPool[AsyncConnection[DictRow]] | None = None
        self._handlers: list[ChangeHandler] = []
        self._tg: TaskGroup | None = None
        self._listening = anyio.Event()
        #: Identifies this store's notifications so it can ignore its own.
        self.sender = uuid.uuid4().hex[:16]

    def __repr__(self) -> str:
        return f"PostgresStore({self._safe!r})"

    def describe(self) -> str:
        return self._safe

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect, migrate, and start listening for other replicas' changes."""
        pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            self._dsn, min_size=self._min_size, max_size=self._max_size, open=False, timeout=self._connect_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": int(self._connect_timeout)},
            name="clipia-mcp")
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            async with pool.connection() as conn:
                await migrate(conn)
        except Error as exc:
            await pool.close()
            raise StoreError(f"Cannot open the store at {self._safe}: {_reason(exc)}") from None
        except Exception:
            await pool.close()
            raise
        self._pool = pool
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._listen)
        with anyio.move_on_after(self._connect_timeout):
            await self._listening.wait()

    async def aclose(self) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _run(self, fn: Callable[[AsyncConnection[DictRow]], Awaitable[T]]) -> T:
        """Run ``fn`` on a pooled connection; a connection the server dropped (a restart) is retried once.

        Every operation here is idempotent (upserts, ``ON CONFLICT``, deletes), so a retry is safe.
        """
        if self._pool is None:
            raise StoreError(f"The store at {self._safe} is not open.")
        started = time.monotonic()
        try:
            for attempt in (0, 1):
                try:
                    async with self._pool.connection() as conn:
                        return await fn(conn)
                except OperationalError:
                    if attempt == 1:
                        raise
            raise AssertionError("unreachable")
        except Error as exc:
            raise StoreError(f"The store at {self._safe} failed: {_reason(exc)}") from None
        except PoolTimeout:
            raise StoreError(f"The store at {self._safe} is unreachable (no connection within "
                             f"{self._connect_timeout:g} s).") from None
        finally:
            metrics.observe("clipia_mcp_store_seconds", time.monotonic() - started, backend="postgresql")

    async def _fetchone(self, query: str, args: Sequence[Any] = ()) -> DictRow | None:
        async def op(c: AsyncConnection[DictRow]) -> DictRow | None:
            cur = await c.execute(query, args)
            return await cur.fetchone()

        return await self._run(op)

    async def _fetchall(self, query: str, args: Sequence[Any] = ()) -> list[DictRow]:
        async def op(c: AsyncConnection[DictRow]) -> list[DictRow]:
            cur = await c.execute(query, args)
            return await cur.fetchall()

        return await self._run(op)

    async def _execute(self, query: str, args: Sequence[Any] = ()) -> int:
        async def op(c: AsyncConnection[DictRow]) -> int:
            cur = await c.execute(query, args)
            return cur.rowcount

        return await self._run(op)

    async def ping(self) -> None:
        """One round trip (readiness)."""
        await self._fetchone("SELECT 1 AS ok")

    # ---------------------------------------------------------------- intents

    async def claim_intent(self, intent: Intent) -> Intent:
        async def op(c: AsyncConnection[DictRow]) -> DictRow | None:
            await c.execute(
                "INSERT INTO intents (owner, idempotency_key, model, input, input_hash, webhook_url, request_id, "
                "created_at, cost) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (owner, idempotency_key) DO NOTHING",
                (intent.owner, intent.idempotency_key, intent.model, Jsonb(intent.input), intent.input_hash,
                 intent.webhook_url, intent.request_id, intent.created_at, intent.cost))
            cur = await c.execute("SELECT * FROM intents WHERE owner=%s AND idempotency_key=%s",
                                  (intent.owner, intent.idempotency_key))
            return await cur.fetchone()

        row = await self._run(op)
        if row is None:  # deleted between the two statements by a definite refusal: claim again
            return await self.claim_intent(intent)
        return _intent(row)

    async def get_intent(self, owner: str, key: str) -> Intent | None:
        row = await self._fetchone("SELECT * FROM intents WHERE owner=%s AND idempotency_key=%s", (owner, key))
        return _intent(row) if row else None

    async def recent_same_input(self, owner: str, model: str, input_hash: str, since: float) -> Intent | None:
        row = await self._fetchone(
            "SELECT * FROM intents WHERE owner=%s AND model=%s AND input_hash=%s AND created_at>=%s "
            "ORDER BY created_at DESC LIMIT 1", (owner, model, input_hash, since))
        return _intent(row) if row else None

    async def pending_intents(self, since: float, owner: str | None = None) -> list[Intent]:
        query = "SELECT * FROM intents WHERE request_id IS NULL AND created_at>=%s"
        args: tuple[Any, ...] = (since,)
        if owner is not None:
            query += " AND owner=%s"
            args += (owner,)
        return [_intent(r) for r in await self._fetchall(query + " ORDER BY created_at", args)]

    async def spent_since(self, owner: str, since: float) -> int:
        row = await self._fetchone(
            "SELECT COALESCE(SUM(CASE WHEN r.request_id IS NULL THEN COALESCE(i.cost, 0) "
            "WHEN r.status IN ('FAILED','CANCELED') THEN 0 ELSE COALESCE(r.cost, i.cost, 0) END), 0) AS spent "
            "FROM intents i LEFT JOIN requests r ON r.owner=i.owner AND r.request_id=i.request_id "
            "WHERE i.owner=%s AND i.created_at>=%s", (owner, since))
        return int(row["spent"]) if row else 0

    async def drop_intent(self, owner: str, key: str) -> None:
        await self._execute("DELETE FROM intents WHERE owner=%s AND idempotency_key=%s AND request_id IS NULL",
                            (owner, key))

    # ---------------------------------------------------------------- requests

    async def record_submit(self, intent: Intent, record: RequestRecord) -> None:
        async def op(c: AsyncConnection[DictRow]) -> None:
            async with c.transaction():
                await c.execute("UPDATE intents SET request_id=%s WHERE owner=%s AND idempotency_key=%s",
                                (record.request_id, intent.owner, intent.idempotency_key))
                await _upsert(c, record)

        await self._run(op)

    async def upsert(self, record: RequestRecord) -> None:
        await self._run(lambda c: _upsert(c, record))

    async def get(self, owner: str, request_id: str) -> RequestRecord | None:
        row = await self._fetchone("SELECT * FROM requests WHERE owner=%s AND request_id=%s", (owner, request_id))
        return _record(row) if row else None

    async def find(self, request_id: str) -> list[RequestRecord]:
        return [_record(r) for r in await self._fetchall("SELECT * FROM requests WHERE request_id=%s",
                                                         (request_id,))]

    async def list_recent(self, owner: str, *, status: str | None = None, limit: int = 20) -> list[RequestRecord]:
        query, args = "SELECT * FROM requests WHERE owner=%s", [owner]
        if status:
            query += " AND status=%s"
            args.append(status)
        rows = await self._fetchall(query + " ORDER BY created_at DESC LIMIT %s", (*args, limit))
        return [_record(r) for r in rows]

    async def unfinished(self, owner: str | None = None) -> list[RequestRecord]:
        query = "SELECT * FROM requests WHERE status NOT IN ('COMPLETED','FAILED','CANCELED')"
        args: tuple[Any, ...] = ()
        if owner is not None:
            query += " AND owner=%s"
            args = (owner,)
        return [_record(r) for r in await self._fetchall(query + " ORDER BY created_at", args)]

    # ---------------------------------------------------------------- tasks

    async def create_task(self, task: TaskRecord) -> None:
        await self._execute("INSERT INTO tasks VALUES (%s,%s,%s,%s,%s)",
                            (task.task_id, task.owner, task.request_id, task.created_at, task.cancelled_at))

    async def get_task(self, task_id: str) -> TaskRecord | None:
        row = await self._fetchone("SELECT * FROM tasks WHERE task_id=%s", (task_id,))
        return TaskRecord(**dict(row)) if row else None

    async def cancel_task(self, task_id: str, when: float) -> None:
        await self._execute("UPDATE tasks SET cancelled_at=COALESCE(cancelled_at, %s) WHERE task_id=%s",
                            (when, task_id))

    # ---------------------------------------------------------------- coordination

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        row = await self._fetchone(
            "INSERT INTO leases VALUES (%s, %s, extract(epoch from clock_timestamp()) + %s) "
            "ON CONFLICT (name) DO UPDATE SET holder=EXCLUDED.holder, expires_at=EXCLUDED.expires_at "
            "WHERE leases.holder=EXCLUDED.holder OR leases.expires_at < extract(epoch from clock_timestamp()) "
            "RETURNING holder",
            (name, holder, ttl))
        return row is not None

    async def release_lease(self, name: str, holder: str) -> None:
        await self._execute("DELETE FROM leases WHERE name=%s AND holder=%s", (name, holder))

    async def heartbeat(self, holder: str, ttl: float) -> int:
        async def op(c: AsyncConnection[DictRow]) -> DictRow | None:
            await c.execute(
                "INSERT INTO leases VALUES (%s, %s, extract(epoch from clock_timestamp()) + %s) "
                "ON CONFLICT (name) DO UPDATE SET holder=EXCLUDED.holder, expires_at=EXCLUDED.expires_at",
                ("replica:" + holder, holder, ttl))
            await c.execute("DELETE FROM leases WHERE expires_at < extract(epoch from clock_timestamp()) - 3600")
            cur = await c.execute("SELECT count(*) AS n FROM leases WHERE name LIKE 'replica:%%' "
                                  "AND expires_at >= extract(epoch from clock_timestamp())")
            return await cur.fetchone()

        row = await self._run(op)
        return max(1, int(row["n"])) if row else 1

    async def publish(self, owner: str, request_id: str) -> None:
        payload = json.dumps({"o": owner, "r": request_id, "s": self.sender}, separators=(",", ":"))
        await self._execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def subscribe(self, handler: ChangeHandler) -> Callable[[], None]:
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    async def _listen(self) -> None:
        """Hold one LISTEN connection; reconnect with backoff if the database goes away."""
        delay = 0.1
        while True:
            try:
                conn = await AsyncConnection.connect(self._dsn, autocommit=True,
                                                     connect_timeout=int(self._connect_timeout))
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self._listening.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        self._dispatch(note.payload)
            except Exception as exc:  # noqa: BLE001 - the listener outlives any database trouble
                log.warning("store notifications interrupted (%s); reconnecting in %.1f s", _reason(exc), delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _dispatch(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            owner, request_id, sender = str(data["o"]), str(data["r"]), data.get("s")
        except (ValueError, KeyError, TypeError):
            return
        if sender == self.sender or self._tg is None:
            return
        for handler in list(self._handlers):
            self._tg.start_soon(_call, handler, owner, request_id)


async def _call(handler: ChangeHandler, owner: str, request_id: str) -> None:
    try:
        await handler(owner, request_id)
    except Exception:  # noqa: BLE001 - a broken handler must not end the listener
        log.exception("store change handler failed")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0][:200])


async def _upsert(c: AsyncConnection[DictRow], r: RequestRecord) -> None:
    await c.execute(
        f"""INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
        ON CONFLICT (owner, request_id) DO UPDATE SET
          model=COALESCE(EXCLUDED.model, requests.model),
          input=COALESCE(EXCLUDED.input, requests.input),
          idempotency_key=COALESCE(EXCLUDED.idempotency_key, requests.idempotency_key),
          status=EXCLUDED.status, queue_position=EXCLUDED.queue_position, progress=EXCLUDED.progress,
          cost=COALESCE(EXCLUDED.cost, requests.cost), output=COALESCE(EXCLUDED.output, requests.output),
          error=COALESCE(EXCLUDED.error, requests.error), updated_at=EXCLUDED.updated_at,
          completed_at=COALESCE(EXCLUDED.completed_at, requests.completed_at)""",  # noqa: S608 - constant columns
        (
            r.request_id, r.owner, r.model, _json(r.input), r.idempotency_key, r.status, r.queue_position,
            r.progress, r.cost, _json(r.output), _json(r.error.model_dump() if r.error else None),
            r.created_at, r.updated_at or time.time(), r.completed_at,
        ),
    )


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _record(row: DictRow) -> RequestRecord:
    return RequestRecord(
        request_id=row["request_id"], owner=row["owner"], model=row["model"], input=row["input"],
        idempotency_key=row["idempotency_key"], status=row["status"], queue_position=row["queue_position"],
        progress=row["progress"], cost=row["cost"], output=row["output"],
        error=GenerationError.model_validate(row["error"]) if row["error"] else None,
        created_at=row["created_at"], updated_at=row["updated_at"], completed_at=row["completed_at"],
    )


def _intent(row: DictRow) -> Intent:
    return Intent(
        owner=row["owner"], idempotency_key=row["idempotency_key"], model=row["model"], input=row["input"],
        input_hash=row["input_hash"], webhook_url=row["webhook_url"], request_id=row["request_id"],
        created_at=row["created_at"], cost=row.get("cost"),
    )
