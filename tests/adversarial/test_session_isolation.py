"""Streamable HTTP sessions between tenants (token mode, a real server process, raw HTTP as an attacker
sends it): a session id works only with the credential that opened it, ``Last-Event-ID`` replays only the
session's own events, and one tenant cannot take every session."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from attack_helpers import TOKENS, hosted_env
from conftest import server_env
from procs import http_server

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key

VERSION = "2025-11-25"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
PONG = '{"jsonrpc":"2.0","id":1,"result":{}}'


def _tenants(emu: EmulatorServer, key: Key, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A token-mode server environment: TOKENS are two tenants of the operator's key."""
    return server_env(emu, key, tmp_path, CLIPIA_MCP_TOKENS=",".join(TOKENS), **extra)


def _as(token: str, session: str | None = None) -> dict[str, str]:
    h = {**HEADERS, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": VERSION}
    return {**h, "Mcp-Session-Id": session} if session else h


def _open(url: str, token: str) -> httpx.Response:
    return httpx.post(url, headers=_as(token), timeout=10, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})


def _session(url: str, token: str) -> str:
    init = _open(url, token)
    assert init.status_code == 200, init.text
    sid = init.headers["mcp-session-id"]
    httpx.post(url, headers=_as(token, sid), timeout=10, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return sid


def _events(text: str) -> Iterator[dict[str, str]]:
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name] = fields.get(name, "") + value.strip()
        if fields:
            yield fields


def _call(url: str, token: str, sid: str, method: str, rid: int = 1) -> list[dict[str, str]]:
    res = httpx.post(url, headers=_as(token, sid), timeout=10,
                     json={"jsonrpc": "2.0", "id": rid, "method": method, "params": {}})
    assert res.status_code == 200, res.text
    return list(_events(res.text))


def _replay(url: str, token: str, sid: str, last_event_id: str) -> list[dict[str, Any]]:
    """The messages a reconnect with ``Last-Event-ID`` replays: up to the new priming event the SDK sends
    once the replay is done, or to the end of the response when there was nothing to replay."""
    messages: list[dict[str, Any]] = []
    with httpx.stream("GET", url, headers={**_as(token, sid), "Last-Event-ID": last_event_id}, timeout=10) as res:
        assert res.status_code == 200
        block: list[str] = []
        for line in res.iter_lines():
            if line:
                block.append(line)
                continue
            fields = next(_events("\n".join(block)), {})
            block = []
            if not fields.get("data"):
                break  # the resumed stream's priming event: the replay is over
            messages.append(json.loads(fields["data"]))
    return messages


def test_another_tenants_session_id_answers_like_an_unknown_one(emu: EmulatorServer, live_key: Key,
                                                                tmp_path: Path) -> None:
    with http_server("streamable-http", _tenants(emu, live_key, tmp_path)) as sp:
        a, b = TOKENS
        sid = _session(sp.url, a)
        listen = httpx.get(sp.url, headers={**_as(b, sid), "Accept": "text/event-stream"}, timeout=10)
        ping = httpx.post(sp.url, headers=_as(b, sid), timeout=10, json=PING)
        end = httpx.delete(sp.url, headers=_as(b, sid), timeout=10)
        invented = httpx.post(sp.url, headers=_as(b, "f" * 32), timeout=10, json=PING)
        assert [listen.status_code, ping.status_code, end.status_code] == [404, 404, 404]
        assert ping.json() == invented.json()  # nothing tells B the session exists
        # A's session was neither read nor ended.
        assert _call(sp.url, a, sid, "ping")[-1]["data"] == PONG


def test_a_session_is_bound_to_the_caller_key_that_opened_it(emu: EmulatorServer, tmp_path: Path) -> None:
    a, b = emu.new_key(balance=100).value, emu.new_key(balance=100).value
    with http_server("streamable-http", hosted_env(emu, tmp_path), "--auth", "caller-key") as sp:
        sid = _session(sp.url, a)
        assert _session(sp.url, b)  # B is a confirmed caller with a session of its own
        assert httpx.delete(sp.url, headers=_as(b, sid), timeout=10).status_code == 404
        assert httpx.post(sp.url, headers=_as(b, sid), timeout=10, json=PING).status_code == 404
        assert _call(sp.url, a, sid, "ping")[-1]["data"] == PONG


