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

import contextvars
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import anyio
from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, require_client_extension
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, event_matches, event_to_notification
from mcp.types import HEADER_MISMATCH, INVALID_PARAMS, CallToolRequestParams, CallToolResult, RequestParams
from mcp_types import SubscriptionFilter, SubscriptionsListenRequestParams, SubscriptionsListenResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from clipia_mcp.core import constants as C
from clipia_mcp.core.errors import ClipiaMcpError
from clipia_mcp.core.model import Model
from clipia_mcp.core.records import RequestRecord, TaskRecord
from clipia_mcp.core.timeutil import iso_millis
from clipia_mcp.mcp.progress import human_status
from clipia_mcp.mcp.results import request_result, resource_uri
from clipia_mcp.mcp.runtime import Runtime

log = logging.getLogger(__name__)
TASKS_EXT = "io.modelcontextprotocol/tasks"
TASK_TOOLS = frozenset({"generate"})
TASK_METHODS = ("tasks/get", "tasks/update", "tasks/cancel")
MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)


class TaskParams(RequestParams):
    model_config = ConfigDict(defer_build=True)  # built on the first tasks/* request, not at every start

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

    def __init__(self, runtime: Any, bus: SubscriptionBus | None = None) -> None:
        self._runtime = runtime  # a callable returning the live Runtime
        self.bus = bus  # where a cancellation is announced to listen streams

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
        return {"resultType": "complete", **await self.detailed(rt, caller, task)}

    async def detailed(self, rt: Runtime, caller: Any, task: TaskRecord) -> dict[str, Any]:
        """The ``DetailedTask``: status, and the result (or error) once terminal."""
        try:
            item = await rt.service.tracked(caller, task.request_id)
        except ClipiaMcpError as exc:
            return {"taskId": task.task_id, "status": "failed",
                    "createdAt": iso_millis(task.created_at), "lastUpdatedAt": iso_millis(time.time()),
                    "ttlMs": C.TASK_TTL_MS, "error": {"code": -32603, "message": f"{exc.code}: {exc.message}"}}
        fields = self._task_fields(rt, task, item.record)
        if fields["status"] == "completed":
            result = await request_result(item.record, media_http=rt.media_http, outputs=rt.engine.outputs,
                                          include_preview=bool(rt.settings.previews), is_test=caller.sandbox)
            fields["result"] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return fields

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
            if self.bus is not None:
                await self.bus.publish(TaskChanged(task.task_id))  # type: ignore[arg-type]
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


# ---------------------------------------------------------------- notifications/tasks on subscriptions/listen

#: The raw ``notifications.taskIds`` of the listen request being served (the SDK's filter model drops it).
_LISTEN_TASK_IDS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("listen_task_ids", default=None)
MAX_LISTEN_TASKS = 100


@dataclass(frozen=True)
class TaskChanged:
    """A bus event: a task changed without its request changing (a cancellation)."""

    task_id: str
    uri: str = ""  # never matches a resource subscription


class _Notification(Model):
    """A notification the SDK has no model for (its filter models drop the tasks extension's fields)."""

    method: str
    params: dict[str, Any]


async def _notify(ctx: ServerRequestContext[Any, Any], method: str, params: dict[str, Any]) -> None:
    """Send a notification on the listen request's own stream."""
    notification: Any = _Notification(method=method, params=params)
    await ctx.session.send_notification(notification, related_request_id=ctx.request_id)


async def task_listen_guard(ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
    """Middleware: keep the ``taskIds`` of a ``subscriptions/listen`` for :class:`TaskListenHandler`."""
    if ctx.method == "subscriptions/listen" and isinstance(ctx.params, dict):
        notes = ctx.params.get("notifications")
        ids = notes.get("taskIds") if isinstance(notes, dict) else None
        if isinstance(ids, list):
            token = _LISTEN_TASK_IDS.set([i for i in ids if isinstance(i, str)][:MAX_LISTEN_TASKS])
            try:
                return await call_next(ctx)
            finally:
                _LISTEN_TASK_IDS.reset(token)
    return await call_next(ctx)


class TaskListenHandler(ListenHandler):
    """``subscriptions/listen`` with the tasks extension's ``notifications.taskIds``.

    Only the caller's own tasks are honored (the acknowledgement echoes those ids; another caller's
    task is silently left out). After the ack, each honored task's current ``DetailedTask`` is pushed
    as ``notifications/tasks``, then again on every change of its request (and on cancellation),
    up to and including its terminal state, which carries the result. Everything else is the SDK's.
    """

    def __init__(self, bus: SubscriptionBus, tasks: TasksExtension) -> None:
        super().__init__(bus)
        self.bus = bus
        self.tasks = tasks

    async def __call__(self, ctx: ServerRequestContext[Any, Any],
                       params: SubscriptionsListenRequestParams) -> SubscriptionsListenResult:
        requested = _LISTEN_TASK_IDS.get()
        if not requested or not declared(ctx):
            return await super().__call__(ctx, params)
        rt = self.tasks._rt()
        caller = rt.caller_for(Context(request_context=ctx))
        own = {}
        for task_id in dict.fromkeys(requested):
            task = await rt.service.get_task(caller, task_id)
            if task is not None:
                own[task_id] = task
        by_uri = {resource_uri(t.request_id): t.task_id for t in own.values()}
        wanted = params.notifications
        honored = SubscriptionFilter(
            tools_list_changed=True if wanted.tools_list_changed else None,
            prompts_list_changed=True if wanted.prompts_list_changed else None,
            resources_list_changed=True if wanted.resources_list_changed else None,
            resource_subscriptions=list(wanted.resource_subscriptions) if wanted.resource_subscriptions else None)
        uris = frozenset(honored.resource_subscriptions or ())
        subscription_id = ctx.request_id
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        send, recv = anyio.create_memory_object_stream[Any](1024)

        def deliver(event: Any) -> None:
            if (isinstance(event, TaskChanged) and event.task_id in own) or getattr(event, "uri", "") in by_uri \
                    or event_matches(honored, uris, event):
                try:
                    send.send_nowait(event)
                except (anyio.WouldBlock, anyio.ClosedResourceError):
                    send.close()  # a client that stopped reading: end the stream, it re-listens

        finished: set[str] = set()

        async def push(task_id: str) -> None:
            if task_id in finished:
                return  # a terminal task never changes: one terminal notification
            task = await rt.service.get_task(caller, task_id) or own[task_id]
            fields = await self.tasks.detailed(rt, caller, task)
            if fields["status"] in ("completed", "failed", "cancelled"):
                finished.add(task_id)
            await _notify(ctx, "notifications/tasks", {**fields, "_meta": meta})

        unsubscribe = self.bus.subscribe(deliver)
        try:
            ack = {**honored.model_dump(by_alias=True, mode="json", exclude_none=True), "taskIds": list(own)}
            await _notify(ctx, "notifications/subscriptions/acknowledged", {"notifications": ack, "_meta": meta})
            for task_id in own:
                await push(task_id)
            async for event in recv:
                if event_matches(honored, uris, event) and not isinstance(event, TaskChanged):
                    await ctx.session.send_notification(event_to_notification(event, meta),
                                                        related_request_id=subscription_id)
                changed: str | None = event.task_id if isinstance(event, TaskChanged) \
                    else by_uri.get(getattr(event, "uri", ""))
                if changed is not None:
                    await push(changed)
        finally:
            unsubscribe()
            send.close()
            recv.close()
        return SubscriptionsListenResult(_meta=meta)
