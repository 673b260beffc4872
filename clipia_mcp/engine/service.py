"""The one entry to the engine: what tools, tasks, resources and webhooks do, independent of MCP.

Flow of a call: an MCP tool → :class:`QueueService` → store / tracker → a provider client.
Nothing above the engine touches the store or the tracker directly.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from anyio.abc import TaskGroup

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import (
    ClipiaMcpError,
    InvalidInputError,
    NotFoundError,
    NotTrackedError,
    StoreError,
    SubmitPending,
)
from clipia_mcp.core.jsonutil import canonical_hash
from clipia_mcp.core.records import Forgotten, Intent, RequestRecord, SpendRow, TaskRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.core.upstream import InputWarning, SubmitResponse
from clipia_mcp.engine.admission import Admission, AdmissionExpired, Admissions
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.spend import SpendLimits
from clipia_mcp.engine.tracker import ChangeListener, Tracked, Tracker, UpdateCallback
from clipia_mcp.engine.webhook_events import record_from_delivery
from clipia_mcp.providers.registry import spec_for
from clipia_mcp.store.base import Store

log = logging.getLogger(__name__)
IDEMPOTENCY_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Submitted:
    """What a submit produced: the request, the API's input warnings, and whether it was a repeat."""

    record: RequestRecord
    warnings: list[InputWarning]
    deduplicated: bool
    idempotency_key: str


@dataclass(frozen=True)
class Balance:
    """The account's balance and the key's 30-day usage (None where the API did not say)."""

    account_id: str | None
    credits: int | None
    requests_30d: int | None
    credits_spent_30d: int | None


@dataclass(eq=False)
class _Flight:
    """One intent's send: queued for admission, then in flight, then done (result or error)."""

    key: str
    admission: Admission
    done: anyio.Event = field(default_factory=anyio.Event)
    sent: bool = False
    joined: bool = False
    result: Submitted | None = None
    error: ClipiaMcpError | None = None
    inline: tuple[Caller, Intent] | None = None


def input_hash(model: str, data: dict[str, Any], webhook_url: str | None) -> str:
    """The identity of a submit for deduplication without a key."""
    return canonical_hash([model, data, webhook_url])


