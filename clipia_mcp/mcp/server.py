"""Building the MCP server: tools, resources, tasks, notifications, and the lifespan that runs them."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import mcp.server.mcpserver.server as sdk_server
from mcp.server import MCPServer
from mcp.server.apps import client_supports_apps
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolResult,
    GetPromptResult,
    Icon,
    InputRequiredResult,
    ListResourcesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ServerCapabilities,
    ToolAnnotations,
)
from mcp.types import Prompt as MCPPrompt
from mcp.types import Tool as MCPTool
from mcp_types import SubscriptionsListenRequestParams
from pydantic import AnyUrl, ValidationError

from clipia_mcp import __version__
from clipia_mcp.core import metrics
from clipia_mcp.core.errors import ClipiaMcpError, InvalidInputError
from clipia_mcp.core.settings import Settings
from clipia_mcp.mcp import logs, prompts, resources
from clipia_mcp.mcp.apps import build_apps, is_app_only, without_ui
from clipia_mcp.mcp.deferred_tools import DeferredTools
from clipia_mcp.mcp.results import error_result
from clipia_mcp.mcp.runtime import Runtime, open_runtime
from clipia_mcp.mcp.spend import SPEND_URI
from clipia_mcp.mcp.tasks import TaskListenHandler, TasksExtension, mcp_name_guard, task_listen_guard
from clipia_mcp.mcp.tools import register_all

log = logging.getLogger(__name__)
#: The SDK's ToolError when the user answers a resolver's elicitation with decline or cancel.
_DECLINED = re.compile(r"could not resolve: elicitation was (decline|cancel)\b")

INSTRUCTIONS = """\
Clipia generates images, video and audio through a paid queue.
Typical flow: list_models / get_model to pick a model and its parameters → estimate_cost if the price matters →
submit_generation (returns a request_id at once) → wait_for_result(request_id) until done (call it again if it
returns while still running) → open the media links. Generations cannot be cancelled; credits are reserved at
submit and refunded on failure. Repeating a submit with the same idempotency_key never pays twice.
list_requests finds earlier requests, and each request is also a resource clipia://requests/{request_id}.
Errors are results with isError and a stable code in the text ("Error <code>: …") and in _meta["io.clipia/error"]."""


def invalid_arguments(name: str, exc: ValidationError) -> InvalidInputError:
    """A schema violation as one readable ``invalid_input`` message (no pydantic internals, no links)."""
    problems = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("__root__",)) or "arguments"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    return InvalidInputError(f"Invalid arguments for {name}: " + "; ".join(problems) + ".")


class ClipiaMCPServer(MCPServer[Runtime]):
    """``MCPServer`` where every tool failure is an ``isError`` result with a stable code.

    An unknown tool is a protocol error (-32602); the per-caller resource list is dynamic.
    """

    runtime_holder: RuntimeHolder
    _prompts_loaded = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The SDK's constructor calls configure_logging(), which imports rich (~20 ms at startup) to build a
        # handler for logging.basicConfig. The CLI has set up logging already (stderr, redacted), which makes
        # basicConfig a no-op, and an embedding application owns its logging: skip the call.
        namespace = vars(sdk_server)
        configure = namespace["configure_logging"]
        namespace["configure_logging"] = _leave_logging_alone
        try:
            super().__init__(*args, **kwargs)
        finally:
            namespace["configure_logging"] = configure

    @property
    def deferred_tools(self) -> DeferredTools:
        """The registered tools (built into the SDK's tool manager on first use)."""
        tools = self.__dict__.get("_deferred_tools")
        if tools is None:  # extensions add their tools from inside the SDK's constructor
            tools = self.__dict__["_deferred_tools"] = DeferredTools(self._tool_manager)
        return tools

    @property
    def tool_functions(self) -> dict[str, Callable[..., Any]]:
        """Each tool's function by name (its output model is read from its return annotation)."""
        return self.deferred_tools.functions

    def add_tool(self, fn: Callable[..., Any], name: str | None = None, title: str | None = None,
                 description: str | None = None, annotations: ToolAnnotations | None = None,
                 icons: list[Icon] | None = None, meta: dict[str, Any] | None = None,
                 structured_output: bool | None = None) -> None:
        """Register a tool; it is built (its arguments model made) on its first call, listed from shipped schemas.

        Every tool here returns a ``CallToolResult`` it built itself, so the SDK never derives an output
        schema (``structured_output`` is ignored); the published one comes from ``tool_schemas.json``.
        """
        self.deferred_tools.add(fn, name, title, description, annotations, icons, meta)

    async def list_tools(self) -> list[MCPTool]:
        return self.deferred_tools.listing()

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        return self.deferred_tools.schemas(name)["input"] if name in self.deferred_tools.entries else None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Runtime, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if self.deferred_tools.built(name) is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        try:
            result = await super().call_tool(name, arguments, context)
            metrics.inc("clipia_mcp_tool_calls_total", tool=name,
                        outcome="error" if getattr(result, "is_error", False) else "ok")
            return result
        except UnexpectedToolError as exc:
            metrics.inc("clipia_mcp_tool_calls_total", tool=name, outcome="error")
            ref = secrets.token_hex(4)
            log.error("tool %s crashed (ref %s)", name, ref, exc_info=exc.__cause__ or exc)
            return error_result(ClipiaMcpError(
                f"The server failed unexpectedly while running {name} (reference {ref}). Nothing else is affected; "
                "call again, and if it repeats tell the operator the reference.", code="internal_server_error"))
        except ToolError as exc:
            metrics.inc("clipia_mcp_tool_calls_total", tool=name, outcome="error")
            cause: BaseException | None = exc
            while cause is not None:  # the SDK wraps a resolver's ToolError in its own
                if isinstance(cause, ClipiaMcpError):
                    return error_result(cause)
                if isinstance(cause, ValidationError):
                    return error_result(invalid_arguments(name, cause))
                cause = cause.__cause__
            text = str(exc).removeprefix(f"Error executing tool {name}: ")
            declined = _DECLINED.search(text)
            if declined:  # the only resolver asks the user to confirm a cost (generate)
                return error_result(ClipiaMcpError(
                    f"The user did not confirm the cost (elicitation was {declined.group(1)}); nothing was submitted.",
                    code="cost_declined"))
            return error_result(InvalidInputError(text))

    def _load_prompts(self) -> None:
        """Add the prompts on the first prompts request, not at every start."""
        if not self._prompts_loaded:
            prompts.add_prompts(self)
            self._prompts_loaded = True  # after: a failed registration is tried again

    async def list_prompts(self) -> list[MCPPrompt]:
        self._load_prompts()
        return await super().list_prompts()

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Runtime, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        self._load_prompts()
        if self._prompt_manager.get_prompt(name) is None:  # the spec's answer to an unknown name: -32602
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name[:64]!r}")
        try:
            return await super().get_prompt(name, arguments, context)
        except ValueError as exc:  # missing or invalid arguments
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from None

    async def _handle_list_tools(
        self, ctx: ServerRequestContext[Runtime], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        """Every tool; clients without MCP Apps get neither the app-only tools (the card's refresh) nor the
        ``_meta.ui`` links they cannot render (context they would only pay for)."""
        tools = await self.list_tools()
        if not client_supports_apps(ctx):
            tools = [without_ui(t) for t in tools if not is_app_only(t.meta)]
        return ListToolsResult(tools=tools)

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Runtime], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        cursor = params.cursor if params is not None else None
        after = resources.decode_cursor(cursor) if cursor is not None else None  # -32602 when invalid
        base = await self.list_resources() if after is None else []
        if not client_supports_apps(ctx):  # the card's ui:// document is for MCP Apps hosts only
            base = [r for r in base if not r.uri.startswith("ui://")]
        rt = ctx.lifespan_context
        context = Context(request_context=ctx, mcp_server=self)
        try:
            caller = rt.caller_for(context)
        except ClipiaMcpError:  # no caller, no per-caller resources
            if after is not None:
                raise MCPError(code=INVALID_PARAMS, message="Invalid cursor") from None
            return ListResourcesResult(resources=base)
        page, next_cursor = await resources.list_request_resources(rt, caller, after=after)
        first = [resources.SPEND_RESOURCE] if after is None else []  # the caller's spending, on the first page
        return ListResourcesResult(resources=[*base, *first, *page], next_cursor=next_cursor)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Runtime, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        if str(uri) == SPEND_URI and context is not None:  # per caller: needs the request's context
            return [ReadResourceContents(content=await resources.read_spend(context), mime_type="application/json")]
        return await super().read_resource(uri, context)


