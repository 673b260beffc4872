"""Lean tool schemas: what tools/list costs a model's context, and what clients validate per call.

pydantic's schemas carry a ``title`` on every property, ``anyOf`` pairs for every optional value and
``default: null`` everywhere. :func:`compact` keeps the types (clients still validate every result)
and drops the rest; output schemas also lose descriptions except where a field's meaning is not
obvious from its name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict, get_args, get_origin, get_type_hints

from mcp.server.mcpserver.tools import Tool
from pydantic import BaseModel

#: Output fields whose description says something the name does not.
KEEP_OUTPUT_DESCRIPTIONS: frozenset[str] = frozenset()
#: The tool that publishes a shared output model in full.
CANONICAL = ("get_result",)
TOOL_SCHEMAS = Path(__file__).with_name("tool_schemas.json")


class ToolSchemas(TypedDict):
    """What one tool publishes: its arguments' schema and, when it declares an output model, its result's."""

    input: dict[str, Any]
    output: NotRequired[dict[str, Any]]


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


def omittable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its optional properties (at any depth) published without their ``null`` alternative.

    Inputs: an optional argument is simply left out; the server still accepts an explicit null (arguments are
    validated by the tool's own signature, not by this schema). Outputs: results leave out optional fields
    that have no value (``exclude_none``), so a null never appears where the schema now forbids it.
    Free-form objects (no ``properties``) are left alone: their nulls are data.
    """
    items = schema.get("items")
    if isinstance(items, dict):
        schema = {**schema, "items": omittable(items)}
    props = schema.get("properties")
    if not isinstance(props, dict):
        return schema
    required = set(schema.get("required", []))
    out: dict[str, Any] = {}
    for name, prop in props.items():
        if isinstance(prop, dict):
            prop = omittable(prop if name in required else _without_null(prop))
        out[name] = prop
    return {**schema, "properties": out}


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    kind = prop.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        return {**prop, "type": rest[0] if len(rest) == 1 else rest}
    options = prop.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1 and isinstance(rest[0], dict):
            return {**{k: v for k, v in prop.items() if k != "anyOf"}, **rest[0]}
    return prop


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


def output_model_of(fn: Callable[..., Any]) -> type[BaseModel] | None:
    """The output model a tool declares: ``-> Annotated[CallToolResult, Model]``."""
    ret = get_type_hints(fn, include_extras=True).get("return")
    if get_origin(ret) is Annotated:
        for arg in get_args(ret)[1:]:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def derive_output_schemas(tools: dict[str, Callable[..., Any]],
                          canonical: tuple[str, ...] = CANONICAL) -> dict[str, dict[str, Any]]:
    """Every tool's published output schema, from its output model: compacted, each model published once.

    Tools sharing an output model (the request view of get_status, get_result, wait_for_result and
    generate) carry the full schema once, on the first of ``canonical``; the others declare the
    object's first required fields and say where the full shape is.
    """
    names = sorted(tools, key=lambda n: (n not in canonical, canonical.index(n) if n in canonical else 0))
    owners: dict[str, str] = {}
    published: dict[str, dict[str, Any]] = {}
    for name in names:
        model = output_model_of(tools[name])
        if model is None:
            continue
        schema = omittable(compact(inline_defs(model.model_json_schema()), descriptions=False))
        owner = owners.setdefault(json.dumps(schema, sort_keys=True), name)
        if owner != name:  # the model reads the shape once; clients validate the one object type
            schema = {"type": "object", "description": f"Same as {owner}."}
        published[name] = schema
    return {name: published[name] for name in sorted(published)}


def derive_input_schema(name: str, fn: Callable[..., Any]) -> dict[str, Any]:
    """The compact input schema of tool ``fn``, from the arguments model the SDK builds from its signature."""
    return omittable(compact(inline_defs(Tool.from_function(fn, name=name, structured_output=False).parameters)))


def derive_tool_schemas(tools: dict[str, Callable[..., Any]]) -> dict[str, ToolSchemas]:
    """Every tool's published schemas, from its function: what ``tool_schemas.json`` holds."""
    outputs = derive_output_schemas(tools)
    derived: dict[str, ToolSchemas] = {}
    for name in sorted(tools):
        entry: ToolSchemas = {"input": derive_input_schema(name, tools[name])}
        if name in outputs:
            entry["output"] = outputs[name]
        derived[name] = entry
    return derived


@functools.cache
def _shipped() -> dict[str, ToolSchemas]:
    try:
        data = json.loads(TOOL_SCHEMAS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_published() -> dict[str, ToolSchemas]:
    """The schemas shipped with the package (``tool_schemas.json``; a test keeps it current), as a new dict."""
    return dict(_shipped())


if __name__ == "__main__":  # python -m clipia_mcp.mcp.schemas: rewrite tool_schemas.json from the functions
    from clipia_mcp.core.settings import Settings
    from clipia_mcp.mcp.server import build_server

    server = build_server(Settings(sandbox=True))  # the sandbox has every provider, so every tool
    TOOL_SCHEMAS.write_text(json.dumps(derive_tool_schemas(server.tool_functions), indent=1) + "\n",
                            encoding="utf-8")
    print(f"wrote {TOOL_SCHEMAS}")
