"""Process start -> initialize answered -> tools/list answered over stdio: clipia-mcp vs a bare mcp SDK server.

Paired and interleaved: each round starts the bare server (bench/bare_server.py) and clipia-mcp one after
the other (order alternating), so both see the same machine load; the figure is the median of the per-round
ratios with its interquartile range. clipia-mcp runs as in production: a live key (pointing at a closed
loopback port; nothing is called), the journal on disk.

    python bench/startup.py [--pairs 30] [--importtime] [--instructions]

``--instructions`` also counts the CPU instructions each server executes from its start to the tools/list
answer, under valgrind's callgrind (about a minute per server): unlike wall time, the count does not move
with the machine's load or clock speed, so the ratio is exact for this interpreter and these packages.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import callgrind  # bench/callgrind.py, beside this script

HERE = Path(__file__).resolve().parent
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def first_answers(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawn to the initialize answer and to the tools/list answer."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(INIT) + "\n")
        proc.stdin.flush()
        assert "result" in json.loads(proc.stdout.readline())
        init = time.perf_counter() - started
        proc.stdin.write(json.dumps(INITIALIZED) + "\n" + json.dumps(LIST) + "\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        assert answer["result"]["tools"], answer
        return init, time.perf_counter() - started
    finally:
        proc.kill()
        proc.wait()


def instructions_to_answer(cmd: list[str], env: dict[str, str]) -> int:
    """CPU instructions ``cmd`` executes until its tools/list answer (callgrind, dumped at that moment)."""
    out = Path(tempfile.mkdtemp())
    proc = subprocess.Popen(callgrind.command(out, cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**env, **callgrind.ENV}, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(INIT) + "\n")
        proc.stdin.flush()
        assert "result" in json.loads(proc.stdout.readline())
        proc.stdin.write(json.dumps(INITIALIZED) + "\n" + json.dumps(LIST) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["result"]["tools"]
        callgrind.control(proc.pid, "--dump")
    finally:
        proc.kill()
        proc.wait()
    return callgrind.first_dump(out)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=30)
    p.add_argument("--instructions", action="store_true", help="also count instructions to the tools/list answer "
                                                                 "(valgrind callgrind; about a minute each)")
    p.add_argument("--importtime", action="store_true", help="also list modules clipia-mcp loads beyond the bare "
                                                               "server (python -X importtime)")
    args = p.parse_args()
    data = Path(tempfile.mkdtemp())
    env = {**os.environ, "CLIPIA_API_KEY": "clipia_live_benchstartupkey000", "CLIPIA_BASE_URL": "http://127.0.0.1:9",
           "CLIPIA_MCP_JOURNAL": str(data / "journal.sqlite3"), "CLIPIA_MCP_PREVIEWS": "off"}
    # Both start from bytecode, as an installed package does (pip compiles site-packages; an editable checkout
    # under PYTHONDONTWRITEBYTECODE would otherwise recompile every changed module on every start).
    compileall.compile_dir(str(HERE.parent / "clipia_mcp"), quiet=1)
    bare = [sys.executable, str(HERE / "bare_server.py")]
    # As a desktop config starts it: the installed console script (``python -m clipia_mcp`` adds runpy).
    script = Path(sys.executable).with_name("clipia-mcp")
    ours = [sys.executable, *([str(script)] if script.exists() else ["-m", "clipia_mcp"]), "--log-level", "WARNING"]
    first_answers(ours, env)  # create the journal and warm the OS caches for both
    first_answers(bare, env)
    rows: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}
    load = os.getloadavg()[0]
    for i in range(args.pairs):
        order = [("bare", bare), ("ours", ours)] if i % 2 == 0 else [("ours", ours), ("bare", bare)]
        for name, cmd in order:
            rows[name].append(first_answers(cmd, env))
    init_ratio = [o[0] / b[0] for o, b in zip(rows["ours"], rows["bare"], strict=True)]
    list_ratio = [o[1] / b[1] for o, b in zip(rows["ours"], rows["bare"], strict=True)]
    b_init, b_list = (statistics.median(x[k] for x in rows["bare"]) * 1000 for k in (0, 1))
    o_init, o_list = (statistics.median(x[k] for x in rows["ours"]) * 1000 for k in (0, 1))
    print(f"{args.pairs} interleaved pairs; load {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| server | initialize p50 (ms) | tools/list answered p50 (ms) |")
    print("|---|---|---|")
    print(f"| bare mcp SDK server | {b_init:.0f} | {b_list:.0f} |")
    print(f"| clipia-mcp (journal on disk) | {o_init:.0f} | {o_list:.0f} |")
    q1, med, q3 = quartiles(list_ratio)
    i1, imed, i3 = quartiles(init_ratio)
    print(f"paired ratio clipia-mcp / bare: tools/list answered {med:.3f}x [IQR {q1:.3f}-{q3:.3f}], "
          f"initialize {imed:.3f}x [IQR {i1:.3f}-{i3:.3f}]")
    if args.instructions:
        b_ir, o_ir = instructions_to_answer(bare, env), instructions_to_answer(ours, env)
        print(f"instructions to the tools/list answer: bare {b_ir / 1e9:.3f} G, clipia-mcp {o_ir / 1e9:.3f} G, "
              f"ratio {o_ir / b_ir:.3f}x")
    if args.importtime:
        def modules(cmd: list[str]) -> set[str]:
            proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], input=json.dumps(INIT) + "\n",
                                  capture_output=True, text=True, env=env, timeout=30)
            return {line.split("|")[2].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:") and line.count("|") == 2 and "imported package" not in line}
        extra = sorted(modules(ours) - modules(bare))
        roots = sorted({m.split(".")[0] for m in extra})
        print(f"modules loaded beyond the bare server: {len(extra)} (top-level: {', '.join(roots)})")


if __name__ == "__main__":
    main()
