"""Every example is exercised: client configs launch the server, the eval client runs, the hosted app serves."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from conftest import server_command, server_env, structured
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from procs import wait_healthy

from clipia_mcp.sandbox import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


CONFIGS = ("claude_desktop_config.json", "claude_code.mcp.json", "cursor.mcp.json", "vscode.mcp.json")
#: What the README's install step runs from the clone (the pipx / uv tool variants install the same wheel).
INSTALL = ["pip", "install", "."]
#: The README's "Hosted agents use HTTP" command, which the HTTP entries connect to.
HTTP_COMMAND = ["clipia-mcp", "--transport", "streamable-http", "--host", "127.0.0.1", "--port", "8000"]
PLACEHOLDER_KEY = "clipia_live_REPLACE_ME"
#: Held while a test serves on the README's fixed port, so two suites on one machine take turns.
PORT_LOCK = Path("/tmp/clipia-mcp-tests-port-8000.lock")


@contextlib.asynccontextmanager
async def readme_port() -> AsyncIterator[None]:
    """Port 8000, exclusively among this machine's test runs (an flock, waited for up to 5 minutes); a port
    taken by anything else skips the test, and fails it in CI."""
    fd = os.open(PORT_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with anyio.fail_after(300):
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX, abandon_on_cancel=True)
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 8000)) == 0:
                if os.environ.get("CI"):
                    pytest.fail("port 8000 is taken on this machine by something other than these tests")
                pytest.skip("port 8000 is taken on this machine")
        yield
    finally:
        os.close(fd)  # releases the lock


def _entries() -> list[tuple[str, str, dict]]:
    out = []
    for name in CONFIGS:
        doc = json.loads((EXAMPLES / name).read_text())
        servers = doc.get("mcpServers") or doc["servers"]
        for key, entry in servers.items():
            out.append((name, key, entry))
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with clipia-mcp installed by the README's command; returns its bin directory."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run([str(venv / "bin" / INSTALL[0]), *INSTALL[1:], "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin"


def _expand(value: str, env: dict[str, str], inputs: dict[str, str]) -> str:
    """What the client does with its own variables: ``${VAR}`` (Claude Code) and ``${input:id}`` (VS Code)."""
    value = re.sub(r"\$\{input:([^}]+)\}", lambda m: inputs[m.group(1)], value)
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m.group(1)], value)


def test_readme_installs_and_configures_exactly_this() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install ." in readme and " ".join(HTTP_COMMAND) in readme
    assert "uvx clipia-mcp" not in readme and "pip install clipia-mcp" not in readme  # not on the index yet
    for name, _, entry in _entries():
        assert entry.get("command", "clipia-mcp") == "clipia-mcp", name


@pytest.mark.parametrize(("name", "key", "entry"), _entries(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.anyio
async def test_client_configs_work_verbatim_after_the_readme_install(
        name: str, key: str, entry: dict, installed: Path, emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    # A machine where the README's install ran; the Clipia API is the emulator (the same base URL setting a
    # user could give), and the configs' placeholder key is a key it knows.
    emu.emulator.add_key(PLACEHOLDER_KEY, account=emu.emulator.accounts[live_key.account_id])
    machine = {"PATH": f"{installed}:/usr/bin:/bin", "HOME": str(tmp_path), "CLIPIA_BASE_URL": emu.base_url,
               "CLIPIA_API_KEY": live_key.value}  # the user's shell, for ${CLIPIA_API_KEY} in Claude Code's file
    inputs = {"clipia-key": live_key.value}  # what VS Code prompts for
    if "url" in entry:
        headers = {k: _expand(v, machine, inputs) for k, v in entry.get("headers", {}).items()}
        assert entry.get("type", "http") == "http" and headers, f"{name}:{key} sends no credential"
        server_env = {k: v for k, v in machine.items() if k != "CLIPIA_API_KEY"}  # hosted: callers bring keys
        async with readme_port():
            proc = subprocess.Popen(HTTP_COMMAND, env=server_env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                wait_healthy("http://127.0.0.1:8000")
                assert proc.poll() is None, "the server exited: port 8000 answered from another process"
                client = Client(streamable_http_client(entry["url"], http_client=httpx2.AsyncClient(headers=headers)))
                await _generate(client)
            finally:
                proc.terminate()
                proc.wait(15)
        return
    env = {**machine, **{k: _expand(v, machine, inputs) for k, v in entry.get("env", {}).items()}}
    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []), env=env)
    await _generate(Client(params))


async def _generate(client: Client) -> None:
    with anyio.fail_after(60):
        async with client:
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
                             "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "info", "--no-access-log",  # worker restarts show in stderr
                             "--timeout-keep-alive", "75"],  # as the example's docstring says
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
        assert proc.stderr is not None
        print(proc.stderr.read())  # shown by pytest when the test fails: worker restarts, tracebacks


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
