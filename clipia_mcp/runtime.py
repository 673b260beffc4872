"""The server's running state: built once per process by the MCP lifespan.

It opens the journal, starts the tracker's task group, creates the API client
(or, in sandbox mode, starts the embedded emulator on a loopback port first)
and recovers anything a previous process left unfinished.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from mcp.server.mcpserver import Context

from clipia_mcp.client import ClipiaClient
from clipia_mcp.config import ApiKey, Settings
from clipia_mcp.errors import ConfigError
from clipia_mcp.journal import Journal
from clipia_mcp.reka import RekaClient
from clipia_mcp.service import Caller, ClipiaService
from clipia_mcp.tracker import PollBudget, Tracker

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a tool call needs, shared by all calls of one server process."""

    settings: Settings
    service: ClipiaService
    caller: Caller | None
    media_http: httpx.AsyncClient
    sandbox_base_url: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def caller_for(self, ctx: Context[Any, Any]) -> Caller:
        """The caller of this request (hosted mode may map per-request credentials here)."""
        resolver = self.extras.get("caller_resolver")
        if resolver is not None:
            resolved: Caller = resolver(ctx)
            return resolved
        if self.caller is None:
            raise ConfigError("No Clipia API key is configured. Set CLIPIA_API_KEY, or start with --sandbox.")
        return self.caller


def runtime_of(ctx: Context[Any, Any]) -> Runtime:
    """The :class:`Runtime` of the server handling ``ctx``."""
    rt = ctx.request_context.lifespan_context
    if not isinstance(rt, Runtime):
        raise RuntimeError("the clipia-mcp runtime is not running")
    return rt


def sandbox_notice(base_url: str) -> None:
    """Loud stderr notice: nothing here is real or billed."""
    bar = "=" * 72
    print(f"{bar}\nclipia-mcp SANDBOX MODE: using the embedded Clipia emulator at {base_url}\n"
          f"No API key is used, nothing is billed, outputs are synthetic sample media.\n"
          f"Set CLIPIA_API_KEY (and drop --sandbox) to use the real Clipia API.\n{bar}",
          file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Build the runtime; on exit stop poll loops and close connections."""
    async with contextlib.AsyncExitStack() as stack:
        api_key = settings.api_key
        base_url = settings.base_url
        sandbox_url = None
        if settings.sandbox:
            from clipia_mcp.emulator import Emulator, EmulatorConfig, EmulatorServer

            emulator = Emulator(EmulatorConfig(time_scale=settings.sandbox_time_scale))
            server = await stack.enter_async_context(EmulatorServer(emulator))
            key = server.new_key(balance=10_000)
            api_key = ApiKey(key.value)
            base_url = sandbox_url = server.base_url
            sandbox_notice(base_url)
        reka_key, reka_url = settings.reka_api_key, settings.reka_base_url
        if settings.sandbox and reka_key is None:
            from clipia_mcp.emulator.reka import RekaServer

            reka_server = RekaServer()
            reka_server.emulator.config.time_scale = settings.sandbox_time_scale * 0.05
            reka_server.start_in_thread()
            stack.callback(reka_server.stop_thread)
            reka_key, reka_url = reka_server.new_key(), reka_server.base_url
        reka = None
        if reka_key is not None:
            reka = RekaClient(reka_key, base_url=reka_url, settings=settings)
            stack.push_async_callback(reka.aclose)
        journal = Journal(settings.journal_path)
        stack.callback(journal.close)
        tracker = Tracker(
            journal,
            min_interval=settings.poll_min_interval,
            max_interval=settings.poll_max_interval,
            budget=PollBudget(settings.poll_budget_rpm),
        )
        webhook = f"{settings.public_url.rstrip('/')}/webhooks/clipia" if settings.public_url else None
        service = ClipiaService(settings, journal, tracker, webhook_url=webhook)
        caller = None
        if api_key is not None:
            client = ClipiaClient(api_key, base_url=base_url, settings=settings)
            stack.push_async_callback(client.aclose)
            caller = Caller(client=client, owner=api_key.fingerprint, sandbox=settings.sandbox or api_key.is_test,
                            reka=reka)
        media_http = httpx.AsyncClient(timeout=5.0, follow_redirects=True)
        stack.push_async_callback(media_http.aclose)
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tracker.bind(tg)
        runtime = Runtime(settings=settings, service=service, caller=caller, media_http=media_http,
                          sandbox_base_url=sandbox_url)
        if caller is not None:
            tg.start_soon(_recover, service, caller)
        yield runtime


async def _recover(service: ClipiaService, caller: Caller) -> None:
    try:
        n = await service.recover(caller)
        if n:
            log.info("recovered %d submit(s) interrupted by a previous shutdown", n)
    except Exception:  # noqa: BLE001 - recovery is best effort; the journal keeps the intents
        log.exception("recovery of unfinished requests failed")
