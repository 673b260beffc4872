"""Server logs forwarded to the client as ``notifications/message``, as each protocol era defines it.

* 2025-11-25 and older (handshake era): the ``logging`` capability; ``logging/setLevel`` sets the
  minimum level for the connection. Nothing is forwarded until the client sets a level.
* 2026-07-28: ``logging/setLevel`` no longer exists (the SDK answers -32601); a request opts in with
  ``_meta["io.modelcontextprotocol/logLevel"]`` and receives that level and above on its own stream
  (the SDK's ``ServerSession.send_log_message`` enforces the per-request gate).

What is forwarded: records of the ``clipia_mcp`` loggers emitted while the server handles that
request (tool calls, resource reads), at or above the process ``--log-level`` and the client's level.
Every message goes through :func:`clipia_mcp.core.redaction.redact` first: never a secret.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.context import ServerRequestContext
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from clipia_mcp.core.redaction import redact

log = logging.getLogger(__name__)

#: RFC 5424 severities, ascending, as MCP names them.
LEVELS: tuple[LoggingLevel, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LOG_LEVEL_META = "io.modelcontextprotocol/logLevel"
#: Methods whose handling may forward logs.
FORWARDED_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
_PY_TO_MCP = ((logging.CRITICAL, "critical"), (logging.ERROR, "error"), (logging.WARNING, "warning"),
              (logging.INFO, "info"), (logging.DEBUG, "debug"))


def mcp_level(levelno: int) -> LoggingLevel:
    """The MCP severity of a Python log level."""
    for threshold, name in _PY_TO_MCP:
        if levelno >= threshold:
            return name  # type: ignore[return-value]
    return "debug"


@dataclass(eq=False, repr=False)  # live state, compared by identity (fewer generated methods at start)
class _Sink:
    minimum: int  # index into LEVELS
    send: MemoryObjectSendStream[dict[str, Any]]
    thread: int
    token: Any  # the anyio token of the request's event loop


_SINK: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar("clipia_log_sink", default=None)


class ClientLogHandler(logging.Handler):
    """Hands records of the current request to its sink (installed once on the ``clipia_mcp`` logger)."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _SINK.get()
        if sink is None or record.name == __name__:
            return
        level = mcp_level(record.levelno)
        if LEVELS.index(level) < sink.minimum:
            return
        try:
            message = redact(record.getMessage())
        except Exception:  # noqa: BLE001 - a broken format string must not break the call
            return
        item = {"level": level, "logger": record.name, "data": message}
        try:
            if threading.get_ident() == sink.thread:
                sink.send.send_nowait(item)
            else:  # a sync tool on a worker thread (rare: imported here, not at every start)
                import anyio.from_thread

                anyio.from_thread.run_sync(sink.send.send_nowait, item, token=sink.token)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
            pass  # a flood or a finished request drops the line; logging never fails a call


class LogForwarding:
    """``logging/setLevel`` per connection (handshake era) and the per-request forwarding middleware."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    @staticmethod
    def _connection(ctx: ServerRequestContext[Any, Any]) -> Any:
        return ctx.session._connection  # noqa: SLF001 - the per-connection object; sessions are per request

    async def set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        self._levels[self._connection(ctx)] = LEVELS.index(params.level)
        return EmptyResult()

    def minimum(self, ctx: ServerRequestContext[Any, Any]) -> int | None:
        """The lowest level index this request may receive; None: forward nothing."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            meta = ctx.params.get("_meta") if isinstance(ctx.params, dict) else None
            asked = meta.get(LOG_LEVEL_META) if isinstance(meta, dict) else None
            return LEVELS.index(asked) if asked in LEVELS else None
        try:
            return self._levels.get(self._connection(ctx))
        except TypeError:  # an object that cannot be weakly referenced: no per-connection level
            return None

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        minimum = self.minimum(ctx) if ctx.method in FORWARDED_METHODS else None
        if minimum is None:
            return await call_next(ctx)
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](100)
        session = ctx.session

        async def drain() -> None:
            async with receive:
                async for item in receive:
                    try:
                        with warnings.catch_warnings():  # the SDK marks logging deprecated at 2026-07-28
                            warnings.simplefilter("ignore")
                            await session.send_log_message(item["level"], item["data"], item["logger"],
                                                           related_request_id=ctx.request_id)
                    except Exception:  # noqa: BLE001 - a gone client must not fail the call
                        log.debug("could not forward a log line", exc_info=True)

        sink = _Sink(minimum, send, threading.get_ident(), anyio.lowlevel.current_token())
        failure: BaseException | None = None
        result: Any = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            reset = _SINK.set(sink)
            try:
                result = await call_next(ctx)
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group (no ExceptionGroup)
                failure = exc
            finally:
                _SINK.reset(reset)
                send.close()
        if failure is not None:
            raise failure
        return result


def install(forwarding: LogForwarding, mcp: Any) -> None:
    """Serve ``logging/setLevel`` (so the ``logging`` capability is advertised) and attach the handler once."""
    lowlevel = mcp._lowlevel_server  # noqa: SLF001 - the documented way to add a raw handler
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, forwarding.set_level)
    root = logging.getLogger("clipia_mcp")
    if not any(isinstance(h, ClientLogHandler) for h in root.handlers):
        root.addHandler(ClientLogHandler())
