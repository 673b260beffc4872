"""list_models answers from a per-key cache for CATALOGUE_TTL; concurrent first calls share one fetch."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.caller import Caller
from clipia_mcp.engine.service import QueueService
from clipia_mcp.engine.tracker import Tracker
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


class Catalogue:
    def __init__(self) -> None:
        self.fetches = 0

    async def list_models(self) -> list[dict[str, Any]]:
        self.fetches += 1
        await anyio.sleep(0)
        return [{"slug": "m1"}]


async def test_the_catalogue_is_fetched_once_per_ttl() -> None:
    store = SqliteStore(None)
    svc = QueueService(Settings(), store, Tracker(store))
    upstream = Catalogue()
    caller = Caller(clipia=upstream, owner="o")  # type: ignore[arg-type]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(svc.list_models, caller)
        first = await svc.list_models(caller)
        first[0]["slug"] = "changed by a caller"
        assert (await svc.list_models(caller))[0]["slug"] == "m1"
    assert upstream.fetches == 1
    svc._catalogue[id(upstream)] = (upstream, -1e9, [])  # noqa: SLF001 - expire it
    await svc.list_models(caller)
    assert upstream.fetches == 2
