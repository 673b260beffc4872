"""Upstream calls per generation and detection latency: our tracker vs the naive per-wait poll loop.

For N = 1, 100, 1000 concurrent generations, measured in the same run against the
emulator (in its own process, on loopback):

* ours: ClipiaService.wait() for every request — one shared tracker, adaptive
  interval, global poll budget (half the account's rate limit), Retry-After honoured;
* ours+webhook: the same, with signed webhooks delivered to a receiver (polling only as a fallback);
* naive: the official SDK's ``AsyncClipia.subscribe`` per generation (a 1 s poll loop each).

Time is scaled: every duration (render time, poll interval, rate-limit window) runs
SCALE times faster than in reality, and results are reported in real-world seconds.

    python bench/polling.py            # N = 1, 100, 1000
    python bench/polling.py --n 1 100  # a subset
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import anyio
import httpx
from clipia import AsyncClipia

from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.service import QueueService
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.providers.clipia.client import ClipiaClient
from clipia_mcp.store.sqlite import SqliteStore

SCALE = 0.05  # 1 real second = 0.05 s here
ACCOUNT_RPM = 120  # the documented default per-key limit
MODE_TIMEOUT = 240.0  # wall seconds per mode; unfinished generations count as errors
MODEL = "seedance-2-fast-t2v"  # 4 s queue + 40 s render in real-world seconds


def debug(msg: str) -> None:
    if os.environ.get("BENCH_DEBUG"):
        print(f"DEBUG {time.monotonic():.1f} {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Emu:
    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clipia_mcp", "--log-level", "WARNING", "emulator", "--port", str(self.port),
             "--time-scale", str(SCALE)],
            stdout=subprocess.PIPE, stderr=None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # the key line: we create our own keys below
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.base}/_emulator/stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # rate limit window is 60 s in the emulator: scale the limit so the per-window budget matches reality
        httpx.post(f"{self.base}/_emulator/config", json={"rpm": int(ACCOUNT_RPM / SCALE), "concurrency": 100_000})

    def key(self) -> tuple[str, str]:
        data = httpx.post(f"{self.base}/_emulator/keys", json={"balance": 10_000_000}).json()
        return data["key"], data["webhook_secret"]

    async def calls(self) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=60) as c:
            calls: dict[str, int] = (await c.get(f"{self.base}/_emulator/stats")).json()["calls"]
        return calls

    async def completes_at(self, client: httpx.AsyncClient, rid: str) -> float:
        value: float = (await client.get(f"{self.base}/_emulator/requests/{rid}")).json()["completes_wall"]
        return value

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def polls(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(after.get(k, 0) - before.get(k, 0) for k in ("status", "result"))


def summarize(name: str, n: int, calls: int, latencies: list[float], errors: int, wall: float) -> dict[str, Any]:
    real = [x / SCALE for x in latencies]
    done = len(latencies)
    return {
        "mode": name, "n": n, "completed": done, "errors": errors,
        "calls_per_gen": calls / max(1, done),
        "lat_p50_s": statistics.median(real) if real else float("nan"),
        "lat_p95_s": sorted(real)[int(0.95 * (len(real) - 1))] if real else float("nan"),
        "wall_s": wall,
    }


async def run_ours(emu: Emu, n: int, webhook: bool) -> dict[str, Any]:
    key, secret = emu.key()
    settings = Settings(
        poll_min_interval=1.0 * SCALE, poll_max_interval=10.0 * SCALE,
        poll_budget_rpm=int(ACCOUNT_RPM / 2 / SCALE), retry_base_delay=0.5 * SCALE, retry_after_cap=30 * SCALE,
        http_timeout=30,
    )
    journal = SqliteStore(None)
    tracker = Tracker(journal, min_interval=settings.poll_min_interval, max_interval=settings.poll_max_interval,
                      budget_rpm=settings.poll_budget_rpm)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    api = ClipiaClient(ApiKey(key), base_url=emu.base, settings=settings,
                       transport=httpx.AsyncHTTPTransport(limits=limits))
    caller = Caller(clipia=api, owner="bench")
    receiver_url = None
    receiver_server = None
    if webhook:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        from clipia_mcp.transports.webhooks import WebhookReceiver

        receiver: WebhookReceiver | None = None  # set once the service exists
        port = free_port()
        receiver_url = f"http://127.0.0.1:{port}/webhooks/clipia"

        async def deliver(request: Any) -> Any:
            assert receiver is not None
            return await receiver.handle(request)

        app = Starlette(routes=[Route("/webhooks/clipia", deliver, methods=["POST"])])
        receiver_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        # Webhooks make polling a fallback: poll rarely.
        tracker.min_interval, tracker.max_interval = 10.0 * SCALE, 30.0 * SCALE
    service = QueueService(replace(settings, dedup_window=0), journal, tracker, webhook_url=receiver_url)
    if webhook:
        receiver = WebhookReceiver(secret, service)
    latencies: list[float] = []
    errors = 0
    async with anyio.create_task_group() as tg:
        service.bind(tg)
        if receiver_server is not None:
            tg.start_soon(receiver_server.serve)
            while not receiver_server.started:
                await anyio.sleep(0.01)
        records = []
        sem = anyio.Semaphore(50)
        if os.environ.get("BENCH_DEBUG"):
            async def watchdog() -> None:
                await anyio.sleep(25)
                from collections import Counter
                print("WATCHDOG records", len(records), "errors", errors,
                      Counter(i.record.status for i in tracker._items.values()),  # noqa: SLF001
                      "polling", sum(i.polling for i in tracker._items.values()),  # noqa: SLF001
                      "budget", sum(b.granted for b in tracker._budgets.values()),  # noqa: SLF001
                      file=sys.stderr, flush=True)
            tg.start_soon(watchdog)
        debug("submitting")
        before = await emu.calls()

        async def submit(i: int) -> None:
            nonlocal errors
            async with sem:
                try:
                    records.append((await service.submit(caller, MODEL, {"prompt": f"bench {i}"})).record)
                except Exception:  # noqa: BLE001 - counted
                    errors += 1

        async with anyio.create_task_group() as subs:
            for i in range(n):
                subs.start_soon(submit, i)
        started = time.monotonic()
        notified: dict[str, float] = {}

        async def wait(rid: str) -> None:
            nonlocal errors
            try:
                rec = await service.wait(caller, rid, timeout=3600)
                if rec.status == "COMPLETED":
                    notified[rid] = time.time()
                else:
                    errors += 1
            except Exception:  # noqa: BLE001 - counted
                errors += 1

        with anyio.move_on_after(MODE_TIMEOUT):
            async with anyio.create_task_group() as waits:
                for r in records:
                    waits.start_soon(wait, r.request_id)
        errors = n - len(notified)  # failed submits, failed waits and waits cut off by MODE_TIMEOUT
        wall = time.monotonic() - started
        debug("waits done")
        calls = polls(before, await emu.calls())
        debug("calls fetched")
        async with httpx.AsyncClient(timeout=60) as ctl:
            for rid, at in notified.items():
                latencies.append(at - await emu.completes_at(ctl, rid))
        debug("latencies fetched")
        if receiver_server is not None:
            receiver_server.should_exit = True
            if os.environ.get("BENCH_DEBUG"):
                print(receiver, file=sys.stderr)
        tg.cancel_scope.cancel()
    await api.aclose()
    journal.close()
    return summarize("ours+webhook" if webhook else "ours", n, calls, latencies, errors, wall)


async def run_naive(emu: Emu, n: int) -> dict[str, Any]:
    key, _ = emu.key()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    latencies: list[float] = []
    errors = 0
    before = await emu.calls()
    started = time.monotonic()
    async with AsyncClipia(key, base_url=emu.base, transport=httpx.AsyncHTTPTransport(limits=limits)) as sdk, \
            httpx.AsyncClient(timeout=60) as ctl:

        async def one(i: int) -> None:
            nonlocal errors
            try:
                res = await sdk.subscribe(MODEL, {"prompt": f"naive {i}"}, poll_interval=1.0 * SCALE,
                                          timeout=3600)
                at = time.time()
                latencies.append(at - await emu.completes_at(ctl, res.request_id))
            except Exception:  # noqa: BLE001 - counted: the SDK gives up after 4 transient errors in a row
                errors += 1

        with anyio.move_on_after(MODE_TIMEOUT):
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
        errors = n - len(latencies)
    wall = time.monotonic() - started
    # The naive loop's submit calls are excluded: count only status + result, as for ours.
    return summarize("naive (SDK subscribe, 1 s)", n, polls(before, await emu.calls()), latencies, errors, wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[1, 100, 1000])
    args = parser.parse_args()
    emu = Emu()
    rows = []
    try:
        for n in args.n:
            for mode in ("ours", "ours+webhook", "naive"):
                if mode == "naive":
                    rows.append(anyio.run(run_naive, emu, n))
                else:
                    rows.append(anyio.run(run_ours, emu, n, mode == "ours+webhook"))
                r = rows[-1]
                print(f"  {r['mode']:<28} N={r['n']:<5} done={r['completed']:<5} errors={r['errors']:<4} "
                      f"calls/gen={r['calls_per_gen']:7.1f}  latency p50={r['lat_p50_s']:6.2f}s "
                      f"p95={r['lat_p95_s']:6.2f}s  wall={r['wall_s']:.1f}s", flush=True)
    finally:
        emu.close()
    print(f"\nAccount limit {ACCOUNT_RPM} rpm (our budget {ACCOUNT_RPM // 2} rpm); render ~44 s; "
          f"times in real-world seconds (run at {1 / SCALE:g}x speed).")
    print("| mode | N | completed | errors | upstream calls / generation | detection p50 (s) | p95 (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['n']} | {r['completed']} | {r['errors']} | {r['calls_per_gen']:.1f} | "
              f"{r['lat_p50_s']:.2f} | {r['lat_p95_s']:.2f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