class QueueService:
    """The operations behind the MCP tools, resources, tasks and the webhook receiver."""

    def __init__(self, settings: Settings, store: Store, tracker: Tracker, webhook_url: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.tracker = tracker
        self.webhook_url = webhook_url
        self._submit_locks: dict[tuple[str, str], anyio.Lock] = {}
        self.spend = SpendLimits(settings, store)
        self._flights: dict[tuple[str, str], _Flight] = {}
        #: (owner, model, input hash) -> the key of a submit without an idempotency_key whose caller heard
        #: submit_pending: its next same-input retry gets that request, resolved or not, whatever the dedup window.
        self._told_pending: dict[tuple[str, str, str], str] = {}
        self.admission = Admissions()
        self._catalogue: dict[int, tuple[object, float, list[dict[str, Any]]]] = {}
        self._catalogue_lock = anyio.Lock()
        self._to_confirm: list[Tracked] = []
        self._tg: TaskGroup | None = None

    def bind(self, tg: TaskGroup) -> None:
        """The task group background work (polls, submit resolution) lives in."""
        self._tg = tg
        self.tracker.bind(tg)

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(record)`` after every stored change of a request."""
        self.tracker.add_listener(listener)

    # ------------------------------------------------------------------ submit

    async def submit(self, caller: Caller, model: str, data: dict[str, Any], *,
                     webhook_url: str | None = None, idempotency_key: str | None = None,
                     new_variation: bool = False) -> Submitted:
        """Submit once per logical request: same key (or same input within the window) → same request.

        ``new_variation`` asks for another generation of the same input on purpose: it skips the
        same-input deduplication (an ``idempotency_key`` still deduplicates its own retries), and later
        plain repeats of that input deduplicate to the newest variation.

        The submit waits its turn in the key's :class:`~clipia_mcp.engine.admission.Admission` queue.
        A submit still queued, or whose outcome is unknown, when the call's deadline passes raises
        :class:`SubmitPending`; its intent stays, keeps deduplicating, and is sent / resolved in the
        background — a later identical call joins it.
        """
        deadline_at = time.monotonic() + self.settings.call_deadline
        provider = caller.provider_for(model)
        provider.check_input(model, data)
        server_hook = self.webhook_url if caller.server_webhooks else None  # see Caller.server_webhooks
        hook = (webhook_url or server_hook) if provider.capabilities.webhooks else None
        if webhook_url and not provider.capabilities.webhooks:
            raise InvalidInputError(f"{model} does not support webhooks; drop webhook_url.")
        digest = input_hash(model, data, hook)
        lock_key = (caller.owner, idempotency_key or digest)
        lock = self._submit_locks.setdefault(lock_key, anyio.Lock())
        try:
            async with lock:
                dedups = idempotency_key or (self.settings.dedup_window > 0 and not new_variation)
                if self.tracker.shared and dedups:
                    found: Submitted | _Flight = await self._submit_leased(
                        caller, model, data, hook, digest, idempotency_key, deadline_at, new_variation)
                else:
                    found = await self._submit_locked(caller, model, data, hook, digest, idempotency_key,
                                                      new_variation)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._submit_locks.pop(lock_key, None)
        try:
            result = found if isinstance(found, Submitted) else await self._await_flight(found, deadline_at)
        except SubmitPending:
            if idempotency_key is None and not isinstance(found, Submitted):
                self._remember_pending((caller.owner, model, digest), found.key)
            raise
        # Tenants on a shared key get their own namespace upstream; the agent always sees its own key.
        return replace(result, idempotency_key=idempotency_key or result.idempotency_key)

    async def _find_own_intent(self, caller: Caller, model: str, digest: str,
                               idempotency_key: str | None, new_variation: bool = False) -> Intent | None:
        """The caller's intent for this submit, by its upstream (namespaced) key or the key it was shown."""
        key = caller.upstream_idempotency_key(idempotency_key) if idempotency_key is not None else None
        intent = await self._find_intent(caller, model, digest, key, new_variation)
        if intent is None and idempotency_key is not None and key != idempotency_key:
            # A key this server showed the tenant (its stored form) passed back: only the tenant's own intents match.
            intent = await self._find_intent(caller, model, digest, idempotency_key, new_variation)
        return intent

    async def _find_intent(self, caller: Caller, model: str, digest: str, key: str | None,
                           new_variation: bool = False) -> Intent | None:
        now = time.time()
        if key is not None:
            intent = await self.store.get_intent(caller.owner, key)
            if intent is not None and (intent.model != model or intent.input_hash != digest):
                raise ClipiaMcpError(
                    "This idempotency_key was already used with a different model or input. "
                    "Use a new key for a new generation.", code="idempotency_key_reuse")
            if intent is not None and intent.created_at < now - IDEMPOTENCY_TTL:
                return None
            return intent
        if new_variation:
            return None  # asked for on purpose: the same input may run again
        told = self._told_pending.get((caller.owner, model, digest))
        if told is not None:  # the retry submit_pending asked for: the same request, even once it is resolved
            intent = await self.store.get_intent(caller.owner, told)
            if intent is None or intent.request_id is not None:
                self._told_pending.pop((caller.owner, model, digest), None)  # answered once; then as usual
            if intent is not None and intent.created_at >= now - IDEMPOTENCY_TTL:
                return intent
        if self.settings.dedup_window > 0:
            intent = await self.store.recent_same_input(caller.owner, model, digest,
                                                        now - self.settings.dedup_window)
            if intent is not None:
                return intent
        # A submit whose outcome is still unknown deduplicates for as long as the API keeps its key.
        for pending in await self.store.pending_intents(now - IDEMPOTENCY_TTL, caller.owner):
            if pending.model == model and pending.input_hash == digest:
                return pending
        return None

    async def _submit_leased(self, caller: Caller, model: str, data: dict[str, Any], hook: str | None,
                             digest: str, idempotency_key: str | None, deadline_at: float,
                             new_variation: bool = False) -> Submitted:
        """The cross-replica form of the submit lock: a lease row per (owner, key or input).

        The replica that takes the lease submits; the others wait for its request id (they find its
        intent once linked) instead of submitting. A holder that dies loses the lease after its TTL;
        the next one finds the intent still pending and replays it with the same idempotency key.
        """
        name = f"submit:{caller.owner}:{idempotency_key or digest}"
        holder = self.tracker.replica_id
        deadline = self.settings.call_deadline
        ttl = deadline + 5.0
        delay = 0.02
        with anyio.move_on_after(deadline):
            while not await self.store.acquire_lease(name, holder, ttl):
                intent = await self._find_own_intent(caller, model, digest, idempotency_key, new_variation)
                if intent is not None and intent.request_id is not None:
                    record = await self.store.get(caller.owner, intent.request_id)
                    if record is not None:  # the winner's request: ours too, nothing paid twice
                        self.tracker.track(caller.provider_for(record.model), record)
                        return Submitted(record, [], True, intent.idempotency_key)
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.25)
            try:
                found = await self._submit_locked(caller, model, data, hook, digest, idempotency_key, new_variation)
                # The lease is held until the send's outcome is known (or the deadline passes).
                return found if isinstance(found, Submitted) else await self._await_flight(found, deadline_at)
            finally:
                with anyio.CancelScope(shield=True):
                    await self.store.release_lease(name, holder)
        raise SubmitPending(
            f"An identical submit is in flight on another replica and did not finish within {deadline:g} s; "
            "call submit_generation again with the same arguments (or list_requests) shortly.")

    async def _submit_locked(self, caller: Caller, model: str, data: dict[str, Any], hook: str | None,
                             digest: str, idempotency_key: str | None, new_variation: bool = False
                             ) -> Submitted | _Flight:
        key = caller.upstream_idempotency_key(idempotency_key) if idempotency_key is not None else None
        intent = await self._find_own_intent(caller, model, digest, idempotency_key, new_variation)
        if intent is not None and intent.request_id is not None:
            record = await self.store.get(caller.owner, intent.request_id)
            if record is not None:
                self.tracker.track(caller.provider_for(record.model), record)
                return Submitted(record, [], True, idempotency_key or intent.idempotency_key)
        if intent is None:
            now = time.time()
            async with self.spend.reserve(caller, model, data, now) as estimate:  # spend limits, before paying
                intent = await self.store.claim_intent(Intent(
                    owner=caller.owner, idempotency_key=key or str(uuid.uuid4()), model=model, input=data,
                    input_hash=digest, webhook_url=hook, created_at=now, cost=estimate))  # durable before paying
        return self._send(caller, intent)

    def _remember_pending(self, submit: tuple[str, str, str], key: str) -> None:
        self._told_pending[submit] = key
        while len(self._told_pending) > C.TOLD_PENDING_MAX:
            self._told_pending.pop(next(iter(self._told_pending)))

    def _send(self, caller: Caller, intent: Intent) -> _Flight:
        """The intent's send in flight: joined if one is already queued or running, else started."""
        key = (intent.owner, intent.idempotency_key)
        flight = self._flights.get(key)
        if flight is not None:
            flight.joined = True
            return flight
        flight = _Flight(intent.idempotency_key, self.admission.for_client(caller.provider_for(intent.model)))
        self._flights[key] = flight
        if self._tg is not None:
            self._tg.start_soon(self._fly, caller, intent, flight)
        else:
            flight.inline = (caller, intent)
        return flight

    async def _await_flight(self, flight: _Flight, deadline_at: float) -> Submitted:
        """The flight's outcome, or :class:`SubmitPending` if it is not known by ``deadline_at``."""
        joined = flight.joined
        if flight.inline is not None:  # no task group (embedded use): send within the call itself
            caller, intent = flight.inline
            flight.inline = None
            with anyio.move_on_after(max(0.0, deadline_at - time.monotonic())):
                await self._fly(caller, intent, flight)
        with anyio.move_on_after(max(0.0, deadline_at - time.monotonic())):
            await flight.done.wait()
        if not flight.done.is_set() or (flight.result is None and flight.error is None):  # (inline: cut short)
            queued = not flight.sent
            wait = flight.admission.estimated_wait() if queued else None
            state = (f"queued for this key's submit admission ({flight.admission.queued} waiting: the account's "
                     "rate limit and connection pool set the pace); it is sent when its turn comes"
                     if queued else "sent, the API has not answered yet")
            raise SubmitPending(
                f"The submit is {state}. It is recorded under idempotency_key {flight.key!r} and will not be paid "
                "twice: call submit_generation again with the same arguments (or list_requests) shortly.",
                retry_after=round(min(wait, 60.0), 1) if wait else None)
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return replace(flight.result, deduplicated=True) if joined else flight.result

    async def _fly(self, caller: Caller, intent: Intent, flight: _Flight) -> None:
        """Queue for admission, send, record; every outcome lands in ``flight`` (never raises)."""
        provider = caller.provider_for(intent.model)
        try:
            try:
                expires_in = intent.created_at + self.settings.submit_queue_ttl - time.time()
                async with flight.admission.slot(expires_in):
                    flight.sent = True
                    outcome = await provider.submit(intent.model, intent.input, webhook_url=intent.webhook_url,
                                                    idempotency_key=intent.idempotency_key)
            except AdmissionExpired:
                await self.store.drop_intent(intent.owner, intent.idempotency_key)  # never sent: nothing to pay
                flight.error = ClipiaMcpError(
                    f"The queued submit expired after {self.settings.submit_queue_ttl:g} s before its turn came; "
                    "it was never sent and nothing was charged. Submit again.", code="deadline_exceeded")
                return
            except ClipiaMcpError as exc:
                if not exc.transient or not provider.capabilities.idempotency_keys:
                    # Definitely not created (4xx), or not replayable: forget the intent so the key is reusable.
                    await self.store.drop_intent(intent.owner, intent.idempotency_key)
                    flight.error = exc
                    return
                self._resolve_later(caller, intent)
                flight.error = SubmitPending(
                    f"The submit's outcome is not known yet ({exc.code}: {exc.message}). It is recorded under "
                    f"idempotency_key {intent.idempotency_key!r} and will be resolved without paying twice: call "
                    "submit_generation again with the same arguments (or list_requests) shortly.",
                    retry_after=exc.retry_after)
                return
            record = self._record_from_submit(caller, intent, outcome)
            try:
                await self.store.record_submit(intent, record)
            except StoreError as exc:
                # Paid, but not journaled: the intent still deduplicates it; say which request it is.
                self.tracker.track(provider, record, webhook=self._notifies_us(intent))
                flight.error = StoreError(
                    f"The generation was created (request_id {record.request_id}) but could not be recorded: "
                    f"{exc.message} Repeating this submit returns the same request.", request_id=record.request_id)
                return
            self.tracker.track(provider, record, webhook=self._notifies_us(intent))
            flight.result = Submitted(record, outcome.warnings, False, intent.idempotency_key)
        except ClipiaMcpError as exc:  # the store failed: the intent (if written) is recovered later
            flight.error = exc
        except Exception as exc:  # noqa: BLE001 - background work must never take the process down
            log.exception("submit %s failed unexpectedly", intent.idempotency_key[:8])
            flight.error = ClipiaMcpError(f"The submit failed unexpectedly ({type(exc).__name__}).",
                                          code="internal_server_error")
        finally:
            self._flights.pop((intent.owner, intent.idempotency_key), None)
            flight.done.set()

    def _notifies_us(self, intent: Intent) -> bool:
        """The submit carried this server's own (verified) webhook URL: a delivery will tell us it is done."""
        return self.webhook_url is not None and intent.webhook_url == self.webhook_url

    def _resolve_later(self, caller: Caller, intent: Intent) -> None:
        if self._tg is not None:
            self._tg.start_soon(self._resolve, caller, intent)

    async def _resolve(self, caller: Caller, intent: Intent) -> None:
        """Replay a pending intent with its key until the API gives a definite answer."""
        delay = self.settings.retry_base_delay or 0.5
        for _ in range(12):
            await anyio.sleep(delay)
            current = await self.store.get_intent(intent.owner, intent.idempotency_key)
            if current is None or current.request_id is not None:
                return
            if await self._replay(caller, current):
                return
            delay = min(delay * 2, 60.0)

    async def _replay(self, caller: Caller, intent: Intent) -> bool:
        """One replay of ``intent``; True once its outcome is known (created or definitely refused)."""
        provider = caller.provider_for(intent.model)
        try:
            response = await provider.submit(intent.model, intent.input, webhook_url=intent.webhook_url,
                                             idempotency_key=intent.idempotency_key)
        except ClipiaMcpError as exc:
            log.warning("could not resolve submit %s yet: %s", intent.idempotency_key[:8], exc.code)
            if not exc.transient:
                await self.store.drop_intent(intent.owner, intent.idempotency_key)
                return True
            return False
        record = self._record_from_submit(caller, intent, response)
        await self.store.record_submit(intent, record)
        self.tracker.track(provider, record, webhook=self._notifies_us(intent))
        return True

    @staticmethod
    def _record_from_submit(caller: Caller, intent: Intent, response: SubmitResponse) -> RequestRecord:
        now = time.time()
        return RequestRecord(
            request_id=response.request_id, owner=caller.owner, model=intent.model, input=intent.input,
            idempotency_key=intent.idempotency_key, status=response.status, queue_position=response.queue_position,
            cost=response.cost, created_at=now, updated_at=now,
            completed_at=now if response.status in ("COMPLETED", "FAILED", "CANCELED") else None,
        )

    async def recover(self, caller: Caller, *, all_owners: bool = False) -> int:
        """Finish what a previous process left: replay intents without a request id, resume unfinished requests.

        ``all_owners``: the caller's key pays for every tenant (token/OAuth modes), so every tenant's
        interrupted submits are replayed with it, each under its own owner.
        """
        recovered = 0
        owner = None if all_owners else caller.owner
        # Replicas: an intent younger than a call's deadline may still be in flight on another replica.
        settled_before = time.time() - (self.settings.call_deadline + 5.0) if self.tracker.shared else None
        for intent in await self.store.pending_intents(time.time() - IDEMPOTENCY_TTL, owner):
            if not caller.provider_for(intent.model).capabilities.idempotency_keys:
                continue  # no idempotency keys: replaying could create a second job
            if settled_before is not None and intent.created_at > settled_before:
                continue  # its submitter may still link it; a repeat of the submit replays it under the lease
            tenant = caller if intent.owner == caller.owner else _as_owner(caller, intent.owner)
            if await self._replay(tenant, intent):
                recovered += 1
        for record in await self.store.unfinished(owner):
            spec = spec_for(record.model)
            if spec is None or spec.name in caller.providers:
                self.tracker.track(caller.provider_for(record.model), record)
        return recovered

    def recover_later(self, caller: Caller) -> None:
        """Recover ``caller``'s interrupted work in the background (caller-key mode: on its first call)."""
        if self._tg is not None:
            self._tg.start_soon(self._recover_quietly, caller)

    async def _recover_quietly(self, caller: Caller) -> None:
        try:
            n = await self.recover(caller)
            if n:
                log.info("recovered %d interrupted submit(s) of a caller", n)
        except Exception:  # noqa: BLE001 - best effort; the journal keeps the intents for the next try
            log.exception("recovery of a caller's interrupted submits failed")

    # ------------------------------------------------------------------ status and results

    async def tracked(self, caller: Caller, request_id: str) -> Tracked:
        """The tracker entry for a request, loading it from the store or the API ("seen") if needed."""
        item = self.tracker.get(caller.owner, request_id)
        if item is not None:
            return item
        await self.tracker.flush()  # a change retired from memory may still be on its way to the store
        record = await self.store.get(caller.owner, request_id)
        if record is None and caller.shared_key:
            raise NotTrackedError(
                f"Request {request_id} was not found for this caller. Check the id, or call list_requests.",
                request_id=request_id)
        if record is None:
            try:
                status = await caller.clipia.status(request_id)
            except NotFoundError:
                raise NotTrackedError(
                    f"Request {request_id} was not found for this API key. Check the id, or call list_requests.",
                    request_id=request_id) from None
            now = time.time()
            record = RequestRecord(request_id=request_id, owner=caller.owner, status=status.status,
                                   queue_position=status.queue_position, progress=status.progress,
                                   logs=status.logs, created_at=now, updated_at=now)
            await self.store.upsert(record)
        return self.tracker.track(caller.provider_for(record.model), record)

    async def status(self, caller: Caller, request_id: str) -> RequestRecord:
        """Fresh status: one shared upstream poll unless the request is done or was just polled."""
        item = await self.tracked(caller, request_id)
        if item.record.terminal:
            return item.record
        if time.monotonic() - item.last_poll < self.tracker.min_interval:
            return item.record
        return await self._checked(item, self.tracker.poll_once(item))

    async def result(self, caller: Caller, request_id: str) -> RequestRecord:
        """The request with its output when done (one result fetch if it is done without output)."""
        item = await self.tracked(caller, request_id)
        if item.record.settled:
            return item.record
        if item.record.terminal:
            return await self._checked(item, self.tracker.settle(item))
        return await self._checked(item, self.tracker.poll_once(item))

    @staticmethod
    async def _checked(item: Tracked, call: Any) -> RequestRecord:
        try:
            record: RequestRecord = await call
            return record
        except ClipiaMcpError as exc:
            if exc.request_id is None:
                exc.request_id = item.record.request_id
            raise

    async def wait(self, caller: Caller, request_id: str, timeout: float,
                   on_update: UpdateCallback | None = None, heartbeat: float = C.HEARTBEAT_INTERVAL) -> RequestRecord:
        """Wait until the request is done or ``timeout`` passes, reporting each change to ``on_update``."""
        # No poll of our own here: the request's shared loop polls (within the budget), and a
        # webhook can end the wait at once; a private first look could queue behind the budget.
        item = await self.tracked(caller, request_id)
        return await self.tracker.wait(item, timeout, on_update, heartbeat)

    def stats(self) -> dict[str, float]:
        """Gauges for monitoring: queue depth and waiters of this process, live replicas."""
        return {"queue_depth": self.tracker.queue_depth(), "waiters": self.tracker.waiting,
                "replicas": self.tracker.replicas}

    async def ping_store(self) -> None:
        """One round trip to the store (readiness); raises StoreError when it is unreachable."""
        await self.store.ping()

    def poll_interval(self, record: RequestRecord) -> float:
        """Seconds until this request's next poll (tasks tell clients to come back then)."""
        return self.tracker.interval(record)

    async def owns(self, owner: str, request_id: str) -> bool:
        """Whether ``owner`` knows this request (tracked or stored)."""
        return self.tracker.get(owner, request_id) is not None or await self.store.get(owner, request_id) is not None

    async def delete_job(self, caller: Caller, request_id: str, delete_input: bool) -> None:
        """Delete a finished job this caller created, where its provider can delete."""
        record = await self.store.get(caller.owner, request_id)
        provider = caller.provider_for(record.model) if record is not None else None
        if record is None or provider is None or not provider.capabilities.delete:
            raise NotTrackedError(f"No deletable job {request_id} was created by this caller.", request_id=request_id)
        await provider.delete(request_id, delete_input=delete_input)

    async def forget(self, caller: Caller, *, request_id: str | None = None, before: float | None = None,
                     delete_files: bool = True) -> tuple[Forgotten, int]:
        """Delete the caller's finished requests from the store (prompts, results, tasks, file records) and,
        with ``delete_files``, the saved files; returns what went and how many files were deleted."""
        gone = await self.store.forget(caller.owner, request_id=request_id, before=before)
        for rid in gone.request_ids:
            self.tracker.drop(caller.owner, rid)
        deleted = 0
        if delete_files:
            for f in gone.files:
                try:
                    await anyio.Path(f.path).unlink()
                    deleted += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not delete %s: %s", f.path, exc)
        return gone, deleted

    async def apply_retention(self) -> int:
        """Forget every owner's finished requests older than the retention period; returns how many."""
        days = self.settings.retention_days
        if days is None:
            return 0
        gone = await self.store.forget(None, before=time.time() - days * 86_400)
        return len(gone.request_ids)

    async def list_requests(self, caller: Caller, status: str | None, limit: int, *, model: str | None = None,
                            since: float | None = None, until: float | None = None) -> list[RequestRecord]:
        """The caller's requests from the store, newest first (optionally one model, a time range)."""
        await self.tracker.flush()
        return await self.store.list_recent(caller.owner, status=status, limit=limit, model=model, since=since,
                                            until=until)

    async def spend_summary(self, caller: Caller, since: float, until: float
                            ) -> tuple[list[SpendRow], Balance | None]:
        """The caller's journal per day and model, and the account (None when the API cannot say now)."""
        await self.tracker.flush()
        rows = await self.store.spend(caller.owner, since, until)
        try:
            account = await self.balance(caller)
        except ClipiaMcpError as exc:
            log.info("spend summary without the account: %s", exc.code)
            account = None
        return rows, account

    # ------------------------------------------------------------------ webhooks

    async def apply_delivery(self, request_id: str, payload: dict[str, Any]) -> bool:
        """A verified webhook: store the terminal state for every tracked copy; False if none is tracked.

        Waiters wake at once; a delivery without output is completed by one result fetch.
        """
        items = self.tracker.find(request_id)
        for item in items:
            record = record_from_delivery(item.record, payload)
            if record is not None:
                await self.tracker.apply(item, record, stamped=True)
                if record.output is not None and self._tg is not None:
                    self._confirm_later(item)  # the signed payload serves now; the API confirms
        if items or not self.tracker.shared:
            return bool(items)
        # Replicas: another replica tracks it. Store the state and tell them; they wake their waiters
        # (and the poll lease holder fetches the output if the delivery carried none).
        stored = [r for r in await self.store.find(request_id) if not r.terminal]
        for current in stored:
            record = record_from_delivery(current, payload)
            if record is not None:
                await self.store.upsert(record)
                await self.store.publish(record.owner, record.request_id)
        return bool(stored)

    def _confirm_later(self, item: Tracked) -> None:
        """Queue the confirming fetch; one task runs them after the burst a delivery may be part of."""
        self._to_confirm.append(item)
        if len(self._to_confirm) == 1 and self._tg is not None:
            self._tg.start_soon(self._confirm_batch)

    async def _confirm_batch(self) -> None:
        await anyio.sleep(C.CONFIRM_DELAY)  # waiters first: the fetches must not compete with their answers
        batch, self._to_confirm = self._to_confirm, []
        limiter = anyio.CapacityLimiter(16)  # a burst of deliveries must not take the whole connection pool

        async def one(item: Tracked) -> None:
            async with limiter:
                await self.tracker.confirm(item)

        async with anyio.create_task_group() as tg:
            for item in batch:
                tg.start_soon(one, item)

    # ------------------------------------------------------------------ tasks

    async def create_task(self, caller: Caller, task_id: str, request_id: str) -> TaskRecord:
        """A durable task for ``request_id`` (written before the client hears of it)."""
        task = TaskRecord(task_id=task_id, owner=caller.owner, request_id=request_id, created_at=time.time())
        await self.store.create_task(task)
        return task

    async def get_task(self, caller: Caller, task_id: str) -> TaskRecord | None:
        """The caller's task; someone else's task is None, exactly like no task."""
        task = await self.store.get_task(task_id)
        return task if task is not None and task.owner == caller.owner else None

    async def cancel_task(self, task: TaskRecord) -> None:
        """Record a cancellation (the generation itself cannot be stopped)."""
        await self.store.cancel_task(task.task_id, time.time())

    # ------------------------------------------------------------------ catalogue and account

    async def list_models(self, caller: Caller) -> list[dict[str, Any]]:
        """Clipia's catalogue (cached per upstream key for ``CATALOGUE_TTL``) plus the extra providers' entries."""
        client = caller.clipia
        cached = self._catalogue.get(id(client))
        if cached is None or cached[0] is not client or time.monotonic() - cached[1] > C.CATALOGUE_TTL:
            async with self._catalogue_lock:  # one fetch for concurrent callers
                cached = self._catalogue.get(id(client))
                if cached is None or cached[0] is not client or time.monotonic() - cached[1] > C.CATALOGUE_TTL:
                    cached = (client, time.monotonic(), await client.list_models())
                    self._catalogue[id(client)] = cached
        return [*(dict(m) for m in cached[2]), *caller.catalogue_extras()]

    async def get_model(self, caller: Caller, slug: str) -> dict[str, Any]:
        """One model object (extra providers answer from their own catalogue)."""
        spec = spec_for(slug)
        if spec is not None:
            caller.provider_for(slug)
            return dict(spec.catalogue[0])
        return await caller.clipia.get_model(slug)

    async def estimate(self, caller: Caller, slug: str, data: dict[str, Any]) -> tuple[int, list[InputWarning]]:
        """Exact credits for ``data`` on ``slug`` (nothing is queued)."""
        if not caller.provider_for(slug).capabilities.credits:
            raise InvalidInputError(f"{slug} jobs are not priced in Clipia credits (their provider meters them).")
        res = await caller.clipia.estimate(slug, data)
        return res.credits, res.warnings

    async def balance(self, caller: Caller) -> Balance:
        """The account's balance and the key's 30-day usage."""
        acc = await caller.clipia.account()
        return Balance(acc.account_id, _int(acc.balance.get("credits")), _int(acc.usage_30d.get("requests")),
                       _int(acc.usage_30d.get("credits_spent")))


def _as_owner(caller: Caller, owner: str) -> Caller:
    return replace(caller, owner=owner)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
