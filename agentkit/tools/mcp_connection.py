"""Opening an MCP client session with the official ``mcp`` package, for either kind of server.

Kept apart from :mod:`agentkit.tools.mcp` so that the ``mcp`` imports (seconds of import time) sit
in one place and run only when a server is actually started.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING, Any, TextIO, cast

from agentkit.tools.mcp_config import MCPHttpServer, MCPStdioServer

if TYPE_CHECKING:
    from mcp import Client

_LIST_PAGES = 100
"""A paginating server that never ends its listing cannot hang the start."""
_STDERR_TAIL_BYTES = 4096
_HTTP_TIMEOUT_S = 30.0
_HTTP_READ_TIMEOUT_S = 300.0
"""Reads wait longer: a server may hold a response stream open while a tool works."""


class StderrLog:
    """A stdio server's stderr, kept in an unnamed temporary file for messages about it."""

    def __init__(self) -> None:
        self.file = cast(TextIO, tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace"))

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines written so far (read without moving the writer's offset)."""
        if self.file.closed:
            return ""
        fd = self.file.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - _STDERR_TAIL_BYTES)
        data = os.pread(fd, size - start, start).decode("utf-8", errors="replace")
        return "\n".join(data.rstrip().splitlines()[-lines:])

    def close(self) -> None:
        self.file.close()


async def open_client(
    server: MCPStdioServer | MCPHttpServer,
    stack: contextlib.AsyncExitStack,
    stderr: StderrLog | None = None,
) -> Client:
    """A connected, initialised client for ``server``, closed (and a stdio server's process
    stopped) when ``stack`` closes. ``stderr`` receives a stdio server's stderr."""
    from mcp import Client
    from mcp.types import Implementation

    from agentkit import __version__

    transport: Any
    if isinstance(server, MCPStdioServer):
        from mcp.client.stdio import StdioServerParameters, stdio_client

        parameters = StdioServerParameters(
            command=server.command, args=server.args, env=server.env, cwd=server.cwd
        )
        errlog = stderr.file if stderr is not None else open(os.devnull, "w")
        if stderr is None:
            stack.callback(errlog.close)
        transport = stdio_client(parameters, errlog=errlog)
    elif server.transport == "sse":
        from mcp.client.sse import sse_client

        transport = sse_client(
            server.url,
            headers=server.headers or None,
            timeout=_HTTP_TIMEOUT_S,
            sse_read_timeout=_HTTP_READ_TIMEOUT_S,
        )
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        timeout = httpx2.Timeout(_HTTP_TIMEOUT_S, read=_HTTP_READ_TIMEOUT_S)
        http = httpx2.AsyncClient(headers=server.headers, timeout=timeout)
        await stack.enter_async_context(http)
        transport = streamable_http_client(server.url, http_client=http)
    info = Implementation(name="agentkit", version=__version__)
    client = Client(transport, client_info=info, cache=None)
    return await stack.enter_async_context(client)


async def list_tools(client: Client) -> list[Any]:
    """Every tool the server lists (``mcp.types.Tool`` objects), following pagination."""
    listing: list[Any] = []
    cursor: str | None = None
    for _ in range(_LIST_PAGES):
        page = await client.list_tools(cursor=cursor)
        listing.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return listing
