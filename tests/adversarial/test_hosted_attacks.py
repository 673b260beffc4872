"""Hosted mode under attack (real HTTP server processes): OAuth tokens that are not ours, tenants' interrupted
submits after kill -9, and the webhook route fed huge and replayed bodies."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from attack_helpers import IMAGE, TOKENS, as_tenant, client_as, rss_kib
from conftest import balance_of, error_of, server_env, structured
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer, Fault
from clipia_mcp.sandbox.state import Key
from clipia_mcp.sandbox.webhooks import sign

pytestmark = pytest.mark.anyio
RESOURCE = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

#: token -> introspection answer
TOKENS_AT_IDP: dict[str, dict[str, Any]] = {
    "good-alice": {"active": True, "sub": "alice", "aud": RESOURCE, "iss": ISSUER},
    "good-bob": {"active": True, "sub": "bob", "aud": [RESOURCE, "https://other"], "iss": ISSUER},
    "other-audience": {"active": True, "sub": "mallory", "aud": "https://other.example.com", "iss": ISSUER},
    "other-issuer": {"active": True, "sub": "mallory", "aud": RESOURCE, "iss": "https://evil.example.com"},
    "no-subject-1": {"active": True, "aud": RESOURCE, "iss": ISSUER},
    "no-subject-2": {"active": True, "aud": RESOURCE, "iss": ISSUER, "client_id": ""},
    "expired": {"active": True, "sub": "old", "aud": RESOURCE, "iss": ISSUER, "exp": 1},
}


class Idp:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                token = form.get("token", [""])[0]
                idp.calls.append((token, self.headers.get("Authorization")))
                data = json.dumps(TOKENS_AT_IDP.get(token, {"active": False})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/introspect"


async def test_oauth_refuses_tokens_not_meant_for_us(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    idp = Idp()
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_OAUTH_INTROSPECTION_URL=idp.url,
                     CLIPIA_MCP_OAUTH_ISSUER=ISSUER, CLIPIA_MCP_OAUTH_RESOURCE=RESOURCE,
                     CLIPIA_MCP_OAUTH_CLIENT_ID="mcp-server", CLIPIA_MCP_OAUTH_CLIENT_SECRET="s3cret-client-pw")
    try:
        with http_server("streamable-http", env) as sp:
            for token in ("other-audience", "other-issuer", "no-subject-1", "no-subject-2", "expired", "unknown"):
                r = httpx.post(sp.url, json=LIST, headers={**HEADERS, "Authorization": f"Bearer {token}"})
                assert r.status_code == 401, token
            with anyio.fail_after(60):
                async with client_as(sp.url, "good-alice") as alice:
                    rid = structured(await alice.call_tool("submit_generation", IMAGE))["request_id"]
                    for _ in range(5):
                        await alice.call_tool("list_requests", {})
                async with client_as(sp.url, "good-bob") as bob:
                    assert error_of(await bob.call_tool("get_status", {"request_id": rid}))["code"] == "not_found"
                    assert structured(await bob.call_tool("list_requests", {}))["count"] == 0
        # The server authenticated to the endpoint, and asked about each token once (cached).
        expected = "Basic " + base64.b64encode(b"mcp-server:s3cret-client-pw").decode()
        assert {auth for _, auth in idp.calls} == {expected}
        assert sum(1 for token, _ in idp.calls if token == "good-alice") == 1
        assert "s3cret-client-pw" not in "".join(sp.stderr)
    finally:
        idp.server.shutdown()


async def test_token_tenants_interrupted_submits_are_recovered_after_kill_9(
        emu: EmulatorServer, tmp_path: Path) -> None:
    key = emu.new_key(balance=1000)
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS))
    with http_server("streamable-http", env) as sp:
        emu.emulator.faults.add(Fault(route="submit", kind="drop", times=None))
        with anyio.fail_after(60):
            for token in TOKENS:
                async with as_tenant(sp.url, token) as c:
                    res = await c.call_tool("submit_generation", {**IMAGE, "input": {"prompt": token}})
                    assert error_of(res)["code"] == "submit_pending"
        sp.proc.kill()
        sp.proc.wait(10)
    emu.emulator.faults.clear()
    created = {r.input["prompt"]: r.request_id for r in emu.emulator.requests.values() if r.key == key.value}
    assert set(created) == set(TOKENS)  # each created (and charged) once; only the answers were lost
    with http_server("streamable-http", env) as sp:
        with anyio.fail_after(60):
            for token in TOKENS:
                async with as_tenant(sp.url, token) as c:
                    while (listed := structured(await c.call_tool("list_requests", {})))["count"] == 0:
                        await anyio.sleep(0.05)
                    assert [r["request_id"] for r in listed["requests"]] == [created[token]]
                    again = structured(await c.call_tool("submit_generation", {**IMAGE, "input": {"prompt": token}}))
                    assert again["request_id"] == created[token] and again["deduplicated"] is True
    assert len([r for r in emu.emulator.requests.values() if r.key == key.value]) == 2
    assert balance_of(emu, key) == 1000 - 2 * 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_webhook_route_huge_bodies_and_replays(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    secret = emu.emulator.accounts[live_key.account_id].webhook_secret
    port = _free_port()
    env = server_env(emu, live_key, tmp_path, CLIPIA_WEBHOOK_SECRET=secret)
    with http_server("streamable-http", env, "--port", str(port), "--public-url", f"http://127.0.0.1:{port}") as sp:
        hook = f"{sp.base}/webhooks/clipia"
        before = rss_kib(sp.proc.pid)

        async def chunks() -> Any:
            block = b"x" * (1024 * 1024)
            for _ in range(300):  # 300 MiB, chunked (no Content-Length)
                yield block

        with anyio.fail_after(60):
            async with httpx.AsyncClient(timeout=30) as http:
                try:
                    r = await http.post(hook, content=chunks(), headers={"Content-Type": "application/json"})
                    assert r.status_code == 413
                except httpx.HTTPError:
                    pass  # the server may cut the upload once it said 413
        assert rss_kib(sp.proc.pid) - before < 32 * 1024
        body = json.dumps({"request_id": "764cabcf-b745-4b3e-ae38-1200304cf45b", "status": "OK"}).encode()
        t = int(time.time())
        signed = {"X-Clipia-Signature": f"t={t},v1={sign(secret, t, body)}", "Content-Type": "application/json"}
        first = httpx.post(hook, content=body, headers={**signed, "X-Clipia-Webhook-Id": "id-1"})
        assert first.status_code == 200 and "duplicate" not in first.json()
        # Same signed content under a new delivery id: a replay, recognised by what the signature covers.
        replay = httpx.post(hook, content=body, headers={**signed, "X-Clipia-Webhook-Id": "id-2"})
        assert replay.json() == {"ok": True, "duplicate": True}
        assert httpx.get(f"{sp.base}/healthz").status_code == 200
    assert secret not in "".join(sp.stderr)
