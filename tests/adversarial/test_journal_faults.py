"""The journal failing: a full journal stops the paid call before it happens; bad journal paths stop the
server at start with one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import anyio
import pytest
from conftest import server_command, server_env

from clipia_mcp.core.errors import StoreError
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import open_engine
from clipia_mcp.sandbox import EmulatorServer
from clipia_mcp.sandbox.state import Key
from clipia_mcp.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def settings_for(emu: EmulatorServer, key: Key, journal: Path) -> Settings:
    return Settings.from_env(server_env(emu, key, journal.parent), journal_path=journal)


def big(n: int) -> dict[str, str]:
    """An input large enough to need new pages in the journal."""
    return {"prompt": f"big {n}", "padding": "x" * 30_000}


async def test_full_journal_refuses_before_the_paid_call(emu: EmulatorServer, live_key: Key, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    async with open_engine(settings_for(emu, live_key, journal)) as engine:
        assert engine.caller is not None
        store = engine.service.store
        assert isinstance(store, SqliteStore)
        with anyio.fail_after(30):
            first = await engine.service.submit(engine.caller, "nano-banana-2", {"prompt": "fits"})
            # The disk is now "full": SQLite may not grow the file by a single page.
            pages = store._conn.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001 - the fault
            store._conn.execute(f"PRAGMA max_page_count = {pages}")  # noqa: SLF001
            submits = emu.emulator.calls.get("submit", 0)
            charges = len(emu.emulator.charges)
            for n in range(3):
                with pytest.raises(StoreError) as info:
                    await engine.service.submit(engine.caller, "nano-banana-2", big(n))
                assert info.value.code == "journal_error" and info.value.transient
            assert emu.emulator.calls.get("submit", 0) == submits  # no paid call without its intent on disk
            assert len(emu.emulator.charges) == charges
            # Space again: the same submit goes through, once.
            store._conn.execute("PRAGMA max_page_count = 1073741823")  # noqa: SLF001
            again = await engine.service.submit(engine.caller, "nano-banana-2", big(0))
            assert again.record.request_id != first.record.request_id
            assert len(emu.emulator.charges) == charges + 1


def start_with_journal(emu: EmulatorServer, key: Key, tmp_path: Path, journal: Path
                       ) -> subprocess.CompletedProcess[str]:
    env = server_env(emu, key, tmp_path, CLIPIA_MCP_JOURNAL=str(journal))
    return subprocess.run(server_command(), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def bad_journals(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database at all" * 200)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    cases = {"corrupt": corrupt, "directory": directory, "under a file": a_file / "journal.sqlite3"}
    if os.geteuid() != 0:  # root ignores file modes
        readonly = tmp_path / "readonly.sqlite3"
        sqlite3.connect(readonly).close()
        readonly.chmod(0o444)
        cases["read-only"] = readonly
    return cases


@pytest.mark.parametrize("case", ["corrupt", "directory", "under a file", "read-only"])
def test_bad_journal_paths_fail_in_one_line(emu: EmulatorServer, live_key: Key, tmp_path: Path, case: str) -> None:
    cases = bad_journals(tmp_path)
    if case not in cases:
        pytest.skip("running as root: file modes are not enforced")
    done = start_with_journal(emu, live_key, tmp_path, cases[case])
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("clipia-mcp: ") and "journal" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and live_key.value not in done.stderr
