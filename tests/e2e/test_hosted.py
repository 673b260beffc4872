"""Hosted mode: auth on HTTP, per-caller isolation, secrets never echoed."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from conftest import error_of, server_env, structured
from procs import http_server
from support import client_as, hosted_env, text_of

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

pytestmark = pytest.mark.anyio
UNKNOWN = "764cabcf-b745-4b3e-ae38-1200304cf45b"


async def test_caller_keys_are_required_and_isolated(own_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = own_emu  # changes emulator-wide config (time_scale)
    emu.emulator.config.time_scale = 0.05
    a, b = emu.new_key(balance=500), emu.new_key(balance=500)
    seen: list[str] = []
    with http_server("streamable-http", hosted_env(emu, tmp_path), "--auth", "caller-key") as sp:
        init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        hdrs = {"Accept": "application/json, text/event-stream"}
        for bad in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic Zm9vOmJhcg=="},
                    {"X-Api-Key": "sk-123"}):
            r = httpx.post(sp.url, json=init, headers={**hdrs, **bad})
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        health = httpx.get(f"{sp.base}/healthz")
        assert health.status_code == 200 and set(health.json()) == {"status", "version"}

        async with client_as(sp.url, a.value) as ca:
            sub = structured(await ca.call_tool("submit_generation", {
                "model": "nano-banana-2", "input": {"prompt": "tenant A"}}))
            rid = sub["request_id"]
            done = await ca.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 40})
            seen.append(text_of(done))
            assert structured(done)["status"] == "COMPLETED"
        async with client_as(sp.url, b.value, header="X-Api-Key") as cb:
            assert structured(await cb.call_tool("list_requests", {})) == {"count": 0, "requests": []}
            assert not [r for r in (await cb.list_resources()).resources if r.uri.startswith("clipia://requests/")]
            for tool, args in (("get_status", {}), ("get_result", {}), ("wait_for_result", {"timeout_s": 1})):
                theirs = await cb.call_tool(tool, {"request_id": rid, **args})
                unknown = await cb.call_tool(tool, {"request_id": UNKNOWN, **args})
                seen += [text_of(theirs), text_of(unknown)]
                assert theirs.is_error and unknown.is_error
                assert error_of(theirs)["code"] == error_of(unknown)["code"] \
                    == "not_found"
                assert theirs.content[0].text.replace(rid, "X") == unknown.content[0].text.replace(UNKNOWN, "X")
            from mcp.shared.exceptions import MCPError

            for uri in (f"clipia://requests/{rid}", f"clipia://requests/{UNKNOWN}"):
                with pytest.raises(MCPError) as info:
                    await cb.read_resource(uri)
                assert info.value.error.code == -32602
            async with cb.listen(resource_subscriptions=[f"clipia://requests/{rid}"]) as listen:
                assert list(listen.honored.resource_subscriptions or []) == []
            mine = structured(await cb.call_tool("get_balance", {}))
            assert mine["credits"] == 500
        async with client_as(sp.url, a.value) as ca:
            assert structured(await ca.call_tool("list_requests", {}))["count"] == 1
            async with ca.listen(resource_subscriptions=[f"clipia://requests/{rid}"]) as listen:
                assert list(listen.honored.resource_subscriptions or []) == [f"clipia://requests/{rid}"]
    logs = "".join(sp.stderr)
    for secret in (a.value, b.value):
        assert secret not in logs and all(secret not in s for s in seen)


async def test_static_tokens_with_a_server_key(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    env = server_env(emu, live_key, tmp_path, CLIPIA_MCP_TOKENS="tok-alpha-123456,tok-beta-654321")
    with http_server("streamable-http", env) as sp:
        r = httpx.post(sp.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                       headers={"Authorization": "Bearer tok-wrong", "Accept": "application/json"})
        assert r.status_code == 401
        async with client_as(sp.url, "tok-alpha-123456") as alpha:
            rid = structured(await alpha.call_tool("submit_generation", {
                "model": "nano-banana-2", "input": {"prompt": "alpha"}}))["request_id"]
            assert structured(await alpha.call_tool("get_status", {"request_id": rid}))["request_id"] == rid
        async with client_as(sp.url, "tok-beta-654321") as beta:
            # Same Clipia key underneath, but beta cannot reach alpha's request.
            res = await beta.call_tool("get_status", {"request_id": rid})
            assert res.is_error and error_of(res)["code"] == "not_found"
            assert structured(await beta.call_tool("list_requests", {}))["count"] == 0
    logs = "".join(sp.stderr)
    assert "tok-alpha-123456" not in logs and live_key.value not in logs


@contextlib.contextmanager
def _introspection() -> Iterator[str]:
    """An OAuth introspection endpoint: ``good-<who>`` tokens are active (subject ``who``), others are not."""

    class Introspect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            token = form.get("token", [""])[0]
            body = {"active": True, "sub": token.split("-")[1], "client_id": "agent", "scope": "generate read"} \
                if token.startswith("good-") else {"active": False}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    idp = HTTPServer(("127.0.0.1", 0), Introspect)
    threading.Thread(target=idp.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{idp.server_port}/introspect"
    finally:
        idp.shutdown()


def _oauth_env(emu: EmulatorServer, live_key: Key, tmp_path: Path, introspection: str, **extra: str) -> dict[str, str]:
    return server_env(emu, live_key, tmp_path, CLIPIA_MCP_OAUTH_INTROSPECTION_URL=introspection,
                      CLIPIA_MCP_OAUTH_ISSUER="https://auth.example.com",
                      CLIPIA_MCP_OAUTH_RESOURCE="https://mcp.example.com/mcp", **extra)


async def test_oauth_resource_server_mode(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    with _introspection() as introspection:
        env = _oauth_env(emu, live_key, tmp_path, introspection)
        with http_server("streamable-http", env) as sp:
            for headers in ({}, {"Authorization": "Bearer bad-token"}):
                r = httpx.post(sp.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                               headers={**headers, "Accept": "application/json, text/event-stream"})
                assert r.status_code == 401 and "resource_metadata=" in r.headers["www-authenticate"]
            meta = httpx.get(f"{sp.base}/.well-known/oauth-protected-resource/mcp")
            assert meta.status_code == 200 and meta.json()["resource"].startswith("https://mcp.example.com")
            async with client_as(sp.url, "good-alice") as alice:
                rid = structured(await alice.call_tool("submit_generation", {
                    "model": "nano-banana-2", "input": {"prompt": "oauth"}}))["request_id"]
                assert structured(await alice.call_tool("list_requests", {}))["count"] == 1
            async with client_as(sp.url, "good-bob") as bob:
                res = await bob.call_tool("get_status", {"request_id": rid})
                assert res.is_error and error_of(res)["code"] == "not_found"
                assert structured(await bob.call_tool("list_requests", {}))["count"] == 0


def test_oauth_sse_streams_are_capped_inside_the_token_check(emu: EmulatorServer, live_key: Key,
                                                            tmp_path: Path) -> None:
    """With every SSE session taken, a stream without a valid token still gets its 401 and the way to
    authorize (not a 503 that says how full the server is), and it never takes a place."""
    with _introspection() as introspection, contextlib.ExitStack() as held:
        env = _oauth_env(emu, live_key, tmp_path, introspection, CLIPIA_MCP_MAX_SESSIONS="1")
        sp = held.enter_context(http_server("sse", env))

        def open_stream(token: str | None) -> httpx.Response:
            headers = {"Accept": "text/event-stream", **({"Authorization": f"Bearer {token}"} if token else {})}
            return held.enter_context(httpx.stream("GET", sp.url, headers=headers, timeout=10))

        alice = open_stream("good-alice")
        assert alice.status_code == 200
        lines = alice.iter_lines()  # kept: a dropped iterator closes the stream, and her session with it
        next(line for line in lines if line.startswith("data:"))  # her session exists
        for token in (None, "bad-token"):
            refused = open_stream(token)
            assert refused.status_code == 401 and "resource_metadata=" in refused.headers["www-authenticate"]
        assert open_stream("good-bob").status_code == 503  # the one place is Alice's
