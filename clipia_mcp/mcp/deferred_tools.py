"""Tools registered without being built: ``tools/list`` is answered from the shipped schemas, and a tool's SDK
``Tool`` (the pydantic model of its arguments, made from the function's signature) is built on its first call.

Building the thirteen ``Tool`` objects cost about 20 ms at every start, on the path to the first answer, for
schemas that only change with the code. The shipped ones (``tool_schemas.json``) are checked against the
functions by a test; a tool missing from the file is built and derived when it is first listed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool, ToolManager
from mcp.types import Icon, ToolAnnotations
from mcp.types import Tool as MCPTool

from clipia_mcp.mcp.schemas import ToolSchemas, derive_tool_schemas, load_published


@dataclass(frozen=True, eq=False, repr=False)  # a registry entry: compared by identity
class ToolEntry:
    """A tool as registered: what ``MCPServer.add_tool`` was given."""

    fn: Callable[..., Any]
    name: str
    title: str | None
    #: The docstring (or the description given), indentation stripped: clients show it verbatim.
    description: str
    annotations: ToolAnnotations | None
    icons: list[Icon] | None
    meta: dict[str, Any] | None


class DeferredTools:
    """The registered tools, listed from their shipped schemas and built into ``manager`` on first use."""

    def __init__(self, manager: ToolManager) -> None:
        self.manager = manager
        self.entries: dict[str, ToolEntry] = {}
        self._schemas: dict[str, ToolSchemas] = load_published()

    def add(self, fn: Callable[..., Any], name: str | None, title: str | None, description: str | None,
            annotations: ToolAnnotations | None, icons: list[Icon] | None, meta: dict[str, Any] | None) -> None:
        """Register a tool (the first registration of a name wins, as in the SDK)."""
        tool_name = name or fn.__name__
        self.entries.setdefault(tool_name, ToolEntry(
            fn=fn, name=tool_name, title=title, description=inspect.cleandoc(description or fn.__doc__ or ""),
            annotations=annotations, icons=icons, meta=meta))

    @property
    def functions(self) -> dict[str, Callable[..., Any]]:
        """Each tool's function by name (its output model is read from its return annotation)."""
        return {name: entry.fn for name, entry in self.entries.items()}

    def schemas(self, name: str) -> ToolSchemas:
        """The input and output schema ``name`` publishes (derived now if the shipped file lacks it)."""
        found = self._schemas.get(name)
        if found is None:
            found = derive_tool_schemas({name: self.entries[name].fn})[name]
            self._schemas[name] = found
        return found

    def built(self, name: str) -> Tool | None:
        """The SDK tool for ``name``, built now if this is its first use; None for an unknown name."""
        tool = self.manager.get_tool(name)
        entry = self.entries.get(name)
        if tool is not None or entry is None:
            return tool
        tool = self.manager.add_tool(entry.fn, name=name, title=entry.title, description=entry.description,
                                     annotations=entry.annotations, icons=entry.icons, meta=entry.meta,
                                     structured_output=False)  # results are built by the tools themselves
        schemas = self.schemas(name)
        tool.parameters = schemas["input"]
        tool.fn_metadata.output_schema = schemas.get("output")
        return tool

    def listing(self) -> list[MCPTool]:
        """Every tool as ``tools/list`` publishes it, in registration order."""
        tools = []
        for entry in self.entries.values():
            schemas = self.schemas(entry.name)
            tools.append(MCPTool(name=entry.name, title=entry.title, description=entry.description,
                                 input_schema=schemas["input"], output_schema=schemas.get("output"),
                                 annotations=entry.annotations, icons=entry.icons, _meta=entry.meta))
        return tools
