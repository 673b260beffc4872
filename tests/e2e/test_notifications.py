"""Resource change notifications reach both protocol eras when a tracked request changes status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import server_env, structured
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import ResourceUpdatedNotification
from test_mcp_stdio import stdio

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio
ARGS = {"model": "seedance-2-fast-t2v", "input": {"prompt": "watch me"}}


async def test_listen_stream_gets_resource_updates(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    async with Client(stdio(server_env(emu, live_key, tmp_path))) as client:
        rid = structured(await client.call_tool("submit_generation", ARGS))["request_id"]
        uri = f"clipia://requests/{rid}"
        updates = 0
        async with client.listen(resource_subscriptions=[uri]) as sub:
            assert list(sub.honored.resource_subscriptions or []) == [uri]
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.call_tool, "wait_for_result", {"request_id": rid, "timeout_s": 15})
                    async for event in sub:
                        assert event == ResourceUpdated(uri=uri)
                        updates += 1
                        body = (await client.read_resource(uri)).contents[0].text
                        if '"COMPLETED"' in body:
                            break
        assert updates >= 2  # progress changes, then completion


async def test_legacy_subscribe_gets_resource_updates(emu: EmulatorServer, live_key, tmp_path: Path) -> None:
    emu.emulator.config.time_scale = 0.02
    got: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, ResourceUpdatedNotification):
            got.append(str(root.params.uri))

    async with Client(stdio(server_env(emu, live_key, tmp_path)), mode="legacy",
                      message_handler=on_message) as client:
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        rid = structured(await client.call_tool("submit_generation", ARGS))["request_id"]
        uri = f"clipia://requests/{rid}"
        await client.subscribe_resource(uri)
        with anyio.fail_after(20):
            done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 15}))
            assert done["status"] == "COMPLETED"
            while len(got) < 2:
                await anyio.sleep(0.02)
    assert set(got) == {uri}
