"""Serving the HTTP app with uvicorn on a socket we bind ourselves (port 0 prints the chosen port).

Slow clients are cut: a request's headers and body must arrive within
:data:`~clipia_mcp.core.constants.REQUEST_READ_TIMEOUT` of its first byte (uvicorn alone waits forever
for a trickle), idle keep-alive connections close after
:data:`~clipia_mcp.core.constants.HTTP_KEEP_ALIVE_TIMEOUT`, and one event (a header block) is at most 64 KiB.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import anyio
import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from clipia_mcp.core import constants as C
from clipia_mcp.mcp.server import ClipiaMCPServer
from clipia_mcp.transports.auth_mode import AuthMode
from clipia_mcp.transports.http import HttpTransport, build_http_app


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a read deadline: from a new connection, or from the first byte of a
    request on a kept-alive one, until the request has been read in full (headers and body), at most
    ``read_timeout`` seconds, else the connection closes. An idle kept-alive connection is not timed
    here: uvicorn's keep-alive timeout owns it."""

    read_timeout = C.REQUEST_READ_TIMEOUT
    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # a request starts on a kept-alive connection
        super().data_received(data)
        self._check()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._check()
        if self._read_timer is None and self._mid_request():
            self._arm()  # a pipelined request is half in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _mid_request(self) -> bool:
        state = self.conn.their_state
        if state is h11.DONE:
            return False
        return state is not h11.IDLE or bool(self.conn.trailing_data[0])

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _check(self) -> None:
        if not self._mid_request():  # the whole request is in, or nothing of the next one yet
            self._disarm()

    def _too_slow(self) -> None:
        self._read_timer = None
        silent = self.conn.their_http_version is None  # not one request line received yet
        if (silent or self._mid_request()) and not self.transport.is_closing():
            self.transport.close()


def serve_http(mcp: ClipiaMCPServer, transport: HttpTransport, *, auth: AuthMode, host: str, port: int,
               log_level: str) -> int:
    """Run until interrupted; prints ``listening on <url>`` to stderr once the socket is bound."""
    app = build_http_app(mcp, transport, auth=auth)
    path = "/sse" if transport == "sse" else "/mcp"
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), access_log=False,
                            lifespan="on", timeout_keep_alive=C.HTTP_KEEP_ALIVE_TIMEOUT,
                            h11_max_incomplete_event_size=64 * 1024,
                            http=type("ClipiaH11Protocol", (DeadlineH11Protocol,),
                                      {"read_timeout": mcp.runtime_holder.settings.request_read_timeout}))
    server = uvicorn.Server(config)

    async def run() -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        print(f"clipia-mcp {transport} listening on http://{host}:{bound}{path}", file=sys.stderr, flush=True)
        await server.serve(sockets=[sock])

    anyio.run(run)
    return 0
