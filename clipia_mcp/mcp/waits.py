"""Host-aware wait budgets: how long a tool may block, chosen per client, within the call deadline.

Most hosts time a tool call out at about 60 s and do not extend it on progress, so the default
inline wait stays well under that. A client that sent a progress token *and* is known to reset
its timeout on progress may wait up to the deadline. Without a progress token there is no
heartbeat to keep anything alive, so the wait is kept shorter still. A requested wait above the
maximum is clamped, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import InvalidInputError
from clipia_mcp.core.settings import Settings

if TYPE_CHECKING:
    from clipia_mcp.core.records import RequestRecord

CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"


@dataclass(frozen=True)
class WaitPlan:
    """How long this call waits, how often it sends a heartbeat, and why."""

    budget: float
    heartbeat: float
    client: str
    progress: bool
    #: Set when the requested wait was clamped: the note the result carries (see :meth:`note_for`).
    note: str | None = None

    def note_for(self, record: RequestRecord) -> str | None:
        """The clamp note for the answer about ``record``: none once it is done (nothing left to wait for)."""
        return None if record.terminal else self.note


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
    """Whether the client asked for progress notifications on this call."""
    meta = ctx.request_context.meta or {}
    return isinstance(meta, dict) and meta.get("progressToken", meta.get("progress_token")) is not None


def plan_wait(ctx: Context[Any, Any], settings: Settings, requested: float | None) -> WaitPlan:
    """The inline wait for this call: an explicit request wins, clamped to the maximum with a note."""
    name = client_name(ctx)
    progress = has_progress_token(ctx)
    note = None
    if requested is not None:
        if requested != requested or requested < 0:  # NaN or negative
            raise InvalidInputError("timeout_s / wait_s must be a non-negative number of seconds.")
        budget = min(requested, settings.wait_max)
        if requested > settings.wait_max:
            note = (f"Asked to wait {requested:g} s; waited at most {settings.wait_max:g} s (this server's limit "
                    "per call). Call wait_for_result again to keep waiting.")
    elif progress and name.lower().startswith(settings.long_wait_clients):
        budget = settings.wait_max
    elif progress:
        budget = settings.wait_default
    else:
        budget = min(settings.wait_default, C.NO_PROGRESS_WAIT_CAP)
    return WaitPlan(budget=budget, heartbeat=settings.heartbeat_interval, client=name, progress=progress, note=note)
