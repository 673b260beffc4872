"""Operability endpoints: Prometheus ``/metrics`` and readiness ``/readyz`` (``/healthz`` is liveness).

``/metrics`` renders :mod:`clipia_mcp.core.metrics` (tool calls, upstream calls and 429s, store
and webhook timings) plus gauges read at scrape time from the engine (queue depth, waiters, live
replicas). ``/readyz`` answers 200 only when the store answers a round trip and the Clipia API
answers HTTP at all (any status: reachable); a load balancer takes a replica out while it is 503.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from clipia_mcp.core import metrics
from clipia_mcp.core.errors import StoreError
from clipia_mcp.mcp.runtime import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READY_CACHE_S = 2.0


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in labels)
    return "{" + inner + "}"


def render(gauges: dict[str, float]) -> str:
    """The Prometheus text exposition of every metric of this process."""
    counters, timings = metrics.snapshot()
    lines: list[str] = []
    seen: set[str] = set()

    def head(name: str, kind: str, help_text: str | None = None) -> None:
        if name not in seen:
            seen.add(name)
            lines.append(f"# HELP {name} {help_text or metrics.HELP.get(name, name)}")
            lines.append(f"# TYPE {name} {kind}")

    for (name, labels), value in sorted(counters.items()):
        head(name, "counter")
        lines.append(f"{name}{_labels(labels)} {value:g}")
    for (name, labels), (total, count) in sorted(timings.items()):
        head(name, "summary")
        lines.append(f"{name}_sum{_labels(labels)} {total:.6f}")
        lines.append(f"{name}_count{_labels(labels)} {count:g}")
    for name, value in sorted(gauges.items()):
        head(name, "gauge", GAUGE_HELP.get(name))
        lines.append(f"{name} {value:g}")
    return "\n".join(lines) + "\n"


GAUGE_HELP = {
    "clipia_mcp_queue_depth": "Requests this replica tracks that are not finished.",
    "clipia_mcp_waiters": "Tool calls of this replica blocked waiting for a request.",
    "clipia_mcp_replicas": "Live replicas sharing the store (1 without a shared store).",
}


def endpoints(runtime: Callable[[], Runtime | None]) -> tuple[Callable[[Request], object], Callable[[Request], object]]:
    """The ``/metrics`` and ``/readyz`` handlers for the process runtime returned by ``runtime()``."""
    cache: dict[str, tuple[float, bool, str]] = {}

    async def metrics_endpoint(_: Request) -> Response:
        rt = runtime()
        stats = rt.service.stats() if rt is not None else {}
        return PlainTextResponse(render({f"clipia_mcp_{k}": v for k, v in stats.items()}), media_type=CONTENT_TYPE)

    async def upstream_ok(url: str) -> tuple[bool, str]:
        hit = cache.get(url)
        if hit is not None and time.monotonic() - hit[0] < READY_CACHE_S:
            return hit[1], hit[2]
        import httpx  # only a readiness probe needs it: not loaded at startup

        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                await client.get(url.rstrip("/") + "/v1/models")
            ok, detail = True, "reachable"
        except httpx.HTTPError as exc:
            ok, detail = False, f"unreachable ({type(exc).__name__})"
        cache[url] = (time.monotonic(), ok, detail)
        return ok, detail

    async def readyz(_: Request) -> Response:
        rt = runtime()
        if rt is None:
            return JSONResponse({"ready": False, "store": "starting", "upstream": "starting"}, status_code=503)
        store = "ok"
        try:
            with anyio.fail_after(2.0):
                await rt.service.ping_store()
        except (StoreError, TimeoutError) as exc:
            store = exc.code if isinstance(exc, StoreError) else "timeout"
        up_ok, upstream = await upstream_ok(rt.engine.clipia_url)
        ready = store == "ok" and up_ok
        return JSONResponse({"ready": ready, "store": store, "upstream": upstream}, status_code=200 if ready else 503)

    return metrics_endpoint, readyz
