"""Prompts (real ones a user picks from a menu) and ``completion/complete`` for their arguments.

Completions:

* a prompt's ``model`` argument: the model slugs of the caller's catalogue that start with (or
  contain) what was typed;
* ``request_id`` of the prompt ``check_generation`` and of the resource template
  ``clipia://requests/{request_id}``: the caller's own request ids, newest first. Another caller's
  ids are never offered.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CompleteRequestParams, CompleteResult, Completion
from pydantic import Field

from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.mcp.runtime import Runtime

log = logging.getLogger(__name__)
#: The spec's maximum number of values in one completion.
MAX_VALUES = 100
TEMPLATE = "clipia://requests/{request_id}"


def add_prompts(mcp: MCPServer[Any]) -> None:
    """Add the prompts (the server does on the first prompts request: their argument models cost ~2 ms)."""

    @mcp.prompt(name="create_media", title="Create an image, video or audio clip",
                description="Plan and run one Clipia generation: pick a model, check the price, generate, "
                            "and show the result.")
    def create_media(
        description: Annotated[str, Field(description="What to create, in your own words.")],
        model: Annotated[str, Field(description="A model slug (optional; completion lists them).")] = "",
    ) -> str:
        pick = (f"Use the model `{model}` (call get_model to learn its inputs)." if model else
                "Pick a suitable model with list_models (filter by type), then read its inputs with get_model.")
        return (f"Create this with Clipia: {description}\n\n{pick}\n"
                "Call estimate_cost and tell me the price before spending anything over 20 credits. Then call "
                "generate (or submit_generation followed by wait_for_result) and show me the media links. If a "
                "tool returns an error, read its code (\"Error <code>: ...\") and follow its advice.")

    @mcp.prompt(name="check_generation", title="Check on a generation",
                description="Report the status of an earlier generation and fetch its media when it is done.")
    def check_generation(
        request_id: Annotated[str, Field(description="The request_id (completion lists yours).")],
    ) -> str:
        return (f"Check the Clipia generation {request_id}: call wait_for_result(request_id='{request_id}'). "
                "If it is done, show the media links; if it failed, explain the error; if it is still running, "
                "tell me its progress and queue position.")


def register(mcp: MCPServer[Any]) -> None:
    """Add the completion handler (at build: its presence is what advertises the ``completions`` capability)."""

    async def complete(ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams) -> CompleteResult:
        ref = params.ref
        name, typed = params.argument.name, params.argument.value or ""
        kind = getattr(ref, "type", "")
        if kind == "ref/prompt":
            known = {p.name: p for p in await mcp.list_prompts()}
            prompt = known.get(getattr(ref, "name", ""))
            if prompt is None:
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {getattr(ref, 'name', '')!r}")
            if name not in {a.name for a in prompt.arguments or []}:
                raise MCPError(code=INVALID_PARAMS, message=f"Prompt {prompt.name} has no argument {name!r}")
        elif kind == "ref/resource":
            if getattr(ref, "uri", "") != TEMPLATE:
                raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource template: {getattr(ref, 'uri', '')!r}")
            if name != "request_id":
                raise MCPError(code=INVALID_PARAMS, message=f"The template has no variable {name!r}")
        values = await _candidates(ctx, mcp, name, typed)
        return CompleteResult(completion=Completion(values=values[:MAX_VALUES], total=len(values),
                                                    has_more=len(values) > MAX_VALUES))

    lowlevel = mcp._lowlevel_server  # noqa: SLF001 - a raw handler keeps the request context (the caller)
    lowlevel.add_request_handler("completion/complete", CompleteRequestParams, complete)


async def _candidates(ctx: ServerRequestContext[Any, Any], mcp: MCPServer[Any], name: str, typed: str) -> list[str]:
    rt = ctx.lifespan_context
    if not isinstance(rt, Runtime) or name not in ("model", "request_id"):
        return []
    try:
        caller = rt.caller_for(Context(request_context=ctx, mcp_server=mcp))
        if name == "request_id":
            ids = [r.request_id for r in await rt.service.list_requests(caller, None, 500)]
            return [i for i in ids if i.startswith(typed.strip())]
        slugs = [str(m.get("slug") or m.get("id") or "") for m in await rt.service.list_models(caller)]
    except ClipiaMcpError as exc:  # no key, API down: nothing to offer, never an error for a completion
        log.info("no completions for %s: %s", name, exc.code)
        return []
    needle = typed.strip().lower()
    first = sorted(s for s in slugs if s and s.lower().startswith(needle))
    rest = sorted(s for s in slugs if s and needle and needle in s.lower() and not s.lower().startswith(needle))
    return first + rest
