"""The MCP tools, one module per group; :func:`register_all` adds every tool to a server."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp.tools import catalogue, generate, requests
from clipia_mcp.providers.registry import configured


def register_all(mcp: MCPServer[Any], settings: Settings) -> None:
    """Add every tool.

    A tool that only a configured provider can serve (``delete_clip``) is left out otherwise: it could only fail.
    """
    requests.register(mcp)
    if any(spec.deletes_jobs for spec in configured(settings)):
        requests.register_delete(mcp)
    catalogue.register(mcp)
    generate.register(mcp)
