"""The MCP tools, one module per group; :func:`register_all` adds every tool to a server."""

from __future__ import annotations

import inspect
from typing import Any

from mcp.server.mcpserver import MCPServer

from clipia_mcp.mcp.tools import catalogue, generate, requests


def register_all(mcp: MCPServer[Any]) -> None:
    """Add every tool, then strip docstring indentation from descriptions (clients show them verbatim)."""
    requests.register(mcp)
    catalogue.register(mcp)
    generate.register(mcp)
    for tool in mcp._tool_manager.list_tools():  # noqa: SLF001 - no public setter
        tool.description = inspect.cleandoc(tool.description or "")
