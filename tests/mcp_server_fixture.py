"""A tiny, real MCP server for tests/test_tools_mcp.py (not a test module itself).

Run as ``python mcp_server_fixture.py`` it serves over stdio; ``python mcp_server_fixture.py http
PORT`` serves streamable HTTP on ``127.0.0.1:PORT`` at ``/mcp``, and ``... sse PORT`` the older SSE
transport at ``/sse``. Each tool covers one thing the
client side must handle: typed and optional arguments, enums and nested objects, a tool that
raises, output longer than the clip limit, mixed content, a slow call, and a way to die mid-call.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent
from pydantic import BaseModel, Field

server = MCPServer("fixture")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(
    text: Annotated[str, Field(description="The text to repeat.")],
    times: Annotated[int, Field(ge=1, description="How many times.")] = 1,
) -> str:
    """Repeat a text, one copy per line."""
    return "\n".join([text] * times)


class Point(BaseModel):
    x: float
    y: float


@server.tool()
def plot(
    points: list[Point],
    style: Literal["dots", "lines"] = "dots",
    label: str | None = None,
) -> str:
    """Describe a plot of points."""
    coords = " ".join(f"({p.x:g},{p.y:g})" for p in points)
    return f"{style} {coords}" + (f" label={label}" if label is not None else "")


@server.tool()
def fail(reason: str) -> str:
    """Always fail, saying why."""
    raise ToolError(f"cannot do it: {reason}")


@server.tool()
def long_output(chars: int) -> str:
    """Return a text of the given length."""
    return ("0123456789" * (chars // 10 + 1))[:chars]


@server.tool()
def picture() -> list[TextContent | ImageContent]:
    """Return a caption and a tiny image."""
    data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 92).decode()
    return [
        TextContent(type="text", text="a caption"),
        ImageContent(type="image", data=data, mime_type="image/png"),
    ]


@server.tool()
async def slow(seconds: float, tag: str) -> str:
    """Sleep, then return the tag."""
    await asyncio.sleep(seconds)
    return tag


@server.tool()
def die() -> str:
    """Exit the server process at once, without answering."""
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "sse":
        server.run("sse", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
