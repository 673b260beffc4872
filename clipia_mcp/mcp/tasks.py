"""The MCP tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663) for ``generate``.

mcp 2.3.0 has no tasks runtime, so this builds one on its extension API:

* ``tools/call generate`` from a 2026-07-28 client that declared the extension runs the submit
  synchronously (validation and any cost-confirmation round happen *before* the task exists), then
  writes a task row to the journal and answers a ``CreateTaskResult``. The unguessable ``taskId``
  maps to the Clipia ``request_id``; no in-process job is kept, so any process (a restarted one
  too) answers ``tasks/get`` from the journal and the shared tracker.
* ``tasks/get`` returns the task with ``statusMessage`` ("queued #3", "rendering 40%") and
  ``pollIntervalMs`` from the tracker's schedule; when done, ``result`` is the ``CallToolResult``.
* ``tasks/cancel`` is recorded honestly: the Clipia API cannot cancel, so the task ends
  ``cancelled`` at once while the generation itself runs to completion and is still charged; its
  request stays visible through ``list_requests`` and its resource.
* ``tasks/update`` is acknowledged (no task here asks for input). ``tasks/result`` and ``tasks/list``
  are not served (-32601). A ``Mcp-Name`` header that disagrees with ``taskId`` is rejected (-32020).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import HEADER_MISMATCH, INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.records import RequestRecord, TaskRecord
from clipia_mcp.core.timeutil import iso_millis
from clipia_mcp.mcp.progress import human_status
from clipia_mcp.mcp.results import request_result
from clipia_mcp.mcp.runtime import Runtime

log = logging.getLogger(__name__)
TASKS_EXT = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"generate"})
TASK_METHODS = ("tasks/get", "tasks/update", "tasks/cancel")
MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)


class TaskParams(RequestParams):
    task_id: str = Field(alias="taskId", min_length=1, max_length=200)


class TaskUpdateParams(TaskParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether the client declared the tasks extension."""
    caps = ctx.session.client_capabilities
    return bool(caps and caps.extensions and TASKS_EXT in caps.extensions)


def runs_as_task(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this ``tools/call`` will be answered with a task (the tool then returns right after submitting)."""
    params = ctx.params if isinstance(ctx.params, dict) else {}
    return (params.get("name") in TASK_TOOLS and ctx.protocol_version in MODERN and declared(ctx))


class TasksExtension(Extension):
    identifier = TASKS_EXT

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime  # a callable returning the live Runtime

    def _rt(self) -> Runtime:
        rt: Runtime | None = self._runtime()
        if rt is None:
            raise MCPError(code=INVALID_PARAMS, message="server is starting")
        return rt

    def methods(self) -> list[MethodBinding]:
        modern = MODERN
        return [
            MethodBinding("tasks/get", TaskParams, self.get, protocol_versions=modern),
            MethodBinding("tasks/update", TaskUpdateParams, self.update, protocol_versions=modern),
            MethodBinding("tasks/cancel", TaskParams, self.cancel, protocol_versions=modern),
        ]

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> Any:
        if params.name not in TASK_TOOLS or ctx.protocol_version not in MODERN or not declared(ctx):
            return await call_next(ctx)
        result = await call_next(ctx)
        if not isinstance(result, CallToolResult) or result.is_error or not result.structured_content:
            return result  # an error, or an input_required round: no task yet
        rt = self._rt()
        caller = rt.caller_for(Context(request_context=ctx))
        request_id = str(result.structured_content["request_id"])
        task = await rt.service.create_task(caller, secrets.token_urlsafe(24), request_id)  # durable first
        item = await rt.service.tracked(caller, request_id)
        return {"resultType": "task", **self._task_fields(rt, task, item.record)}

    def _task_fields(self, rt: Runtime, task: TaskRecord, record: RequestRecord) -> dict[str, Any]:
        if task.cancelled_at is not None:
            status = "cancelled"
            message = (f"cancelled by the client; Clipia cannot stop generations, so request {record.request_id} "
                       f"continues ({human_status(record)}) and is still charged")
        elif record.settled:
            status, message = "completed", human_status(record)
        else:
            status, message = "working", human_status(record)
        fields: dict[str, Any] = {
            "taskId": task.task_id,
            "status": status,
            "statusMessage": message,
            "createdAt": iso_millis(task.created_at),
            "lastUpdatedAt": iso_millis(max(task.cancelled_at or 0, record.updated_at, task.created_at)),
            "ttlMs": C.TASK_TTL_MS,
        }
        if status == "working":
            fields["pollIntervalMs"] = int(rt.service.poll_interval(record) * 1000)
        return fields

    async def _load(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> tuple[Runtime, TaskRecord, Any]:
        require_client_extension(ctx, TASKS_EXT)  # -32021 for a client that did not declare tasks
        rt = self._rt()
        caller = rt.caller_for(Context(request_context=ctx))
        task = await rt.service.get_task(caller, task_id)
        if task is None:  # someone else's task looks exactly like no task
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown task {task_id[:64]!r}")
        return rt, task, caller

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        rt, task, caller = await self._load(ctx, params.task_id)
        try:
            item = await rt.service.tracked(caller, task.request_id)
        except ClipiaMcpError as exc:
            return {"resultType": "complete", "taskId": task.task_id, "status": "failed",
                    "createdAt": iso_millis(task.created_at), "lastUpdatedAt": iso_millis(time.time()),
                    "ttlMs": C.TASK_TTL_MS, "error": {"code": -32603, "message": f"{exc.code}: {exc.message}"}}
        fields = self._task_fields(rt, task, item.record)
        if fields["status"] == "completed":
            result = await request_result(item.record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                          include_preview=bool(rt.settings.previews), is_test=caller.sandbox)
            fields["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {"resultType": "complete", **fields}

    async def update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> dict[str, Any]:
        await self._load(ctx, params.task_id)
        return {"resultType": "complete"}

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        rt, task, caller = await self._load(ctx, params.task_id)
        if task.cancelled_at is None:
            item = await rt.service.tracked(caller, task.request_id)
            if item.record.settled:  # a terminal task never changes
                return {"resultType": "complete"}
            await rt.service.cancel_task(task)
            log.info("task %s cancel recorded; request %s continues upstream", task.task_id[:8], task.request_id)
        return {"resultType": "complete"}


async def mcp_name_guard(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
    """Middleware: on HTTP, ``Mcp-Name`` must equal the ``taskId`` of tasks/get|update|cancel (-32020)."""
    if ctx.method in TASK_METHODS and ctx.request is not None:
        headers = getattr(ctx.request, "headers", None)
        name = headers.get("mcp-name") if headers is not None else None
        task_id = (ctx.params or {}).get("taskId")
        if name is not None and name != task_id:
            raise MCPError(code=HEADER_MISMATCH, message="Mcp-Name header does not match params.taskId")
    return await call_next(ctx)