class RuntimeHolder:
    """The process-wide runtime.

    stdio serves one connection, so the MCP lifespan can own the runtime. The SSE
    transport runs the MCP lifespan once per connection, so HTTP hosting opens the
    runtime once per process (:mod:`clipia_mcp.transports.http`) and every lifespan reuses it.
    """

    def __init__(self, settings: Settings, notifier: resources.Notifier) -> None:
        self.settings = settings
        self.notifier = notifier
        self.runtime: Runtime | None = None

    @contextlib.asynccontextmanager
    async def open(self, *, recover_all_owners: bool = False) -> AsyncIterator[Runtime]:
        """Start the runtime for this process and publish request changes to subscribers."""
        async with open_runtime(self.settings, recover_all_owners=recover_all_owners) as rt:
            rt.service.add_listener(self.notifier)
            rt.list_changed = self.notifier.list_changed
            self.runtime = rt
            try:
                yield rt
            finally:
                self.runtime = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        if self.runtime is not None:
            yield self.runtime
            return
        async with self.open() as rt:
            yield rt


def _leave_logging_alone(level: str = "INFO") -> None:
    """Stands in for the SDK's ``configure_logging`` while a server is constructed."""


def _truthful_list_changed(mcp: ClipiaMCPServer) -> None:
    """The tool and prompt lists never change at runtime: advertise ``listChanged: false`` in every era.

    (At 2026-07-28 the SDK derives the flags from ``subscriptions/listen`` being served.)
    """
    lowlevel = mcp._lowlevel_server  # noqa: SLF001 - no public hook for capabilities
    derive = lowlevel.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> ServerCapabilities:
        caps = derive(*args, **kwargs)
        if caps.tools is not None:
            caps.tools.list_changed = False
        if caps.prompts is not None:
            caps.prompts.list_changed = False
        return caps

    lowlevel.get_capabilities = get_capabilities  # type: ignore[method-assign]


