"""UTC timestamps as the API and MCP write them."""

from __future__ import annotations

import functools
import time
from datetime import datetime, timezone


def iso_seconds(ts: float | None) -> str | None:
    """``2026-01-31T12:00:00Z`` (the API's format); ``None`` for no time."""
    return None if ts is None else _iso_second(int(ts // 1))


@functools.lru_cache(maxsize=4096)  # by whole second: a burst of answers formats the same few seconds again
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def iso_millis(ts: float) -> str:
    """``2026-01-31T12:00:00.000Z`` (MCP task timestamps)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
