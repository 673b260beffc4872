"""How a request's state reads to people and clients: one-line status, 0-100 progress, MCP progress."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.engine.tracker import UpdateCallback


def progress_fraction(record: RequestRecord) -> float:
    """Map status to 0..100 for MCP progress: queue 0-10, rendering 10-99, done 100."""
    if record.settled:
        return 100.0
    if record.status == "IN_QUEUE":
        pos = record.queue_position or 0
        return round(10.0 / (1 + pos) if pos else 10.0, 2)
    if record.status == "IN_PROGRESS":
        return round(10.0 + 0.89 * float(record.progress or 0), 2)
    return 0.0 if not record.terminal else 99.0


def human_status(record: RequestRecord) -> str:
    """A one-line status like ``queued #3`` or ``rendering 40%``."""
    if record.status == "IN_QUEUE":
        pos = record.queue_position
        return f"queued #{pos + 1}" if pos is not None else "queued"
    if record.status == "IN_PROGRESS":
        return f"rendering {record.progress or 0}%" if record.progress is not None else "rendering"
    return {"COMPLETED": "completed", "FAILED": "failed", "CANCELED": "canceled"}.get(
        record.status, record.status.lower())


def progress_reporter(ctx: Context[Any, Any]) -> UpdateCallback:
    """An ``on_update`` callback sending MCP progress that strictly increases (heartbeats add 0.01)."""
    last = -1.0

    async def on_update(record: RequestRecord, heartbeat: bool) -> None:
        nonlocal last
        value = progress_fraction(record)
        if value <= last:
            value = 100.0 if record.settled else min(99.99, last + 0.01)
        if value > last:
            last = value
            await ctx.report_progress(value, 100.0, f"{human_status(record)} ({record.request_id[:8]})")

    return on_update
