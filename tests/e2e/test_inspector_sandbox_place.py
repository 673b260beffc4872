"""The MCP Inspector CLI starts a fresh server per call: with the sandbox's state in the data dir, the
second call reads back what the first one submitted (installed by .ci/run; skips without it)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import server_command

INSPECTOR_DIR = os.environ.get("CLIPIA_INSPECTOR_DIR", "")
BIN = Path(INSPECTOR_DIR) / "node_modules" / ".bin" / "mcp-inspector"
if os.environ.get("CLIPIA_REQUIRE_NODE_TOOLS") and not BIN.exists():
    raise RuntimeError(f"the MCP Inspector is required here but missing at {BIN}")
pytestmark = pytest.mark.skipif(not BIN.exists(), reason="set CLIPIA_INSPECTOR_DIR (.ci/run installs the Inspector)")


def call(tmp_path: Path, *args: str) -> dict:
    server = [*server_command(), "--sandbox", "-e", f"CLIPIA_MCP_DATA_DIR={tmp_path / 'data'}",
              "-e", "CLIPIA_SANDBOX_TIME_SCALE=0.01", "-e", "CLIPIA_MCP_OUTPUT_DIR=off", "-e", f"HOME={tmp_path}"]
    proc = subprocess.run([str(BIN), "--cli", *server, "--method", "tools/call", *args, "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=INSPECTOR_DIR)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data: dict = json.loads(proc.stdout)["result"]["structuredContent"]
    return data


def test_each_inspector_call_sees_the_earlier_ones(tmp_path: Path) -> None:
    sub = call(tmp_path, "--tool-name", "submit_generation", "--tool-arg", "model=nano-banana-2",
               "--tool-arg", 'input={"prompt": "inspector, again"}')
    rid = sub["request_id"]
    done = call(tmp_path, "--tool-name", "wait_for_result", "--tool-arg", f"request_id={rid}",
                "--tool-arg", "timeout_s=20")
    assert done["status"] == "COMPLETED" and done["media"][0]["kind"] == "image"
    listed = call(tmp_path, "--tool-name", "list_requests")
    assert [r["request_id"] for r in listed["requests"]] == [rid]
