"""Lean context: tools/list stays small over the wire, every output schema is published once, schemas stay valid,
and results leave out empty optional fields so the schemas can forbid nulls."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from mcp import Client
from support import AppsHost

from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.mcp.schemas import compact, derive_tool_schemas, load_published, omittable
from clipia_mcp.mcp.server import build_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_log_forwarding")]
#: Bytes of tools/list (output schemas included) as a client without MCP Apps receives it on a Clipia key: the
#: context every model pays for. 16,813 before this budget (all 14 tools, app-only and Reka ones included).
BUDGET = 12_000
#: Everything at once: the sandbox (Reka's delete_clip too) and an MCP Apps host (the app-only card tool and
#: the tools' card links; the host's model never sees the app-only tool).
BUDGET_ALL = 13_500


LIVE = Settings(api_key=ApiKey("clipia_live_schemaschema0000"), journal_path=None)
SANDBOX = Settings(sandbox=True, journal_path=None)


async def listed(settings: Settings, *, apps: bool) -> list[dict[str, Any]]:
    """tools/list as a real client receives it (the runtime never starts: listing needs none)."""
    async with Client(build_server(settings), extensions=[AppsHost()] if apps else []) as client:
        tools = (await client.list_tools()).tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def size(tools: list[dict[str, Any]]) -> int:
    return len(json.dumps(tools, separators=(",", ":")))


async def test_tools_list_fits_the_budget_and_repeats_no_schema() -> None:
    plain = await listed(LIVE, apps=False)
    everything = await listed(SANDBOX, apps=True)
    assert size(plain) <= BUDGET, size(plain)
    assert size(everything) <= BUDGET_ALL, size(everything)
    names = {t["name"] for t in plain}
    assert "card_refresh" not in names and "delete_clip" not in names  # app-only; no provider that deletes
    assert not any("ui" in t.get("_meta", {}) for t in plain)  # card links only for hosts that render cards
    assert {"card_refresh", "delete_clip"} <= {t["name"] for t in everything}
    assert {t["name"] for t in everything if "ui" in t.get("_meta", {})} == {
        "card_refresh", "generate", "get_result", "wait_for_result"}
    # Tools sharing an output model point at the one tool that publishes it in full.
    full = [json.dumps(t["outputSchema"], sort_keys=True) for t in everything
            if not str(t["outputSchema"].get("description", "")).startswith("Same as ")]
    assert len(full) == len(set(full)) and len(full) >= 9
    for t in everything:
        jsonschema.Draft202012Validator.check_schema(t["inputSchema"])
        jsonschema.Draft202012Validator.check_schema(t["outputSchema"])
        assert '"null"' not in json.dumps(t["outputSchema"])  # results omit empty optional fields instead


def test_compact_keeps_what_validates() -> None:
    schema = {"title": "X", "type": "object", "properties": {
        "n": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": None, "title": "N"},
        "s": {"type": "string", "description": "kept in inputs"}}, "required": ["s"]}
    small = compact(schema)
    assert small == {"type": "object", "properties": {"n": {"type": ["integer", "null"], "minimum": 0},
                                                      "s": {"type": "string", "description": "kept in inputs"}},
                     "required": ["s"]}
    validator = jsonschema.Draft202012Validator(small)
    assert validator.is_valid({"s": "a", "n": None}) and validator.is_valid({"s": "a", "n": 3})
    assert not validator.is_valid({"s": "a", "n": -1}) and not validator.is_valid({"n": 1})


def test_optional_fields_lose_null_at_every_depth_but_required_and_free_form_ones_keep_it() -> None:
    schema = {"type": "object", "required": ["r"], "properties": {
        "r": {"type": ["string", "null"]},
        "o": {"type": ["integer", "null"]},
        "e": {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]},
        "items": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": ["number", "null"]}}}},
        "free": {"type": ["object", "null"]}}}
    assert omittable(schema)["properties"] == {
        "r": {"type": ["string", "null"]}, "o": {"type": "integer"}, "e": {"enum": ["a", "b"], "type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": "number"}}}},
        "free": {"type": "object"}}


async def test_an_explicit_null_for_an_optional_argument_is_still_accepted() -> None:
    """The published input schema leaves null out; clients (and models) that send it anyway are not refused."""
    async with Client(build_server(LIVE)) as client:
        result = await client.call_tool("list_requests", {"status": None, "model": None, "since": None})
    assert not result.is_error or "invalid_input" not in str(result.content)


def test_the_shipped_tool_schemas_match_the_functions() -> None:
    """Regenerate with ``python -m clipia_mcp.mcp.schemas`` after changing a tool's arguments or output model.

    tools/list is answered from the shipped file (a tool's SDK object is built on its first call), so a stale
    entry would publish a schema the tool no longer has.
    """
    mcp = build_server(SANDBOX)
    assert load_published() == derive_tool_schemas(mcp.tool_functions)


async def test_a_tool_is_built_on_its_first_call_and_listed_before_that() -> None:
    mcp = build_server(LIVE)
    manager = mcp._tool_manager  # noqa: SLF001 - what the SDK holds
    async with Client(mcp) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert "get_status" in listed and manager.list_tools() == []
        result = await client.call_tool("list_requests", {"limit": 1})
        assert not result.is_error
        assert [t.name for t in manager.list_tools()] == ["list_requests"]
        tool = manager.get_tool("list_requests")
        assert tool is not None and tool.parameters == load_published()["list_requests"]["input"]
        bad = await client.call_tool("list_requests", {"limit": "many"})  # the built arguments model validates
        assert bad.is_error and "invalid_input" in str(bad.content)


async def test_a_tool_missing_from_the_shipped_file_is_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new tool without a regenerated file still lists (and calls) with schemas derived from its function."""
    import clipia_mcp.mcp.deferred_tools as deferred

    shipped = load_published()
    monkeypatch.setattr(deferred, "load_published", lambda: {k: v for k, v in shipped.items() if k != "get_status"})
    async with Client(build_server(LIVE)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["get_status"].input_schema == shipped["get_status"]["input"]
        assert tools["get_status"].output_schema == derive_tool_schemas(
            {"get_status": build_server(LIVE).tool_functions["get_status"]})["get_status"]["output"]
