"""The engine settles the collector once per process: startup heap frozen, larger young generation."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from clipia_mcp.core import constants as C
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine import heap
from clipia_mcp.engine.runtime import open_engine

pytestmark = pytest.mark.anyio


async def test_the_first_engine_freezes_the_startup_heap_and_later_ones_do_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    freezes: list[int] = []
    monkeypatch.setattr(heap, "_settled", False)
    monkeypatch.setattr(heap.gc, "freeze", lambda: freezes.append(1))
    monkeypatch.setattr(heap.gc, "set_threshold", lambda *t: freezes.append(len(t)))
    settings = Settings.from_env({}, journal_path=tmp_path / "journal.sqlite3")
    for _ in range(2):
        async with open_engine(settings):
            pass
    assert freezes == [1, 3]


def test_the_policy_is_in_force_in_this_process() -> None:
    heap.settle_heap()
    assert gc.get_threshold() == C.GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
