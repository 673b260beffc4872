"""Serving the HTTP app with uvicorn on a socket we bind ourselves (port 0 prints the chosen port)."""

from __future__ import annotations

import socket
import sys

import anyio
import uvicorn

from clipia_mcp.mcp.server import ClipiaMCPServer
from clipia_mcp.transports.auth import AuthMode
from clipia_mcp.transports.http import HttpTransport, build_http_app


def serve_http(mcp: ClipiaMCPServer, transport: HttpTransport, *, auth: AuthMode, host: str, port: int,
               log_level: str) -> int:
    """Run until interrupted; prints ``listening on <url>`` to stderr once the socket is bound."""
    app = build_http_app(mcp, transport, auth=auth)
    path = "/sse" if transport == "sse" else "/mcp"
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), access_log=False,
                            lifespan="on", timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024)
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
