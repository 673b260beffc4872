"""Process-wide counters, gauges and timings (rendered as Prometheus text by ``transports/metrics``).

Any layer records here; nothing here knows HTTP. Labels are a small fixed set (tool names,
upstream operations, outcomes), never a credential or a request id.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]

_lock = threading.Lock()
counters: defaultdict[tuple[str, Labels], float] = defaultdict(float)
#: name -> (sum of seconds, count) for summaries.
timings: defaultdict[tuple[str, Labels], list[float]] = defaultdict(lambda: [0.0, 0.0])
#: Gauges computed when scraped: name -> (help, function).
gauges: dict[str, tuple[str, Callable[[], float]]] = {}
HELP: dict[str, str] = {
    "clipia_mcp_tool_calls_total": "MCP tool calls by tool and outcome (ok / error).",
    "clipia_mcp_upstream_calls_total": "HTTP calls to the Clipia API by method and status class.",
    "clipia_mcp_upstream_429_total": "Clipia API answers with status 429 (rate limited).",
    "clipia_mcp_store_seconds": "Time spent in store operations.",
    "clipia_mcp_webhook_lag_seconds": "Delay between a webhook's signature time and its receipt.",
}


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items())) if labels else ()


def inc(name: str, value: float = 1.0, **labels: str) -> None:
    key = (name, _labels(labels))
    with _lock:
        counters[key] += value


def observe(name: str, seconds: float, **labels: str) -> None:
    key = (name, _labels(labels))
    with _lock:
        slot = timings[key]
        slot[0] += seconds
        slot[1] += 1


def gauge(name: str, help_text: str, fn: Callable[[], float]) -> None:
    """Register (or replace) a gauge read at scrape time."""
    gauges[name] = (help_text, fn)


def snapshot() -> tuple[dict[tuple[str, Labels], float], dict[tuple[str, Labels], tuple[float, float]]]:
    with _lock:
        return dict(counters), {k: (v[0], v[1]) for k, v in timings.items()}
