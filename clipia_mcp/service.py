"""What the tools do, independent of MCP: submit with dedup, status, results, waits, catalogue.

Flow of a call: tool (:mod:`clipia_mcp.tools`) → :class:`ClipiaService` →
journal/tracker → :class:`~clipia_mcp.client.ClipiaClient`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio

from clipia_mcp import constants as C
from clipia_mcp.client import ClipiaClient, QueueClient
from clipia_mcp.config import Settings
from clipia_mcp.errors import ClipiaMcpError, InvalidInputError, NotFoundError, NotTrackedError
from clipia_mcp.journal import Intent, Journal, RequestRecord
from clipia_mcp.models import InputWarning, SubmitResponse
from clipia_mcp.reka import REKA_CATALOGUE_ENTRY, RekaClient, check_input, is_reka
from clipia_mcp.tracker import Tracked, Tracker, UpdateCallback

log = logging.getLogger(__name__)
IDEMPOTENCY_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Caller:
    """Who is calling: their API client and the owner id (a hash of their key) that scopes their data."""

    client: ClipiaClient
    owner: str
    sandbox: bool = False
    #: True when several tenants share one Clipia key: then only ids this tenant submitted are visible,
    #: because the API itself would show any of the key's requests to every tenant.
    shared_key: bool = False
    #: Reka Vision clip generation, when REKA_API_KEY (or the sandbox) provides it.
    reka: RekaClient | None = None

    def client_for(self, model: str | None) -> QueueClient:
        """The provider serving ``model`` (Clipia unless it is a ``reka/…`` model)."""
        if is_reka(model):
            if self.reka is None:
                raise InvalidInputError("reka/clips needs REKA_API_KEY (Reka Vision clip generation is not set up).")
            return self.reka
        return self.client


@dataclass(frozen=True)
class Submitted:
    record: RequestRecord
    warnings: list[InputWarning]
    deduplicated: bool
    idempotency_key: str


def input_hash(model: str, data: dict[str, Any], webhook_url: str | None) -> str:
    canon = json.dumps([model, data, webhook_url], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


class ClipiaService:
    """The operations behind the MCP tools and resources."""

    def __init__(self, settings: Settings, journal: Journal, tracker: Tracker,
                 webhook_url: str | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.tracker = tracker
        self.webhook_url = webhook_url
        self._submit_locks: dict[tuple[str, str], anyio.Lock] = {}

    # ------------------------------------------------------------------ submit

    async def submit(self, caller: Caller, model: str, data: dict[str, Any], *,
                     webhook_url: str | None = None, idempotency_key: str | None = None) -> Submitted:
        """Submit once per logical request: same key (or same input within the window) → same request."""
        hook = webhook_url or self.webhook_url
        digest = input_hash(model, data, hook)
        lock_key = (caller.owner, idempotency_key or digest)
        lock = self._submit_locks.setdefault(lock_key, anyio.Lock())
        try:
            async with lock:
                return await self._submit_locked(caller, model, data, hook, digest, idempotency_key)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._submit_locks.pop(lock_key, None)

    async def _submit_locked(self, caller: Caller, model: str, data: dict[str, Any], hook: str | None,
                             digest: str, idempotency_key: str | None) -> Submitted:
        if is_reka(model):
            check_input(data)
            caller.client_for(model)  # fail fast when Reka is not configured
            hook = None  # Reka has no webhooks
        now = time.time()
        intent: Intent | None = None
        if idempotency_key is not None:
            intent = await self.journal.get_intent(caller.owner, idempotency_key)
            if intent is not None and (intent.model != model or intent.input_hash != digest):
                raise ClipiaMcpError(
                    "This idempotency_key was already used with a different model or input. "
                    "Use a new key for a new generation.", code="idempotency_key_reuse")
            if intent is not None and intent.created_at < now - IDEMPOTENCY_TTL:
                intent = None
        elif self.settings.dedup_window > 0:
            intent = await self.journal.recent_same_input(caller.owner, model, digest,
                                                          now - self.settings.dedup_window)
        if intent is not None and intent.request_id is not None:
            record = await self.journal.get(caller.owner, intent.request_id)
            if record is not None:
                self.tracker.track(caller.client_for(record.model), record)
                return Submitted(record, [], True, intent.idempotency_key)
        if intent is None:
            intent = Intent(owner=caller.owner, idempotency_key=idempotency_key or str(uuid.uuid4()),
                            model=model, input=data, input_hash=digest, webhook_url=hook, created_at=now)
            await self.journal.add_intent(intent)  # durable before the paid call
        try:
            response = await caller.client_for(model).submit(model, data, webhook_url=hook,
                                                             idempotency_key=intent.idempotency_key)
        except ClipiaMcpError as exc:
            if not exc.transient:
                # Definitely not created (4xx): forget the intent so the key is reusable.
                await self.journal.drop_intent(caller.owner, intent.idempotency_key)
            raise
        record = self._record_from_submit(caller, model, data, intent.idempotency_key, response)
        await self.journal.record_submit(intent, record)
        self.tracker.track(caller.client_for(model), record)
        return Submitted(record, response.warnings, False, intent.idempotency_key)

    @staticmethod
    def _record_from_submit(caller: Caller, model: str, data: dict[str, Any], key: str,
                            response: SubmitResponse) -> RequestRecord:
        now = time.time()
        return RequestRecord(
            request_id=response.request_id, owner=caller.owner, model=model, input=data, idempotency_key=key,
            status=response.status, queue_position=response.queue_position, cost=response.cost,
            created_at=now, updated_at=now,
        )

    async def recover(self, caller: Caller) -> int:
        """Finish what a previous process left: replay intents without a request id, resume unfinished requests."""
        recovered = 0
        for intent in await self.journal.pending_intents(time.time() - IDEMPOTENCY_TTL):
            if intent.owner != caller.owner:
                continue
            if is_reka(intent.model):
                continue  # Reka has no idempotency keys: replaying could create a second job
            try:
                response = await caller.client.submit(intent.model, intent.input, webhook_url=intent.webhook_url,
                                                      idempotency_key=intent.idempotency_key)
            except ClipiaMcpError as exc:
                log.warning("could not recover submit %s: %s", intent.idempotency_key[:8], exc.code)
                if not exc.transient:
                    await self.journal.drop_intent(intent.owner, intent.idempotency_key)
                continue
            record = self._record_from_submit(caller, intent.model, intent.input, intent.idempotency_key, response)
            await self.journal.record_submit(intent, record)
            recovered += 1
        for record in await self.journal.unfinished():
            if record.owner == caller.owner and (caller.reka is not None or not is_reka(record.model)):
                self.tracker.track(caller.client_for(record.model), record)
        return recovered

    # ------------------------------------------------------------------ status and results

    async def tracked(self, caller: Caller, request_id: str) -> Tracked:
        """The tracker entry for a request, loading it from the journal or the API ("seen") if needed."""
        item = self.tracker.get(caller.owner, request_id)
        if item is not None:
            return item
        record = await self.journal.get(caller.owner, request_id)
        if record is None and caller.shared_key:
            raise NotTrackedError(
                f"Request {request_id} was not found for this caller. Check the id, or call list_requests.",
                request_id=request_id)
        if record is None:
            try:
                status = await caller.client.status(request_id)
            except NotFoundError:
                raise NotTrackedError(
                    f"Request {request_id} was not found for this API key. Check the id, or call list_requests.",
                    request_id=request_id) from None
            now = time.time()
            record = RequestRecord(request_id=request_id, owner=caller.owner, status=status.status,
                                   queue_position=status.queue_position, progress=status.progress,
                                   logs=status.logs, created_at=now, updated_at=now)
            await self.journal.upsert(record)
        return self.tracker.track(caller.client_for(record.model), record)

    async def status(self, caller: Caller, request_id: str) -> RequestRecord:
        """Fresh status: one shared upstream poll unless the request is terminal or was just polled."""
        item = await self.tracked(caller, request_id)
        if item.record.terminal:
            return item.record
        if time.monotonic() - item.last_poll < self.tracker.min_interval:
            return item.record
        return await self._poll(item)

    async def _poll(self, item: Tracked) -> RequestRecord:
        try:
            return await self.tracker.poll_once(item)
        except ClipiaMcpError as exc:
            if exc.request_id is None:
                exc.request_id = item.record.request_id
            raise

    async def result(self, caller: Caller, request_id: str) -> RequestRecord:
        item = await self.tracked(caller, request_id)
        if item.record.terminal and (item.record.output is not None or item.record.status != "COMPLETED"):
            return item.record
        return await self._poll(item)

    async def wait(self, caller: Caller, request_id: str, timeout: float,
                   on_update: UpdateCallback | None = None, heartbeat: float = C.HEARTBEAT_INTERVAL) -> RequestRecord:
        # No poll of our own here: the request's shared loop polls (within the budget), and a
        # webhook can end the wait at once; a private first look could queue behind the budget.
        item = await self.tracked(caller, request_id)
        return await self.tracker.wait(item, timeout, on_update, heartbeat)

    async def delete_clip(self, caller: Caller, request_id: str, delete_input_video: bool) -> None:
        """Delete a finished Reka clip job this caller created (Reka only deletes completed or failed jobs)."""
        record = await self.journal.get(caller.owner, request_id)
        if record is None or not is_reka(record.model):
            raise NotTrackedError(f"No Reka clip job {request_id} was created by this caller.", request_id=request_id)
        reka = caller.client_for(record.model)
        assert isinstance(reka, RekaClient)
        await reka.delete(request_id, delete_input_video=delete_input_video)

    async def list_requests(self, caller: Caller, status: str | None, limit: int) -> list[RequestRecord]:
        return await self.journal.list_recent(caller.owner, status=status, limit=limit)

    # ------------------------------------------------------------------ catalogue and account

    async def list_models(self, caller: Caller) -> list[dict[str, Any]]:
        models = await caller.client.list_models()
        return [*models, REKA_CATALOGUE_ENTRY] if caller.reka is not None else models

    async def get_model(self, caller: Caller, slug: str) -> dict[str, Any]:
        if is_reka(slug):
            caller.client_for(slug)
            return REKA_CATALOGUE_ENTRY
        return await caller.client.get_model(slug)

    async def estimate(self, caller: Caller, slug: str, data: dict[str, Any]) -> tuple[int, list[InputWarning]]:
        if is_reka(slug):
            raise InvalidInputError("Reka clip jobs are not priced in Clipia credits (Reka meters them itself).")
        res = await caller.client.estimate(slug, data)
        return res.credits, res.warnings

    async def balance(self, caller: Caller) -> tuple[str | None, int | None, int | None, int | None]:
        acc = await caller.client.account()
        credits = acc.balance.get("credits")
        return (acc.account_id, credits if isinstance(credits, int) else None,
                _int(acc.usage_30d.get("requests")), _int(acc.usage_30d.get("credits_spent")))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
