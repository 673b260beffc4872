"""The all-in-one ``generate`` tool, with cost confirmation before a costly submit.

* Clients that declare the tasks extension get a task at once (see :mod:`clipia_mcp.tasks`,
  which sets :data:`TASK_MODE` so this tool stops right after the submit).
* Other clients: submit, then wait with progress within the host-safe budget
  (:mod:`clipia_mcp.hosts`), and return the result or the current status.

Before a submit whose estimate exceeds ``confirm_above`` credits, or the balance,
the user is asked through elicitation (``Resolve``/``Elicit``, both protocol
eras). A client that cannot elicit gets a clear refusal naming the
``confirm_cost`` argument. ``CLIPIA_MCP_CONFIRM_ABOVE=off`` turns this off.
"""

from __future__ import annotations

import contextvars
from typing import Annotated, Any

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from clipia_mcp import validation as check
from clipia_mcp.errors import ClipiaMcpError
from clipia_mcp.hosts import plan_wait
from clipia_mcp.models import RequestView
from clipia_mcp.reka import is_reka
from clipia_mcp.results import structured, view
from clipia_mcp.runtime import Runtime, runtime_of
from clipia_mcp.service import Caller
from clipia_mcp.tools import SUBMIT, ModelInput, ModelSlug, progress_reporter, run_tool, with_media

#: Set by the tasks extension: submit and return at once, the task carries the rest.
TASK_MODE: contextvars.ContextVar[bool] = contextvars.ContextVar("clipia_task_mode", default=False)


class GenerateOptions(BaseModel):
    webhook_url: str | None = Field(default=None, description="https URL Clipia POSTs the result to.",
                                    max_length=2048)
    idempotency_key: str | None = Field(default=None, description="Same key → same generation, never paid twice.",
                                        max_length=255)
    wait_s: float | None = Field(default=None, ge=0, le=3600,
                                 description="How long to wait inline (capped at the server's maximum).")
    include_preview: bool = Field(default=True, description="Inline preview of the first image.")


class CostConfirmation(BaseModel):
    """Asked of the user before an expensive generation."""

    confirm: bool = Field(description="Spend these credits on this generation?")


async def confirm_cost_resolver(model: str, input: dict[str, Any], ctx: Context,  # noqa: A002
                                confirm_cost: bool = False) -> CostConfirmation | Elicit[CostConfirmation]:
    """Return a confirmation at once when none is needed; otherwise ask (or refuse without elicitation)."""
    rt = runtime_of(ctx)
    threshold = rt.settings.confirm_above
    if confirm_cost or threshold is None or is_reka(model):  # Reka jobs are not priced in credits
        return CostConfirmation(confirm=True)
    try:
        caller = rt.caller_for(ctx)
        slug = check.model_slug(model)
        credits, _ = await rt.service.estimate(caller, slug, check.generation_input(input))
        _, balance, _, _ = await rt.service.balance(caller)
    except ClipiaMcpError as exc:
        raise ToolError(f"Error {exc.code}: {exc.message}") from None
    over_balance = balance is not None and credits > balance
    if credits <= threshold and not over_balance:
        return CostConfirmation(confirm=True)
    why = (f"more than your balance of {balance} credits" if over_balance
           else f"above the confirmation threshold of {threshold} credits")
    message = (f"Generate with {slug}? It costs {credits} credits ({why}; balance {balance}). "
               "Generations cannot be cancelled once submitted.")
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        raise ToolError(f"confirmation_required: {message} This client cannot ask the user, so call generate "
                        "again with confirm_cost=true once the user has agreed.")
    return Elicit(message, CostConfirmation)


def register(mcp: MCPServer[Any]) -> None:
    @mcp.tool(title="Generate (submit and wait)", annotations=SUBMIT)
    async def generate(
        model: ModelSlug,
        input: ModelInput,  # noqa: A002
        ctx: Context,
        confirmation: Annotated[CostConfirmation, Resolve(confirm_cost_resolver)],
        options: Annotated[GenerateOptions | None, Field(description="Webhook, idempotency key, wait.")] = None,
        confirm_cost: Annotated[bool, Field(description="Skip the cost confirmation (the user already agreed).")]
        = False,
    ) -> Annotated[CallToolResult, RequestView]:
        """Generate an image, video or audio file in one call: submit, wait with progress, return the files.

        If the generation outlasts the inline wait, the current status comes back with its request_id:
        continue with wait_for_result. Clients with the MCP tasks extension get a task instead.
        Expensive generations (above the server's threshold or the balance) ask the user first.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            if not confirmation.confirm:
                raise ClipiaMcpError("The user declined the cost; nothing was submitted.", code="cost_declined")
            opts = options or GenerateOptions()
            slug = check.model_slug(model)
            data = check.generation_input(input)
            sub = await rt.service.submit(caller, slug, data, webhook_url=check.webhook_url(opts.webhook_url),
                                          idempotency_key=check.idempotency_key(opts.idempotency_key))
            await ctx.notify_resources_changed()
            if TASK_MODE.get():
                return structured(view(sub.record))
            plan = plan_wait(ctx, rt.settings, opts.wait_s)
            record = await rt.service.wait(caller, sub.record.request_id, plan.budget, progress_reporter(ctx),
                                           plan.heartbeat)
            return await with_media(rt, record, opts.include_preview)

        return await run_tool(ctx, body)
