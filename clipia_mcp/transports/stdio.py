"""stdio: the SDK's transport, with every line it cannot read answered instead of dropped.

The SDK's stdio reader hands a line that fails to parse (not JSON, a lone surrogate escape, nesting past
its parser's depth, an integer over 4,300 digits) or is not a JSON-RPC message (``"params": []``) to the
server as an exception, and the server drops it: the client's request then waits for an answer that never
comes. Here each such line gets a JSON-RPC error, with the request's id whenever the line still shows one
(a lenient parse of the same line), so the client's call ends at once:

* ``-32700`` (parse error) for a line the SDK's JSON parser refused;
* ``-32600`` (invalid request) for JSON that is not a JSON-RPC message.

A line without a recoverable id is answered with ``"id": null``, as JSON-RPC prescribes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

log = logging.getLogger(__name__)


def run_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over stdin/stdout until stdin closes."""
    anyio.run(serve_stdio, server)


async def serve_stdio(server: MCPServer[Any]) -> None:
    lowlevel = server._lowlevel_server  # noqa: SLF001 - MCPServer.run_stdio_async, with our read stream
    async with stdio_server() as (read_stream, write_stream):
        await lowlevel.run(AnsweringUnreadable(read_stream, write_stream), write_stream,
                           lowlevel.create_initialization_options())


class AnsweringUnreadable:
    """The stdio read stream, minus the lines it could not read: those are answered on the write stream."""

    def __init__(self, inner: Any, write_stream: Any) -> None:
        self._inner = inner
        self._write = write_stream

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item  # type: ignore[no-any-return]
            answer = error_for(item)
            log.info("answered an unreadable stdin line: %s", answer.error.message)
            await self._write.send(SessionMessage(answer))

    def __aiter__(self) -> AnsweringUnreadable:
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AnsweringUnreadable:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.__aexit__(*exc)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def close(self) -> None:
        self._inner.close()


def error_for(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error answering a line the SDK could not read (``exc`` is its parse/validation error)."""
    if not isinstance(exc, ValidationError):
        return _error(None, PARSE_ERROR, "Parse error")
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        line = errors[0].get("input")
        reason = str(errors[0].get("ctx", {}).get("error", "")) or "invalid JSON"
        return _error(_request_id(_lenient(line)), PARSE_ERROR, f"Parse error: {reason[:120]}")
    message = next((e["input"] for e in errors if isinstance(e.get("input"), dict) and "jsonrpc" in e["input"]),
                   None)
    return _error(_request_id(message), INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message")


def _lenient(line: Any) -> Any:
    """``line`` parsed by Python's json, which takes what the SDK's parser refuses (lone surrogates, deeper
    nesting, any number of digits: integers too long for int() become 0); None when even it cannot."""
    if not isinstance(line, str | bytes):
        return None
    try:
        return json.loads(line, parse_int=lambda digits: int(digits) if len(digits) < 4000 else 0,
                          parse_constant=lambda name: None)
    except (ValueError, RecursionError):
        return None


def _request_id(message: Any) -> str | int | None:
    """The id of a request-shaped message (a method and a string or integer id), else None."""
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return None
    rid = message.get("id")
    if isinstance(rid, bool) or not isinstance(rid, str | int):
        return None
    if isinstance(rid, str):
        try:
            rid.encode()
        except UnicodeEncodeError:  # a lone surrogate: it cannot be written back on stdout
            return None
    return rid


def _error(request_id: str | int | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))
