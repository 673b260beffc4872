"""Lean tool schemas: what tools/list costs a model's context, and what clients validate per call.

pydantic's schemas carry a ``title`` on every property, ``anyOf`` pairs for every optional value and
``default: null`` everywhere. :func:`compact` keeps the types (clients still validate every result)
and drops the rest; output schemas also lose descriptions except where a field's meaning is not
obvious from its name.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer

#: Output fields whose description says something the name does not.
KEEP_OUTPUT_DESCRIPTIONS: frozenset[str] = frozenset()


def compact(schema: Any, *, descriptions: bool = True, _name: str | None = None) -> Any:
    """A smaller, equivalent JSON schema (for validation) without titles, null defaults and ``anyOf`` nulls."""
    if isinstance(schema, list):
        return [compact(x, descriptions=descriptions) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or not descriptions):
            continue
        if key == "description" and not descriptions and _name not in KEEP_OUTPUT_DESCRIPTIONS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: compact(sub, descriptions=descriptions, _name=name) for name, sub in value.items()}
        elif key in ("$defs", "definitions") and isinstance(value, dict):
            # A definition's own description repeats the description where it is used.
            out[key] = {name: {k: v for k, v in compact(sub, descriptions=descriptions).items() if k != "description"}
                        for name, sub in value.items()}
        else:
            out[key] = compact(value, descriptions=descriptions)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = options[0] if options[1] == {"type": "null"} else options[1]
        if isinstance(other.get("type"), str) and not set(other) & {"anyOf", "oneOf", "allOf", "$ref", "enum"}:
            del out["anyOf"]
            out.update(other)
            out["type"] = [other["type"], "null"]
    if out.get("additionalProperties") is True and out.get("type") in ("object", ["object", "null"]):
        del out["additionalProperties"]  # the JSON Schema default
    return out


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$defs`` entry substituted where it is referenced (no recursive models here)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema

    def sub(node: Any) -> Any:
        if isinstance(node, list):
            return [sub(x) for x in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs and len(node) == 1:
            return sub({k: v for k, v in defs[ref[8:]].items() if k != "description"})
        return {k: sub(v) for k, v in node.items()}

    return {k: sub(v) for k, v in schema.items() if k != "$defs"}


def compact_tool_schemas(mcp: MCPServer[Any], canonical: tuple[str, ...] = ("get_result",)) -> None:
    """Compact every registered tool's input and output schema in place; publish each output schema once.

    Tools sharing an output model (the request view of get_status, get_result, wait_for_result and
    generate) carry the full schema once, on the first of ``canonical``; the others declare the
    object's required fields and say where the full shape is.
    """
    tools = sorted(mcp._tool_manager.list_tools(),  # noqa: SLF001 - the SDK has no public setter for schemas
                   key=lambda t: (t.name not in canonical, canonical.index(t.name) if t.name in canonical else 0))
    owners: dict[str, str] = {}
    for tool in tools:
        tool.parameters = compact(inline_defs(tool.parameters))
        schema = tool.fn_metadata.output_schema
        if schema is None:
            continue
        schema = compact(inline_defs(schema), descriptions=False)
        key = json.dumps(schema, sort_keys=True)
        owner = owners.setdefault(key, tool.name)
        if owner != tool.name:
            required = [k for k in schema.get("required", [])][:3]
            schema = {"type": "object", "description": f"The same object as {owner} returns.",
                      "properties": {k: schema["properties"][k] for k in required}, "required": required}
        tool.fn_metadata.output_schema = schema
