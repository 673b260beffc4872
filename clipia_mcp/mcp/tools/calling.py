"""How every tool call runs: resolve the caller, apply the call deadline, turn failures into results."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.results import error_result
from clipia_mcp.mcp.runtime import Runtime, runtime_of

log = logging.getLogger(__name__)

Body = Callable[[Runtime, Caller], Awaitable[CallToolResult]]
#: Past the deadline, inner mechanisms (submit pending, wait budget) have had this long to answer first.
DEADLINE_GRACE = 1.0


async def run_tool(ctx: Context[Any, Any], body: Body) -> CallToolResult:
    """Run a tool body within the call deadline; anticipated failures become ``isError`` results."""
    try:
        rt = runtime_of(ctx)
        deadline = rt.settings.call_deadline + DEADLINE_GRACE
        with anyio.fail_after(deadline):
            return await body(rt, rt.caller_for(ctx))
    except ClipiaMcpError as exc:
        log.info("tool failed: %s", exc)
        return error_result(exc)
    except TimeoutError:
        return error_result(ClipiaMcpError(
            f"The call reached its deadline of {deadline:g} s before the API answered.", code="deadline_exceeded"))