def build_server(settings: Settings, **auth: Any) -> ClipiaMCPServer:
    """A ready-to-run server for ``settings``; ``auth`` (token_verifier, auth) comes from the transport."""
    bus = resources.TenantBus()
    legacy = resources.LegacySubscriptions()
    holder = RuntimeHolder(settings, resources.Notifier(bus, legacy))
    forwarding = logs.LogForwarding()
    tasks = TasksExtension(lambda: holder.runtime, bus)
    mcp = ClipiaMCPServer(
        "clipia-mcp",
        title="Clipia generation queue",
        description="Generate images, video and audio on Clipia: submit, track progress, fetch results.",
        instructions=INSTRUCTIONS,
        website_url="https://clipia.ai",
        version=__version__,
        lifespan=holder.lifespan,
        subscriptions=bus,
        extensions=[tasks, build_apps(settings)],
        middleware=[mcp_name_guard, resources.listen_guard, task_listen_guard, forwarding.middleware],
        **auth,
    )
    mcp.runtime_holder = holder
    _truthful_list_changed(mcp)
    mcp._lowlevel_server.add_request_handler(  # noqa: SLF001 - tasks extend the SDK's listen handler
        "subscriptions/listen", SubscriptionsListenRequestParams, TaskListenHandler(bus, tasks))
    register_all(mcp, settings)
    resources.register(mcp, legacy)
    prompts.register(mcp)
    logs.install(forwarding, mcp)
    return mcp
