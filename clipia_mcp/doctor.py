"""``clipia-mcp doctor``: check the key, the API, the journal, and print what was found."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

import anyio

from clipia_mcp import __version__
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.redaction import mask
from clipia_mcp.core.settings import Settings
from clipia_mcp.engine.runtime import open_store
from clipia_mcp.providers.clipia.client import ClipiaClient


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; later checks still run when an earlier one fails."""
    checks: list[Check] = [Check("version", True, f"clipia-mcp {__version__}, Python {sys.version.split()[0]}")]
    key = settings.api_key
    if key is None:
        checks.append(Check("api key", True, "not set: the server runs on the embedded offline sandbox (nothing "
                                             "billed). Set CLIPIA_API_KEY to a clipia_live_… or clipia_test_… key "
                                             "to use Clipia."))
    else:
        kind = "test (Clipia sandbox, never billed)" if key.is_test else "live (billed)"
        checks.append(Check("api key", True, f"{mask(key.reveal())} — {kind}"))
        checks.append(Check("base url", True, settings.base_url))
        async with ClipiaClient(key, base_url=settings.base_url, settings=settings) as client:
            started = time.monotonic()
            try:
                account = await client.account()
                ms = (time.monotonic() - started) * 1000
                credits = account.balance.get("credits")
                checks.append(Check("api reach", True, f"GET /v1/account in {ms:.0f} ms; account "
                                                       f"{account.account_id}, balance {credits} credits"))
                models = await client.list_models()
                checks.append(Check("catalogue", True, f"{len(models)} models"))
            except ClipiaMcpError as exc:
                checks.append(Check("api reach", False, f"{exc.code}: {exc.message}"))
    try:
        async with open_store(settings) as store:
            pending = await store.unfinished()
            checks.append(Check("journal", True, f"{store.describe()}; {len(pending)} unfinished request(s)"))
    except ClipiaMcpError as exc:
        checks.append(Check("journal", False, exc.message))
    return checks


def report(checks: list[Check], out: TextIO) -> int:
    """Print the checks; exit status 0 when all passed, 1 otherwise."""
    for c in checks:
        print(f"[{'ok' if c.ok else 'FAIL':>4}] {c.name:<10} {c.detail}", file=out)
    failed = [c for c in checks if not c.ok]
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed", file=out)
    return 0 if not failed else 1


def main(settings: Settings, out: TextIO = sys.stdout) -> int:
    return report(anyio.run(run_checks, settings), out)
