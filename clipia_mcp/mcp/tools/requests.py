"""Tools on generation requests: submit, status, result, wait, list, delete."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from clipia_mcp.core import constants as C
from clipia_mcp.core import validation as check
from clipia_mcp.core.errors import InvalidInputError, NotTrackedError
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.card import CARD_TOOL_META
from clipia_mcp.mcp.progress import progress_reporter
from clipia_mcp.mcp.results import (
    request_result,
    resource_uri,
    status_result,
    structured,
    summary_data,
    wants_preview,
)
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.tools.calling import run_tool
from clipia_mcp.mcp.tools.params import (
    DESTRUCTIVE,
    LOCAL_DESTRUCTIVE,
    LOCAL_READ,
    READ,
    SUBMIT,
    IncludePreview,
    ModelInput,
    ModelSlug,
    NewVariation,
    RequestId,
)
from clipia_mcp.mcp.views import DeleteView, ForgetView, RequestListView, RequestView, SubmitView
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
        new_variation: NewVariation = False,
    ) -> Annotated[CallToolResult, SubmitView]:
        """Queue an image, video or audio generation; returns its request_id at once, then use wait_for_result.

        Credits are reserved, refunded on failure; no cancelling. A repeat (same idempotency_key or input)
        returns the earlier request unpaid; new_variation=true makes another.
        """

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            slug = check.model_slug(model, extra_models())
            data = check.generation_input(input)
            hook = check.webhook_url(webhook_url, allow_loopback=rt.settings.sandbox)
            key = check.idempotency_key(idempotency_key)
            sub = await rt.service.submit(caller, slug, data, webhook_url=hook, idempotency_key=key,
                                          new_variation=new_variation)
            if not sub.deduplicated:
                await rt.request_list_changed(caller.owner)
            return structured(submit_view(rt, caller, slug, sub))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation status", annotations=READ)
    async def get_status(request_id: RequestId, ctx: Context) -> Annotated[CallToolResult, RequestView]:
        """Status now: IN_QUEUE (queue_position), IN_PROGRESS (progress), COMPLETED, FAILED, CANCELED."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            return status_result(await rt.service.status(caller, rid), is_test=caller.sandbox)

        return await run_tool(ctx, body)

    @mcp.tool(title="Get generation result", annotations=READ, meta=CARD_TOOL_META)
    async def get_result(request_id: RequestId, ctx: Context, include_preview: IncludePreview = None
                         ) -> Annotated[CallToolResult, RequestView]:
        """A generation's status and, once COMPLETED, its files as resource links."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            record = await rt.service.result(caller, rid)
            return await request_result(record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                        is_test=caller.sandbox,
                                        include_preview=wants_preview(rt.settings.previews, include_preview))

        return await run_tool(ctx, body)

    @mcp.tool(title="Wait for a generation", annotations=READ, meta=CARD_TOOL_META)
    async def wait_for_result(
        request_id: RequestId,
        ctx: Context,
        timeout_s: Annotated[
            float | None,
            Field(description=f"Seconds (default {C.WAIT_DEFAULT:g}, clamped to the call limit).", ge=0),
        ] = None,
        include_preview: IncludePreview = None,
    ) -> Annotated[CallToolResult, RequestView]:
        """Wait for a generation with progress; returns the result, or the status after timeout_s (call
        again). Videos take minutes."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            plan = plan_wait(ctx, rt.settings, timeout_s)
            record = await rt.service.wait(caller, rid, plan.budget, progress_reporter(ctx), plan.heartbeat)
            return await request_result(record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                        is_test=caller.sandbox, note=plan.note_for(record),
                                        include_preview=wants_preview(rt.settings.previews, include_preview))

        return await run_tool(ctx, body)

    @mcp.tool(title="Forget stored requests", annotations=LOCAL_DESTRUCTIVE)
    async def forget(
        ctx: Context,
        request_id: Annotated[str | None, Field(description="One request.", max_length=100)] = None,
        older_than_days: Annotated[float | None, Field(description="Requests older than this.", ge=0)] = None,
        everything: Annotated[bool, Field(description="All your finished requests.")] = False,
        delete_files: Annotated[bool, Field(description="Also delete saved files.")] = True,
    ) -> Annotated[CallToolResult, ForgetView]:
        """Delete what this server stored of your finished generations (prompts, results, tasks, files);
        Clipia's own history stays."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            if sum((request_id is not None, older_than_days is not None, everything)) != 1:
                raise InvalidInputError("Give exactly one of request_id, older_than_days or everything=true.")
            rid = check.request_id(request_id) if request_id is not None else None
            before = time.time() - older_than_days * 86_400 if older_than_days is not None else None
            gone, deleted = await rt.service.forget(caller, request_id=rid, before=before, delete_files=delete_files)
            if rid is not None and not gone.request_ids:
                raise NotTrackedError(f"No finished request {rid} is stored for you (running ones are kept).",
                                    request_id=rid)
            if gone.request_ids:
                await ctx.notify_resources_changed()
            return structured(ForgetView(
                forgotten=len(gone.request_ids), request_ids=gone.request_ids[:50], files_deleted=deleted,
                note="Removed from this server only; Clipia keeps its own account history."))

        return await run_tool(ctx, body)

    @mcp.tool(title="List my requests", annotations=LOCAL_READ)
    async def list_requests(
        ctx: Context,
        status: Annotated[
            Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"] | None, Field()
        ] = None,
        limit: Annotated[int, Field(description=f"At most {C.MAX_LIST_LIMIT}.", ge=1)] = 20,
        model: Annotated[str | None, Field(max_length=C.MAX_MODEL_SLUG_CHARS)] = None,
        since: Annotated[str | None, Field(description="UTC date (2026-11-01) or ISO time.", max_length=40)] = None,
        until: Annotated[str | None, Field(description="Date (inclusive) or ISO time.", max_length=40)] = None,
    ) -> Annotated[CallToolResult, RequestListView]:
        """Your requests from this server's journal (kept across restarts), newest first."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            records = await rt.service.list_requests(
                caller, check.status_filter(status), min(limit, C.MAX_LIST_LIMIT),
                model=check.model_slug(model, extra_models()) if model else None,
                since=check.time_bound(since, "since"), until=check.time_bound(until, "until", end=True))
            items = [summary_data(r) for r in records]
            return structured({"count": len(items), "requests": items})

        return await run_tool(ctx, body)


def register_delete(mcp: MCPServer[Any]) -> None:
    """Add ``delete_clip`` (only when a provider that can delete jobs is configured)."""

    @mcp.tool(title="Delete a Reka clip job", annotations=DESTRUCTIVE)
    async def delete_clip(
        request_id: RequestId,
        ctx: Context,
        delete_input_video: Annotated[bool, Field(description="Also delete the source video.")] = False,
    ) -> Annotated[CallToolResult, DeleteView]:
        """Permanently delete a finished Reka clip job (reka/clips) you created here, and its outputs."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            rid = check.request_id(request_id)
            await rt.service.delete_job(caller, rid, delete_input_video)
            return structured(DeleteView(request_id=rid, deleted=True, deleted_input_video=delete_input_video))

        return await run_tool(ctx, body)
