"""Hosted deployment: an ASGI app factory for uvicorn with several workers behind a reverse proxy.

    CLIPIA_API_KEY=clipia_live_... uvicorn --factory examples.hosted.app:create --workers 4 \
        --host 127.0.0.1 --port 8000 --proxy-headers

Each worker opens its own runtime (API client, tracker) and shares the SQLite journal file (WAL), so a
request submitted through one worker can be listed, read and waited on through any other. Set
CLIPIA_MCP_ALLOWED_HOSTS to the public hostname(s) the proxy forwards (DNS-rebinding protection).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from clipia_mcp.config import Settings
from clipia_mcp.hosting import build_http_app
from clipia_mcp.server import build_server


def create() -> Starlette:
    settings = Settings.from_env()
    hosts = [h.strip() for h in os.environ.get("CLIPIA_MCP_ALLOWED_HOSTS", "").split(",") if h.strip()]
    origins = [f"https://{h}" for h in hosts]
    return build_http_app(build_server(settings), "streamable-http", allowed_hosts=hosts, allowed_origins=origins)
