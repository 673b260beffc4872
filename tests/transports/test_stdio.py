"""transports/stdio: a real stdio server process answers every line it cannot read instead of leaving the
client's request waiting forever; the server carries on serving afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import server_command, server_env

from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key
from clipia_mcp.transports.stdio import error_for

pytestmark = pytest.mark.anyio
INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def call(rid: Any, arguments: str) -> str:
    """A tools/call line with ``arguments`` spliced in as raw JSON text (so it can be what json.dumps never makes)."""
    head = '{"jsonrpc":"2.0","id":' + json.dumps(rid)
    return head + ',"method":"tools/call","params":{"name":"estimate_cost","arguments":' + arguments + "}}"


#: (line, the id and error code of its answer)
UNREADABLE = [
    ("not json", None, -32700),
    (b"\xff\xfe{}".decode("utf-8", "surrogateescape"), None, -32700),  # not UTF-8
    (call(11, '{"model":"nano-banana-2","input":{"prompt":"\\ud800 x"}}'), 11, -32700),  # lone surrogate
    (call(12, '{"model":"nano-banana-2","input":{"d":' + "[" * 300 + "]" * 300 + "}}"), 12, -32700),  # too deep
    (call("r13", '{"model":"nano-banana-2","limit":' + "9" * 5000 + "}"), "r13", -32700),  # 5,000 digits
    ('{"jsonrpc":"2.0","id":14,"method":"ping","params":[]}', 14, -32600),
    ('{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}', None, -32700),  # an id that cannot be written back
    ("[]", None, -32600),
]


async def test_every_unreadable_line_is_answered_and_the_server_goes_on(emu: EmulatorServer, live_key: Key,
                                                                         tmp_path: Path) -> None:
    proc = await anyio.open_process(server_command(), env=server_env(emu, live_key, tmp_path),
                                    stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    lines = [json.dumps(INIT), '{"jsonrpc":"2.0","method":"notifications/initialized"}',
             *(line for line, _, _ in UNREADABLE), '{"jsonrpc":"2.0","id":99,"method":"ping"}']
    answers: list[dict[str, Any]] = []
    buffer = b""
    try:
        with anyio.fail_after(30):
            await proc.stdin.send(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
            while not answers or answers[-1].get("id") != 99:
                buffer += await proc.stdout.receive()
                *done, buffer = buffer.split(b"\n")
                answers += [json.loads(d) for d in done if d.strip()]
    finally:
        proc.kill()
        await proc.wait()
    assert answers[0]["id"] == 0 and "result" in answers[0]
    errors = answers[1:-1]
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(rid, code) for _, rid, code in UNREADABLE]
    assert answers[-1] == {"jsonrpc": "2.0", "id": 99, "result": {}}


def test_an_error_that_is_not_a_parse_error_is_still_a_parse_error_answer() -> None:
    answer = error_for(RuntimeError("decode failed"))
    assert (answer.id, answer.error.code) == (None, -32700)
