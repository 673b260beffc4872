"""Resource change notifications reach both protocol eras when a tracked request changes status.

The emulator's clock is frozen: a test moves the request into rendering, sees that change notified,
and only then lets it finish, so "progress, then completion" is observed on every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import in_memory, server_env, structured
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import ResourceUpdatedNotification

from clipia_mcp.sandbox import EmulatorServer

pytestmark = pytest.mark.anyio
ARGS = {"model": "seedance-2-fast-t2v", "input": {"prompt": "watch me"}}


async def test_listen_stream_gets_resource_updates(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu
    async with Client(in_memory(server_env(emu, emu.new_key(balance=1000), tmp_path))) as client:
        rid = structured(await client.call_tool("submit_generation", ARGS))["request_id"]
        uri = f"clipia://requests/{rid}"
        bodies: list[str] = []
        async with client.listen(resource_subscriptions=[uri]) as sub:
            assert list(sub.honored.resource_subscriptions or []) == [uri]
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.call_tool, "wait_for_result", {"request_id": rid, "timeout_s": 50})
                    emu.emulator.clock.advance(10)  # into the render
                    async for event in sub:
                        assert event == ResourceUpdated(uri=uri)
                        body = (await client.read_resource(uri)).contents[0].text
                        bodies.append(body)
                        if '"COMPLETED"' in body:
                            break
                        emu.emulator.clock.advance(100)  # a change was notified: now let it finish
    assert len(bodies) >= 2 and '"IN_PROGRESS"' in bodies[0]  # progress changes, then completion


@pytest.mark.filterwarnings("ignore:resources/subscribe is removed")
async def test_legacy_subscribe_gets_resource_updates(frozen_emu: EmulatorServer, tmp_path: Path) -> None:
    emu = frozen_emu
    got: list[str] = []

    async def on_message(message: Any) -> None:
        root = getattr(message, "root", message)
        if isinstance(root, ResourceUpdatedNotification):
            got.append(str(root.params.uri))

    async with Client(in_memory(server_env(emu, emu.new_key(balance=1000), tmp_path)), mode="legacy",
                      message_handler=on_message) as client:
        caps = client.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        rid = structured(await client.call_tool("submit_generation", ARGS))["request_id"]
        uri = f"clipia://requests/{rid}"
        await client.subscribe_resource(uri)
        with anyio.fail_after(60):
            emu.emulator.clock.advance(10)
            while not got:  # the move into rendering was notified
                await anyio.sleep(0.01)
            emu.emulator.clock.advance(100)
            done = structured(await client.call_tool("wait_for_result", {"request_id": rid, "timeout_s": 50}))
            assert done["status"] == "COMPLETED"
            while len(got) < 2:
                await anyio.sleep(0.01)
    assert set(got) == {uri}
