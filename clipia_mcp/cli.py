"""Command line: ``clipia-mcp [serve options]``, ``clipia-mcp emulator``.

stdio mode keeps stdout for the protocol: every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from clipia_mcp import __version__
from clipia_mcp.core.errors import ClipiaMcpError, ConfigError
from clipia_mcp.core.redaction import RedactingFilter


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
    p.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default=None,
                   help="MCP transport (default: stdio; streamable-http when --port is given)")
    p.add_argument("--host", default="127.0.0.1", help="bind address for HTTP transports (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="port for HTTP transports (default 8000; 0 = any); implies --transport streamable-http")
    p.add_argument("--sandbox", action="store_true",
                   help="use the embedded Clipia emulator (offline, no key, nothing billed)")
    p.add_argument("--journal", type=Path, default=None,
                   help="request journal path (SQLite; default in the user data dir; ':memory:' for none)")
    p.add_argument("--store", default=None, metavar="URL",
                   help="shared store for replicas: postgresql://user@host/db (or CLIPIA_MCP_STORE)")
    p.add_argument("--output-dir", default=None, metavar="DIR",
                   help="save finished outputs here once (or CLIPIA_MCP_OUTPUT_DIR); 'off' never saves. Default: "
                        "on for stdio into ~/Pictures/Clipia, off for HTTP")
    p.add_argument("--public-url", default=None,
                   help="public base URL of this server; submits then carry its webhook URL")
    p.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                   help="extra Host allowed by DNS-rebinding protection (repeatable)")
    p.add_argument("--allowed-origin", action="append", default=[], metavar="ORIGIN",
                   help="extra Origin allowed by DNS-rebinding protection (repeatable)")
    p.add_argument("--auth", choices=["auto", "none", "caller-key", "token", "oauth"], default=None,
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
            from clipia_mcp.core.settings import Settings

            return doctor.main(Settings.from_env(None, **_overrides(args)))
        return serve(args)
    except ClipiaMcpError as exc:
        print(f"clipia-mcp: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_emulator(args: argparse.Namespace) -> int:
    from clipia_mcp.sandbox.factory import run_standalone

    run_standalone(host=args.em_host, port=args.em_port, time_scale=args.time_scale, keys=args.key)
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.journal is not None:
        overrides["journal_path"] = None if str(args.journal) == ":memory:" else args.journal
    if args.output_dir:
        off = args.output_dir.strip().lower() in ("off", "none", "no", "false", "0")
        overrides["save_outputs"] = not off
        overrides["output_dir"] = None if off else Path(args.output_dir).expanduser()
    if args.public_url:
        overrides["public_url"] = args.public_url
    if args.store:
        overrides["store_url"] = args.store
    if args.auth:
        overrides["auth"] = args.auth
    if args.allowed_host:
        overrides["allowed_hosts"] = tuple(args.allowed_host)
    if args.allowed_origin:
        overrides["allowed_origins"] = tuple(args.allowed_origin)
    return overrides


def serve(args: argparse.Namespace) -> int:
    from clipia_mcp.core.settings import Settings
    from clipia_mcp.transports.auth_mode import resolve_auth

    transport = args.transport or ("streamable-http" if args.port is not None else "stdio")
    if transport == "stdio" and args.port is not None:
        raise ConfigError("--port needs an HTTP transport (--transport streamable-http or sse), not stdio.")
    http = transport != "stdio"
    settings = Settings.from_env(None, **_overrides(args)).for_transport(transport)
    auth, settings = resolve_auth(settings, http=http, sandbox_flag=args.sandbox)
    if auth == "caller-key":
        print("clipia-mcp: HTTP callers must send their own Clipia key (Authorization: Bearer clipia_...).",
              file=sys.stderr)
    elif settings.sandbox and not args.sandbox:
        print("clipia-mcp: CLIPIA_API_KEY is not set, starting on the embedded SANDBOX.", file=sys.stderr)

    from clipia_mcp.engine.runtime import probe_store
    from clipia_mcp.mcp.server import build_server
    from clipia_mcp.transports.auth_mode import oauth_options

    probe_store(settings)  # a corrupt, read-only or directory journal: one line and exit 2

    mcp = build_server(settings, **(oauth_options(settings) if auth == "oauth" else {}))
    if transport == "stdio":
        from clipia_mcp.transports.stdio import run_stdio

        run_stdio(mcp)
        return 0
    from clipia_mcp.transports.serve import serve_http

    port = 8000 if args.port is None else args.port
    return serve_http(mcp, "sse" if transport == "sse" else "streamable-http", auth=auth, host=args.host, port=port,
                      log_level=args.log_level)
