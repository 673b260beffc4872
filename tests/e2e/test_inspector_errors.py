"""The official MCP Inspector CLI on error results, logging/setLevel, prompts and completions.

The happy paths are in tests/test_inspector.py. An ``isError`` result makes the CLI exit 5 (its
``tool_is_error`` envelope on stderr) while stdout still carries the result: the code must be there,
in ``_meta["io.clipia/error"]`` and at the start of the text, over stdio and both HTTP eras.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import server_command, server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

INSPECTOR_DIR = os.environ.get("CLIPIA_INSPECTOR_DIR", "")
BIN = Path(INSPECTOR_DIR) / "node_modules" / ".bin" / "mcp-inspector"
TOOL_IS_ERROR = 5


@pytest.fixture(autouse=True)
def _inspector() -> None:
    if BIN.exists():
        return
    if os.environ.get("CLIPIA_REQUIRE_NODE_TOOLS"):
        pytest.fail(f"the MCP Inspector is required here but missing at {BIN}")
    pytest.skip("set CLIPIA_INSPECTOR_DIR (.ci/run installs the Inspector)")


def inspector(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run([str(BIN), "--cli", *args, "--format", "json"], capture_output=True, text=True,
                          timeout=120, cwd=INSPECTOR_DIR)
    first = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "{}"
    return proc.returncode, json.loads(first), proc.stderr


def assert_tool_error(args: list[str], code: str) -> None:
    rc, out, err = inspector(*args)
    assert rc == TOOL_IS_ERROR, (rc, out, err[-2000:])
    result = out["result"]
    assert result["isError"] is True and "structuredContent" not in result
    assert result["_meta"]["io.clipia/error"]["code"] == code
    assert result["content"][0]["text"].startswith(f"Error {code}: ")


def test_inspector_stdio_error_results_and_set_level() -> None:
    base = [*server_command(), "--sandbox", "-e", "CLIPIA_MCP_JOURNAL=:memory:"]
    call = [*base, "--method", "tools/call"]
    assert_tool_error([*call, "--tool-name", "get_status", "--tool-arg", "request_id=nope"], "invalid_input")
    assert_tool_error([*call, "--tool-name", "get_status", "--tool-arg", f"request_id={uuid.uuid4()}"], "not_found")
    assert_tool_error([*call, "--tool-name", "get_model", "--tool-arg", "model=no-such-model"], "model_not_found")
    assert_tool_error([*call, "--tool-name", "list_requests", "--tool-arg", "limit=0"], "invalid_input")
    rc, out, err = inspector(*base, "--method", "logging/setLevel", "--log-level", "debug")
    assert rc == 0 and out == {"result": {}}, err[-2000:]


def test_inspector_http_error_results_both_eras(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    with http_server("streamable-http", server_env(emu, live_key, tmp_path)) as sp:
        for era in ("legacy", "modern"):
            call = [sp.url, "--protocol-era", era, "--method", "tools/call"]
            assert_tool_error([*call, "--tool-name", "get_result", "--tool-arg", f"request_id={uuid.uuid4()}"],
                              "not_found")
            assert_tool_error([*call, "--tool-name", "estimate_cost", "--tool-arg", "model=nano-banana-2",
                               "--tool-arg", "input={}"], "model_input_invalid")
            prompts = inspector(sp.url, "--protocol-era", era, "--method", "prompts/list")
            assert prompts[0] == 0 and {p["name"] for p in prompts[1]["result"]["prompts"]} == {
                "create_media", "check_generation"}
        rc, out, err = inspector(sp.url, "--protocol-era", "legacy", "--method", "logging/setLevel",
                                 "--log-level", "info")
        assert rc == 0 and out == {"result": {}}, err[-2000:]
        rc, out, err = inspector(sp.url, "--protocol-era", "modern", "--method", "logging/setLevel",
                                 "--log-level", "info")
        assert rc != 0 and "not supported" in err  # removed at 2026-07-28: the Inspector refuses to send it
