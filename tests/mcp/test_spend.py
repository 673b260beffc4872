"""Money in view: list_requests filters by date range, model and status; spend per day and model, as a
tool and as the clipia://spend resource, with the account's own 30-day usage."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest
from conftest import error_of, structured
from mcp import Client

from clipia_mcp.core.records import RequestRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.core.validation import time_bound
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio
DAY = 86_400


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


async def test_filters_and_spend(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.01
    journal = tmp_path / "j.sqlite3"
    settings = Settings.from_env({
        "CLIPIA_API_KEY": live_key.value, "CLIPIA_BASE_URL": emu.base_url, "CLIPIA_MCP_JOURNAL": str(journal),
        "CLIPIA_MCP_POLL_MIN": "0.02", "CLIPIA_MCP_POLL_MAX": "0.1", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000"})
    async with Client(build_server(settings)) as client:
        rids = {}
        for model, prompt in (("nano-banana-2", "img"), ("seedance-2-fast-t2v", "vid"),
                              ("nano-banana-2", "[[fail]] broken")):
            args = {"model": model, "input": {"prompt": prompt}}
            rid = structured(await client.call_tool("submit_generation", args))["request_id"]
            with anyio.fail_after(30):
                await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 20})
            rids[prompt] = rid
        owner = settings.api_key.fingerprint if settings.api_key else ""

    # One older request, written as a previous week would have left it.
    old = time.time() - 10 * DAY
    store = SqliteStore(journal)
    await store.upsert(RequestRecord(request_id="00000000-0000-4000-8000-000000000001", owner=owner,
                                     model="nano-banana-2", status="COMPLETED", cost=4, created_at=old,
                                     updated_at=old, completed_at=old))
    store.close()

    today = _day(time.time())
    async with Client(build_server(settings)) as client:
        def ids(data: dict) -> list[str]:
            return [r["request_id"] for r in data["requests"]]

        images = structured(await client.call_tool("list_requests", {"model": "nano-banana-2"}))
        assert len(ids(images)) == 3
        recent = structured(await client.call_tool("list_requests", {"model": "nano-banana-2", "since": today}))
        assert set(ids(recent)) == {rids["img"], rids["[[fail]] broken"]}
        older = structured(await client.call_tool("list_requests", {"until": _day(old)}))
        assert ids(older) == ["00000000-0000-4000-8000-000000000001"]
        failed = structured(await client.call_tool("list_requests", {"status": "FAILED", "since": today}))
        assert ids(failed) == [rids["[[fail]] broken"]]
        bad = await client.call_tool("list_requests", {"since": "yesterday"})
        assert error_of(bad)["code"] == "invalid_input"

        spend = structured(await client.call_tool("spend_summary", {}))
        assert spend["requests"] == 4 and spend["credits"] == 4 + 47 + 4 and spend["reserved"] == 0
        by_model = {m["model"]: m for m in spend["by_model"]}
        assert by_model["nano-banana-2"] == {"model": "nano-banana-2", "requests": 3, "failed": 1, "credits": 8}
        assert by_model["seedance-2-fast-t2v"]["credits"] == 47
        assert spend["by_model"][0]["model"] == "seedance-2-fast-t2v"  # biggest spender first
        assert [d["day"] for d in spend["by_day"]] == [_day(old), today]
        assert spend["by_day"][-1] == {"day": today, "requests": 3, "credits": 51}
        assert spend["usage_30d_credits_spent"] == 51 and spend["balance"] == 1000 - 51  # the account's own view
        week = structured(await client.call_tool("spend_summary", {"since": today}))
        assert week["requests"] == 3
        assert error_of(await client.call_tool("spend_summary", {"since": today, "until": _day(old)}))[
            "code"] == "invalid_input"

        resource = json.loads((await client.read_resource("clipia://spend")).contents[0].text)
        assert resource["credits"] == spend["credits"] and resource["by_model"] == spend["by_model"]
        assert "clipia://spend" in [str(r.uri) for r in (await client.list_resources()).resources]


def test_time_bounds() -> None:
    assert time_bound("2026-11-24", "since") == datetime(2026, 11, 24, tzinfo=timezone.utc).timestamp()
    assert time_bound("2026-11-24", "until", end=True) == datetime(2026, 11, 25, tzinfo=timezone.utc).timestamp()
    assert time_bound("2026-11-24T10:00:00Z", "since") == datetime(2026, 11, 24, 10, tzinfo=timezone.utc).timestamp()
    assert time_bound(None, "since") is None
