"""Fault benchmark: what an agent experiences under each fault, against a real server process.

For each fault (HTML 200, 503 burst, 429 storm, slow API, drop after create, disk full, kill -9), N agents
each want one generation. An agent calls ``submit_generation`` with the same arguments until it gets a
request id (retrying every transient error, after ``retry_after`` when given), then ``wait_for_result``
until the request is COMPLETED. The emulator (in this process, over loopback) counts what it created.

* **lost**: paid generations (created upstream) whose agent never got the finished result;
* **double charges**: generations created upstream beyond one per agent;
* **max call**: the longest single tool call, against the call deadline (``CLIPIA_MCP_DEADLINE``) plus
  the 1 s grace ``run_tool`` allows; a host timing calls out at 60 s never sees a longer one.

    python bench/faults.py                 # every fault, 4 agents each, deadline 5 s
    python bench/faults.py --only kill-9 --agents 8

Prints a Markdown table (the README's "Failure modes" section has one run of it).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from clipia_mcp.sandbox import Emulator, EmulatorConfig, EmulatorServer, Fault
from clipia_mcp.sandbox.state import Key

GRACE = 1.0
MODEL = "nano-banana-2"
AGENT_BUDGET = 90.0  # seconds an agent keeps trying before it gives up


@dataclass
class Outcome:
    fault: str
    agents: int
    completed: int = 0
    durations: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    created: int = 0
    lost: int = 0
    double: int = 0


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str


@contextmanager
def server(env: dict[str, str], fsize: int | None = None) -> Iterator[Server]:
    def limit() -> None:  # "disk full": the process may not grow any file past this size
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    cmd = [sys.executable, "-m", "clipia_mcp", "--transport", "streamable-http", "--port", "0",
           "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit)  # noqa: PLW1509
    found = threading.Event()
    box: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if os.environ.get("BENCH_DEBUG"):
                sys.stderr.write(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                box.append(m.group(1))
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(30):
        proc.kill()
        raise RuntimeError("server did not start")
    base = box[0].rsplit("/", 1)[0]
    for _ in range(200):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield Server(proc, box[0])
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Agent:
    """One agent wanting one generation, through whatever server is current."""

    def __init__(self, n: int, fault: str, out: Outcome, current: Callable[[], str]) -> None:
        self.args = {"model": MODEL, "input": {"prompt": f"bench {fault} agent {n}"}}
        self.out = out
        self.current = current
        self.request_id: str | None = None
        self.done = False

    async def call(self, client: Client, tool: str, args: dict[str, Any]) -> Any:
        started = time.monotonic()
        try:
            return await client.call_tool(tool, args)
        finally:
            self.out.durations.append(time.monotonic() - started)

    def note(self, result: Any) -> float:
        err = (result.meta or {}).get("io.clipia/error", {})
        code = err.get("code", "?")
        self.out.errors[code] = self.out.errors.get(code, 0) + 1
        return float(err.get("retry_after") or 0.3)

    async def run(self) -> None:
        give_up = time.monotonic() + AGENT_BUDGET
        while not self.done and time.monotonic() < give_up:
            try:
                async with Client(self.current()) as client:
                    await self.steps(client, give_up)
            except Exception:  # noqa: BLE001 - the server was killed under us: reconnect
                await anyio.sleep(0.2)

    async def steps(self, client: Client, give_up: float) -> None:
        while self.request_id is None and time.monotonic() < give_up:
            res = await self.call(client, "submit_generation", self.args)
            if res.is_error:
                # An error that names the request (e.g. created, but the journal failed) is enough to go on.
                self.request_id = (res.meta or {}).get("io.clipia/error", {}).get("request_id")
                await anyio.sleep(min(5.0, self.note(res)))
                continue
            self.request_id = (res.structured_content or {})["request_id"]
        while self.request_id is not None and not self.done and time.monotonic() < give_up:
            res = await self.call(client, "wait_for_result", {"request_id": self.request_id, "timeout_s": 30})
            if res.is_error:
                await anyio.sleep(min(5.0, self.note(res)))
                continue
            if (res.structured_content or {}).get("status") == "COMPLETED":
                self.done = True


@dataclass
class Scenario:
    name: str
    faults: list[Fault] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    fsize: int | None = None
    kill: bool = False
    #: faults are lifted after this many seconds (None: they stay)
    lift_after: float | None = None


def scenarios(deadline: float) -> list[Scenario]:
    return [
        Scenario("html-200", [Fault(route="*", kind="html", status=200, probability=0.3, times=None)]),
        Scenario("503-burst", [Fault(route="*", status=503, code="service_unavailable", times=None)],
                 lift_after=10.0),
        Scenario("429-storm", [Fault(route="*", status=429, code="rate_limit_exceeded", retry_after="30",
                                     times=None)], lift_after=10.0),
        Scenario("slow-api", [Fault(route="*", kind="delay", seconds=deadline * 1.6, times=None)],
                 env={"CLIPIA_MCP_HTTP_TIMEOUT": str(deadline * 3)}, lift_after=15.0),
        Scenario("drop-after-create", [Fault(route="submit", kind="drop", times=None)], lift_after=8.0),
        Scenario("disk-full", fsize=96 * 1024),
        Scenario("kill-9", kill=True),
    ]


async def run_scenario(sc: Scenario, emu: EmulatorServer, agents: int, deadline: float) -> Outcome:
    key: Key = emu.new_key(balance=1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix=f"faults-{sc.name}-"))
    env = {**os.environ, "CLIPIA_API_KEY": key.value, "CLIPIA_BASE_URL": emu.base_url,
           "CLIPIA_MCP_JOURNAL": str(tmp / "journal.sqlite3"), "CLIPIA_MCP_DEADLINE": str(deadline),
           "CLIPIA_MCP_POLL_MIN": "0.05", "CLIPIA_MCP_POLL_MAX": "0.5", "CLIPIA_MCP_POLL_BUDGET_RPM": "6000",
           "CLIPIA_MCP_HTTP_TIMEOUT": "10", **sc.env}
    out = Outcome(sc.name, agents)
    urls: list[str] = []
    for fault in sc.faults:
        emu.emulator.faults.add(fault)
    started = time.monotonic()
    with server(env, sc.fsize) as first:
        urls.append(first.url)
        crew = [Agent(n, sc.name, out, lambda: urls[-1]) for n in range(agents)]
        async with anyio.create_task_group() as tg:
            for agent in crew:
                tg.start_soon(agent.run)
            if sc.lift_after is not None:
                await anyio.sleep(sc.lift_after)
                emu.emulator.faults.clear()
            if sc.kill:
                while not any(a.request_id for a in crew) and time.monotonic() - started < 30:
                    await anyio.sleep(0.05)
                first.proc.kill()  # kill -9 with submits and waits in flight
                first.proc.wait()
                with server(env) as second:
                    urls.append(second.url)
                    while not all(a.done for a in crew) and time.monotonic() - started < AGENT_BUDGET + 10:
                        await anyio.sleep(0.1)
                    tg.cancel_scope.cancel()
    emu.emulator.faults.clear()
    for agent in crew:
        prompt = agent.args["input"]["prompt"]
        made = [r for r in emu.emulator.requests.values() if r.key == key.value and r.input.get("prompt") == prompt]
        out.created += len(made)
        out.double += max(0, len(made) - 1)
        if made and not agent.done:
            out.lost += 1
        out.completed += agent.done
    return out


async def main(args: argparse.Namespace) -> None:
    emu = EmulatorServer(Emulator(EmulatorConfig(time_scale=0.01, webhook_base_delay=0.01, rpm=1_000_000)))
    emu.start_in_thread()
    try:
        rows = []
        for sc in scenarios(args.deadline):
            if args.only and sc.name not in args.only:
                continue
            out = await run_scenario(sc, emu, args.agents, args.deadline)
            rows.append(out)
            print(f"# {out.fault}: {out.completed}/{out.agents} completed, errors {out.errors}", file=sys.stderr)
        print(f"\n{args.agents} agents per fault, call deadline {args.deadline:g} s (+{GRACE:g} s grace)\n")
        print("| fault | completed | created upstream | lost | double charges | max tool call | errors seen |")
        print("|---|---|---|---|---|---|---|")
        for o in rows:
            worst = max(o.durations, default=0.0)
            mark = "ok" if worst <= args.deadline + GRACE else "OVER"
            errors = ", ".join(f"{k} x{v}" for k, v in sorted(o.errors.items())) or "-"
            print(f"| {o.fault} | {o.completed}/{o.agents} | {o.created} | {o.lost} | {o.double} | "
                  f"{worst:.1f} s ({mark}) | {errors} |")
    finally:
        emu.stop_thread()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--deadline", type=float, default=5.0)
    ap.add_argument("--only", action="append", default=[])
    anyio.run(main, ap.parse_args())
