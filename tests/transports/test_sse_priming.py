"""Streamable HTTP SSE responses open with a priming event (event id, empty data, ``retry``) for 2025-11-25."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key
from clipia_mcp.transports.events import SSE_RETRY_MS

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_sse_response_starts_with_a_priming_event_and_retry(emu: EmulatorServer, live_key: Key,
                                                           tmp_path: Path) -> None:
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        init = httpx.post(sp.url, headers=HEADERS, timeout=10, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert init.status_code == 200, init.text
        session = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        httpx.post(sp.url, headers={**HEADERS, **session}, timeout=10,
                   json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        res = httpx.post(sp.url, headers={**HEADERS, **session}, timeout=10,
                         json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        assert res.headers["content-type"].startswith("text/event-stream")
        first = res.text.replace("\r\n", "\n").split("\n\n")[0]
        fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
        assert fields.get("id", "").strip() and fields.get("retry", "").strip() == str(SSE_RETRY_MS), res.text[:300]
        assert fields.get("data", "").strip() == ""
        assert '"tools"' in res.text  # the answer follows on the same stream
