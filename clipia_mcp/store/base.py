"""The store seam: everything that must survive a restart or be shared between replicas.

One protocol, two backends: :mod:`clipia_mcp.store.sqlite` (embedded, one process) and, for
replicas, a PostgreSQL backend behind the same methods. Every row is scoped by ``owner`` (a hash
of the caller's credential, never the credential). The methods are shaped for what the engine
needs across processes:

* **uniqueness by constraint** – :meth:`Store.claim_intent` inserts an intent or returns the one
  already there, atomically, so two concurrent identical submits see one intent;
* **leases** – :meth:`Store.acquire_lease` gives one holder the right to poll a request for a
  while (single-flight across processes);
* **change notification** – :meth:`Store.publish` / :meth:`Store.subscribe` carry "request X
  changed" between processes (in-process for SQLite).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from clipia_mcp.core.records import Intent, RequestRecord, TaskRecord

#: Called with (owner, request_id) when another holder of the same store reports a change.
ChangeHandler = Callable[[str, str], Awaitable[None]]


class Store(Protocol):
    """Durable state of the server. Implementations raise :class:`~clipia_mcp.core.errors.StoreError`."""

    # ---------------------------------------------------------------- intents (before a paid call)

    async def claim_intent(self, intent: Intent) -> Intent:
        """Insert ``intent`` unless (owner, idempotency_key) exists; return the row that is stored."""
        ...

    async def get_intent(self, owner: str, key: str) -> Intent | None:
        """The intent for this caller's idempotency key, if any."""
        ...

    async def recent_same_input(self, owner: str, model: str, input_hash: str, since: float) -> Intent | None:
        """The newest intent for the same model and input created at or after ``since``."""
        ...

    async def pending_intents(self, since: float, owner: str | None = None) -> list[Intent]:
        """Intents without a request id (outcome unknown), oldest first; all owners when ``owner`` is None."""
        ...

    async def spent_since(self, owner: str, since: float) -> int:
        """Credits ``owner``'s submits created at or after ``since`` reserved: each request's cost (0 once it
        FAILED or was CANCELED: refunded), or the intent's estimate while its outcome is unknown."""
        ...

    async def drop_intent(self, owner: str, key: str) -> None:
        """Forget an intent whose submit definitely created nothing (a 4xx)."""
        ...

    # ---------------------------------------------------------------- requests

    async def record_submit(self, intent: Intent, record: RequestRecord) -> None:
        """Atomically link the intent to its request id and store the request."""
        ...

    async def upsert(self, record: RequestRecord) -> None:
        """Insert or update a request (null fields keep their stored value)."""
        ...

    async def get(self, owner: str, request_id: str) -> RequestRecord | None:
        """One request of one owner."""
        ...

    async def find(self, request_id: str) -> list[RequestRecord]:
        """Every owner's copy of a request (a webhook delivery names only the request id)."""
        ...

    async def list_recent(self, owner: str, *, status: str | None = None, limit: int = 20) -> list[RequestRecord]:
        """An owner's requests, newest first."""
        ...

    async def unfinished(self, owner: str | None = None) -> list[RequestRecord]:
        """Non-terminal requests (of one owner, or of all), oldest first."""
        ...

    # ---------------------------------------------------------------- tasks

    async def create_task(self, task: TaskRecord) -> None:
        """Store a new task (its id is unguessable and unique)."""
        ...

    async def get_task(self, task_id: str) -> TaskRecord | None:
        """A task by id (the caller checks the owner)."""
        ...

    async def cancel_task(self, task_id: str, when: float) -> None:
        """Record a cancellation; a task that is already cancelled keeps its first time."""
        ...

    # ---------------------------------------------------------------- cross-process coordination

    async def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder's lease is live."""
        ...

    async def release_lease(self, name: str, holder: str) -> None:
        """Give a lease back early (no-op unless ``holder`` holds it)."""
        ...

    async def heartbeat(self, holder: str, ttl: float) -> int:
        """Say ``holder`` (a replica) is alive for ``ttl`` s; returns how many replicas are alive (at least 1)."""
        ...

    async def publish(self, owner: str, request_id: str) -> None:
        """Tell every other subscriber of this store that a request changed."""
        ...

    def subscribe(self, handler: ChangeHandler) -> Callable[[], None]:
        """Call ``handler`` for changes published by others; returns an unsubscribe function."""
        ...

    # ---------------------------------------------------------------- lifecycle

    async def ping(self) -> None:
        """One round trip to the data (readiness checks); raises StoreError when unreachable."""
        ...

    def describe(self) -> str:
        """Where the data lives, for logs and ``doctor`` (never a password)."""
        ...

    async def aclose(self) -> None:
        """Close connections."""
        ...

