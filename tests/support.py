"""Client-side helpers shared by tests: a minimal tasks-extension client, an MCP Apps host declaration, and
clients of a hosted server."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
from conftest import server_env
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict, Field

from clipia_mcp.sandbox import EmulatorServer

TASKS = "io.modelcontextprotocol/tasks"


class AppsHost(ClientExtension):
    """What an MCP Apps host declares (``io.modelcontextprotocol/ui`` with the app MIME type)."""

    identifier = "io.modelcontextprotocol/ui"

    def settings(self) -> dict[str, object]:
        return {"mimeTypes": ["text/html;profile=mcp-app"]}


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


# ---------------------------------------------------------------- hosted (HTTP with per-caller credentials)


def client_as(url: str, credential: str, header: str = "Authorization") -> Client:
    value = f"Bearer {credential}" if header == "Authorization" else credential
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers={header: value},
                                                                             timeout=30)))


def hosted_env(emu: EmulatorServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = server_env(emu, emu.new_key(), tmp_path, **extra)
    del env["CLIPIA_API_KEY"]
    return env


def text_of(result: Any) -> str:
    return json.dumps(result.model_dump(mode="json", by_alias=True))
