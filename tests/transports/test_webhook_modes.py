"""Which auth modes ask Clipia for webhooks (README "Webhooks"): only where the server can verify them.

Clipia signs deliveries with one secret per account, and the server holds only its own key's secret
(``CLIPIA_WEBHOOK_SECRET``). So the server's ``webhook_url`` goes with submits paid by the server key
(``none``, ``token``, ``oauth``), never with a caller's own key (``caller-key``): those are polled.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx2
import pytest
from conftest import server_env, structured
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _client(url: str, credential: str) -> Client:
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {credential}"}, timeout=30)))


async def _submit(url: str, credential: str) -> str:
    async with _client(url, credential) as client:
        sub = structured(await client.call_tool("submit_generation", {
            "model": "nano-banana-2", "input": {"prompt": "hook?"}}))
    rid: str = sub["request_id"]
    return rid


@pytest.mark.parametrize("mode", ["caller-key", "token"])
async def test_webhook_url_only_for_the_server_keys_account(emu: EmulatorServer, tmp_path: Path, mode: str) -> None:
    server_key, tenant_key = emu.new_key(), emu.new_key()
    secret = emu.emulator.accounts[server_key.account_id].webhook_secret
    port = _port()
    env = server_env(emu, server_key, tmp_path, CLIPIA_WEBHOOK_SECRET=secret, CLIPIA_MCP_TOKENS="tenant-token")
    hook = f"http://127.0.0.1:{port}/webhooks/clipia"
    with http_server("streamable-http", env, "--port", str(port), "--public-url", f"http://127.0.0.1:{port}",
                     "--auth", mode) as sp:
        if mode == "caller-key":
            theirs = await _submit(sp.url, tenant_key.value)  # another account: its deliveries could not verify
            assert emu.emulator.requests[theirs].webhook_url is None
            ours = await _submit(sp.url, server_key.value)  # the account whose secret the server holds
            assert emu.emulator.requests[ours].webhook_url == hook
        else:
            rid = await _submit(sp.url, "tenant-token")  # paid by the server key
            assert emu.emulator.requests[rid].webhook_url == hook
