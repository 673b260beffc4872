"""What a stdio start loads before its first answers: nothing those answers do not need.

The console script runs as a desktop client starts it (a live key, the journal on disk) under
``python -X importtime``; after initialize and tools/list are answered its stdin closes, and the modules it
imported are read from stderr. Upstream HTTP (httpx, the clipia SDK), the HTTP transports, the emulator, Reka's
client and rich (which the SDK's logging setup would import) load only where they are used.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

#: Packages and modules that must not load before the first answers. (uvicorn is not here: the mcp SDK's server
#: module imports it, for a bare SDK server too. Reka's registry entry, its slug and catalogue row, does load.)
NOT_AT_STARTUP = ("httpx", "httpcore", "clipia", "rich", "pygments", "clipia_mcp.sandbox",
                  "clipia_mcp.providers.reka.client", "clipia_mcp.transports.auth", "clipia_mcp.transports.http",
                  "clipia_mcp.transports.serve", "clipia_mcp.transports.oauth")


def test_stdio_start_imports_only_what_the_first_answers_need(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLIPIA_API_KEY": "clipia_live_startupimports000",
           "CLIPIA_BASE_URL": "http://127.0.0.1:9", "CLIPIA_MCP_JOURNAL": str(tmp_path / "journal.sqlite3")}
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "clipia_mcp"], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    watchdog = threading.Timer(60, proc.kill)  # bounds every read below
    watchdog.start()
    try:
        answers = []
        for message in (INIT, INITIALIZED, LIST):
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" in message:
                answers.append(json.loads(proc.stdout.readline() or "{}"))
        proc.stdin.close()  # the answers are in: EOF ends the server
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
    finally:
        watchdog.cancel()
        proc.kill()
    assert [a.get("id") for a in answers] == [1, 2], stderr[-2000:]
    assert {t["name"] for t in answers[1]["result"]["tools"]} >= {"generate", "get_status"}
    loaded = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    assert "clipia_mcp.store.sqlite" in loaded and "mcp.server" in loaded  # the parse reads real module names
    early = sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_AT_STARTUP))
    assert early == [], early


@pytest.mark.parametrize("module", ["httpx", "rich"])
def test_the_check_sees_a_module_that_does_load(tmp_path: Path, module: str) -> None:
    """The importtime parse above is not vacuous: a module imported before the answers shows up in it."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=60)
    loaded = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert module in loaded
