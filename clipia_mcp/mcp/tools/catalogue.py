"""Tools on the catalogue and the account: models, one model, cost estimate, balance."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from clipia_mcp.core import validation as check
from clipia_mcp.core.errors import ClipiaMcpError, InvalidInputError
from clipia_mcp.engine.caller import Caller
from clipia_mcp.mcp.results import structured
from clipia_mcp.mcp.runtime import Runtime
from clipia_mcp.mcp.spend import spend_view
from clipia_mcp.mcp.tools.calling import run_tool
from clipia_mcp.mcp.tools.params import READ, ModelInput, ModelSlug
from clipia_mcp.mcp.views import (
    BalanceView,
    EstimateView,
    ModelDetail,
    ModelList,
    ModelSummary,
    SpendLimitsView,
    SpendView,
)
from clipia_mcp.providers.registry import extra_models

log = logging.getLogger(__name__)


def summary(m: dict[str, Any]) -> ModelSummary | None:
    """A catalogue entry as list_models shows it; None for an entry without a slug."""
    slug = m.get("slug") or m.get("id")
    if not isinstance(slug, str):
        return None
    raw_pricing = m.get("pricing")
    pricing: dict[str, Any] = raw_pricing if isinstance(raw_pricing, dict) else {}
    credits = pricing.get("credits")
    caps = m.get("capabilities")
    return ModelSummary(
        slug=slug, type=m.get("type") if isinstance(m.get("type"), str) else None,
        name=m.get("name") if isinstance(m.get("name"), str) else None,
        description=m.get("description") if isinstance(m.get("description"), str) else None,
        capabilities=[c for c in caps if isinstance(c, str)] if isinstance(caps, list) else [],
        credits=credits if isinstance(credits, int) and not isinstance(credits, bool) else None,
        available=bool(pricing.get("available", True)),
        estimate_required=bool(pricing.get("estimate_required", False)),
    )


def register(mcp: MCPServer[Any]) -> None:
    """Add the catalogue and account tools to ``mcp``."""

    @mcp.tool(title="List models", annotations=READ)
    async def list_models(
        ctx: Context,
        type: Annotated[  # noqa: A002 - the API's field name
            Literal["image", "video", "audio", "text"] | None, Field()
        ] = None,
        search: Annotated[
            str | None, Field(description="Text in slug, name or description.", max_length=200)
        ] = None,
    ) -> Annotated[CallToolResult, ModelList]:
        """The model catalogue: slug, type, capabilities and price in credits at defaults."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            needle = (search or "").strip().lower()
            out = []
            for m in await rt.service.list_models(caller):
                item = summary(m)
                if item is None or (type and item.type != type):
                    continue
                hay = " ".join(str(m.get(k, "")) for k in ("slug", "id", "name", "description")).lower()
                if needle and needle not in hay:
                    continue
                out.append(item)
            return structured(ModelList(count=len(out), models=out))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get model details", annotations=READ)
    async def get_model(model: ModelSlug, ctx: Context) -> Annotated[CallToolResult, ModelDetail]:
        """A model's input parameters (types, allowed values, bounds), pricing and limits."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            m = await rt.service.get_model(caller, check.model_slug(model, extra_models()))
            pricing = m.get("pricing")
            schema = m.get("input_schema")
            limits = m.get("text_limits")
            caps = m.get("capabilities")
            return structured(ModelDetail(
                slug=str(m.get("slug") or m.get("id") or model),
                type=m.get("type") if isinstance(m.get("type"), str) else None,
                name=m.get("name") if isinstance(m.get("name"), str) else None,
                description=m.get("description") if isinstance(m.get("description"), str) else None,
                capabilities=[c for c in caps if isinstance(c, str)] if isinstance(caps, list) else [],
                pricing=dict(pricing) if isinstance(pricing, dict) else {},
                input_schema=schema if isinstance(schema, dict) else None,
                text_limits=limits if isinstance(limits, dict) else None,
            ))

        return await run_tool(ctx, body)

    @mcp.tool(title="Estimate cost", annotations=READ)
    async def estimate_cost(model: ModelSlug, input: ModelInput, ctx: Context  # noqa: A002
                            ) -> Annotated[CallToolResult, EstimateView]:
        """Exact credit cost of this input (nothing queued), the balance, and input keys the model ignores."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            slug = check.model_slug(model, extra_models())
            credits, warnings = await rt.service.estimate(caller, slug, check.generation_input(input))
            balance = None
            try:
                balance = (await rt.service.balance(caller)).credits
            except ClipiaMcpError as exc:
                log.info("balance unavailable for estimate: %s", exc.code)
            affordable = None if balance is None else balance >= credits
            return structured(EstimateView(
                model=slug, credits=credits, warnings=warnings, balance=balance,
                affordable=True if caller.sandbox else affordable, test_key=caller.sandbox or None,
            ))

        return await run_tool(ctx, body)

    @mcp.tool(title="Get balance", annotations=READ)
    async def get_balance(ctx: Context) -> Annotated[CallToolResult, BalanceView]:
        """The credit balance, the key's 30-day usage and your spend limits."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            b = await rt.service.balance(caller)
            limits = await rt.service.spend.budget(caller, time.time())
            shown = SpendLimitsView(max_cost_per_call=limits.max_cost_per_call, remaining_today=limits.remaining_today,
                                    remaining_this_month=limits.remaining_this_month)
            return structured(BalanceView(account_id=b.account_id, credits=b.credits,
                                          usage_30d_requests=b.requests_30d,
                                          usage_30d_credits_spent=b.credits_spent_30d, sandbox=caller.sandbox,
                                          spend_limits=shown if shown.model_dump(exclude_none=True) else None))

        return await run_tool(ctx, body)

    @mcp.tool(title="Spending summary", annotations=READ)
    async def spend_summary(
        ctx: Context,
        since: Annotated[str | None, Field(description="UTC date or ISO time (default: 30 days ago).",
                                           max_length=40)] = None,
        until: Annotated[str | None, Field(description="Date (inclusive) or ISO time.", max_length=40)] = None,
    ) -> Annotated[CallToolResult, SpendView]:
        """Credits spent per day and model (this server's journal), balance, 30-day usage; also clipia://spend."""

        async def body(rt: Runtime, caller: Caller) -> CallToolResult:
            start, end = check.time_bound(since, "since"), check.time_bound(until, "until", end=True)
            if start is not None and end is not None and start >= end:
                raise InvalidInputError("since must be before until.")
            return structured(await spend_view(rt, caller, start, end))

        return await run_tool(ctx, body)
