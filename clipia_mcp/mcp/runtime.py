"""What a tool call reaches through its context: the engine, the caller resolver, the media client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context

from clipia_mcp.core.errors import ConfigError
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.runtime import Engine, open_engine
from clipia_mcp.engine.service import QueueService

if TYPE_CHECKING:
    import httpx

#: Maps a request's context to its caller (hosted modes); None: the server's own caller.
CallerResolver = Callable[[Context[Any, Any]], Caller]


@dataclass(eq=False, repr=False)  # live state, compared by identity (fewer generated methods at start)
class Runtime:
    """Everything a tool call needs, shared by all calls of one server process."""

    engine: Engine
    caller_resolver: CallerResolver | None = None
    #: Publishes "this owner's request list changed" to that owner's listen streams only.
    list_changed: Callable[[str], Awaitable[None]] | None = None

    @property
    def media_http(self) -> httpx.AsyncClient:
        """The engine's media client (previews use the same one as saved outputs; made on the first fetch)."""
        return self.engine.media.http

    async def request_list_changed(self, owner: str) -> None:
        """Tell ``owner``'s sessions (and no other tenant's) that their request list changed."""
        if self.list_changed is not None:
            await self.list_changed(owner)

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    @property
    def service(self) -> QueueService:
        return self.engine.service

    @property
    def caller(self) -> Caller | None:
        return self.engine.caller

    def caller_for(self, ctx: Context[Any, Any]) -> Caller:
        """The caller of this request (hosted mode maps per-request credentials here)."""
        if self.caller_resolver is not None:
            return self.caller_resolver(ctx)
        if self.engine.caller is None:
            raise ConfigError("No Clipia API key is configured. Set CLIPIA_API_KEY, or start with --sandbox.")
        return self.engine.caller


def runtime_of(ctx: Context[Any, Any]) -> Runtime:
    """The :class:`Runtime` of the server handling ``ctx``."""
    rt = ctx.request_context.lifespan_context
    if not isinstance(rt, Runtime):
        raise RuntimeError("the clipia-mcp runtime is not running")
    return rt


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, recover_all_owners: bool = False) -> AsyncIterator[Runtime]:
    """Start the engine (with its media client); close both on exit."""
    async with open_engine(settings, recover_all_owners=recover_all_owners) as engine:
        yield Runtime(engine=engine)
