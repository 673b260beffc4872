"""The MCP tools. Each one validates its arguments, calls the service, and shapes the result.

Errors the model can act on come back as ``isError`` results with a stable
``code`` (see :func:`clipia_mcp.results.error_result`); nothing here raises a
bare exception at the client.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from clipia_mcp import constants as C
from clipia_mcp import validation as check
from clipia_mcp.errors import ClipiaMcpError
from clipia_mcp.hosts import plan_wait
from clipia_mcp.journal import RequestRecord
from clipia_mcp.models import (
    BalanceView,
    DeleteView,
    EstimateView,
    ModelDetail,
    ModelList,
    ModelSummary,
    RequestListView,
    RequestSummary,
    RequestView,
    SubmitView,
)
from clipia_mcp.results import error_result, iso_time, media_links, preview, resource_uri, structured, view
from clipia_mcp.runtime import Runtime, runtime_of
from clipia_mcp.service import Caller
from clipia_mcp.tracker import UpdateCallback, human_status, progress_fraction

log = logging.getLogger(__name__)

Body = Callable[[Runtime, Caller], Awaitable[CallToolResult]]

RequestId = Annotated[
    str, Field(description="The request_id (UUID) returned by submit_generation.", min_length=1, max_length=100)
]
ModelSlug = Annotated[
    str, Field(description="Model slug, e.g. 'nano-banana-2' (image) or 'seedance-2-fast-t2v' (video).",
               min_length=1, max_length=C.MAX_MODEL_SLUG_CHARS)
]
ModelInput = Annotated[
    dict[str, Any],
    Field(description="Model parameters as a JSON object, e.g. {\"prompt\": \"a red fox in snow\", "
                      "\"aspect_ratio\": \"16:9\"}. get_model lists each model's parameters."),
]


async def run_tool(ctx: Context, body: Body) -> CallToolResult:
    """Run a tool body; anticipated failures become ``isError`` results with a stable code."""
    try:
        rt = runtime_of(ctx)
        return await body(rt, rt.caller_for(ctx))
    except ClipiaMcpError as exc:
        log.info("tool failed: %s", exc)
        return error_result(exc)


async def with_media(rt: Runtime, record: RequestRecord, include_preview: bool) -> CallToolResult:
    v = view(record)
    extra = media_links(v.media)
    if include_preview and v.media:
        extra = [*await preview(rt.media_http, v.media), *extra]
    return structured(v, extra)


def progress_reporter(ctx: Context) -> UpdateCallback:
    """An ``on_update`` callback sending MCP progress that strictly increases (heartbeats add 0.01)."""
    last = -1.0

    async def on_update(record: RequestRecord, heartbeat: bool) -> None:
        nonlocal last
        value = progress_fraction(record)
        if value <= last:
            value = 100.0 if record.terminal else min(99.99, last + 0.01)
        if value > last:
            last = value
            await ctx.report_progress(value, 100.0, f"{human_status(record)} ({record.request_id[:8]})")

    return on_update


SUBMIT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True, destructive_hint=False)


def tidy_descriptions(mcp: MCPServer[Any]) -> None:
    """Strip docstring indentation from tool descriptions (clients show them verbatim)."""
    for tool in mcp._tool_manager.list_tools():  # noqa: SLF001 - no public setter
        tool.description = inspect.cleandoc(tool.description or "")


def register(mcp: MCPServer[Any]) -> None:
    """Add every tool to ``mcp``."""

    @mcp.tool(title="Submit a generation", annotations=SUBMIT)
    async def submit_generation(
        model: ModelSlug,
        input: ModelInput,  # noqa: A002 - the API's own name
        ctx: Context,
        webhook_url: Annotated[
            str | None, Field(description="Optional https URL that Clipia POSTs the result to.", max_length=2048)
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Field(description="Optional key for this logical generation: repeating a submit with the same key "
                              "returns the same request instead of charging again.", max_length=255),
        ] = None,
    ) -> Annotated[CallToolResult, SubmitView]:
        """Queue an image, video or audio generation on Clipia and return at once with its request_id.

        Credits are reserved at submit (see `cost`) and refunded if the generation fails. Generations
        cannot be cancelled. An identical submit (same idempotency_key, or the same model and input
        within a short window) returns the earlier request instead of paying twice. Next: call
        wait_for_result(request_id) to wait with progress, or get_status / get_result.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            slug = check.model_slug(model)
            data = check.generation_input(input)
            hook = check.webhook_url(webhook_url)
            key = check.idempotency_key(idempotency_key)
            sub = await rt.service.submit(caller, slug, data, webhook_url=hook, idempotency_key=key)
            rec = sub.record
            await ctx.notify_resources_changed()
            return structured(SubmitView(
                request_id=rec.request_id, status=rec.status, model=slug, queue_position=rec.queue_position,
                cost=rec.cost, warnings=sub.warnings, deduplicated=sub.deduplicated,
                idempotency_key=sub.idempotency_key, resource_uri=resource_uri(rec.request_id),
                next_step=f"Call wait_for_result(request_id='{rec.request_id}') to wait for the output.",
            ))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation status", annotations=READ)
    async def get_status(request_id: RequestId, ctx: Context) -> Annotated[CallToolResult, RequestView]:
        """Current status of a generation: IN_QUEUE (with queue_position), IN_PROGRESS (progress 0-100),
        COMPLETED, FAILED or CANCELED. Returns at once."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            return structured(view(await rt.service.status(caller, rid)))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation result", annotations=READ)
    async def get_result(
        request_id: RequestId,
        ctx: Context,
        include_preview: Annotated[bool, Field(description="Add a small inline preview of the first image.")] = True,
    ) -> Annotated[CallToolResult, RequestView]:
        """The result of a generation: status, and when COMPLETED every output file as a resource link
        (URL, mime type). Returns at once; if the generation is still running, says so."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            return await with_media(rt, await rt.service.result(caller, rid), include_preview)

        return await run_tool(ctx, body)

    @mcp.tool(title="Wait for a generation", annotations=READ)
    async def wait_for_result(
        request_id: RequestId,
        ctx: Context,
        timeout_s: Annotated[
            float | None,
            Field(description=f"Seconds to wait (default {C.WAIT_DEFAULT:g}, max {C.WAIT_MAX:g}). If the "
                              "generation is not done by then, the current status is returned: call again.",
                  ge=0, le=C.WAIT_MAX),
        ] = None,
        include_preview: Annotated[bool, Field(description="Add a small inline preview of the first image.")] = True,
    ) -> Annotated[CallToolResult, RequestView]:
        """Wait for a generation to finish, reporting progress (queue position, then 0-100%) while it runs.

        Returns the result when it is done, or the current status when timeout_s passes (not an error):
        then call wait_for_result again. Videos usually take 1-10 minutes, images seconds.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            s = rt.settings
            plan = plan_wait(ctx, s, check.wait_timeout(timeout_s, s.wait_max))
            record = await rt.service.wait(caller, rid, plan.budget, progress_reporter(ctx), plan.heartbeat)
            return await with_media(rt, record, include_preview)

        return await run_tool(ctx, body)

    @mcp.tool(title="List models", annotations=READ)
    async def list_models(
        ctx: Context,
        type: Annotated[  # noqa: A002 - the API's field name
            Literal["image", "video", "audio", "text"] | None, Field(description="Only models of this type.")
        ] = None,
        search: Annotated[
            str | None, Field(description="Case-insensitive text to find in slug, name or description.",
                              max_length=200)
        ] = None,
    ) -> Annotated[CallToolResult, ModelList]:
        """The Clipia model catalogue: slug, type, capabilities and price in credits at default settings."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            needle = (search or "").strip().lower()
            out = []
            for m in await rt.service.list_models(caller):
                slug = m.get("slug") or m.get("id")
                if not isinstance(slug, str):
                    continue
                if type and m.get("type") != type:
                    continue
                hay = " ".join(str(m.get(k, "")) for k in ("slug", "id", "name", "description")).lower()
                if needle and needle not in hay:
                    continue
                raw_pricing = m.get("pricing")
                pricing: dict[str, Any] = raw_pricing if isinstance(raw_pricing, dict) else {}
                credits = pricing.get("credits")
                out.append(ModelSummary(
                    slug=slug, type=m.get("type"), name=m.get("name"), description=m.get("description"),
                    capabilities=[c for c in m.get("capabilities", []) if isinstance(c, str)],
                    credits=credits if isinstance(credits, int) else None,
                    available=bool(pricing.get("available", True)),
                    estimate_required=bool(pricing.get("estimate_required", False)),
                ))
            return structured(ModelList(count=len(out), models=out))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get model details", annotations=READ)
    async def get_model(model: ModelSlug, ctx: Context) -> Annotated[CallToolResult, ModelDetail]:
        """One model's input parameters (names, types, allowed values, bounds), pricing and limits."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            m = await rt.service.get_model(caller, check.model_slug(model))
            return structured(ModelDetail(
                slug=str(m.get("slug") or m.get("id") or model), type=m.get("type"), name=m.get("name"),
                description=m.get("description"), capabilities=list(m.get("capabilities") or []),
                pricing=dict(m.get("pricing") or {}), input_schema=m.get("input_schema"),
                text_limits=m.get("text_limits"),
            ))

        return await run_tool(ctx, body)

    @mcp.tool(title="Estimate cost", annotations=READ)
    async def estimate_cost(model: ModelSlug, input: ModelInput, ctx: Context  # noqa: A002
                            ) -> Annotated[CallToolResult, EstimateView]:
        """The exact credit cost of a generation with this input (nothing is queued or charged), with the
        current balance and whether it is affordable. Also reports input keys the model would ignore."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            slug = check.model_slug(model)
            credits, warnings = await rt.service.estimate(caller, slug, check.generation_input(input))
            balance = None
            try:
                _, balance, _, _ = await rt.service.balance(caller)
            except ClipiaMcpError as exc:
                log.info("balance unavailable for estimate: %s", exc.code)
            return structured(EstimateView(
                model=slug, credits=credits, warnings=warnings, balance=balance,
                affordable=None if balance is None else balance >= credits,
            ))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get balance", annotations=READ)
    async def get_balance(ctx: Context) -> Annotated[CallToolResult, BalanceView]:
        """The account's credit balance and the API key's usage over the last 30 days."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            account_id, credits, requests, spent = await rt.service.balance(caller)
            return structured(BalanceView(account_id=account_id, credits=credits, usage_30d_requests=requests,
                                          usage_30d_credits_spent=spent, sandbox=caller.sandbox))

        return await run_tool(ctx, body)

    @mcp.tool(title="Delete a Reka clip job",
              annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                          open_world_hint=True))
    async def delete_clip(
        request_id: RequestId,
        ctx: Context,
        delete_input_video: Annotated[bool, Field(description="Also remove the indexed source video.")] = False,
    ) -> Annotated[CallToolResult, DeleteView]:
        """Permanently delete a completed or failed Reka clip job (model reka/clips) and its outputs.

        Only jobs created through this server by you can be deleted; running jobs cannot."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            await rt.service.delete_clip(caller, rid, delete_input_video)
            return structured(DeleteView(request_id=rid, deleted=True, deleted_input_video=delete_input_video))

        return await run_tool(ctx, body)

    @mcp.tool(title="List my requests",
              annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False,
                                          destructive_hint=False))
    async def list_requests(
        ctx: Context,
        status: Annotated[
            Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"] | None,
            Field(description="Only requests with this status."),
        ] = None,
        limit: Annotated[int, Field(description="How many, newest first.", ge=1, le=C.MAX_LIST_LIMIT)] = 20,
    ) -> Annotated[CallToolResult, RequestListView]:
        """Requests this server submitted or looked up for you, newest first, from its durable journal
        (kept across restarts). Use it to find "my last video" again."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            records = await rt.service.list_requests(caller, check.status_filter(status), limit)
            items = []
            for r in records:
                prompt = (r.input or {}).get("prompt")
                v = view(r)
                items.append(RequestSummary(
                    request_id=r.request_id, model=r.model or "unknown", status=r.status, cost=r.cost,
                    prompt=prompt[:200] if isinstance(prompt, str) else None,
                    created_at=v.created_at or "", updated_at=iso_time(r.updated_at) or "",
                    resource_uri=v.resource_uri,
                ))
            return structured(RequestListView(count=len(items), requests=items))

        return await run_tool(ctx, body)
