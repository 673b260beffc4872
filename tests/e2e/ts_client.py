"""Driving tests/external/ts_client.mjs (the official TypeScript MCP SDK client) from pytest."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "external" / "ts_client.mjs"
SDK_DIR = Path(os.environ.get("CLIPIA_TS_SDK_DIR") or os.environ.get("CLIPIA_INSPECTOR_DIR")
               or Path(__file__).resolve().parents[2] / ".ci" / "node")
SDK_PACKAGE = SDK_DIR / "node_modules" / "@modelcontextprotocol" / "sdk" / "package.json"
NODE = shutil.which("node")


def require_ts_sdk() -> None:
    """Skip without Node or the SDK, except in CI (``CLIPIA_REQUIRE_NODE_TOOLS=1``), where that fails."""
    missing = "node is not on PATH" if NODE is None else (
        f"@modelcontextprotocol/sdk is not installed in {SDK_DIR}" if not SDK_PACKAGE.exists() else "")
    if not missing:
        return
    if os.environ.get("CLIPIA_REQUIRE_NODE_TOOLS"):
        pytest.fail(f"the TypeScript MCP SDK client is required here: {missing} (.ci/run installs it)")
    pytest.skip(f"{missing}; run .ci/run or npm install --prefix .ci/node @modelcontextprotocol/sdk@1")


def sdk_version() -> str:
    version: str = json.loads(SDK_PACKAGE.read_text())["version"]
    return version


class TsClient:
    """One ts_client.mjs process: connected on start, then one JSON answer per step."""

    def __init__(self, connect: dict[str, Any]) -> None:
        assert NODE is not None
        self.proc = subprocess.Popen(
            [NODE, str(SCRIPT), json.dumps(connect)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=str(SDK_DIR), env={**os.environ, "CLIPIA_TS_SDK_DIR": str(SDK_DIR)})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()
        self.hello = self._read()
        assert self.hello.get("connected"), self.hello

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _read(self, timeout: float = 90) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the TypeScript client did not answer in time:\n" + "".join(self.stderr)) from None
        if line is None:
            raise AssertionError("the TypeScript client exited:\n" + "".join(self.stderr))
        answer: dict[str, Any] = json.loads(line)
        return answer

    def step(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        """A step that must not throw in the client; its result."""
        answer = self.step(op, **fields)
        assert answer["ok"], answer
        result: dict[str, Any] = answer["result"]
        return result

    def call(self, name: str, args: dict[str, Any] | None = None, **opts: Any) -> dict[str, Any]:
        return self.ok("call", name=name, args=args or {}, **opts)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextmanager
def ts_client(connect: dict[str, Any]) -> Iterator[TsClient]:
    client = TsClient(connect)
    try:
        yield client
    finally:
        client.close()


def error_code(result: dict[str, Any]) -> str:
    """The code of an ``isError`` result as the TypeScript client received it (meta and text agree)."""
    assert result.get("isError") is True, result
    assert "structuredContent" not in result, result
    err = result["_meta"]["io.clipia/error"]
    assert result["content"][0]["text"].startswith(f"Error {err['code']}: "), result
    code: str = err["code"]
    return code
