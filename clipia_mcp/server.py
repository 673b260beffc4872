"""Building the MCP server: tools, resources, notifications, and the lifespan that runs them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, InputRequiredResult, ListResourcesResult, PaginatedRequestParams

from clipia_mcp import __version__, generate, resources, tools
from clipia_mcp.config import Settings
from clipia_mcp.errors import ConfigError
from clipia_mcp.runtime import Runtime, open_runtime
from clipia_mcp.tasks import TasksExtension, mcp_name_guard
from clipia_mcp.webhooks import WebhookReceiver

INSTRUCTIONS = """\
Clipia generates images, video and audio through a paid queue.
Typical flow: list_models / get_model to pick a model and its parameters → estimate_cost if the price matters →
submit_generation (returns a request_id at once) → wait_for_result(request_id) until done (call it again if it
returns while still running) → open the media links. Generations cannot be cancelled; credits are reserved at
submit and refunded on failure. Repeating a submit with the same idempotency_key never pays twice.
list_requests finds earlier requests, and each request is also a resource clipia://requests/{request_id}."""


class ClipiaMCPServer(MCPServer[Runtime]):
    """``MCPServer`` with an unknown tool as a protocol error and a per-caller dynamic resource list."""

    runtime_holder: RuntimeHolder

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Runtime, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        if self._tool_manager.get_tool(name) is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
        return await super().call_tool(name, arguments, context)

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Runtime], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        base = await self.list_resources()
        rt = ctx.lifespan_context
        context = Context(request_context=ctx, mcp_server=self)
        try:
            caller = rt.caller_for(context)
        except Exception:  # noqa: BLE001 - no caller, no per-caller resources
            return ListResourcesResult(resources=base)
        return ListResourcesResult(resources=[*base, *await resources.list_request_resources(rt, caller.owner)])


class RuntimeHolder:
    """The process-wide runtime.

    stdio serves one connection, so the MCP lifespan can own the runtime. The SSE
    transport runs the MCP lifespan once per connection, so HTTP hosting opens the
    runtime once per process (:mod:`clipia_mcp.hosting`) and every lifespan reuses it.
    """

    def __init__(self, settings: Settings, notifier: resources.Notifier) -> None:
        self.settings = settings
        self.notifier = notifier
        self.runtime: Runtime | None = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Runtime]:
        async with open_runtime(self.settings) as rt:
            rt.service.tracker.listeners.append(self.notifier)
            rt.extras["notifier"] = self.notifier
            if self.settings.webhook_secret:
                rt.extras["webhook_receiver"] = WebhookReceiver(self.settings.webhook_secret, rt.service.tracker)
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


def build_server(settings: Settings) -> ClipiaMCPServer:
    """A ready-to-run server for ``settings`` (the runtime starts with the server's lifespan)."""
    bus = InMemorySubscriptionBus()
    legacy = resources.LegacySubscriptions()
    holder = RuntimeHolder(settings, resources.Notifier(bus, legacy))

    oauth: dict[str, Any] = {}
    if settings.oauth_introspection_url:
        from mcp.server.auth.settings import AuthSettings

        from clipia_mcp.oauth import IntrospectionVerifier

        if not (settings.oauth_issuer_url and settings.oauth_resource_url):
            raise ConfigError("OAuth mode needs CLIPIA_MCP_OAUTH_ISSUER and CLIPIA_MCP_OAUTH_RESOURCE.")
        oauth = {
            "token_verifier": IntrospectionVerifier(settings.oauth_introspection_url),
            "auth": AuthSettings(issuer_url=settings.oauth_issuer_url,  # type: ignore[arg-type]
                                 resource_server_url=settings.oauth_resource_url,  # type: ignore[arg-type]
                                 required_scopes=list(settings.oauth_required_scopes) or None,
                                 validate_token_resource=False),
        }
    mcp = ClipiaMCPServer(
        "clipia-mcp",
        title="Clipia generation queue",
        description="Generate images, video and audio on Clipia: submit, track progress, fetch results.",
        instructions=INSTRUCTIONS,
        website_url="https://clipia.ai",
        version=__version__,
        lifespan=holder.lifespan,
        subscriptions=bus,
        extensions=[TasksExtension(lambda: holder.runtime)],
        middleware=[mcp_name_guard, resources.listen_guard],
        **oauth,
    )
    mcp.runtime_holder = holder
    tools.register(mcp)
    generate.register(mcp)
    tools.tidy_descriptions(mcp)
    resources.register(mcp, legacy)
    return mcp
