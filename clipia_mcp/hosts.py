"""Host-aware wait budgets: how long a tool may block, chosen per client.

Most hosts time a tool call out at about 60 s and do not extend it on progress,
so the default inline wait stays well under that. A client that sent a
progress token *and* is known to reset its timeout on progress may wait up to
the configured maximum. Without a progress token there is no heartbeat to keep
anything alive, so the wait is kept shorter still.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context

from clipia_mcp.config import Settings

#: Clients known to reset their tool timeout on progress notifications (lower-case name prefixes).
DEFAULT_LONG_WAIT_CLIENTS = ("claude-code", "mcp-inspector", "inspector-client")
NO_PROGRESS_CAP = 20.0
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"


@dataclass(frozen=True)
class WaitPlan:
    budget: float
    heartbeat: float
    client: str
    progress: bool


def client_name(ctx: Context[Any, Any]) -> str:
    """The client's self-reported name (both protocol eras); '' when unknown. Never used for security."""
    meta = ctx.request_context.meta or {}
    info = meta.get(CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return str(info["name"])
    params = getattr(ctx.request_context.session, "client_params", None)
    if params is not None and getattr(params, "client_info", None) is not None:
        return str(params.client_info.name)
    return ""


def has_progress_token(ctx: Context[Any, Any]) -> bool:
    meta = ctx.request_context.meta or {}
    return isinstance(meta, dict) and meta.get("progressToken", meta.get("progress_token")) is not None


def long_wait_clients() -> tuple[str, ...]:
    raw = os.environ.get("CLIPIA_MCP_LONG_WAIT_CLIENTS")
    if raw is None:
        return DEFAULT_LONG_WAIT_CLIENTS
    return tuple(x.strip().lower() for x in raw.split(",") if x.strip())


def plan_wait(ctx: Context[Any, Any], settings: Settings, requested: float | None) -> WaitPlan:
    """The inline wait for this call: an explicit request wins (capped at wait_max)."""
    name = client_name(ctx)
    progress = has_progress_token(ctx)
    if requested is not None:
        budget = min(requested, settings.wait_max)
    elif progress and name.lower().startswith(long_wait_clients()):
        budget = settings.wait_max
    elif progress:
        budget = settings.wait_default
    else:
        budget = min(settings.wait_default, NO_PROGRESS_CAP)
    return WaitPlan(budget=budget, heartbeat=settings.heartbeat_interval, client=name, progress=progress)
