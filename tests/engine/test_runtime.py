"""engine/runtime: a start opens its journal once; a bad journal fails before the server runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine import runtime
from clipia_mcp.engine.runtime import open_engine, probe_store

pytestmark = pytest.mark.anyio


async def test_the_probed_journal_is_the_one_the_engine_uses(tmp_path: Path) -> None:
    settings = Settings.from_env({}, journal_path=tmp_path / "journal.sqlite3")
    probe_store(settings)
    probed = runtime._probed[tmp_path / "journal.sqlite3"]  # noqa: SLF001 - the handoff under test
    async with open_engine(settings) as engine:
        assert engine.service.store is probed
    assert runtime._probed == {}  # noqa: SLF001
    async with open_engine(settings) as engine:  # no probe: opened afresh
        assert engine.service.store is not probed


async def test_an_in_memory_journal_is_not_handed_over(tmp_path: Path) -> None:
    settings = Settings.from_env({}, journal_path=None)
    probe_store(settings)
    assert runtime._probed == {}  # noqa: SLF001 - each in-memory connection is its own journal


def test_a_journal_that_is_a_directory_fails_the_probe(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite3").mkdir()
    with pytest.raises(StoreError, match="Cannot open the journal"):
        probe_store(Settings.from_env({}, journal_path=tmp_path / "journal.sqlite3"))
    assert runtime._probed == {}  # noqa: SLF001
