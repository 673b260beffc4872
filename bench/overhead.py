"""Per-call overhead over stdio: a journal-only clipia-mcp call vs a trivial tool on a bare mcp SDK server.

Both servers run as subprocesses, each with one official SDK client (``mcp.Client``, which validates every
structured result against the tool's output schema); calls alternate between the two, so both see the same
load. clipia-mcp answers ``list_requests`` (limit 5, from the on-disk journal, nothing upstream); the bare
server answers ``ping``. Reported: p50 of each and the p50 of the paired differences.

    python bench/overhead.py [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.settings import ApiKey
from clipia_mcp.store.sqlite import SqliteStore

HERE = Path(__file__).resolve().parent
KEY = "clipia_live_benchoverheadkey00"


async def main(args: argparse.Namespace) -> None:
    journal = Path(tempfile.mkdtemp()) / "journal.sqlite3"
    store = SqliteStore(journal)  # five finished requests of this key to list
    now = time.time()
    for i in range(5):
        await store.upsert(RequestRecord(
            request_id=f"00000000-0000-0000-0000-00000000000{i}", owner=ApiKey(KEY).fingerprint, model="nano-banana-2",
            input={"prompt": f"a red fox {i}"}, status="COMPLETED", cost=4, created_at=now, updated_at=now,
            completed_at=now, output={"images": [{"url": f"https://cdn.example/{i}.png"}]}))
    store.close()
    env = {**os.environ, "CLIPIA_API_KEY": KEY, "CLIPIA_BASE_URL": "http://127.0.0.1:9",
           "CLIPIA_MCP_JOURNAL": str(journal), "CLIPIA_MCP_PREVIEWS": "off"}
    ours = StdioServerParameters(command=sys.executable, args=["-m", "clipia_mcp", "--log-level", "WARNING"], env=env)
    bare = StdioServerParameters(command=sys.executable, args=[str(HERE / "bare_server.py")], env=env)
    a: list[float] = []
    b: list[float] = []
    async with Client(ours) as c_ours, Client(bare) as c_bare:
        for _ in range(20):  # warm both (first-call imports, caches)
            await c_ours.call_tool("list_requests", {"limit": 5})
            await c_bare.call_tool("ping", {})
        load = os.getloadavg()[0]
        for i in range(args.calls):
            for name in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                t = time.perf_counter()
                if name == "ours":
                    res = await c_ours.call_tool("list_requests", {"limit": 5})
                    a.append(time.perf_counter() - t)
                    assert not res.is_error and res.structured_content["count"] == 5, res
                else:
                    await c_bare.call_tool("ping", {})
                    b.append(time.perf_counter() - t)
    diffs = sorted(x - y for x, y in zip(a, b, strict=True))
    q = statistics.quantiles(diffs, n=4)
    print(f"{args.calls} paired calls over stdio, client-side output validation on; load {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| server | call | p50 (ms) | p90 (ms) |")
    print("|---|---|---|---|")
    for label, call, xs in (("bare mcp SDK server", "ping", b), ("clipia-mcp", "list_requests (journal)", a)):
        xs = sorted(xs)
        print(f"| {label} | {call} | {statistics.median(xs) * 1000:.2f} | {xs[int(0.9 * len(xs))] * 1000:.2f} |")
    print(f"paired difference p50 {statistics.median(diffs) * 1000:+.3f} ms [IQR {q[0] * 1000:+.3f} to "
          f"{q[2] * 1000:+.3f}]")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=500)
    anyio.run(main, p.parse_args())
