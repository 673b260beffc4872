"""Upstream calls per generation and detection latency: our engine vs the naive per-wait poll loop.

For N concurrent generations on one rate-limited key (120 rpm), measured in the same run against the
emulator (in its own process, on loopback):

* ours: QueueService.submit (admission queue) then QueueService.wait for each request — one shared tracker,
  ETA schedule, per-key poll budget (half the account's limit, read from RateLimit-*), Retry-After honoured;
* ours+webhook: the engine as shipped with a public URL and a secret (``webhook_fallback`` at its shipped value),
  signed webhooks delivered to the shipped receiver; polling is only the slow fallback;
* naive: the official SDK's ``AsyncClipia.subscribe`` per generation (a 1 s poll loop each), with a connection
  pool as large as N and its Retry-After compressed like every other duration here;
* single: N waiters on ONE generation (ours: N ``wait`` calls; naive: N ``status`` loops at 1 s).

Each waiter starts as soon as its own submit returns; the submit phase (until the last submit is accepted)
and the wait phase are reported separately. Detection p50 is reported beside the bound the budget allows:
with N generations sharing B polls/s each is polled at best every N/B s, so mean detection >= N/(2B).

Time is scaled: every duration (render time, poll interval, rate-limit window, Retry-After) runs
1/SCALE times faster than in reality, and results are reported in real-world seconds.

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

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import SubmitPending
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


class ScaledRetryAfter(httpx.AsyncBaseTransport):
    """The naive client's transport: Retry-After compressed by SCALE, like every other duration in this run."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        raw = response.headers.get("retry-after")
        if raw is not None:
            try:
                response.headers["retry-after"] = f"{float(raw) * SCALE:.3f}"
            except ValueError:
                pass
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def summarize(name: str, n: int, calls: int, latencies: list[float], errors: int, wall: float,
              submit_phase: float = float("nan"), bound: float = float("nan")) -> dict[str, Any]:
    real = [x / SCALE for x in latencies]
    done = len(latencies)
    return {
        "mode": name, "n": n, "completed": done, "errors": errors,
        "calls_per_gen": calls / max(1, done),
        "lat_p50_s": statistics.median(real) if real else float("nan"),
        "lat_p95_s": sorted(real)[int(0.95 * (len(real) - 1))] if real else float("nan"),
        "wall_s": wall, "submit_phase_s": submit_phase / SCALE, "bound_s": bound,
    }


async def run_ours(emu: Emu, n: int, webhook: bool) -> dict[str, Any]:
    key, secret = emu.key()
    # The shipped defaults, every duration scaled; the budget is left to the account's RateLimit-Limit.
    settings = Settings(
        poll_min_interval=C.POLL_MIN_INTERVAL * SCALE, poll_max_interval=C.POLL_MAX_INTERVAL * SCALE,
        poll_budget_rpm=int(C.POLL_BUDGET_RPM / SCALE), retry_base_delay=C.RETRY_BASE_DELAY * SCALE,
        retry_after_cap=C.RETRY_AFTER_CAP * SCALE, http_timeout=30, call_deadline=C.CALL_DEADLINE * SCALE,
        webhook_fallback_interval=C.WEBHOOK_FALLBACK_INTERVAL * SCALE,
    )
    journal = SqliteStore(None)
    tracker = Tracker(journal, min_interval=settings.poll_min_interval, max_interval=settings.poll_max_interval,
                      budget_rpm=settings.poll_budget_rpm, webhook_fallback=settings.webhook_fallback_interval)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    api = ClipiaClient(ApiKey(key), base_url=emu.base, settings=settings,
                       transport=httpx.AsyncHTTPTransport(limits=limits), max_connections=200)
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
        started = time.monotonic()
        submitted_at: list[float] = []
        notified: dict[str, float] = {}

        async def one(i: int) -> None:
            """Submit (again after submit_pending, as an agent would), then wait at once."""
            nonlocal errors
            try:
                while True:
                    try:
                        sub = await service.submit(caller, MODEL, {"prompt": f"bench {i}"},
                                                   idempotency_key=f"bench-{n}-{i}-{started}")
                        break
                    except SubmitPending as exc:
                        await anyio.sleep(exc.retry_after * SCALE if exc.retry_after else 1.0 * SCALE)
                records.append(sub.record)
                submitted_at.append(time.monotonic() - started)
                rec = await service.wait(caller, sub.record.request_id, timeout=3600)
                if rec.status == "COMPLETED":
                    notified[rec.request_id] = time.time()
            except Exception:  # noqa: BLE001 - counted
                errors += 1

        with anyio.move_on_after(MODE_TIMEOUT):
            async with anyio.create_task_group() as waits:
                for i in range(n):
                    waits.start_soon(one, i)
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
    adm = service.admission.for_client(api)
    print(f"    [{'ours+webhook' if webhook else 'ours'} N={n}] upstream calls by op {dict(api.calls)}; admission "
          f"admitted={adm.admitted} expired={adm.expired}; 429 holds until "
          f"{max(0.0, api.rate_limit.blocked_until - time.monotonic()):.1f}s from now", flush=True)
    budget = tracker.budget_for(api).rate
    return summarize("ours+webhook" if webhook else "ours", n, calls, latencies, errors, wall,
                     max(submitted_at, default=float("nan")), n / (2 * budget * SCALE))


