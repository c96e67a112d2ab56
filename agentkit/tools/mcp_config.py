"""How to reach an MCP server: started as a subprocess (stdio) or already running (HTTP).

Plain pydantic configs, picked by ``type``, so a scaffold or harness config can hold a list of
servers (``list[MCPServer]``) and round-trip it through YAML or JSON. Importing this module does
not import the ``mcp`` package.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_CALL_TIMEOUT_S = 300.0
"""A call's time limit when neither the server config nor the scaffold sets one."""


class _ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    """Shown in messages; defaults to the name the server reports. With ``prefix``, the tools
    are named ``NAME_TOOL``."""
    prefix: bool = False
    """Prefix every tool name with ``name`` (needed when two servers have a tool of one name)."""
    tools: list[str] | None = None
    """Only these of the server's tools (by the server's names); ``None`` for all."""
    startup_timeout_s: float = Field(default=30.0, gt=0)
    """Time to start (or reach) the server, agree on the protocol and list its tools."""
    call_timeout_s: float | None = Field(default=None, gt=0)
    """Time limit of one call; ``None`` uses the scaffold's command timeout, or
    :data:`DEFAULT_CALL_TIMEOUT_S` when that is unset too."""

    @model_validator(mode="after")
    def _prefix_needs_name(self) -> _ServerConfig:
        if self.prefix and not (self.name and self.name.strip()):
            raise ValueError("prefix: true needs a name to prefix the tool names with")
        return self


class MCPStdioServer(_ServerConfig):
    """A server that agentkit starts as a subprocess and talks to over its stdin and stdout.

    The process gets a minimal environment (``HOME``, ``PATH``, ``USER``... as the ``mcp``
    package chooses) plus ``env``; pass what the server needs (tokens, ``PYTHONPATH``) in ``env``.
    What it writes to stderr is kept, and shown when it fails to start.
    """

    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None


class MCPHttpServer(_ServerConfig):
    """A running server reached over HTTP: streamable HTTP (the default) or the older SSE."""

    type: Literal["http"] = "http"
    url: str = Field(min_length=1)
    transport: Literal["streamable_http", "sse"] = "streamable_http"
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request (``Authorization``, for example)."""


MCPServer = Annotated[MCPStdioServer | MCPHttpServer, Field(discriminator="type")]
"""Either kind of server, picked by ``type``; use it as a field type in configs."""


def describe_server(server: MCPStdioServer | MCPHttpServer) -> str:
    """How the server is reached, for messages: its command line, or its transport and URL."""
    if isinstance(server, MCPStdioServer):
        return "command: " + " ".join([server.command, *server.args])
    return f"{server.transport} at {server.url}"


def default_label(server: MCPStdioServer | MCPHttpServer) -> str:
    """A name for a server that was given none, until it reports its own."""
    if isinstance(server, MCPStdioServer):
        return os.path.basename(server.command)
    return server.url
