"""The MCP Apps generation card (extension ``io.modelcontextprotocol/ui``, SEP-1865).

``generate``, ``wait_for_result`` and ``get_result`` carry ``_meta.ui.resourceUri`` pointing at
:data:`CARD_URI`, a self-contained HTML document (``text/html;profile=mcp-app``) that a host
with the extension renders in a sandboxed iframe next to the tool result. The card shows the
request live (queue position, progress bar, logs, cost) by calling the app-only tool
``card_refresh`` (``_meta.ui.visibility: ["app"]``: hosts hide it from the model), then the
media in place: ``<img>``, ``<video>`` with a poster, ``<audio>``.

Hosts without the extension ignore the ``_meta`` and get exactly the same tool results as
before; nothing in the results depends on the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, Tool
from pydantic import Field

from clipia_mcp.core import validation as check
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.card import CARD_URI
from clipia_mcp.mcp.results import request_result
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.tools.calling import run_tool
from clipia_mcp.mcp.tools.params import LOCAL_READ, RequestId
from clipia_mcp.mcp.views import RequestView

#: Where Clipia serves outputs (``media.clipia.ai``; other subdomains for renditions).
CLIPIA_MEDIA_DOMAINS = ("https://media.clipia.ai", "https://*.clipia.ai")
#: The longest a single ``card_refresh`` waits for a change.
REFRESH_WAIT_MAX = 10.0


def is_app_only(meta: dict[str, Any] | None) -> bool:
    """Whether a tool's ``_meta`` makes it visible to apps only (hidden from the model)."""
    ui = (meta or {}).get("ui")
    return isinstance(ui, dict) and ui.get("visibility") == ["app"]


def without_ui(tool: Tool) -> Tool:
    """``tool`` without its ``_meta.ui`` (for clients that did not negotiate MCP Apps)."""
    if not tool.meta or "ui" not in tool.meta:
        return tool
    meta = {k: v for k, v in tool.meta.items() if k != "ui"}
    return tool.model_copy(update={"meta": meta or None})


def card_html() -> str:
    """The card document (one file: markup, styles and script inline; no external loads)."""
    # Beside this module in the installed package (importlib.resources would cost ~1 ms of imports at start).
    return (Path(__file__).parent / "ui" / "generation-card.html").read_text("utf-8")


def media_domains(settings: Settings) -> list[str]:
    """Origins the card may load media from: Clipia's media hosts, plus loopback for the sandbox."""
    domains = list(CLIPIA_MEDIA_DOMAINS)
    base = urlsplit(settings.base_url)
    if settings.sandbox or base.hostname in ("127.0.0.1", "localhost"):
        domains += ["http://127.0.0.1:*", "http://localhost:*"]  # the emulator's port is picked at start
    elif base.scheme == "https" and base.hostname and not base.hostname.endswith("clipia.ai"):
        domains.append(f"https://{base.netloc}")  # a self-hosted API proxy may serve media too
    if settings.reka_api_key is not None:
        domains.append("https://*.reka.ai")
    return domains


def build_apps(settings: Settings) -> Apps:
    """The Apps extension: the card resource and its app-only refresh tool."""
    apps = Apps()
    apps.add_html_resource(
        CARD_URI, card_html(), name="generation-card", title="Clipia generation card",
        description="Live status of a generation, then its image, video or audio in place.",
        csp=ResourceCsp(resource_domains=media_domains(settings)), prefers_border=True,
    )

    @apps.tool(resource_uri=CARD_URI, visibility=["app"], name="card_refresh", title="Refresh a generation card",
               annotations=LOCAL_READ)
    async def card_refresh(
        request_id: RequestId,
        ctx: Context,
        wait_s: Annotated[float, Field(description="Seconds to wait for it to finish.", ge=0)] = 2.0,
    ) -> Annotated[CallToolResult, RequestView]:
        """The generation's state for its card (app-only)."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            record = await rt.service.wait(caller, rid, min(wait_s, REFRESH_WAIT_MAX))
            return await request_result(record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                        is_test=caller.sandbox,
                                        include_preview=False)

        return await run_tool(ctx, body)

    return apps
