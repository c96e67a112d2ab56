"""The tools of any MCP (Model Context Protocol) server, as agentkit tools.

::

    async with mcp_tools(MCPStdioServer(command="python", args=["server.py"])) as tools:
        agent = Agent(config, backend, runtime, [BashTool(), *tools])

Each tool the server lists becomes one :class:`~agentkit.tools.base.Tool`: its name (optionally
prefixed with the server's name), its description, and an ``Arguments`` model built from its JSON
``inputSchema`` (:mod:`agentkit.tools.mcp_schema`). Every call format therefore validates a call
to it, and words its mistakes, exactly as for a built-in tool.

For native function calling, :meth:`MCPTool.spec` sends the server's own schema (minus titles),
not the one regenerated from the model: it is what the server's author wrote, and it keeps what
the model cannot express (``format``, ``oneOf``...). Validation still goes through the model.

Running a call never raises for anything the server does: a result the tool flagged as an error,
a JSON-RPC error, a timeout, a server that died: each becomes an :class:`Observation` the model
can act on, and the run goes on. Only starting a server fails loudly (:class:`MCPStartError`).

**Connection.** One :class:`MCPToolset` owns one connection, held by a background task of its
own, so the tools can be called from any task of the event loop that started it (not from
another loop), and a server that dies never cancels the caller's task. Calls are sent
concurrently: MCP is JSON-RPC with request ids, so one session serves many calls at once and one
tool list may be shared by concurrent agent runs; a server that cannot work in parallel simply
answers in turn. Closing the toolset ends the connection and, for a stdio server, stops its
process (closing stdin, then terminating and killing its process group) and waits for it.

The ``mcp`` package is imported only when a server is started: it takes seconds to import, and
configs that merely mention a server must stay cheap to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from agentkit.errors import UserFacingError
from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.bash import format_seconds
from agentkit.tools.mcp_config import (
    DEFAULT_CALL_TIMEOUT_S,
    MCPHttpServer,
    MCPServer,
    MCPStdioServer,
    default_label,
    describe_server,
)
from agentkit.tools.mcp_connection import StderrLog, list_tools, open_client
from agentkit.tools.mcp_messages import (
    CALL_FAILED,
    CALL_TIMED_OUT,
    DUPLICATE_ACROSS_SERVERS,
    DUPLICATE_TOOL,
    SERVER_GONE,
    SERVER_LOST,
    START_FAILED,
    START_TIMED_OUT,
    STDERR_TAIL,
    TOOL_ERROR,
    UNKNOWN_TOOLS,
    WRONG_LOOP,
)
from agentkit.tools.mcp_results import EMPTY_ERROR, EMPTY_RESULT, clip, result_text
from agentkit.tools.mcp_schema import arguments_model, call_arguments
from agentkit.types import Observation, ToolSpec

if TYPE_CHECKING:
    from mcp import Client

__all__ = [
    "CALL_FAILED",
    "CALL_TIMED_OUT",
    "DEFAULT_CALL_TIMEOUT_S",
    "MCPHttpServer",
    "MCPServer",
    "MCPStartError",
    "MCPStdioServer",
    "MCPTool",
    "MCPToolset",
    "SERVER_GONE",
    "SERVER_LOST",
    "TOOL_ERROR",
    "mcp_tools",
]

_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_MAX_TOOL_NAME = 64
_TIMEOUT_GRACE_S = 5.0
"""Extra wait past a call's timeout before giving up on the SDK's own timeout firing."""
_CLOSE_WAIT_S = 15.0
"""How long closing waits for an orderly shutdown before cancelling the connection task."""


class MCPStartError(UserFacingError):
    """A server could not be started, reached or listed, or its tool names are unusable."""


# -- tools --------------------------------------------------------------------------------------


class MCPTool(Tool):
    """The base of the tool classes :class:`MCPToolset` makes, one class per tool of a server.

    ``name``, ``description`` and ``Arguments`` are class attributes like any tool's;
    ``mcp_name`` is the tool's name on the server (``name`` may be prefixed or sanitised) and
    ``input_schema`` its schema as the server listed it.
    """

    mcp_name: ClassVar[str]
    input_schema: ClassVar[dict[str, Any]]

    def __init__(self, toolset: MCPToolset) -> None:
        self.toolset = toolset

    def spec(self) -> ToolSpec:
        """The server's own schema (see the module docstring), without ``title``s and
        ``$schema``, and always an object with ``properties`` as function-calling APIs expect."""
        schema = {k: v for k, v in self.input_schema.items() if k not in ("title", "$schema")}
        schema["type"] = "object"
        properties = schema.get("properties")
        schema["properties"] = {
            name: {k: v for k, v in prop.items() if k != "title"}
            if isinstance(prop, dict)
            else prop
            for name, prop in (properties if isinstance(properties, dict) else {}).items()
        }
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        return await self.toolset.call(self, call_arguments(args), ctx)


def _tool_class(label: str | None, listed: Any) -> type[MCPTool]:
    """A tool class for one tool listed by a server (``listed``: an ``mcp.types.Tool``)."""
    name = _TOOL_NAME.sub("_", f"{label}_{listed.name}" if label else listed.name)
    name = name[:_MAX_TOOL_NAME]
    schema = listed.input_schema if isinstance(listed.input_schema, dict) else {}
    description = (listed.description or "").strip() or (listed.title or "").strip()
    attributes = {
        "name": name,
        "description": description or f"The tool {listed.name} (no description given).",
        "Arguments": arguments_model(name, schema),
        "mcp_name": listed.name,
        "input_schema": schema,
    }
    return type(f"MCPTool_{name}", (MCPTool,), attributes)


# -- one server's connection --------------------------------------------------------------------


class MCPToolset:
    """One server's connection and its tools. ``async with MCPToolset(server) as toolset:``
    starts it (or call :meth:`start` and later :meth:`close`); ``toolset.tools`` are the tools."""

    def __init__(self, server: MCPStdioServer | MCPHttpServer) -> None:
        self.server = server
        self.tools: list[Tool] = []
        """One :class:`MCPTool` per tool, typed as plain tools to go straight to an agent."""
        self._label = server.name or default_label(server)
        self._client: Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        self._stderr: StderrLog | None = None
        self._reported_name: str | None = None
        self._gone = False

    @property
    def label(self) -> str:
        """The server's name in messages: ``name``, else the name it reports, else its command."""
        return self._label

    @property
    def alive(self) -> bool:
        runner = self._runner
        return self._client is not None and not self._gone and not (runner is None or runner.done())

    async def __aenter__(self) -> MCPToolset:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> list[Tool]:
        """Start (or connect to) the server and list its tools; :class:`MCPStartError` if not."""
        if self._runner is not None:
            raise RuntimeError(f"MCP server '{self.label}' was already started")
        self._loop = asyncio.get_running_loop()
        if isinstance(self.server, MCPStdioServer):
            self._stderr = StderrLog()
        ready: asyncio.Future[list[Any]] = self._loop.create_future()
        self._runner = asyncio.create_task(self._run(ready), name=f"mcp-server-{self.label}")
        try:
            done, _ = await asyncio.wait({ready}, timeout=self.server.startup_timeout_s)
        except asyncio.CancelledError:
            await self.close()
            raise
        if self.server.name is None and self._reported_name:
            self._label = self._reported_name
        try:
            if not done:
                seconds = format_seconds(self.server.startup_timeout_s)
                raise await self._failed_start(START_TIMED_OUT.format(seconds=seconds))
            if ready.cancelled():
                raise await self._failed_start("connecting was cancelled")
            error = ready.exception()
            if error is not None:
                raise await self._failed_start(_describe(error))
            self.tools = self._make_tools(ready.result())
        except MCPStartError:
            await self.close()
            raise
        return self.tools

    async def close(self) -> None:
        """End the connection and stop a stdio server's process; safe to call more than once."""
        await self._shutdown()
        if self._stderr is not None:
            self._stderr.close()

    async def _shutdown(self) -> None:
        """Stop the connection task: told to stop once it holds the connection (an orderly
        close), cancelled while it is still connecting (nothing else would interrupt it); both
        end a stdio server's process, as the ``mcp`` package closes its transport either way."""
        runner = self._runner
        if runner is not None and not runner.done():
            self._stop.set()
            done: set[asyncio.Task[None]] = set()
            if self._client is not None:
                done, _ = await asyncio.wait({runner}, timeout=_CLOSE_WAIT_S)
            if not done:
                runner.cancel()
                await asyncio.wait({runner})
        self._client = None

    def stderr_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines a stdio server wrote to stderr; empty for an HTTP server
        and once the toolset is closed."""
        return self._stderr.tail(lines) if self._stderr is not None else ""

    async def call(self, tool: MCPTool, arguments: dict[str, Any], ctx: ToolContext) -> Observation:
        """Call ``tool`` on the server; whatever happens becomes an observation (see module)."""
        client, runner = self._client, self._runner
        if client is None or runner is None or not self.alive:
            return Observation(output=self._message(SERVER_GONE, tool), exit_code=1)
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(WRONG_LOOP.format(server=self.label))
        timeout = self.server.call_timeout_s or ctx.command_timeout or DEFAULT_CALL_TIMEOUT_S
        began = time.monotonic()
        request = asyncio.ensure_future(
            client.call_tool(tool.mcp_name, arguments, read_timeout_seconds=timeout)
        )
        try:
            done, _ = await asyncio.wait(
                {request, runner},
                timeout=timeout + _TIMEOUT_GRACE_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:
            _abandon(request)
            raise
        duration = time.monotonic() - began
        if request not in done:
            _abandon(request)
            if runner.done():
                return self._lost(tool, duration)
            return self._timed_out(tool, timeout, duration)
        return self._observation(tool, request, timeout, duration)

    # -- helpers ---------------------------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[list[Any]]) -> None:
        """The connection's own task: connect, list, hold the connection until told to stop.

        Its end, orderly or not, is recorded rather than raised: callers see it as ``alive``
        turning false and as :data:`SERVER_GONE` observations."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await open_client(self.server, stack, self._stderr)
                info = client.server_info
                self._reported_name = info.name if info is not None and info.name else None
                listing = await list_tools(client)
                self._client = client
                ready.set_result(listing)
                await self._stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
        except Exception as exc:  # the connection's end, whatever the cause, is this task's result
            if not ready.done():
                ready.set_exception(exc)
        finally:
            self._client = None

    def _make_tools(self, listing: list[Any]) -> list[Tool]:
        wanted = self.server.tools
        if wanted is not None:
            names = {listed.name for listed in listing}
            missing = [name for name in wanted if name not in names]
            if missing:
                raise self._start_error(
                    UNKNOWN_TOOLS.format(
                        names=", ".join(f"'{name}'" for name in missing),
                        valid=", ".join(sorted(names)) or "(none)",
                    ),
                    stderr=False,
                )
            listing = [listed for listed in listing if listed.name in wanted]
        prefix = self.server.name if self.server.prefix else None
        tools: list[Tool] = [_tool_class(prefix, listed)(self) for listed in listing]
        clash = _first_duplicate(tool.name for tool in tools)
        if clash is not None:
            raise self._start_error(DUPLICATE_TOOL.format(name=clash), stderr=False)
        return tools

    def _observation(
        self, tool: MCPTool, request: asyncio.Future[Any], timeout: float, duration: float
    ) -> Observation:
        from mcp.shared.exceptions import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        try:
            result = request.result()
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                return self._timed_out(tool, timeout, duration)
            if exc.code == CONNECTION_CLOSED or not self.alive:
                return self._lost(tool, duration)
            detail = exc.message or f"error {exc.code}"
            return Observation(output=self._message(CALL_FAILED, tool, detail=detail), exit_code=1)
        except Exception as exc:  # a malformed answer, a broken transport: the run goes on
            if not self.alive:
                return self._lost(tool, duration)
            detail = _describe(exc)
            return Observation(output=self._message(CALL_FAILED, tool, detail=detail), exit_code=1)
        text = result_text(result)
        if getattr(result, "is_error", False):
            text = TOOL_ERROR.format(tool=tool.name, detail=text.strip() or EMPTY_ERROR)
        elif not text.strip():
            text = EMPTY_RESULT
        output, truncated = clip(text)
        exit_code = 1 if getattr(result, "is_error", False) else 0
        return Observation(
            output=output, exit_code=exit_code, truncated=truncated, duration_s=duration
        )

    def _lost(self, tool: MCPTool, duration: float) -> Observation:
        """The connection ended during a call: say so, and let the connection task wind down
        (which reaps a stdio server's process) instead of waiting for :meth:`close`."""
        self._gone = True
        self._stop.set()
        output = self._message(SERVER_LOST, tool)
        return Observation(output=output, exit_code=1, duration_s=duration)

    def _timed_out(self, tool: MCPTool, timeout: float, duration: float) -> Observation:
        output = self._message(CALL_TIMED_OUT, tool, seconds=format_seconds(timeout))
        return Observation(output=output, timed_out=True, duration_s=duration)

    def _message(self, template: str, tool: MCPTool, **values: str) -> str:
        return template.format(server=self.label, tool=tool.name, **values)

    async def _failed_start(self, reason: str) -> MCPStartError:
        """The error for a start that failed, with the server's stderr once it has stopped."""
        await self._shutdown()
        return self._start_error(reason)

    def _start_error(self, reason: str, *, stderr: bool = True) -> MCPStartError:
        server = f"'{self.label}' ({describe_server(self.server)})"
        message = START_FAILED.format(server=server, reason=reason)
        tail = self.stderr_tail() if stderr else ""
        return MCPStartError(message + (STDERR_TAIL.format(tail=tail) if tail else ""))


@contextlib.asynccontextmanager
async def mcp_tools(*servers: MCPStdioServer | MCPHttpServer) -> AsyncIterator[list[Tool]]:
    """Start every server, yield all their tools in one list, and stop them all on exit.

    Raises :class:`MCPStartError` when a server cannot start (those already started are
    stopped) or when two servers' tools would share a name."""
    async with contextlib.AsyncExitStack() as stack:
        toolsets = [await stack.enter_async_context(MCPToolset(server)) for server in servers]
        tools = [tool for toolset in toolsets for tool in toolset.tools]
        clash = _first_duplicate(tool.name for tool in tools)
        if clash is not None:
            labels = ", ".join(f"'{toolset.label}'" for toolset in toolsets)
            raise MCPStartError(DUPLICATE_ACROSS_SERVERS.format(servers=labels, name=clash))
        yield tools


def _abandon(request: asyncio.Future[Any]) -> None:
    """Cancel a call nobody waits for any more, and consume its outcome so that asyncio does
    not report an exception nobody retrieved."""
    request.cancel()
    request.add_done_callback(lambda done: done.cancelled() or done.exception())


def _first_duplicate(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _describe(error: BaseException) -> str:
    """An exception in one line: the first leaf of an exception group, with its type."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
