"""/metrics and /readyz of a replica on a real PostgreSQL: readiness follows the store, liveness does not."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import server_env, structured
from mcp import Client
from pgserver import PASSWORD, PgServer
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio


def wait_for(check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


async def test_metrics_and_readiness(emu: EmulatorServer, live_key, tmp_path: Path,
                                     pg_server: PgServer) -> None:
    emu.emulator.config.time_scale = 0.02
    dsn = pg_server.new_database()
    with http_server("streamable-http", server_env(emu, live_key, tmp_path), "--store", dsn) as sp:
        async with Client(sp.url) as client:
            rid = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "metrics"}}))["request_id"]
            with anyio.fail_after(20):
                await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15})
        metrics = httpx.get(f"{sp.base}/metrics", timeout=5)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        for needle in ('clipia_mcp_tool_calls_total{outcome="ok",tool="submit_generation"} 1',
                       'clipia_mcp_upstream_calls_total{method="POST",status="2xx"}',
                       "# TYPE clipia_mcp_upstream_429_total counter" if "429" in text else "clipia_mcp_waiters 0",
                       'clipia_mcp_store_seconds_count{backend="postgresql"}', "clipia_mcp_queue_depth 0",
                       "clipia_mcp_replicas 1"):
            assert needle in text, needle
        assert live_key.value not in text and PASSWORD not in text
        ready = httpx.get(f"{sp.base}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json() == {"ready": True, "store": "ok", "upstream": "reachable"}
        pg_server.ctl("stop", "-m", "fast")
        try:
            wait_for(lambda: httpx.get(f"{sp.base}/readyz", timeout=10).status_code == 503)
            down = httpx.get(f"{sp.base}/readyz", timeout=10).json()
            assert down["store"] in ("journal_error", "timeout") and PASSWORD not in str(down)
            assert httpx.get(f"{sp.base}/healthz", timeout=5).status_code == 200  # alive, just not ready
        finally:
            pg_server.start()
        wait_for(lambda: httpx.get(f"{sp.base}/readyz", timeout=10).status_code == 200)
    assert PASSWORD not in "".join(sp.stderr) and live_key.value not in "".join(sp.stderr)
