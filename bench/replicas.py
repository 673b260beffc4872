"""1, 2 and 3 replicas on one PostgreSQL behind nginx, side by side in one run.

For each replica count: C concurrent stateless MCP clients (through nginx, round-robin) loop submit + wait for
a fixed time against the emulator (its own process). Reports generations/s, upstream calls per generation
(every call the emulator saw), wake-up latency (emulator's completion → the client's wait returns: includes
the poll schedule and the shared poll budget) p50/p99, store-to-client latency (the poller's write of the
terminal state → the waiting client, often on another replica, has its answer: NOTIFY, re-read, MCP response)
p50/p99, and each replica's RSS at the end. Needs PostgreSQL (initdb/pg_ctl) and nginx installed.

    python bench/replicas.py --clients 24 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from cluster import nginx  # noqa: E402
from mcp import Client  # noqa: E402
from pgserver import start_server  # noqa: E402
from polling import Emu  # noqa: E402
from procs import http_server  # noqa: E402


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def run(n: int, args: argparse.Namespace, emu: Emu, dsn: str, root: Path) -> dict[str, object]:
    key, _ = emu.key()
    env = {**os.environ, "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base, "CLIPIA_MCP_STORE": dsn,
           "CLIPIA_MCP_POLL_MIN": "0.05", "CLIPIA_MCP_POLL_MAX": "0.5", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000",
           "CLIPIA_MCP_DEDUP_WINDOW": "0", "CLIPIA_MCP_JOURNAL": str(root / f"unused-{n}.sqlite3")}
    with ExitStack() as stack:
        replicas = [stack.enter_context(http_server("streamable-http", env, "--log-level", "WARNING"))
                    for _ in range(n)]
        base = stack.enter_context(nginx([r.base.removeprefix("http://") for r in replicas], root / f"nginx-{n}",
                                         sticky=False))
        url = f"{base}/mcp"
        before = sum((await emu.calls()).values())
        done: list[float] = []
        wake: list[float] = []
        returned_at: dict[str, float] = {}
        errors = 0
        stop = time.monotonic() + args.seconds

        async def client(i: int) -> None:
            nonlocal errors
            async with Client(url) as c, httpx.AsyncClient(timeout=30) as h:
                j = 0
                while time.monotonic() < stop:
                    j += 1
                    try:
                        sub = await c.call_tool("submit_generation", {"model": "nano-banana-2",
                                                                      "input": {"prompt": f"r{n} c{i} #{j}"}})
                        rid = (sub.structured_content or {})["request_id"]
                        res = await c.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 30})
                        returned = time.time()
                        if res.is_error or (res.structured_content or {}).get("status") != "COMPLETED":
                            errors += 1
                            continue
                        done.append(returned)
                        returned_at[rid] = returned
                        wake.append(max(0.0, returned - await emu.completes_at(h, rid)))
                    except Exception:  # noqa: BLE001 - counted, the run goes on
                        errors += 1

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for i in range(args.clients):
                tg.start_soon(client, i)
        elapsed = time.monotonic() - started
        calls = sum((await emu.calls()).values()) - before
        rss = [rss_mib(r.proc.pid) for r in replicas]
    import psycopg

    with psycopg.connect(dsn) as conn:
        stored = dict(conn.execute("SELECT request_id, updated_at FROM requests WHERE status='COMPLETED'").fetchall())
    notify = [max(0.0, t - stored[rid]) for rid, t in returned_at.items() if rid in stored]
    return {"notify_p50_ms": pct(notify, 0.5), "notify_p99_ms": pct(notify, 0.99),
            "replicas": n, "generations": len(done), "errors": errors, "gen_per_s": len(done) / elapsed,
            "calls_per_gen": calls / max(1, len(done)), "wake_p50_ms": pct(wake, 0.5), "wake_p99_ms": pct(wake, 0.99),
            "rss_mib": rss}


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="clipia-bench-"))
    os.chmod(root, 0o755)
    pg_root = root / "pg"
    pg_root.mkdir()
    os.chmod(pg_root, 0o755)
    pg = start_server(pg_root)
    emu = Emu()
    rows = []
    try:
        for n in args.replicas:
            dsn = pg.new_database()
            rows.append(await run(n, args, emu, dsn, root))
            print(rows[-1], file=sys.stderr)
    finally:
        emu.close()
        pg.ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.clients} clients, {args.seconds:g} s each, nginx round-robin, one PostgreSQL, emulator process\n")
    print("| replicas | generations | errors | generations/s | upstream calls / generation | wake-up p50 (ms) "
          "| p99 (ms) | store→client p50 (ms) | p99 (ms) | RSS per replica (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rss = ", ".join(f"{x:.0f}" for x in r["rss_mib"])  # type: ignore[attr-defined]
        print(f"| {r['replicas']} | {r['generations']} | {r['errors']} | {r['gen_per_s']:.1f} | "
              f"{r['calls_per_gen']:.2f} | {r['wake_p50_ms']:.0f} | {r['wake_p99_ms']:.0f} | "
              f"{r['notify_p50_ms']:.0f} | {r['notify_p99_ms']:.0f} | {rss} |")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"\nmedian RSS: {statistics.median(x for r in rows for x in r['rss_mib']):.0f} MiB")  # type: ignore[attr-defined]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=24)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    anyio.run(main, p.parse_args())
