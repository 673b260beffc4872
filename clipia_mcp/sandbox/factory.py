"""The one door from the server into the sandbox: start the emulators and hand back endpoints.

Nothing outside this module and the tests imports the emulator, so a server with a real key
never loads it (nor uvicorn for it).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from clipia_mcp.core.settings import Settings


@dataclass(frozen=True)
class SandboxEndpoints:
    """Where the running emulators listen, and the keys they accept."""

    clipia_url: str
    clipia_key: str
    reka_url: str | None = None
    reka_key: str | None = None


def notice(base_url: str) -> None:
    """Loud stderr notice: nothing here is real or billed."""
    bar = "=" * 72
    print(f"{bar}\nclipia-mcp SANDBOX MODE: using the embedded Clipia emulator at {base_url}\n"
          f"No API key is used, nothing is billed, outputs are synthetic sample media.\n"
          f"Set CLIPIA_API_KEY (and drop --sandbox) to use the real Clipia API.\n{bar}",
          file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def open_sandbox(settings: Settings) -> AsyncIterator[SandboxEndpoints]:
    """Start the Clipia emulator (and Reka's, unless a real Reka key is set) for this process."""
    from clipia_mcp.sandbox.reka import RekaServer
    from clipia_mcp.sandbox.runner import EmulatorServer
    from clipia_mcp.sandbox.state import Emulator, EmulatorConfig

    async with contextlib.AsyncExitStack() as stack:
        # Its own thread and event loop: whatever breaks inside the emulator reaches the server only as
        # failed HTTP calls (retryable errors), never as an exception in the server's task group.
        server = EmulatorServer(Emulator(EmulatorConfig(time_scale=settings.sandbox_time_scale)))
        server.start_in_thread()
        stack.callback(server.stop_thread)
        key = server.new_key(balance=10_000)
        reka_url = reka_key = None
        if settings.reka_api_key is None:
            reka = RekaServer()
            reka.emulator.config.time_scale = settings.sandbox_time_scale * 0.05
            reka.start_in_thread()
            stack.callback(reka.stop_thread)
            reka_url, reka_key = reka.base_url, reka.new_key()
        notice(server.base_url)
        yield SandboxEndpoints(server.base_url, key.value, reka_url, reka_key)


def run_standalone(*, host: str, port: int, time_scale: float, keys: list[str]) -> None:
    """``clipia-mcp emulator``: serve the Clipia API emulator until interrupted; print the first key."""
    from clipia_mcp.sandbox.runner import EmulatorServer
    from clipia_mcp.sandbox.state import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(time_scale=time_scale))
    server = EmulatorServer(emulator, host=host, port=port)
    values = [emulator.add_key(k, account=emulator.add_account()).value for k in keys] or [server.new_key().value]
    print(f"Clipia emulator on {server.base_url}  (control plane: {server.base_url}/_emulator/...)", file=sys.stderr)
    print(f"{len(values)} API key(s) registered; the first is written to stdout.", file=sys.stderr)
    print(values[0], flush=True)
    server.serve_forever()
