"""Assembling the engine for one process: store, providers, tracker, service, recovery.

:func:`open_engine` is the only place that decides which store backend and which provider
clients a process gets; everything above receives the finished :class:`Engine`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.heap import settle_heap
from clipia_mcp.engine.media_client import MediaClient
from clipia_mcp.engine.outputs import OutputSaver
from clipia_mcp.engine.service import QueueService
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.providers.base import QueueProvider
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.providers.registry import EXTRA_PROVIDERS
from clipia_mcp.store.base import Store

if TYPE_CHECKING:
    from clipia_mcp.store.sqlite import SqliteStore

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/webhooks/clipia"
#: How often the retention period is applied (seconds).
RETENTION_EVERY = 6 * 3600.0


@dataclass(eq=False, repr=False)  # live state, compared by identity (fewer generated methods at start)
class Engine:
    """The running engine of one process."""

    settings: Settings
    service: QueueService
    #: The server's own caller (its key, or the sandbox's); None in caller-key mode without a key.
    caller: Caller | None
    #: Extra providers the server's settings configure, shared by every caller.
    providers: dict[str, QueueProvider]
    #: Base URL of the Clipia API this process talks to (the sandbox's when sandboxed).
    clipia_url: str
    #: Saves finished outputs locally (a no-op unless --output-dir is on).
    outputs: OutputSaver
    #: Fetches output files (previews, saved outputs); made on the first fetch.
    media: MediaClient


def is_shared(settings: Settings) -> bool:
    """Whether other processes may share this process's store (replicas on PostgreSQL)."""
    return bool(settings.store_url and settings.store_url.startswith(("postgresql://", "postgres://")))


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The store ``settings`` ask for, open: PostgreSQL for a ``postgresql://`` URL, else SQLite."""
    url = settings.store_url
    if url and url.startswith(("postgresql://", "postgres://")):
        try:
            from clipia_mcp.store.postgres import PostgresStore
        except ImportError:
            raise ConfigError("A postgresql:// store needs the PostgreSQL driver: "
                              "pip install 'clipia-mcp[postgres]'.") from None
        async with PostgresStore(url) as pg:
            yield pg
        return
    path = _sqlite_path(settings)
    store = _probed.pop(path, None) or _open_sqlite(path)
    try:
        yield store
    finally:
        await store.aclose()


#: A journal opened by :func:`probe_store`, kept for the lifespan's :func:`open_store` (one open per start).
_probed: dict[Path | None, SqliteStore] = {}


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.store_url
    if url:
        return None if url == ":memory:" else Path(url).expanduser()
    return settings.journal_path


def _open_sqlite(path: Path | None) -> SqliteStore:
    from clipia_mcp.store.sqlite import SqliteStore

    return SqliteStore(path)


def probe_store(settings: Settings) -> None:
    """Open the configured store once, so a bad journal path fails at startup in one line
    (:class:`~clipia_mcp.core.errors.StoreError`) instead of inside the server's lifespan; the open journal
    is what that lifespan's :func:`open_store` then uses.

    Synchronous (SQLite opens synchronously): no event loop is started for it, on the path to the first answer.
    """
    url = settings.store_url
    if url and url.startswith(("postgresql://", "postgres://")):
        return  # a database that is briefly down is the readiness probe's business, not a startup failure
    path = _sqlite_path(settings)
    store = _open_sqlite(path)
    if path is None:
        store.close()  # an in-memory journal is per connection: the server's must be its own
        return
    earlier = _probed.pop(path, None)
    if earlier is not None:
        earlier.close()
    _probed[path] = store


def _api_hosts(base_url: str, provider_keys: dict[str, Any]) -> list[str]:
    """The hosts of the APIs this engine talks to (their output files are as trusted as their answers)."""
    urls = [base_url, *(creds[1] for creds in provider_keys.values() if creds is not None)]
    return [urlsplit(u).hostname or "" for u in urls if isinstance(u, str)]


@contextlib.asynccontextmanager
async def open_engine(settings: Settings, *, recover_all_owners: bool = False) -> AsyncIterator[Engine]:
    """Build the engine; on exit stop background work and close connections."""
    async with contextlib.AsyncExitStack() as stack:
        api_key, base_url = settings.api_key, settings.base_url
        provider_keys = {spec.name: spec.credentials(settings) for spec in EXTRA_PROVIDERS}
        if settings.sandbox:
            from clipia_mcp.sandbox.factory import open_sandbox

            sandbox = await stack.enter_async_context(open_sandbox(settings))
            api_key, base_url = ApiKey(sandbox.clipia_key), sandbox.clipia_url
            if sandbox.reka_key and sandbox.reka_url and provider_keys.get("reka") is None:
                provider_keys["reka"] = (sandbox.reka_key, sandbox.reka_url)
        providers: dict[str, QueueProvider] = {}
        for spec in EXTRA_PROVIDERS:
            creds = provider_keys.get(spec.name)
            if creds is not None:
                provider = spec.build(settings, *creds)
                stack.push_async_callback(provider.aclose)
                providers[spec.name] = provider
        store = await stack.enter_async_context(open_store(settings))
        tracker = Tracker(store, min_interval=settings.poll_min_interval, max_interval=settings.poll_max_interval,
                          budget_rpm=settings.poll_budget_rpm, shared=is_shared(settings),
                          lease_ttl=settings.lease_ttl, webhook_fallback=settings.webhook_fallback_interval)
        webhook = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}" \
            if settings.public_url and settings.webhook_secret else None
        service = QueueService(settings, store, tracker, webhook_url=webhook)
        media = MediaClient(settings.http_timeout, trusted_hosts=_api_hosts(base_url, provider_keys))
        stack.push_async_callback(media.aclose)
        outputs = OutputSaver(settings, store, media)
        caller = None
        if api_key is not None:
            client = ClipiaClient(api_key, base_url=base_url, settings=settings)
            stack.push_async_callback(client.aclose)
            caller = Caller(clipia=client, owner=api_key.fingerprint, sandbox=settings.sandbox or api_key.is_test,
                            providers=providers)
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        stack.push_async_callback(tracker.flush)  # runs first on exit: pending changes reach the store
        service.bind(tg)
        outputs.bind(tg)
        if caller is not None:
            tg.start_soon(_recover, service, caller, recover_all_owners)
        if settings.retention_days is not None:
            tg.start_soon(_retention, service)
        settle_heap()
        yield Engine(settings=settings, service=service, caller=caller, providers=providers, clipia_url=base_url,
                     outputs=outputs, media=media)


async def _recover(service: QueueService, caller: Caller, all_owners: bool) -> None:
    try:
        n = await service.recover(caller, all_owners=all_owners)
        if n:
            log.info("recovered %d submit(s) interrupted by a previous shutdown", n)
    except Exception:  # noqa: BLE001 - recovery is best effort; the journal keeps the intents
        log.exception("recovery of unfinished requests failed")


async def _retention(service: QueueService) -> None:
    """Apply the retention period at start, then every few hours."""
    while True:
        try:
            n = await service.apply_retention()
            if n:
                log.info("retention: forgot %d finished request(s)", n)
        except Exception:  # noqa: BLE001 - retention is housekeeping; the next round tries again
            log.exception("applying the retention period failed")
        await anyio.sleep(RETENTION_EVERY)


def shared_caller(caller: Caller, owner: str) -> Caller:
    """``caller``'s key paying for another tenant (token/OAuth modes): only that tenant's ids are visible."""
    return replace(caller, owner=owner, shared_key=True)
