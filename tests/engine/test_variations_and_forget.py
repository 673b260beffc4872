"""Variations on purpose, retries deduplicated; forgetting stored prompts, requests, tasks and files."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from conftest import error_of, structured
from mcp import Client

from clipia_mcp.core.records import RequestRecord, SavedFile, TaskRecord
from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.server import build_server
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def _settings(emu: EmulatorServer, key: str, tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({
        "CLIPIA_API_KEY": key, "CLIPIA_BASE_URL": emu.base_url, "CLIPIA_MCP_JOURNAL": str(tmp_path / "j.sqlite3"),
        "CLIPIA_MCP_POLL_MIN": "0.02", "CLIPIA_MCP_POLL_MAX": "0.1", "CLIPIA_MCP_POLL_BUDGET_RPM": "60000", **env,
    })


async def test_new_variation_pays_again_on_purpose_while_retries_stay_deduplicated(
        emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    args = {"model": "nano-banana-2", "input": {"prompt": "a fox"}}
    async with Client(build_server(_settings(emu, live_key.value, tmp_path))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name in ("submit_generation", "generate"):
            assert "new_variation" in tools[name].description and "new_variation" in tools[name].input_schema[
                "properties"]
        first = structured(await client.call_tool("submit_generation", args))
        retry = structured(await client.call_tool("submit_generation", args))
        assert retry["request_id"] == first["request_id"] and retry["deduplicated"] is True
        variation = structured(await client.call_tool("submit_generation", {**args, "new_variation": True}))
        assert variation["request_id"] != first["request_id"] and variation["deduplicated"] is False
        keyed = {**args, "new_variation": True, "idempotency_key": "fox-3"}
        third = structured(await client.call_tool("submit_generation", keyed))
        assert structured(await client.call_tool("submit_generation", keyed))["request_id"] == third["request_id"]
        assert third["request_id"] not in (first["request_id"], variation["request_id"])
        again = structured(await client.call_tool("submit_generation", args))  # a plain repeat: the newest one
        assert again["deduplicated"] is True and again["request_id"] == third["request_id"]
        with anyio.fail_after(20):
            gen = structured(await client.call_tool("generate", {**args, "new_variation": True}))
        assert gen["request_id"] not in (first["request_id"], variation["request_id"], third["request_id"])
    charged = [rid for rid, _ in emu.emulator.charges if emu.emulator.requests[rid].key == live_key.value]
    assert len(charged) == 4


async def test_forget_removes_prompts_requests_tasks_and_files(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.01
    settings = _settings(emu, live_key.value, tmp_path, CLIPIA_MCP_OUTPUT_DIR=str(tmp_path / "media"))
    async with Client(build_server(settings)) as client:
        rids = []
        for prompt in ("one", "two"):
            rid = structured(await client.call_tool(
                "submit_generation", {"model": "nano-banana-2", "input": {"prompt": prompt}}))["request_id"]
            with anyio.fail_after(20):
                done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15}))
            assert Path(done["media"][0]["local_path"]).exists()
            rids.append(rid)
        running = structured(await client.call_tool(
            "submit_generation", {"model": "nano-banana-2", "input": {"prompt": "[[slow]] three"}}))["request_id"]

        assert error_of(await client.call_tool("forget", {}))["code"] == "invalid_input"
        gone = structured(await client.call_tool("forget", {"request_id": rids[0]}))
        assert gone["forgotten"] == 1 and gone["files_deleted"] == 1
        listed = [r["request_id"] for r in structured(await client.call_tool("list_requests", {}))["requests"]]
        assert rids[0] not in listed and rids[1] in listed
        assert list((tmp_path / "media").iterdir()) and len(list((tmp_path / "media").iterdir())) == 1
        assert error_of(await client.call_tool("forget", {"request_id": rids[0]}))["code"] == "not_found"

        everything = structured(await client.call_tool("forget", {"everything": True, "delete_files": False}))
        assert everything["request_ids"] == [rids[1]] and everything["files_deleted"] == 0
        assert len(list((tmp_path / "media").iterdir())) == 1  # kept on request
        listed = [r["request_id"] for r in structured(await client.call_tool("list_requests", {}))["requests"]]
        assert listed == [running]  # a running generation is never forgotten

    store = SqliteStore(tmp_path / "j.sqlite3")
    try:
        sql = "SELECT input_json FROM requests UNION ALL SELECT input_json FROM intents"
        rows = store._conn.execute(sql).fetchall()
        assert all("one" not in r[0] and "two" not in r[0] for r in rows)
    finally:
        store.close()


async def test_store_forget_and_retention_setting(tmp_path: Path) -> None:
    assert Settings.from_env({}).retention_days is None
    assert Settings.from_env({"CLIPIA_MCP_RETENTION_DAYS": "30"}).retention_days == 30
    store = SqliteStore(None)
    now = time.time()
    for owner, rid, age, status in (("a", "r-old", 40, "COMPLETED"), ("b", "r-old-b", 40, "FAILED"),
                                    ("a", "r-new", 1, "COMPLETED"), ("a", "r-run", 40, "IN_PROGRESS")):
        t = now - age * 86_400
        await store.upsert(RequestRecord(request_id=rid, owner=owner, status=status, created_at=t, updated_at=t,
                                         input={"prompt": rid}))
    await store.create_task(TaskRecord(task_id="t1", owner="a", request_id="r-old", created_at=now))
    await store.add_file(SavedFile(owner="a", request_id="r-old", url="https://x/1.png", path="/tmp/x.png",
                                   saved_at=now))
    gone = await store.forget(None, before=now - 30 * 86_400)
    assert sorted(gone.request_ids) == ["r-old", "r-old-b"] and [f.path for f in gone.files] == ["/tmp/x.png"]
    assert await store.get_task("t1") is None and await store.files_for("a", "r-old") == []
    assert [r.request_id for r in await store.list_recent("a")] == ["r-new", "r-run"]
    store.close()