async def run_naive(emu: Emu, n: int) -> dict[str, Any]:
    key, _ = emu.key()
    limits = httpx.Limits(max_connections=max(100, n), max_keepalive_connections=max(100, n))
    latencies: list[float] = []
    errors = 0
    before = await emu.calls()
    started = time.monotonic()
    transport = ScaledRetryAfter(httpx.AsyncHTTPTransport(limits=limits))
    async with AsyncClipia(key, base_url=emu.base, transport=transport) as sdk, \
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
    return summarize("naive (SDK subscribe, 1 s)", n, polls(before, await emu.calls()), latencies, errors, wall,
                     bound=n / (2 * ACCOUNT_RPM / 2 / 60))


async def run_single(emu: Emu, n: int, naive: bool) -> dict[str, Any]:
    """N waiters on one generation: upstream status/result calls in total (the single-flight claim)."""
    key, _ = emu.key()
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60) as ctl:
        if naive:
            limits = httpx.Limits(max_connections=max(100, n), max_keepalive_connections=max(100, n))
            async with AsyncClipia(key, base_url=emu.base,
                                   transport=ScaledRetryAfter(httpx.AsyncHTTPTransport(limits=limits))) as sdk:
                rid = (await sdk.submit(MODEL, {"prompt": "one for all"})).request_id
                before = await emu.calls()

                async def loop() -> None:
                    while True:
                        try:
                            if (await sdk.status(rid)).is_terminal:
                                await sdk.result(rid)
                                latencies.append(time.time() - await emu.completes_at(ctl, rid))
                                return
                        except Exception:  # noqa: BLE001 - a naive loop keeps trying
                            pass
                        await anyio.sleep(1.0 * SCALE)

                with anyio.move_on_after(MODE_TIMEOUT):
                    async with anyio.create_task_group() as tg:
                        for _ in range(n):
                            tg.start_soon(loop)
        else:
            settings = Settings(poll_min_interval=C.POLL_MIN_INTERVAL * SCALE,
                                poll_max_interval=C.POLL_MAX_INTERVAL * SCALE,
                                poll_budget_rpm=int(C.POLL_BUDGET_RPM / SCALE),
                                retry_after_cap=C.RETRY_AFTER_CAP * SCALE)
            journal = SqliteStore(None)
            tracker = Tracker(journal, min_interval=settings.poll_min_interval,
                              max_interval=settings.poll_max_interval, budget_rpm=settings.poll_budget_rpm)
            api = ClipiaClient(ApiKey(key), base_url=emu.base, settings=settings)
            caller = Caller(clipia=api, owner="bench")
            service = QueueService(settings, journal, tracker)
            async with anyio.create_task_group() as tg:
                service.bind(tg)
                rid = (await service.submit(caller, MODEL, {"prompt": "one for all"})).record.request_id
                before = await emu.calls()

                async def wait() -> None:
                    rec = await service.wait(caller, rid, timeout=3600)
                    if rec.status == "COMPLETED":
                        latencies.append(time.time() - await emu.completes_at(ctl, rid))

                with anyio.move_on_after(MODE_TIMEOUT):
                    async with anyio.create_task_group() as waits:
                        for _ in range(n):
                            waits.start_soon(wait)
                tg.cancel_scope.cancel()
            await api.aclose()
            journal.close()
    calls = polls(before, await emu.calls())
    row = summarize(f"{n} waiters on one, {'naive (SDK status loop, 1 s)' if naive else 'ours'}", n, calls,
                    latencies, n - len(latencies), 0.0)
    row["calls_per_gen"] = float(calls)  # all calls for the one generation
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--single", type=int, default=100, help="waiters on one generation (0: skip)")
    parser.add_argument("--modes", nargs="+", default=["ours", "ours+webhook", "naive"])
    args = parser.parse_args()
    emu = Emu()
    rows = []

    def show(r: dict[str, Any]) -> None:
        print(f"  {r['mode']:<44} N={r['n']:<5} done={r['completed']:<5} errors={r['errors']:<4} "
              f"calls/gen={r['calls_per_gen']:7.1f}  p50={r['lat_p50_s']:6.2f}s (bound {r['bound_s']:.1f}s) "
              f"p95={r['lat_p95_s']:6.2f}s  submit phase={r['submit_phase_s']:.1f}s  wall={r['wall_s']:.1f}s",
              flush=True)

    try:
        if args.single:
            for naive in (False, True):
                rows.append(anyio.run(run_single, emu, args.single, naive))
                show(rows[-1])
        for n in args.n:
            for mode in args.modes:
                if mode == "naive":
                    rows.append(anyio.run(run_naive, emu, n))
                else:
                    rows.append(anyio.run(run_ours, emu, n, mode == "ours+webhook"))
                show(rows[-1])
    finally:
        emu.close()
    print(f"\nAccount limit {ACCOUNT_RPM} rpm (our poll budget: half of it); render ~44 s; times in real-world "
          f"seconds (run at {1 / SCALE:g}x speed); load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    print("| mode | N | completed | errors | upstream calls / generation | detection p50 (s) | bound N/(2B) (s) "
          "| p95 (s) | submit phase (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['n']} | {r['completed']} | {r['errors']} | {r['calls_per_gen']:.1f} | "
              f"{r['lat_p50_s']:.2f} | {r['bound_s']:.1f} | {r['lat_p95_s']:.2f} | {r['submit_phase_s']:.1f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
