"""Tools on generation requests: submit, status, result, wait, list, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from clipia_mcp.core import constants as C
from clipia_mcp.core import validation as check
from clipia_mcp.core.timeutil import iso_seconds
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.progress import progress_reporter
from clipia_mcp.mcp.results import request_result, resource_uri, structured, view, wants_preview
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.tools.calling import run_tool
from clipia_mcp.mcp.tools.params import (
    DESTRUCTIVE,
    LOCAL_READ,
    READ,
    SUBMIT,
    IncludePreview,
    ModelInput,
    ModelSlug,
    RequestId,
)
from clipia_mcp.mcp.views import DeleteView, RequestListView, RequestSummary, RequestView, SubmitView
from clipia_mcp.mcp.waits import plan_wait
from clipia_mcp.providers.registry import extra_models

WebhookUrl = Annotated[
    str | None, Field(description="https URL Clipia POSTs the result to.", max_length=2048)
]
IdempotencyKey = Annotated[
    str | None,
    Field(description="Same key: same request, never paid twice.", max_length=255),
]


def submit_view(rt: Runtime, caller: Caller, slug: str, sub: Any) -> SubmitView:
    """The submit tool's answer for a :class:`~clipia_mcp.engine.service.Submitted`."""
    rec = sub.record
    return SubmitView(
        request_id=rec.request_id, status=rec.status, model=slug, queue_position=rec.queue_position,
        cost=rec.cost, test_key=caller.sandbox or None, warnings=sub.warnings, deduplicated=sub.deduplicated,
        idempotency_key=sub.idempotency_key, resource_uri=resource_uri(rec.request_id),
        next_step=f"Call wait_for_result(request_id='{rec.request_id}') to wait for the output.",
    )


def register(mcp: MCPServer[Any]) -> None:
    """Add the request tools to ``mcp``."""

    @mcp.tool(title="Submit a generation", annotations=SUBMIT)
    async def submit_generation(
        model: ModelSlug,
        input: ModelInput,  # noqa: A002 - the API's own name
        ctx: Context,
        webhook_url: WebhookUrl = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Annotated[CallToolResult, SubmitView]:
        """Queue an image, video or audio generation and return at once with its request_id.

        Credits are reserved (see cost) and refunded if it fails; generations cannot be cancelled.
        A repeat (same idempotency_key, or same model and input shortly after) returns the earlier
        request instead of paying twice. Next: wait_for_result(request_id).
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            slug = check.model_slug(model, extra_models())
            data = check.generation_input(input)
            hook = check.webhook_url(webhook_url, allow_loopback=rt.settings.sandbox)
            key = check.idempotency_key(idempotency_key)
            sub = await rt.service.submit(caller, slug, data, webhook_url=hook, idempotency_key=key)
            if not sub.deduplicated:
                await rt.request_list_changed(caller.owner)
            return structured(submit_view(rt, caller, slug, sub))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation status", annotations=READ)
    async def get_status(request_id: RequestId, ctx: Context) -> Annotated[CallToolResult, RequestView]:
        """Current status of a generation: IN_QUEUE (with queue_position), IN_PROGRESS (progress 0-100),
        COMPLETED, FAILED or CANCELED. Returns at once."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            return structured(view(await rt.service.status(caller, rid), is_test=caller.sandbox))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation result", annotations=READ)
    async def get_result(request_id: RequestId, ctx: Context, include_preview: IncludePreview = None
                         ) -> Annotated[CallToolResult, RequestView]:
        """The result of a generation: status and, when COMPLETED, its files as resource links. Returns at once."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            record = await rt.service.result(caller, rid)
            return await request_result(record, media_http=rt.media_http, is_test=caller.sandbox,
                                        include_preview=wants_preview(rt.settings.previews, include_preview))

        return await run_tool(ctx, body)

    @mcp.tool(title="Wait for a generation", annotations=READ)
    async def wait_for_result(
        request_id: RequestId,
        ctx: Context,
        timeout_s: Annotated[
            float | None,
            Field(description=f"Seconds to wait (default {C.WAIT_DEFAULT:g}, clamped to the per-call limit); "
                              "if not done by then, the status is returned: call again.", ge=0),
        ] = None,
        include_preview: IncludePreview = None,
    ) -> Annotated[CallToolResult, RequestView]:
        """Wait for a generation to finish, reporting progress; returns the result.

        When timeout_s passes first, the current status comes back (not an error): call again.
        Videos take 1-10 minutes, images seconds.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            plan = plan_wait(ctx, rt.settings, timeout_s)
            record = await rt.service.wait(caller, rid, plan.budget, progress_reporter(ctx), plan.heartbeat)
            return await request_result(record, media_http=rt.media_http, is_test=caller.sandbox, note=plan.note,
                                        include_preview=wants_preview(rt.settings.previews, include_preview))

        return await run_tool(ctx, body)

    @mcp.tool(title="Delete a Reka clip job", annotations=DESTRUCTIVE)
    async def delete_clip(
        request_id: RequestId,
        ctx: Context,
        delete_input_video: Annotated[bool, Field(description="Also remove the indexed source video.")] = False,
    ) -> Annotated[CallToolResult, DeleteView]:
        """Permanently delete a completed or failed Reka clip job (model reka/clips) and its outputs.

        Only jobs created through this server by you can be deleted; running jobs cannot."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            await rt.service.delete_job(caller, rid, delete_input_video)
            return structured(DeleteView(request_id=rid, deleted=True, deleted_input_video=delete_input_video))

        return await run_tool(ctx, body)

    @mcp.tool(title="List my requests", annotations=LOCAL_READ)
    async def list_requests(
        ctx: Context,
        status: Annotated[
            Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"] | None,
            Field(description="Only requests with this status."),
        ] = None,
        limit: Annotated[int, Field(description=f"How many, newest first (at most {C.MAX_LIST_LIMIT}).", ge=1)]
        = 20,
    ) -> Annotated[CallToolResult, RequestListView]:
        """Requests this server submitted or looked up for you, newest first, from its journal (kept across
        restarts)."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            records = await rt.service.list_requests(caller, check.status_filter(status),
                                                     min(limit, C.MAX_LIST_LIMIT))
            items = []
            for r in records:
                prompt = (r.input or {}).get("prompt")
                items.append(RequestSummary(
                    request_id=r.request_id, model=r.model or "unknown", status=r.status, cost=r.cost,
                    prompt=prompt[:200] if isinstance(prompt, str) else None,
                    created_at=iso_seconds(r.created_at) or "", updated_at=iso_seconds(r.updated_at) or "",
                    resource_uri=resource_uri(r.request_id),
                ))
            return structured(RequestListView(count=len(items), requests=items))

        return await run_tool(ctx, body)
