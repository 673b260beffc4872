"""Client-side helpers shared by tests: a minimal tasks-extension client and its request types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict, Field

TASKS = "io.modelcontextprotocol/tasks"


class CreateTaskResult(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(default=None, alias="statusMessage")
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")


class TaskResult(Result):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(default=None, alias="statusMessage")
    result: dict[str, Any] | None = None
    poll_interval_ms: int | None = Field(default=None, alias="pollIntervalMs")


class TaskIdParams(RequestParams):
    task_id: str = Field(alias="taskId")


class TaskGet(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class TaskCancel(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class TasksClient(ClientExtension):
    """A minimal tasks client: claims resultType "task" and polls tasks/get until terminal."""

    identifier = TASKS

    def __init__(self, on_status: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.handles: list[CreateTaskResult] = []
        self.statuses: list[str] = []
        #: Called with each polled status message (a test can advance emulated time from here).
        self.on_status = on_status

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, handle: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
        self.handles.append(handle)
        with anyio.fail_after(60):
            while True:
                got = await ctx.session.send_request(TaskGet(params=TaskIdParams(task_id=handle.task_id)), TaskResult)
                self.statuses.append(got.status_message or got.status)
                if self.on_status is not None:
                    await self.on_status(self.statuses[-1])
                if got.status in ("completed", "failed", "cancelled"):
                    assert got.result is not None, got
                    return CallToolResult.model_validate(got.result)
                await anyio.sleep((got.poll_interval_ms or 50) / 1000)
