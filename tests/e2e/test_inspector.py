"""The official MCP Inspector CLI drives the server over stdio and Streamable HTTP (installed by .ci/run)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import server_command, server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer

INSPECTOR_DIR = os.environ.get("CLIPIA_INSPECTOR_DIR", "")
BIN = Path(INSPECTOR_DIR) / "node_modules" / ".bin" / "mcp-inspector"
if os.environ.get("CLIPIA_REQUIRE_NODE_TOOLS") and not BIN.exists():
    raise RuntimeError(f"the MCP Inspector is required here but missing at {BIN}")
pytestmark = pytest.mark.skipif(not BIN.exists(), reason="set CLIPIA_INSPECTOR_DIR (.ci/run installs the Inspector)")


def inspector(*args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run([str(BIN), "--cli", *args, "--format", "json"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})}, cwd=INSPECTOR_DIR)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data: dict = json.loads(proc.stdout)
    return data


def test_inspector_stdio_list_and_call() -> None:
    cmd = server_command()
    base = [*cmd, "--sandbox", "-e", "CLIPIA_MCP_JOURNAL=:memory:"]
    tools = inspector(*base, "--method", "tools/list", "--strict")
    assert {t["name"] for t in tools["result"]["tools"]} >= {"submit_generation", "wait_for_result"}
    res = inspector(*base, "--method", "tools/call", "--tool-name", "submit_generation",
                    "--tool-arg", "model=nano-banana-2", "--tool-arg", 'input={"prompt": "inspector"}')
    sc = res["result"]["structuredContent"]
    assert sc["status"] == "IN_QUEUE" and sc["cost"] == 4


def test_inspector_streamable_http_both_eras(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        for era in ("legacy", "modern"):
            tools = inspector(sp.url, "--protocol-era", era, "--method", "tools/list")
            # 12: no app-only card_refresh without MCP Apps, no delete_clip without a provider that deletes jobs
            assert len(tools["result"]["tools"]) == 12
            res = inspector(sp.url, "--protocol-era", era, "--method", "tools/call", "--tool-name", "get_balance")
            assert res["result"]["structuredContent"]["credits"] == 1000
