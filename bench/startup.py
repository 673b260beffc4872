"""Time from process start to the first protocol answer over stdio: clipia-mcp vs a bare mcp SDK server.

Measures both the 2025 handshake (``initialize``) and the 2026 ``server/discover``; each is the median of
several cold process starts, measured in the same run.

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
DISCOVER = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}


def first_answer(cmd: list[str], request: dict, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(request) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.kill()
    proc.wait()
    answer = json.loads(line)
    assert "result" in answer, answer
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    env = {**os.environ, "CLIPIA_API_KEY": "clipia_live_benchstartupkey000", "CLIPIA_BASE_URL": "http://127.0.0.1:9",
           "CLIPIA_MCP_JOURNAL": ":memory:"}
    targets = {
        "bare mcp SDK server": [sys.executable, str(HERE / "bare_server.py")],
        "clipia-mcp": [sys.executable, "-m", "clipia_mcp"],
        "clipia-mcp --sandbox": [sys.executable, "-m", "clipia_mcp", "--sandbox"],
    }
    print("| server | initialize p50 (ms) | server/discover p50 (ms) |")
    print("|---|---|---|")
    base = None
    for name, cmd in targets.items():
        init = statistics.median(first_answer(cmd, INIT, env) for _ in range(args.runs)) * 1000
        disc = statistics.median(first_answer(cmd, DISCOVER, env) for _ in range(args.runs)) * 1000
        base = base or init
        print(f"| {name} | {init:.0f} ({init / base:.2f}x) | {disc:.0f} |", flush=True)


if __name__ == "__main__":
    main()
