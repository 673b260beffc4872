"""Fan-out: from the server receiving a webhook delivery to every waiter's finished tool answer.

Two shapes, both with the journal on disk (as in production) and deliveries signed and verified:

* ``1000 completions``: 1,000 generations, one waiter each, and their 1,000 deliveries arriving together;
* ``1000 waiters``: 1,000 waiters on one generation, one delivery.

A delivery enters through the shipped receiver (``WebhookReceiver.handle``: size-limited body, signature
check, JSON, ``QueueService.apply_delivery``); a waiter is ``QueueService.wait`` followed by building the
tool result (``request_result``). Latency = waiter's answer built - its delivery's arrival at the receiver
(the handler's start: deliveries are handled one after another, as a server's event loop runs them; each in
a task made with ``loop.create_task``, as uvicorn makes one per HTTP request). The last
column is stricter: from the whole burst's arrival (the first handler's start) to each answer, which counts
the time a delivery spends queued behind the others.

Baselines in the same run: the engine as it was before (journal write and listeners awaited before waiters
wake, one delivery after another), reproduced by the tracker's inline mode; and the floor: the same tasks (one
per delivery, one per waiter) with nothing between them but a future per waiter, what the event loop alone
costs on this machine (no server on it can answer sooner).

    python bench/fanout.py [--n 1000] [--rounds 3] [--instructions]

``--instructions`` also counts the CPU instructions of one burst of 1,000 completions under valgrind's
callgrind (zeroed when the deliveries are made, counted until the last handler returned and from then until
the last answer was built; a minute per engine): unlike the milliseconds, the count does not move with the machine's
load or clock speed. Deliveries are handled before any waiter runs (each wakes its waiter behind every
delivery already queued), so the p99 is about 1,000 x the larger of the two phases' costs per completion.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import callgrind  # bench/callgrind.py, beside this script
from starlette.requests import Request

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.core.upstream import ResultResponse, StatusResponse, SubmitResponse
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.heap import settle_heap
from clipia_mcp.engine.service import QueueService
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.mcp.results import request_result
from clipia_mcp.providers.base import Capabilities
from clipia_mcp.store.sqlite import SqliteStore
from clipia_mcp.transports.webhooks import WebhookReceiver

SECRET = "whsec_bench"
OUTPUT = {"images": [{"url": "https://cdn.example/out.png", "width": 1024, "height": 1024}]}


class Upstream:
    """Never polled (with webhooks the loop does not poll); answers the one confirming result fetch."""

    name = "clipia"
    capabilities = Capabilities()
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def check_input(self, model: str, data: dict[str, Any]) -> None: ...

    async def submit(self, model: str, input: dict[str, Any], *, webhook_url: str | None = None,  # noqa: A002
                     idempotency_key: str | None = None) -> SubmitResponse:
        raise AssertionError

    async def status(self, request_id: str, *, retry: bool = True) -> StatusResponse:
        raise AssertionError("polled")

    async def result(self, request_id: str, *, retry: bool = True) -> ResultResponse:
        self.calls["result"] += 1
        return ResultResponse(request_id=request_id, status="COMPLETED", output=OUTPUT, cost=4)

    async def delete(self, request_id: str, *, delete_input: bool = False) -> None: ...

    async def aclose(self) -> None: ...


def signed(request_id: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    raw = json.dumps({"request_id": request_id, "status": "OK",
                      "payload": {"model": "nano-banana-2", "output": OUTPUT, "cost": 4}}).encode()
    t = int(time.time())
    sig = hmac.new(SECRET.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, [(b"content-type", b"application/json"), (b"x-clipia-signature", f"t={t},v1={sig}".encode()),
                 (b"x-clipia-timestamp", str(t).encode()), (b"content-length", str(len(raw)).encode())]


def request_for(raw: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError

    return Request({"type": "http", "method": "POST", "path": "/webhooks/clipia", "headers": headers,
                    "query_string": b""}, receive)


ENGINES = ("before", "now", "floor")
_ENGINE_NAMES = {"before": "write, notify, then wake (before)", "now": "wake first, batched writes (now)",
                 "floor": "floor: a future per waiter, nothing else"}


async def run(shape: str, n: int, engine: str) -> tuple[list[float], float, list[float]]:
    """One burst: (each waiter's latency, the burst's CPU seconds, each answer's time from the burst's arrival).

    ``engine``: ``now`` as shipped; ``before``, the tracker's inline mode (the engine as it was); ``floor``, the
    same tasks (one per delivery, made as uvicorn makes them, one per waiter) with nothing between them but a
    future per waiter: the event loop's own cost on this machine, which no server on it can go below.
    """
    if engine == "floor":
        return await _burst(shape, n, None)
    store = SqliteStore(Path(tempfile.mkdtemp()) / "journal.sqlite3")
    tracker = Tracker(store, webhook_fallback=3600)
    service = QueueService(Settings(), store, tracker)
    caller = Caller(clipia=Upstream(), owner="bench")  # type: ignore[arg-type]
    settle_heap()  # as open_engine does once the server is up (once per process: the first run)
    now = time.time()
    rids = [f"req-{i}" for i in range(n if shape == "completions" else 1)]
    for rid in rids:
        await store.upsert(RequestRecord(request_id=rid, owner="bench", model="nano-banana-2",
                                         status="IN_PROGRESS", created_at=now, updated_at=now))
    try:
        async with anyio.create_task_group() as tg:
            if engine == "now":
                service.bind(tg)  # background writer: wake first, write after
            for rid in rids:
                record = await store.get("bench", rid)
                assert record is not None
                tracker.track(caller.clipia, record, webhook=True)
            result = await _burst(shape, n, (service, caller))
            await tracker.flush()
            tg.cancel_scope.cancel()
    finally:
        store.close()
    return result


async def _burst(shape: str, n: int, engine: tuple[QueueService, Caller] | None
                 ) -> tuple[list[float], float, list[float]]:
    rids = [f"req-{i}" for i in range(n if shape == "completions" else 1)]
    receiver = WebhookReceiver(SECRET, engine[0]) if engine is not None else None
    done: dict[str, asyncio.Future[None]] = {}  # the floor's one future per request
    arrived: dict[str, float] = {}
    latencies: list[float] = []
    answered: list[float] = []
    ready = anyio.Event()
    started = 0

    async def waiter(rid: str) -> None:
        nonlocal started
        started += 1
        if started == n:
            ready.set()
        if engine is None:
            await done.setdefault(rid, asyncio.get_running_loop().create_future())
        else:
            service, caller = engine
            record = await service.wait(caller, rid, timeout=60)
            await request_result(record, media_http=None, include_preview=False)  # type: ignore[arg-type]
        answered.append(time.perf_counter())
        latencies.append(answered[-1] - arrived[rid])
        if len(answered) == n:
            _callgrind("--dump")  # the answers' phase ends with the last answer (the journal write comes after)

    async def floor(rid: str, request: Request) -> None:
        await request.receive()  # the body read, as any handler must
        done[rid].set_result(None)

    handled = 0
    async with anyio.create_task_group() as waits:
        for i in range(n):
            waits.start_soon(waiter, rids[i % len(rids)])
        await ready.wait()
        await anyio.wait_all_tasks_blocked()
        bodies = [signed(rid) for rid in rids]
        _callgrind("--zero")
        cpu = time.process_time()

        async def deliver(rid: str, raw: bytes, headers: list[tuple[bytes, bytes]]) -> None:
            nonlocal handled
            arrived[rid] = time.perf_counter()
            if receiver is None:
                await floor(rid, request_for(raw, headers))
            else:
                response = await receiver.handle(request_for(raw, headers))
                assert response.status_code == 200, response.body
            handled += 1
            if handled == len(rids):
                _callgrind("--dump")  # the deliveries' phase; the waiters' answers follow

        # Arriving together, each in its own task made as uvicorn makes one per request (loop.create_task).
        loop = asyncio.get_running_loop()
        handlers = [loop.create_task(deliver(rid, raw, headers))
                    for rid, (raw, headers) in zip(rids, bodies, strict=True)]
        await asyncio.gather(*handlers)
    cpu = time.process_time() - cpu  # CPU of the whole fan-out (this process), less sensitive to load
    burst = min(arrived.values())
    return latencies, cpu, [t - burst for t in answered]


#: Set by the child that runs under callgrind (``--instructions``) for its measured burst.
UNDER_CALLGRIND = False


def _callgrind(action: str) -> None:
    if UNDER_CALLGRIND:
        callgrind.control(os.getpid(), action)


def instructions_per_completion(n: int, engine: str) -> tuple[float, float]:
    """Instructions of one burst of ``n`` completions together (after a warm-up burst), per completion: until the
    last delivery was handled, and from then until the last answer."""
    out = Path(tempfile.mkdtemp())
    code = (f"import anyio, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import fanout; "
            f"anyio.run(fanout.run, 'completions', {n}, {engine!r}); fanout.UNDER_CALLGRIND = True; "
            f"anyio.run(fanout.run, 'completions', {n}, {engine!r})")
    subprocess.run(callgrind.command(out, [sys.executable, "-c", code]), check=True, capture_output=True,
                   env={**os.environ, **callgrind.ENV})
    handlers, waiters = callgrind.dumps(out)
    return handlers / n, waiters / n


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def cpu_times() -> tuple[int, int]:
    """(all, steal) jiffies of this machine so far: steal is time the hypervisor gave our vCPUs to others."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[7]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--instructions", action="store_true", help="also count instructions per completion (callgrind)")
    args = p.parse_args()
    total, steal = cpu_times()
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rounds} interleaved rounds, "
          "latency = delivery received -> waiter's tool answer built (ms)")
    print("| shape | engine | p50 | p99 | max | CPU until the last answer | p99 from the burst's arrival |")
    print("|---|---|---|---|---|---|---|")
    for shape in ("completions", "waiters"):
        results: dict[str, list[float]] = {e: [] for e in ENGINES}
        p99s: dict[str, list[float]] = {e: [] for e in ENGINES}
        cpus: dict[str, list[float]] = {e: [] for e in ENGINES}
        bursts: dict[str, list[float]] = {e: [] for e in ENGINES}
        for _ in range(args.rounds):
            for engine in ENGINES:
                lat, cpu, from_burst = anyio.run(run, shape, args.n, engine)
                assert len(lat) == args.n, len(lat)
                results[engine].extend(lat)
                bursts[engine].extend(from_burst)
                p99s[engine].append(pct(lat, 0.99))
                cpus[engine].append(cpu)
        for engine in ENGINES:
            lat = results[engine]
            label = f"{args.n} completions together" if shape == "completions" else f"{args.n} waiters on one"
            print(f"| {label} | {_ENGINE_NAMES[engine]} | {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} "
                  f"(rounds: {', '.join(f'{x:.0f}' for x in p99s[engine])}) | {max(lat) * 1000:.1f} | "
                  f"{min(cpus[engine]) * 1000:.0f} ms | {pct(bursts[engine], 0.99):.1f} |")

    if args.instructions:
        counts = {engine: instructions_per_completion(args.n, engine) for engine in ENGINES}
        print(f"instructions per completion, {args.n} together (callgrind; deliveries, then answers):",
              "; ".join(f"{engine} {sum(c) / 1000:.1f} k ({c[0] / 1000:.1f} k + {c[1] / 1000:.1f} k)"
                        for engine, c in counts.items()))
    total2, steal2 = cpu_times()
    print(f"CPU steal during the run: {100 * (steal2 - steal) / max(1, total2 - total):.1f}% of this machine's "
          "CPU time (the hypervisor running others on our vCPUs: it lands on the wall-clock figures, not on CPU)")


if __name__ == "__main__":
    main()
