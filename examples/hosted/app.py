"""Hosted deployment: an ASGI app factory for uvicorn with several workers behind a reverse proxy.

    CLIPIA_API_KEY=clipia_live_... uvicorn --factory examples.hosted.app:create --workers 4 \
        --host 127.0.0.1 --port 8000 --proxy-headers --timeout-keep-alive 75

Keep the idle keep-alive timeout longer than a client's reuse window (uvicorn's default is 5 s): a client
that sends on a pooled connection the server has just closed gets a read error on its next POST (seen in
this example's test with 2 workers).

Each worker opens its own runtime (API client, tracker) and shares the SQLite journal file (WAL), so a
request submitted through one worker can be listed, read and waited on through any other. Set
CLIPIA_MCP_ALLOWED_HOSTS / CLIPIA_MCP_ALLOWED_ORIGINS to the public hostname(s) and origin(s) the proxy
forwards (DNS-rebinding protection). Auth is decided as by the CLI's ``--auth auto`` (CLIPIA_MCP_AUTH,
CLIPIA_MCP_TOKENS, CLIPIA_MCP_OAUTH_*): the app is never silently open.
"""

from __future__ import annotations

from starlette.applications import Starlette

from clipia_mcp.transports.http import create_app


def create() -> Starlette:
    """The Streamable HTTP app, configured from the environment exactly like ``clipia-mcp --transport ...``."""
    return create_app("streamable-http")
