"""clipia-mcp: an MCP server for the Clipia generation queue."""

__version__ = "0.1.0"

__all__ = ["__version__"]
