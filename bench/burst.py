"""A burst of N simultaneous submit_generation calls: errors, pending answers, time to resolve, paid twice?

clipia-mcp runs as shipped (a subprocess over stdio, journal on disk) against the emulator (its own
process, loopback) with a per-key limit; one MCP client fires N submit_generation calls at once, each with
its own idempotency key. A ``submit_pending`` answer (queued past the call's deadline) is not an error:
the client calls again with the same arguments after ``retry_after`` until the request id comes back.

Baseline in the same run, same limits, a fresh key: N simultaneous ``AsyncClipia.submit`` on one official
SDK client (its defaults: shared pool, its own retries).

    python bench/burst.py [--n 1000] [--rpm 3000] [--deadline 10] [--submit-delay 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from clipia import AsyncClipia
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from polling import Emu  # noqa: E402

MODEL = "nano-banana-2"
TIMEOUT = 300.0  # wall seconds per mode


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def error_code(result: Any) -> str:
    meta = result.meta or {}
    return str((meta.get("io.clipia/error") or {}).get("code", "unknown"))


async def ours(emu: Emu, n: int, deadline: float) -> dict[str, Any]:
    key, _ = emu.key()
    journal = Path(tempfile.mkdtemp()) / "journal.sqlite3"
    env = {**os.environ, "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base, "CLIPIA_MCP_JOURNAL": str(journal),
           "CLIPIA_MCP_DEADLINE": str(deadline), "CLIPIA_MCP_PREVIEWS": "off", "CLIPIA_MCP_POLL_MIN": "5",
           "CLIPIA_MCP_POLL_MAX": "30"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "clipia_mcp", "--log-level", "WARNING"],
                                   env=env)
    before = await emu.calls()
    resolved_at: dict[int, float] = {}
    rids: dict[int, str] = {}
    codes: Counter[str] = Counter()
    pending_answers = 0
    async with Client(params) as client:
        started = time.monotonic()

        async def one(i: int) -> None:
            nonlocal pending_answers
            args = {"model": MODEL, "input": {"prompt": f"burst {i}"}, "idempotency_key": f"burst-{i}-{started}"}
            while True:
                res = await client.call_tool("submit_generation", args)
                if not res.is_error:
                    rids[i] = res.structured_content["request_id"]
                    resolved_at[i] = time.monotonic() - started
                    return
                code = error_code(res)
                if code != "submit_pending":
                    codes[code] += 1
                    return
                pending_answers += 1
                retry = ((res.meta or {}).get("io.clipia/error") or {}).get("retry_after") or 1.0
                await anyio.sleep(min(float(retry), 5.0))

        await all_at_once(one, n)
        wall = time.monotonic() - started
    after = await emu.calls()
    return {"mode": "clipia-mcp (admission queue)", "n": n, "ok": len(rids), "errors": sum(codes.values()),
            "codes": dict(codes), "pending_answers": pending_answers, "distinct_ids": len(set(rids.values())),
            "upstream_submits": after.get("submit", 0) - before.get("submit", 0),
            "t50": pct(list(resolved_at.values()), 0.5), "t100": max(resolved_at.values(), default=float("nan")),
            "wall": wall}


async def all_at_once(one: Callable[[int], Awaitable[None]], n: int) -> None:
    """Start ``one(0..n-1)`` together and wait for all of them, at most TIMEOUT seconds."""
    with anyio.move_on_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)


async def naive(emu: Emu, n: int) -> dict[str, Any]:
    key, _ = emu.key()
    before = await emu.calls()
    ok: dict[int, str] = {}
    done_at: list[float] = []
    codes: Counter[str] = Counter()
    async with AsyncClipia(key, base_url=emu.base) as sdk:
        started = time.monotonic()

        async def one(i: int) -> None:
            try:
                res = await sdk.submit(MODEL, {"prompt": f"naive {i}"})
                ok[i] = res.request_id
                done_at.append(time.monotonic() - started)
            except Exception as exc:  # noqa: BLE001 - counted
                codes[getattr(exc, "code", None) or type(exc).__name__] += 1

        await all_at_once(one, n)
        wall = time.monotonic() - started
    after = await emu.calls()
    return {"mode": "naive SDK (N x AsyncClipia.submit)", "n": n, "ok": len(ok), "errors": sum(codes.values()),
            "codes": dict(codes), "pending_answers": 0, "distinct_ids": len(set(ok.values())),
            "upstream_submits": after.get("submit", 0) - before.get("submit", 0),
            "t50": pct(done_at, 0.5), "t100": max(done_at, default=float("nan")), "wall": wall}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rpm", type=int, default=3000, help="the key's limit per minute in the emulator")
    p.add_argument("--deadline", type=float, default=10.0, help="CLIPIA_MCP_DEADLINE of the server")
    p.add_argument("--submit-delay", type=float, default=0.05, help="emulator latency of one submit (s)")
    args = p.parse_args()
    emu = Emu()
    httpx.post(f"{emu.base}/_emulator/config", json={"rpm": args.rpm, "concurrency": 1_000_000,
                                                      "submit_delay": args.submit_delay})
    rows = []
    try:
        rows.append(anyio.run(naive, emu, args.n))
        rows.append(anyio.run(ours, emu, args.n, args.deadline))
    finally:
        emu.close()
    print(f"N={args.n} simultaneous submits; key limit {args.rpm}/min; emulator submit latency "
          f"{args.submit_delay * 1000:.0f} ms; server call deadline {args.deadline:g} s; load "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| mode | created | errors | submit_pending answers | distinct ids | upstream submit calls | "
          "created p50 (s) | all created (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['ok']} | {r['errors']} {r['codes'] or ''} | {r['pending_answers']} | "
              f"{r['distinct_ids']} | {r['upstream_submits']} | {r['t50']:.1f} | {r['t100']:.1f} |")


if __name__ == "__main__":
    main()
