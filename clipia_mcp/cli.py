"""Command line: ``clipia-mcp [serve options]``, ``clipia-mcp emulator``.

stdio mode keeps stdout for the protocol: every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from clipia_mcp import __version__
from clipia_mcp.errors import ClipiaMcpError, ConfigError
from clipia_mcp.redaction import RedactingFilter


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.propagate = False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="clipia-mcp",
        description="MCP server for the Clipia generation queue. Without CLIPIA_API_KEY it runs on the "
                    "embedded offline sandbox.",
    )
    p.add_argument("--version", action="version", version=f"clipia-mcp {__version__}")
    p.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio",
                   help="MCP transport (default: stdio)")
    p.add_argument("--host", default="127.0.0.1", help="bind address for HTTP transports (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port for HTTP transports (default 8000; 0 = any)")
    p.add_argument("--sandbox", action="store_true",
                   help="use the embedded Clipia emulator (offline, no key, nothing billed)")
    p.add_argument("--journal", type=Path, default=None,
                   help="request journal path (SQLite; default in the user data dir; ':memory:' for none)")
    p.add_argument("--public-url", default=None,
                   help="public base URL of this server; submits then carry its webhook URL")
    p.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                   help="extra Host allowed by DNS-rebinding protection (repeatable)")
    p.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="extra Origin allowed by DNS-rebinding protection (repeatable)")
    p.add_argument("--auth", choices=["auto", "none", "caller-key", "token", "oauth"], default="auto",
                   help="HTTP auth: callers send their own Clipia key (caller-key), or a static bearer token from "
                        "CLIPIA_MCP_TOKENS (token); auto = token if CLIPIA_MCP_TOKENS is set, caller-key if no "
                        "server key is set, else none")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command")
    em = sub.add_parser("emulator", help="run only the Clipia API emulator on a loopback port")
    em.add_argument("--host", default="127.0.0.1", dest="em_host")
    em.add_argument("--port", type=int, default=8787, dest="em_port")
    em.add_argument("--time-scale", type=float, default=1.0, help="multiply scripted durations (0.01 = 100x faster)")
    em.add_argument("--key", action="append", default=[], help="register this API key (repeatable)")
    sub.add_parser("doctor", help="check the API key, API reach and the journal, and print what was found")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level)
    if args.command == "emulator":
        return run_emulator(args)
    try:
        if args.command == "doctor":
            from clipia_mcp import doctor
            from clipia_mcp.config import Settings

            return doctor.main(Settings.from_env(None, **_overrides(args)))
        return serve(args)
    except ClipiaMcpError as exc:
        print(f"clipia-mcp: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_emulator(args: argparse.Namespace) -> int:
    from clipia_mcp.emulator import Emulator, EmulatorConfig, EmulatorServer

    emulator = Emulator(EmulatorConfig(time_scale=args.time_scale))
    server = EmulatorServer(emulator, host=args.em_host, port=args.em_port)
    keys = [emulator.add_key(k, account=emulator.add_account()).value for k in args.key] or [server.new_key().value]
    print(f"Clipia emulator on {server.base_url}  (control plane: {server.base_url}/_emulator/...)", file=sys.stderr)
    print(f"{len(keys)} API key(s) registered; the first is written to stdout.", file=sys.stderr)
    print(keys[0], flush=True)
    server.serve_forever()
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.journal is not None:
        overrides["journal_path"] = None if str(args.journal) == ":memory:" else args.journal
    if args.public_url:
        overrides["public_url"] = args.public_url
    return overrides


def serve(args: argparse.Namespace) -> int:
    from clipia_mcp.config import Settings

    settings = Settings.from_env(None, **_overrides(args))
    tokens = [t.strip() for t in os.environ.get("CLIPIA_MCP_TOKENS", "").split(",") if t.strip()]
    auth = args.auth
    if auth == "auto":
        http = args.transport != "stdio"
        auth = "oauth" if settings.oauth_introspection_url and http else "token" if tokens and http else (
            "caller-key" if http and settings.api_key is None and not args.sandbox else "none")
    if auth == "oauth" and not settings.oauth_introspection_url:
        raise ConfigError("--auth oauth needs CLIPIA_MCP_OAUTH_INTROSPECTION_URL, _ISSUER and _RESOURCE.")
    if auth == "token" and not tokens:
        raise ConfigError("--auth token needs CLIPIA_MCP_TOKENS (comma-separated bearer tokens).")
    if auth == "caller-key":
        print("clipia-mcp: HTTP callers must send their own Clipia key (Authorization: Bearer clipia_...).",
              file=sys.stderr)
    elif args.sandbox or settings.api_key is None:
        if not args.sandbox:
            print("clipia-mcp: CLIPIA_API_KEY is not set, starting on the embedded SANDBOX.", file=sys.stderr)
        settings = replace(settings, sandbox=True)

    from clipia_mcp.server import build_server

    mcp = build_server(settings)
    if args.transport == "stdio":
        mcp.run("stdio")
        return 0
    import anyio
    import uvicorn

    from clipia_mcp.hosting import build_http_app

    app = build_http_app(mcp, args.transport, host=args.host, allowed_hosts=args.allowed_host,
                         allowed_origins=args.allowed_origin, auth=auth, tokens=tokens)
    path = "/sse" if args.transport == "sse" else "/mcp"
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)

    async def run() -> None:
        import socket

        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        sock.bind((args.host, args.port))
        port = sock.getsockname()[1]
        print(f"clipia-mcp {args.transport} listening on http://{args.host}:{port}{path}", file=sys.stderr,
              flush=True)
        await server.serve(sockets=[sock])

    anyio.run(run)
    return 0
