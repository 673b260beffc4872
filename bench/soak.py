"""Soak/load: M concurrent MCP clients over Streamable HTTP doing submit + wait for a bounded time.

Prints p50/p99 tool latency, the server's RSS over time (growth after warm-up), the error count (must be 0),
and the per-call overhead of the MCP layer: get_balance through MCP vs GET /v1/account with httpx, same run.

    python bench/soak.py --clients 20 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mcp import Client  # noqa: E402
from polling import Emu, free_port  # noqa: E402


def rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    emu = Emu()
    key, _ = emu.key()
    httpx.post(f"{emu.base}/_emulator/config", json={"rpm": 1_000_000, "time_scale": 0.01})
    port = free_port()
    journal = Path(tempfile.mkdtemp()) / "journal.sqlite3"  # on disk, as in production: rows are not RSS
    env = {**os.environ, "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base, "CLIPIA_MCP_JOURNAL": str(journal),
           "CLIPIA_MCP_POLL_MIN": "0.05", "CLIPIA_MCP_POLL_MAX": "0.5", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000",
           "CLIPIA_MCP_DEDUP_WINDOW": "0"}
    server = subprocess.Popen([sys.executable, "-m", "clipia_mcp", "--transport", "streamable-http", "--port",
                               str(port), "--log-level", "WARNING"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with anyio.fail_after(30):
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await anyio.sleep(0.1)
        latencies: dict[str, list[float]] = {"submit_generation": [], "wait_for_result": []}
        errors: list[str] = []
        rss: list[tuple[float, int]] = []
        stop = time.monotonic() + args.seconds
        started = time.monotonic()

        def sample() -> None:
            while time.monotonic() < stop:
                rss.append((time.monotonic() - started, rss_kb(server.pid)))
                time.sleep(1)

        threading.Thread(target=sample, daemon=True).start()

        async def worker(i: int) -> None:
            async with Client(url) as client:
                n = 0
                while time.monotonic() < stop:
                    n += 1
                    t = time.perf_counter()
                    sub = await client.call_tool("submit_generation", {
                        "model": "nano-banana-2", "input": {"prompt": f"soak {i}-{n}"}})
                    latencies["submit_generation"].append(time.perf_counter() - t)
                    if sub.is_error:
                        errors.append(sub.content[0].text)
                        continue
                    t = time.perf_counter()
                    res = await client.call_tool("wait_for_result", {
                        "request_id": sub.structured_content["request_id"], "timeout_s": 30,
                        "include_preview": False})
                    latencies["wait_for_result"].append(time.perf_counter() - t)
                    if res.is_error or res.structured_content.get("status") != "COMPLETED":
                        errors.append(res.content[0].text[:200])

        async with anyio.create_task_group() as tg:
            for i in range(args.clients):
                tg.start_soon(worker, i)

        # Overhead of the MCP layer: the same upstream call with and without it.
        direct, via_mcp = [], []
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as h, Client(url) as client:
            for _ in range(args.overhead_calls):
                t = time.perf_counter()
                (await h.get(f"{emu.base}/v1/account")).raise_for_status()
                direct.append(time.perf_counter() - t)
                t = time.perf_counter()
                await client.call_tool("get_balance", {})
                via_mcp.append(time.perf_counter() - t)
    finally:
        server.terminate()
        server.wait(10)
        emu.close()

    print(f"clients={args.clients} seconds={args.seconds} generations={len(latencies['wait_for_result'])} "
          f"errors={len(errors)}")
    for name, vals in latencies.items():
        print(f"  {name:<18} p50={pct(vals, 0.5):7.1f} ms  p99={pct(vals, 0.99):7.1f} ms  n={len(vals)}")
    warm = [kb for t, kb in rss if t >= args.seconds * 0.25]
    if warm:
        print(f"  server RSS: start {rss[0][1] / 1024:.1f} MiB, after warm-up {warm[0] / 1024:.1f} MiB, "
              f"end {warm[-1] / 1024:.1f} MiB, growth after warm-up {(warm[-1] - warm[0]) / 1024:+.1f} MiB")
        step = max(1, len(rss) // 12)
        print("  RSS samples (s: MiB): " + ", ".join(f"{t:.0f}:{kb / 1024:.0f}" for t, kb in rss[::step]))
    d, m = statistics.median(direct) * 1000, statistics.median(via_mcp) * 1000
    print(f"  overhead: GET /v1/account direct p50 {d:.2f} ms, get_balance via MCP p50 {m:.2f} ms, "
          f"MCP layer adds {m - d:.2f} ms per call")
    for e in errors[:5]:
        print("  error:", e)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--overhead-calls", type=int, default=200)
    anyio.run(main, p.parse_args())
