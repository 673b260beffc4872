"""A bare mcp SDK server with one tool: the baseline of bench/startup.py, overhead.py and soak.py.

    python bench/bare_server.py              # stdio
    python bench/bare_server.py --port 8765  # Streamable HTTP on 127.0.0.1:8765/mcp
"""

import sys

from mcp.server import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def ping() -> str:
    """Answer pong."""
    return "pong"


if __name__ == "__main__":
    if "--port" in sys.argv:
        mcp.run("streamable-http", host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        mcp.run("stdio")
