"""The all-in-one ``generate`` tool, with cost confirmation before a costly submit.

* Clients that declare the tasks extension get a task at once (see :mod:`clipia_mcp.mcp.tasks`):
  the tool stops right after the submit and the task carries the rest.
* Other clients: submit, then wait with progress within the host-safe budget
  (:mod:`clipia_mcp.mcp.waits`), and return the result or the current status.

Before a submit whose estimate exceeds ``confirm_above`` credits, or the balance, the user is
asked through elicitation (``Resolve``/``Elicit``, both protocol eras). A client that cannot
elicit gets ``confirmation_required`` naming the ``confirm_cost`` argument. Test keys and the
sandbox are never charged, so they are never asked. ``CLIPIA_MCP_CONFIRM_ABOVE=off`` turns it off.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from clipia_mcp.core import validation as check
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.model import Model
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.card import CARD_TOOL_META
from clipia_mcp.mcp.progress import progress_reporter
from clipia_mcp.mcp.results import request_result, status_result, wants_preview
from clipia_mcp.mcp.runtime import Runtime, runtime_of
from clipia_mcp.mcp.tasks import runs_as_task
from clipia_mcp.mcp.tools.calling import run_tool
from clipia_mcp.mcp.tools.params import SUBMIT, ModelInput, ModelSlug, NewVariation
from clipia_mcp.mcp.views import RequestView
from clipia_mcp.mcp.waits import plan_wait
from clipia_mcp.providers.registry import extra_models


class GenerateOptions(Model):
    """Optional knobs of ``generate``."""

    webhook_url: str | None = Field(default=None, description="https URL Clipia POSTs the result to.",
                                    max_length=2048)
    idempotency_key: str | None = Field(default=None, description="Same key: same request, never paid twice.",
                                        max_length=255)
    wait_s: float | None = Field(default=None, ge=0, description="Seconds to wait (clamped to the call limit).")
    include_preview: bool | None = Field(default=None, description="Inline image preview.")


class CostConfirmation(Model):
    """Asked of the user before an expensive generation."""

    confirm: bool = Field(description="Spend these credits on this generation?")


def _refuse(exc: ClipiaMcpError) -> ToolError:
    """A resolver failure the server turns into this error's ``isError`` result (see the server's call_tool)."""
    err = ToolError(f"Error {exc.code}: {exc.message}")
    err.__cause__ = exc
    return err


async def confirm_cost_resolver(model: str, input: dict[str, Any], ctx: Context,  # noqa: A002
                                confirm_cost: bool = False) -> CostConfirmation | Elicit[CostConfirmation]:
    """Return a confirmation at once when none is needed; otherwise ask (or refuse without elicitation)."""
    rt = runtime_of(ctx)
    threshold = rt.settings.confirm_above
    if confirm_cost or threshold is None:
        return CostConfirmation(confirm=True)
    try:
        caller = rt.caller_for(ctx)
        slug = check.model_slug(model, extra_models())
        if caller.sandbox or not caller.provider_for(slug).capabilities.credits:
            return CostConfirmation(confirm=True)  # never charged in credits: nothing to confirm
        credits, _ = await rt.service.estimate(caller, slug, check.generation_input(input))
        balance = (await rt.service.balance(caller)).credits
    except ClipiaMcpError as exc:
        raise _refuse(exc) from exc
    over_balance = balance is not None and credits > balance
    if credits <= threshold and not over_balance:
        return CostConfirmation(confirm=True)
    why = (f"more than your balance of {balance} credits" if over_balance
           else f"above the confirmation threshold of {threshold} credits")
    message = (f"Generate with {slug}? It costs {credits} credits ({why}; balance {balance}). "
               "Generations cannot be cancelled once submitted.")
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        raise _refuse(ClipiaMcpError(
            f"{message} This client cannot ask the user, so call generate again with confirm_cost=true once the "
            "user has agreed.", code="confirmation_required"))
    return Elicit(message, CostConfirmation)


def register(mcp: MCPServer[Any]) -> None:
    """Add ``generate`` to ``mcp``."""

    @mcp.tool(title="Generate (submit and wait)", annotations=SUBMIT, meta=CARD_TOOL_META)
    async def generate(
        model: ModelSlug,
        input: ModelInput,  # noqa: A002
        ctx: Context,
        confirmation: Annotated[CostConfirmation, Resolve(confirm_cost_resolver)],
        options: Annotated[GenerateOptions | None, Field()] = None,
        confirm_cost: Annotated[bool, Field(description="The user already agreed to the cost.")]
        = False,
        new_variation: NewVariation = False,
    ) -> Annotated[CallToolResult, RequestView]:
        """Generate an image, video or audio file in one call: submit, wait with progress, return the files.

        A longer one returns its status: continue with wait_for_result. Costly ones ask the user first.
        A repeat returns the earlier result; new_variation=true makes another.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            if not confirmation.confirm:
                raise ClipiaMcpError("The user declined the cost; nothing was submitted.", code="cost_declined")
            opts = options or GenerateOptions()
            slug = check.model_slug(model, extra_models())
            data = check.generation_input(input)
            hook = check.webhook_url(opts.webhook_url, allow_loopback=rt.settings.sandbox)
            sub = await rt.service.submit(caller, slug, data, webhook_url=hook,
                                          idempotency_key=check.idempotency_key(opts.idempotency_key),
                                          new_variation=new_variation)
            if not sub.deduplicated:
                await rt.request_list_changed(caller.owner)
            if runs_as_task(ctx.request_context):
                return status_result(sub.record, is_test=caller.sandbox)
            plan = plan_wait(ctx, rt.settings, opts.wait_s)
            record = await rt.service.wait(caller, sub.record.request_id, plan.budget, progress_reporter(ctx),
                                           plan.heartbeat)
            return await request_result(record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                        is_test=caller.sandbox, note=plan.note_for(record),
                                        include_preview=wants_preview(rt.settings.previews, opts.include_preview))

        return await run_tool(ctx, body)
