"""A scripted eval client: runs a batch of generations through mcp.Client and writes a results table.

    python examples/eval_batch.py                         # spawns `clipia-mcp --sandbox` over stdio
    python examples/eval_batch.py --url http://127.0.0.1:8000/mcp
    python examples/eval_batch.py --out results.md --jobs jobs.json

jobs.json is a list of {"model": ..., "input": {...}}; a small default batch is built in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

DEFAULT_JOBS: list[dict[str, Any]] = [
    {"model": "nano-banana-2", "input": {"prompt": "a lighthouse at dawn", "aspect_ratio": "16:9"}},
    {"model": "seedance-2-fast-t2v", "input": {"prompt": "waves rolling onto a beach", "duration": 5}},
    {"model": "gemini-3-1-flash-tts", "input": {"prompt": "Hello from the eval harness.", "voice": "Kore"}},
    {"model": "nano-banana-2", "input": {"prompt": "this one fails [[fail]]"}},
]


async def run_job(client: Client, job: dict[str, Any], max_wait: float) -> dict[str, Any]:
    started = time.monotonic()
    row: dict[str, Any] = {"model": job["model"], "prompt": str(job["input"].get("prompt", ""))[:40]}
    sub = await client.call_tool("submit_generation", {"model": job["model"], "input": job["input"]})
    if sub.is_error:
        return {**row, "status": "ERROR", "error": (sub.structured_content or {}).get("error", {}).get("code"),
                "seconds": round(time.monotonic() - started, 2)}
    rid = (sub.structured_content or {})["request_id"]
    data: dict[str, Any] = {}
    while time.monotonic() - started < max_wait:
        res = await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 25,
                                                         "include_preview": False})
        data = res.structured_content or {}
        if res.is_error or data.get("done"):
            break
    return {**row, "request_id": rid, "status": data.get("status", "ERROR"), "cost": data.get("cost"),
            "files": len(data.get("media", [])), "seconds": round(time.monotonic() - started, 2)}


def table(rows: list[dict[str, Any]]) -> str:
    cols = ["model", "prompt", "status", "cost", "files", "seconds", "request_id"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = json.loads(Path(args.jobs).read_text()) if args.jobs else DEFAULT_JOBS
    target: Any = args.url or StdioServerParameters(command=sys.executable, args=["-m", "clipia_mcp", "--sandbox"],
                                                   env=None)
    async with Client(target) as client:
        rows: list[dict[str, Any]] = [{} for _ in jobs]

        async def one(i: int) -> None:
            rows[i] = await run_job(client, jobs[i], args.max_wait)

        async with anyio.create_task_group() as tg:
            for i in range(len(jobs)):
                tg.start_soon(one, i)
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", help="Streamable HTTP endpoint (default: spawn the sandbox over stdio)")
    p.add_argument("--jobs", help="JSON file with the batch")
    p.add_argument("--out", default="eval_results.md")
    p.add_argument("--max-wait", type=float, default=600)
    ns = p.parse_args()
    result = anyio.run(main, ns)
    Path(ns.out).write_text(table(result) + "\n")
    print(table(result))