def test_last_event_id_replays_only_the_sessions_own_events(emu: EmulatorServer, live_key: Key,
                                                            tmp_path: Path) -> None:
    with http_server("streamable-http", _tenants(emu, live_key, tmp_path)) as sp:
        a, b = TOKENS
        b_sid = _session(sp.url, b)
        b_events = _call(sp.url, b, b_sid, "ping", rid=1)  # B's stream "1": its priming event, then its answer
        a_sid = _session(sp.url, a)
        a_events = _call(sp.url, a, a_sid, "tools/list", rid=1)  # A's stream "1", stored after B's
        assert '"tools"' in a_events[-1]["data"]
        # B resuming its own stream gets its own answer, not A's answer on the same JSON-RPC id.
        assert _replay(sp.url, b, b_sid, b_events[0]["id"]) == [{"jsonrpc": "2.0", "id": 1, "result": {}}]
        # B presenting A's event id in its own session: nothing, as for an unknown id.
        assert _replay(sp.url, b, b_sid, a_events[0]["id"]) == []
        assert _replay(sp.url, b, b_sid, "999999") == []
        # A still resumes its own.
        assert "tools" in _replay(sp.url, a, a_sid, a_events[0]["id"])[0]["result"]


def test_one_tenant_cannot_take_every_session(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    env = _tenants(emu, live_key, tmp_path, CLIPIA_MCP_MAX_SESSIONS="5", CLIPIA_MCP_MAX_SESSIONS_PER_CALLER="2")
    with http_server("streamable-http", env) as sp:
        a, b = TOKENS
        first, _ = _session(sp.url, a), _session(sp.url, a)
        assert [_open(sp.url, a).status_code for _ in range(3)] == [503, 503, 503]
        assert _open(sp.url, b).status_code == 200  # B is not locked out by A
        assert httpx.delete(sp.url, headers=_as(a, first), timeout=10).status_code == 200
        assert _open(sp.url, a).status_code == 200  # A's closed session freed its share


def test_an_sse_session_takes_messages_only_from_the_tenant_that_opened_it(emu: EmulatorServer, live_key: Key,
                                                                           tmp_path: Path) -> None:
    with http_server("sse", _tenants(emu, live_key, tmp_path)) as sp:
        a, b = TOKENS
        with httpx.stream("GET", sp.url, headers={"Authorization": f"Bearer {a}", "Accept": "text/event-stream"},
                          timeout=10) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()  # kept: a dropped iterator closes the stream, and the session with it
            endpoint = next(line.partition(":")[2].strip() for line in lines if line.startswith("data:"))
            post = sp.base + endpoint
            theirs = httpx.post(post, headers={"Authorization": f"Bearer {b}"}, json=PING, timeout=10)
            mine = httpx.post(post, headers={"Authorization": f"Bearer {a}"}, json=INIT_FOR_SSE, timeout=10)
        assert (theirs.status_code, theirs.text) == (404, "Could not find session")
        assert mine.status_code == 202


def test_one_tenant_cannot_take_every_sse_session(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    """Each open GET /sse stream is a session: A's third is refused while B still gets one, the total cap
    holds for everyone, and a closed stream frees its place."""
    env = _tenants(emu, live_key, tmp_path, CLIPIA_MCP_MAX_SESSIONS="3", CLIPIA_MCP_MAX_SESSIONS_PER_CALLER="2")
    with http_server("sse", env) as sp, contextlib.ExitStack() as streams:
        a, b = TOKENS

        def stream(token: str) -> int:
            opened = httpx.stream("GET", sp.url, timeout=10, headers={
                "Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
            res = opened.__enter__()
            if res.status_code != 200:
                opened.__exit__(None, None, None)  # a refusal holds nothing
                return res.status_code
            streams.callback(opened.__exit__, None, None, None)
            lines = res.iter_lines()  # held open until its endpoint event came: the session exists
            next(line for line in lines if line.startswith("data:"))
            kept.append((res, lines))
            return 200

        kept: list[Any] = []
        assert [stream(a), stream(a), stream(a)] == [200, 200, 503]
        assert stream(b) == 200  # B is not locked out by A
        assert stream(b) == 503  # 3 open: the total cap
        kept[0][0].close()
        deadline = time.monotonic() + 10  # the server sees the close through its disconnect listener
        while stream(a) != 200:
            assert time.monotonic() < deadline, "A's closed stream never freed its share"
            time.sleep(0.02)  # a poll interval: the server shows no event for the release


INIT_FOR_SSE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
