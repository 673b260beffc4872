"""Every example is exercised: client configs launch the server, the eval client runs, the hosted app serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from conftest import server_command, server_env, structured
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from procs import wait_healthy

from clipia_mcp.sandbox import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _stdio_entries() -> list[tuple[str, str, dict]]:
    out = []
    for name in ("claude_desktop_config.json", "claude_code.mcp.json", "cursor.mcp.json", "vscode.mcp.json"):
        doc = json.loads((EXAMPLES / name).read_text())
        servers = doc.get("mcpServers") or doc["servers"]
        for key, entry in servers.items():
            out.append((name, key, entry))
    return out


@pytest.mark.parametrize(("name", "key", "entry"), _stdio_entries(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.anyio
async def test_client_configs_start_the_server(name: str, key: str, entry: dict, tmp_path: Path) -> None:
    if "url" in entry:
        assert entry["url"] == "http://127.0.0.1:8000/mcp" and entry.get("type", "http") == "http"
        return
    assert entry["command"] == "uvx" and entry["args"][0] == "clipia-mcp"
    # uvx is not on a test machine: run the same console script with the same arguments.
    args = [*server_command()[1:], *entry["args"][1:]]
    if "--sandbox" not in args:
        args.append("--sandbox")  # the placeholder key would be rejected; the config shape is what we test
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLIPIA_MCP_JOURNAL": ":memory:"}
    params = StdioServerParameters(command=server_command()[0], args=args, env=env)
    with anyio.fail_after(30):
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "submit_generation" in tools
            sub = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "config check"}}))
            res = structured(await client.call_tool("wait_for_result", {"request_id": sub["request_id"]}))
            assert res["status"] == "COMPLETED" and res["media"][0]["mime_type"] == "image/png"


def test_eval_batch_writes_a_results_table(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "eval_batch.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLIPIA_MCP_JOURNAL": ":memory:"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = out.read_text().strip().splitlines()
    assert lines[0].startswith("| model | prompt | status")
    statuses = [line.split("|")[3].strip() for line in lines[2:]]
    assert statuses == ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"]


@pytest.mark.anyio
async def test_hosted_app_with_two_workers(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = server_env(emu, live_key, tmp_path, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "examples.hosted.app:create",
                             "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        async with Client(url) as client:
            rid = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "hosted"}}))["request_id"]
        seen = set()
        for _ in range(6):  # new connections land on either worker; all see the shared journal
            async with Client(url) as client:
                lst = structured(await client.call_tool("list_requests", {}))
                seen.add(tuple(r["request_id"] for r in lst["requests"]))
                res = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 40}))
                assert res["status"] == "COMPLETED"
        assert seen == {(rid,)}
    finally:
        proc.terminate()
        proc.wait(15)


def test_doctor_reports_key_api_and_journal(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path)
    proc = subprocess.run([*server_command(), "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "[  ok] api key" in out and "live (billed)" in out
    assert "[  ok] api reach" in out and "balance 1000 credits" in out
    assert "[  ok] journal" in out and str(tmp_path / "journal.sqlite3") in out
    assert live_key.value not in out + proc.stderr
    bad = subprocess.run([*server_command(), "doctor"], capture_output=True, text=True, timeout=60,
                         env={**env, "CLIPIA_API_KEY": "clipia_live_revokedorunknown123"})
    assert bad.returncode == 1 and "[FAIL] api reach  invalid_api_key" in bad.stdout
    assert "revokedorunknown123" not in bad.stdout + bad.stderr
