"""Lean context: tools/list stays small, every output schema is published once, schemas stay valid."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import jsonschema
import pytest

from clipia_mcp.core.settings import ApiKey, Settings
from clipia_mcp.mcp.schemas import compact, derive_output_schemas, load_published
from clipia_mcp.mcp.server import build_server

pytestmark = pytest.mark.anyio
BUDGET = 12_000  # bytes of tools/list, output schemas included


@pytest.fixture(autouse=True)
def no_leftover_log_forwarding() -> Iterator[None]:
    """build_server attaches the client log handler to the package logger; later tests expect none."""
    root = logging.getLogger("clipia_mcp")
    before = list(root.handlers)
    yield
    root.handlers[:] = before


async def tools_json() -> list[dict[str, object]]:
    mcp = build_server(Settings(api_key=ApiKey("clipia_live_schemaschema0000"), journal_path=None))
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in await mcp.list_tools()]


async def test_tools_list_fits_the_budget_and_repeats_no_schema() -> None:
    tools = await tools_json()
    assert len(json.dumps(tools, separators=(",", ":"))) <= BUDGET
    # Tools sharing an output model point at the one tool that publishes it in full.
    full = [json.dumps(t["outputSchema"], sort_keys=True) for t in tools
            if not str(t["outputSchema"].get("description", "")).startswith("The same object as")]  # type: ignore[union-attr]
    assert len(full) == len(set(full))
    assert len(full) >= 8
    for t in tools:
        jsonschema.Draft202012Validator.check_schema(t["inputSchema"])
        jsonschema.Draft202012Validator.check_schema(t["outputSchema"])


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


def test_the_shipped_output_schemas_match_the_models() -> None:
    """Regenerate with ``python -m clipia_mcp.mcp.schemas`` after changing an output model or adding a tool."""
    mcp = build_server(Settings(api_key=ApiKey("clipia_live_schemaschema0000"), journal_path=None))
    assert load_published() == derive_output_schemas(mcp.tool_functions)
