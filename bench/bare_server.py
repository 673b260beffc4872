"""A bare mcp SDK server with one tool: the startup baseline for bench/startup.py."""

from mcp.server import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    mcp.run("stdio")
