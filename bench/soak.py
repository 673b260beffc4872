"""Soak/load: M concurrent MCP clients over Streamable HTTP doing submit + wait for a bounded time.

Prints p50/p99 tool latency, the server's RSS over time (growth after warm-up), the error count (must be 0),
and, after the load, the per-call overhead paired against a bare mcp SDK server (``bare_server.py``) over the
same transport: clipia-mcp's journal-only ``list_requests`` vs the bare server's ``ping``, calls alternating,
plus both servers' RSS.

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

        # Overhead over a bare SDK server on the same transport, paired: journal-only call vs a trivial tool.
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_server.py")), "--port",
                                 str(bare_port)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            with anyio.fail_after(30):
                while True:
                    try:
                        httpx.get(f"http://127.0.0.1:{bare_port}/mcp")
                        break
                    except httpx.HTTPError:
                        await anyio.sleep(0.1)
            ours_ms, bare_ms = [], []
            async with Client(url) as ours, Client(f"http://127.0.0.1:{bare_port}/mcp") as base:
                for i in range(args.overhead_calls + 20):
                    for name in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                        t = time.perf_counter()
                        if name == "ours":
                            res = await ours.call_tool("list_requests", {"limit": 5})
                            assert not res.is_error, res
                        else:
                            await base.call_tool("ping", {})
                        if i >= 20:  # the first calls warm both
                            (ours_ms if name == "ours" else bare_ms).append(time.perf_counter() - t)
            rss_ours, rss_bare = rss_kb(server.pid), rss_kb(bare.pid)
        finally:
            bare.terminate()
            bare.wait(10)
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
    diffs = sorted(x - y for x, y in zip(ours_ms, bare_ms, strict=True))
    q = statistics.quantiles(diffs, n=4)
    print(f"  overhead over a bare SDK server (Streamable HTTP, {len(diffs)} paired calls): bare ping p50 "
          f"{statistics.median(bare_ms) * 1000:.2f} ms, list_requests p50 {statistics.median(ours_ms) * 1000:.2f} ms, "
          f"paired difference p50 {statistics.median(diffs) * 1000:+.2f} ms [IQR {q[0] * 1000:+.2f} to "
          f"{q[2] * 1000:+.2f}]")
    print(f"  RSS after the soak: clipia-mcp {rss_ours / 1024:.1f} MiB, bare SDK server {rss_bare / 1024:.1f} MiB")
    for e in errors[:5]:
        print("  error:", e)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--overhead-calls", type=int, default=200)
    anyio.run(main, p.parse_args())
