"""Run the emulator on a loopback port, inside the current event loop or as a process."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator

import anyio
import uvicorn

from clipia_mcp.sandbox.app import EmulatorApp, create_app
from clipia_mcp.sandbox.state import Emulator, EmulatorConfig, Key

log = logging.getLogger(__name__)


class _HideDeliberateDrops(logging.Filter):
    """uvicorn logs our deliberate mid-response connection drops as app errors; hide just those."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and "Too little data for declared Content-Length" in str(exc))


logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening, non-blocking TCP socket with TCP_NODELAY (port 0 picks a free one)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, a response written in two parts waits out the
    # peer's delayed ACK (~40 ms per request on loopback).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class EmulatorServer:
    """The emulator on ``http://127.0.0.1:<port>`` (port 0 picks a free one).

    ``async with EmulatorServer() as srv:`` starts it in the current event loop;
    ``srv.base_url`` is then the API base for the official SDK or our client.
    """

    def __init__(self, emulator: Emulator | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator or Emulator(EmulatorConfig())
        self.app: EmulatorApp = create_app(self.emulator)
        self.host = host
        self._sock = bind_socket(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self.emulator.config.public_base_url = self.base_url
        self._server: uvicorn.Server | None = None

    def new_key(
        self, *, test: bool = False, balance: int = 1000, scopes: tuple[str, ...] = ("generate", "read")
    ) -> Key:
        """A fresh key on a fresh account with ``balance`` credits."""
        acc = self.emulator.add_account(balance=balance)
        return self.emulator.add_key(account=acc, test=test, scopes=scopes)

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[EmulatorServer]:
        config = uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._server = server
        async with self.app.running(), anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [self._sock])
            with anyio.fail_after(10):
                while not server.started:
                    await anyio.sleep(0.005)
            try:
                yield self
            finally:
                server.should_exit = True
                server.force_exit = True

    async def __aenter__(self) -> EmulatorServer:
        self._cm = self._serving()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._cm.__aexit__(None, None, None)

    def start_in_thread(self) -> EmulatorServer:
        """Serve from a daemon thread with its own event loop (for tests and benchmarks)."""
        import threading

        ready = threading.Event()
        self._stop = threading.Event()

        async def main() -> None:
            async with self:
                ready.set()
                while not self._stop.is_set():
                    await anyio.sleep(0.02)

        self._thread = threading.Thread(target=anyio.run, args=(main,), name="clipia-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("the emulator did not start")
        return self

    def stop_thread(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def serve_forever(self) -> None:
        """Blocking: serve until interrupted (``clipia-mcp emulator``)."""
        # log_config=None keeps the process's logging (stderr); uvicorn's default would send the
        # access log to stdout, which carries the API key line and may be a pipe nobody drains.
        config = uvicorn.Config(self.app, lifespan="on", log_config=None, access_log=False)
        uvicorn.Server(config).run(sockets=[self._sock])
