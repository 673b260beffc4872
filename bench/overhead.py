"""Per-call overhead over stdio: a journal-only clipia-mcp call vs a trivial tool on a bare mcp SDK server.

Both servers run as subprocesses, each with one official SDK client (``mcp.Client``, which validates every
structured result against the tool's output schema); calls alternate between the two, so both see the same
load. clipia-mcp answers ``get_status`` of a finished request and ``list_requests`` (limit 5), both from the
on-disk journal with nothing upstream; the bare server answers ``ping``. Reported: p50 of each and the p50 of
the paired differences (a list answer is ~2.7 KB: most of its difference is the client parsing and validating it).

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
    calls = {"get_status": {"request_id": "00000000-0000-0000-0000-000000000001"}, "list_requests": {"limit": 5}}
    ours_ms: dict[str, list[float]] = {name: [] for name in calls}
    bare_ms: dict[str, list[float]] = {name: [] for name in calls}
    async with Client(ours) as c_ours, Client(bare) as c_bare:
        for _ in range(20):  # warm both (first-call imports, caches)
            for name, arguments in calls.items():
                await c_ours.call_tool(name, arguments)
            await c_bare.call_tool("ping", {})
        load = os.getloadavg()[0]
        for i in range(args.calls):
            for name, arguments in calls.items():
                for who in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
                    t = time.perf_counter()
                    if who == "ours":
                        res = await c_ours.call_tool(name, arguments)
                        ours_ms[name].append(time.perf_counter() - t)
                        assert not res.is_error and res.structured_content, res
                    else:
                        await c_bare.call_tool("ping", {})
                        bare_ms[name].append(time.perf_counter() - t)
    print(f"{args.calls} paired calls each over stdio, client-side output validation on; load {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| clipia-mcp call (journal only) | its p50 (ms) | bare ping p50 (ms) | paired difference p50 [IQR] (ms) |")
    print("|---|---|---|---|")
    for name in calls:
        a, b = ours_ms[name], bare_ms[name]
        diffs = sorted(x - y for x, y in zip(a, b, strict=True))
        q = statistics.quantiles(diffs, n=4)
        print(f"| {name} | {statistics.median(a) * 1000:.2f} | {statistics.median(b) * 1000:.2f} | "
              f"{statistics.median(diffs) * 1000:+.3f} [{q[0] * 1000:+.3f} to {q[2] * 1000:+.3f}] |")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=500)
    anyio.run(main, p.parse_args())
