"""MCP servers' tools as agentkit tools, against a real MCP server (tests/mcp_server_fixture.py)
run over stdio and over HTTP, through every call format's parser, the agent loop, failures of the
server (a tool error, a timeout, a crash, a kill) and the server process's end.

The schema mapping (agentkit.tools.mcp_schema) is pure and has unit tests at the bottom.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import pytest_asyncio
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agentkit.agent import Agent
from agentkit.backends import ScriptedBackend
from agentkit.runtime import LocalRuntime
from agentkit.scaffold import ScaffoldConfig
from agentkit.scaffolding import build_scaffold
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import Tool, ToolCallError, ToolContext, get_format
from agentkit.tools import errors as e
from agentkit.tools.arguments import argument_lines
from agentkit.tools.mcp import (
    CALL_TIMED_OUT,
    SERVER_GONE,
    SERVER_LOST,
    TOOL_ERROR,
    MCPHttpServer,
    MCPServer,
    MCPStartError,
    MCPStdioServer,
    MCPTool,
    MCPToolset,
    mcp_tools,
)
from agentkit.tools.mcp_results import OUTPUT_LIMIT, result_text
from agentkit.tools.mcp_schema import arguments_model, call_arguments
from agentkit.types import Completion, ExitStatus, Observation, ToolCall

FIXTURE = Path(__file__).with_name("mcp_server_fixture.py")
FORMATS = ["native", "xml", "bash_block"]
CTX = ToolContext(runtime=None)  # type: ignore[arg-type]  # MCP tools never touch the runtime

shared_server = pytest.mark.asyncio(loop_scope="module")
"""For tests of the ``toolset`` fixture: one server, in one event loop, serves every test that
does not break it; tests that kill, time out or reconfigure a server start their own."""


def stdio(**options: Any) -> MCPStdioServer:
    return MCPStdioServer(command=sys.executable, args=[str(FIXTURE)], **options)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def toolset() -> AsyncIterator[MCPToolset]:
    async with MCPToolset(stdio()) as started:
        yield started


def by_name(tools: list[Any]) -> dict[str, MCPTool]:
    return {tool.name: tool for tool in tools}


async def run(tool: Tool, **arguments: Any) -> Observation:
    return await tool.execute(tool.Arguments.model_validate(arguments), CTX)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists (a zombie, not yet reaped, still counts as there)."""
    return not Path(f"/proc/{pid}").exists()


async def server_pid(tools: dict[str, MCPTool]) -> int:
    return int((await run(tools["pid"])).output)


# -- listing ------------------------------------------------------------------------------------


@shared_server
async def test_listed_tools_and_their_schemas(toolset: MCPToolset) -> None:
    tools = by_name(toolset.tools)
    assert toolset.label == "fixture"  # the name the server reports
    assert list(tools) == [
        "add",
        "echo",
        "plot",
        "fail",
        "long_output",
        "picture",
        "slow",
        "die",
        "pid",
    ]
    add = tools["add"]
    assert add.description == "Add two integers."
    # Native calling gets the server's own schema, minus the titles.
    assert add.spec().parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }
    plot = tools["plot"].spec().parameters
    assert plot["properties"]["style"] == {
        "default": "dots",
        "enum": ["dots", "lines"],
        "type": "string",
    }
    assert plot["$defs"]["Point"]["required"] == ["x", "y"]
    # Text formats describe the arguments from the model built out of the schema.
    assert argument_lines(tools["echo"]) == (
        "  - text (string, required): The text to repeat.\n"
        "  - times (integer, optional, default 1): How many times."
    )
    assert argument_lines(tools["plot"]) == (
        "  - points (list of object, required)\n"
        '  - style (one of "dots", "lines", optional, default "dots")\n'
        "  - label (string, optional)"
    )
    assert argument_lines(tools["picture"]) == "  (no arguments)"


async def test_tool_filter_and_prefix() -> None:
    server = stdio(name="fx", prefix=True, tools=["echo", "add"])
    async with MCPToolset(server) as toolset:
        tools = by_name(toolset.tools)
        assert list(tools) == ["fx_add", "fx_echo"]
        assert tools["fx_add"].mcp_name == "add"
        assert (await run(tools["fx_add"], a=2, b=40)).output == "42"
        assert toolset.label == "fx"


# -- calls through every format -----------------------------------------------------------------

REPLIES = {
    "native": lambda name, **args: Completion(
        text="Let me call it.",
        tool_calls=[ToolCall(name=name, arguments=args, id="call_1")],
        finish_reason="tool_calls",
    ),
    "xml": lambda name, **args: Completion(
        text="Let me call it.\n<function="
        + name
        + ">\n"
        + "".join(
            f"<parameter={k}>{v if isinstance(v, str) else json.dumps(v)}</parameter>\n"
            for k, v in args.items()
        )
        + "</function>"
    ),
}


def bash_block(line: str) -> Completion:
    return Completion(text=f"Let me call it.\n```bash\n{line}\n```")


CALLS: list[tuple[str, dict[str, Any], str, str]] = [
    # tool, arguments, the same call as a command line, expected output
    ("add", {"a": 2, "b": 3}, "add 2 3", "5"),
    ("echo", {"text": "hi there", "times": 2}, "echo 'hi there' 2", "hi there\nhi there"),
    ("echo", {"text": "once"}, "echo once", "once"),
    (
        "plot",
        {"points": [{"x": 1, "y": 2.5}, {"x": -1, "y": 0}], "style": "lines"},
        """plot '[{"x": 1, "y": 2.5}, {"x": -1, "y": 0}]' lines""",
        "lines (1,2.5) (-1,0)",
    ),
    ("plot", {"points": [], "label": "a b"}, "plot '[]' label='a b'", "dots  label=a b"),
]


def reply(format_name: str, tool: str, arguments: dict[str, Any], line: str) -> Completion:
    if format_name == "bash_block":
        return bash_block(line)
    return REPLIES[format_name](tool, **arguments)


@shared_server
@pytest.mark.parametrize("format_name", FORMATS)
async def test_calls_through_every_format(toolset: MCPToolset, format_name: str) -> None:
    format = get_format(format_name)
    for tool, arguments, line, expected in CALLS:
        action = format.parse(reply(format_name, tool, arguments, line), toolset.tools)
        assert action.tool.name == tool
        assert action.call.arguments == arguments  # typed, whatever the format
        observation = await action.tool.execute(action.args, CTX)
        assert observation == Observation(
            output=expected, exit_code=0, duration_s=observation.duration_s
        )


@shared_server
@pytest.mark.parametrize("format_name", FORMATS)
async def test_render_and_parse_round_trip(toolset: MCPToolset, format_name: str) -> None:
    format = get_format(format_name)
    call = ToolCall(name="plot", arguments={"points": [{"x": 1.0, "y": 2.0}], "label": "x <y>"})
    if format.native:
        call = call.model_copy(update={"id": "call_7"})
    action = format.parse(format.render(call, toolset.tools), toolset.tools)
    assert action.call == call
    assert (await action.tool.execute(action.args, CTX)).output == "dots (1,2) label=x <y>"


# -- bad calls: the same words as for a built-in tool -------------------------------------------


class AddArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int
    b: int


class EchoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The text to repeat.")
    times: int = Field(default=1, ge=1, description="How many times.")


class PlotPoint(BaseModel):
    x: float
    y: float


class PlotArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[PlotPoint]
    style: Literal["dots", "lines"] = "dots"
    label: str | None = None


class _Twin(Tool):
    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        raise AssertionError("never run")


class AddTwin(_Twin):
    name: ClassVar[str] = "add"
    description: ClassVar[str] = "Add two integers."
    Arguments: ClassVar[type[BaseModel]] = AddArguments


class EchoTwin(_Twin):
    name: ClassVar[str] = "echo"
    description: ClassVar[str] = "Repeat a text."
    Arguments: ClassVar[type[BaseModel]] = EchoArguments


class PlotTwin(_Twin):
    name: ClassVar[str] = "plot"
    description: ClassVar[str] = "Describe a plot of points."
    Arguments: ClassVar[type[BaseModel]] = PlotArguments


BAD_CALLS: list[tuple[str, dict[str, Any], str, str]] = [
    # tool, arguments, command line, the template the message must come from
    ("add", {"a": 1}, "add 1", e.MISSING_ARGUMENT),
    ("add", {}, "add", e.MISSING_ARGUMENTS),
    ("add", {"a": "one", "b": 2}, "add one 2", e.WRONG_ARGUMENT_TYPE),
    ("add", {"a": 1, "b": 2, "c": 3}, "add 1 2 3", ""),  # unknown / too many arguments
    ("echo", {"text": "x", "times": 0}, "echo x 0", e.INVALID_ARGUMENT_VALUE),
    ("plot", {"points": [], "style": "bars"}, "plot '[]' bars", e.WRONG_ARGUMENT_TYPE),
    ("plot", {"points": [{"x": 1}]}, """plot '[{"x": 1}]'""", ""),  # nested field missing
]


def error_of(format_name: str, completion: Completion, tools: list[Any]) -> str:
    with pytest.raises(ToolCallError) as raised:
        get_format(format_name).parse(completion, tools)
    return raised.value.message


@shared_server
@pytest.mark.parametrize("format_name", FORMATS)
async def test_bad_arguments_are_reported_as_for_builtin_tools(
    toolset: MCPToolset, format_name: str
) -> None:
    twins: list[Tool] = [AddTwin(), EchoTwin(), PlotTwin()]
    names = {"add", "echo", "plot"}
    mcp = [tool for tool in toolset.tools if tool.name in names]
    for tool, arguments, line, template in BAD_CALLS:
        completion = reply(format_name, tool, arguments, line)
        message = error_of(format_name, completion, mcp)
        assert message == error_of(format_name, completion, twins), (tool, arguments)
        prefix = template.split("{", 1)[0]
        assert message.startswith(prefix), message


# -- results ------------------------------------------------------------------------------------


@shared_server
async def test_an_erroring_tool_gives_an_error_observation(toolset: MCPToolset) -> None:
    observation = await run(by_name(toolset.tools)["fail"], reason="no disk")
    assert observation.exit_code == 1
    assert not observation.timed_out
    detail = "Error executing tool fail: cannot do it: no disk"
    assert observation.output == TOOL_ERROR.format(tool="fail", detail=detail)


@shared_server
async def test_long_output_is_clipped_with_a_note(toolset: MCPToolset) -> None:
    tools = by_name(toolset.tools)
    observation = await run(tools["long_output"], chars=40_000)
    assert observation.truncated
    assert len(observation.output) < OUTPUT_LIMIT + 200
    head, note, tail = observation.output.split("\n")
    assert head.startswith("0123456789") and tail.endswith("9")
    assert note.startswith(f"[... {40_000 - OUTPUT_LIMIT} characters cut from the middle")
    short = await run(tools["long_output"], chars=OUTPUT_LIMIT)
    assert not short.truncated and len(short.output) == OUTPUT_LIMIT


@shared_server
async def test_images_are_described(toolset: MCPToolset) -> None:
    observation = await run(by_name(toolset.tools)["picture"])
    assert observation.output == "a caption\n[image: image/png, 100 bytes, not shown]"


@shared_server
async def test_concurrent_calls_on_one_session(toolset: MCPToolset) -> None:
    slow = by_name(toolset.tools)["slow"]
    tags = [f"tag-{i}" for i in range(12)]
    results = await asyncio.gather(
        *(run(slow, seconds=0.05 * (i % 4), tag=tag) for i, tag in enumerate(tags))
    )
    assert [result.output for result in results] == tags


@shared_server
async def test_concurrent_agent_runs_share_one_tool_list(toolset: MCPToolset) -> None:
    config = load_scaffold("mini")
    config.call_format = "native"
    config.limits = config.limits.model_copy(update={"max_steps": 2, "autosubmit": False})

    def script(word: str) -> ScriptedBackend:
        calls = [
            ToolCall(name="echo", arguments={"text": word, "times": 2}, id="c1"),
            ToolCall(name="add", arguments={"a": len(word), "b": 1}, id="c2"),
        ]
        return ScriptedBackend([Completion(tool_calls=[call]) for call in calls])

    async with LocalRuntime() as runtime:
        words = ["alpha", "bravo-charlie", "delta"]
        agents = [Agent(config, script(word), runtime, toolset.tools) for word in words]
        tasks = [Task(instance_id=f"t-{i}", problem_statement="Echo.") for i in range(3)]
        trajectories = await asyncio.gather(*(a.run(t) for a, t in zip(agents, tasks, strict=True)))
    for word, trajectory in zip(words, trajectories, strict=True):
        assert trajectory.exit_status is ExitStatus.STEP_LIMIT
        outputs = [step.observation.output for step in trajectory.steps if step.observation]
        assert outputs == [f"{word}\n{word}", str(len(word) + 1)]


# -- failures of the server ---------------------------------------------------------------------


async def test_a_call_past_its_time_limit_times_out_and_the_server_stays_usable() -> None:
    async with MCPToolset(stdio(call_timeout_s=0.5)) as toolset:
        tools = by_name(toolset.tools)
        observation = await run(tools["slow"], seconds=60, tag="late")
        assert observation.timed_out and observation.exit_code is None
        expected = CALL_TIMED_OUT.format(tool="slow", seconds="0.5", server="fixture")
        assert observation.output == expected
        assert (await run(tools["add"], a=1, b=1)).output == "2"


@shared_server
async def test_the_scaffold_command_timeout_applies_when_the_server_sets_none(
    toolset: MCPToolset,
) -> None:
    slow = by_name(toolset.tools)["slow"]
    observation = await slow.execute(
        slow.Arguments(seconds=60, tag="x"),
        ToolContext(runtime=None, command_timeout=0.3),  # type: ignore[arg-type]
    )
    assert observation.timed_out and "within 0.3 seconds" in observation.output


async def test_a_killed_server_gives_a_clear_message_and_the_run_goes_on() -> None:
    async with MCPToolset(stdio()) as toolset:
        tools = by_name(toolset.tools)
        pid = await server_pid(tools)
        os.kill(pid, signal.SIGKILL)
        first = await run(tools["add"], a=1, b=2)
        lost = SERVER_LOST.format(server="fixture", tool="add")
        gone = SERVER_GONE.format(server="fixture", tool="add")
        assert first.output in (lost, gone) and first.exit_code == 1
        assert (await run(tools["add"], a=1, b=2)).output == gone
        assert not toolset.alive
    assert process_gone(pid)


async def test_a_server_that_dies_during_a_call() -> None:
    async with MCPToolset(stdio()) as toolset:
        tools = by_name(toolset.tools)
        pid = await server_pid(tools)
        observation = await run(tools["die"])
        assert observation.output == SERVER_LOST.format(server="fixture", tool="die")
        echo = await run(tools["echo"], text="x")
        assert echo.output == SERVER_GONE.format(server="fixture", tool="echo")
    assert process_gone(pid)


async def test_closing_stops_the_server_process() -> None:
    async with mcp_tools(stdio(), stdio(name="second", prefix=True)) as tools:
        named = by_name(tools)
        pids = [await server_pid(named), await server_pid({"pid": named["second_pid"]})]
        assert len(set(pids)) == 2 and not any(process_gone(pid) for pid in pids)
    assert all(process_gone(pid) for pid in pids)


async def test_a_toolset_closes_on_an_exception_and_twice() -> None:
    toolset = MCPToolset(stdio())
    with pytest.raises(RuntimeError, match="boom"):
        async with toolset:
            pid = await server_pid(by_name(toolset.tools))
            raise RuntimeError("boom")
    assert process_gone(pid)
    await toolset.close()
    assert (await run(by_name(toolset.tools)["add"], a=1, b=2)).output == SERVER_GONE.format(
        server="fixture", tool="add"
    )


# -- starting ------------------------------------------------------------------------------------


async def test_a_missing_command_is_a_start_error() -> None:
    server = MCPStdioServer(name="nope", command="/nonexistent/mcp-server", args=["--x"])
    with pytest.raises(MCPStartError) as raised:
        async with mcp_tools(server):
            pass
    message = str(raised.value)
    assert message.startswith(
        "Could not start the MCP server 'nope' (command: /nonexistent/mcp-server --x): "
    )
    assert "No such file or directory" in message


async def test_a_server_that_exits_shows_its_stderr() -> None:
    script = "import sys; print('config file missing: /etc/x.toml', file=sys.stderr); sys.exit(2)"
    server = MCPStdioServer(command=sys.executable, args=["-c", script])
    with pytest.raises(MCPStartError) as raised:
        await MCPToolset(server).start()
    assert "The last lines it wrote to stderr:\nconfig file missing: /etc/x.toml" in str(
        raised.value
    )


async def test_a_server_that_never_answers_times_out() -> None:
    server = MCPStdioServer(
        command=sys.executable, args=["-c", "import time; time.sleep(120)"], startup_timeout_s=1
    )
    with pytest.raises(MCPStartError, match="it did not answer within 1 seconds"):
        await MCPToolset(server).start()


async def test_unknown_tools_and_clashing_names_are_start_errors() -> None:
    with pytest.raises(MCPStartError, match="it has no tool named 'nope'; its tools are: add, "):
        await MCPToolset(stdio(tools=["add", "nope"])).start()
    with pytest.raises(MCPStartError, match="would both be named 'add'"):
        async with mcp_tools(stdio(tools=["add"]), stdio(tools=["add"])):
            pass


def test_server_configs_round_trip() -> None:
    adapter: TypeAdapter[MCPStdioServer | MCPHttpServer] = TypeAdapter(MCPServer)
    stdio_config = adapter.validate_python({"type": "stdio", "command": "uvx", "args": ["srv"]})
    assert isinstance(stdio_config, MCPStdioServer)
    http = adapter.validate_python({"type": "http", "url": "http://127.0.0.1:9/mcp"})
    assert isinstance(http, MCPHttpServer) and http.transport == "streamable_http"
    assert adapter.validate_json(adapter.dump_json(http)) == http
    with pytest.raises(ValidationError, match="prefix: true needs a name"):
        MCPStdioServer(command="x", prefix=True)
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "stdio", "command": "x", "commandd": "y"})


# -- HTTP ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    kind = request.param
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FIXTURE), kind, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"the {kind} fixture server exited with {process.returncode}")
                time.sleep(0.05)
        path = "/mcp" if kind == "http" else "/sse"
        yield process, f"http://127.0.0.1:{port}{path}"
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("http_server", ["http", "sse"], indirect=True)
async def test_http_server(http_server: tuple[subprocess.Popen[bytes], str]) -> None:
    process, url = http_server
    server = MCPHttpServer.model_validate(
        {
            "url": url,
            "transport": "sse" if url.endswith("/sse") else "streamable_http",
            "headers": {"X-Test": "1"},
        }
    )
    async with MCPToolset(server) as toolset:
        tools = by_name(toolset.tools)
        assert "echo" in tools
        action = get_format("xml").parse(REPLIES["xml"]("add", a=20, b=22), toolset.tools)
        assert (await action.tool.execute(action.args, CTX)).output == "42"
        process.kill()
        process.wait()
        after = await run(tools["add"], a=1, b=2)
        gone = SERVER_GONE.format(server="fixture", tool="add")
        assert after.output in (SERVER_LOST.format(server="fixture", tool="add"), gone)
        assert (await run(tools["add"], a=1, b=2)).output == gone


# -- the schema mapping (pure) --------------------------------------------------------------------

ODD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "_private": {"type": "integer", "minimum": 0},
        "model_config": {"type": "string", "pattern": "^a+$"},
        "json": {"type": "boolean", "description": "Shadows a BaseModel method."},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}, "maxItems": 2},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "node": {"$ref": "#/$defs/Node"},
        "kind": {"const": "x"},
        "either": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 2}]},
        "closed": {
            "type": "object",
            "properties": {"a": {"type": "boolean"}},
            "required": ["a"],
            "additionalProperties": False,
        },
        "opt": {"type": "integer"},
    },
    "required": ["_private"],
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {"child": {"$ref": "#/$defs/Node"}, "v": {"type": "integer"}},
        }
    },
}


def test_schema_mapping_accepts_what_the_schema_allows() -> None:
    model = arguments_model("odd.tool", ODD_SCHEMA)
    args = model.model_validate(
        {
            "_private": "3",
            "model_config": "aaa",
            "json": "true",
            "tags": None,
            "counts": {"x": "4"},
            "node": {"v": 1, "child": {"anything": 1}},
            "either": 5,
            "closed": {"a": True},
            "opt": None,
        }
    )
    assert call_arguments(args) == {
        "_private": 3,
        "model_config": "aaa",
        "json": True,
        "tags": None,  # the schema allows null: sent as given
        "counts": {"x": 4},
        "node": {"v": 1, "child": {"anything": 1}},
        "either": 5,
        "closed": {"a": True},
        # opt=None left out: its schema does not allow null, so it means "the default"
    }


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"_private": -1},
        {"_private": 1, "model_config": "b"},
        {"_private": 1, "tags": ["a", "b", "c"]},
        {"_private": 1, "closed": {"a": True, "b": 1}},
        {"_private": 1, "kind": "y"},
        {"_private": 1, "either": "z"},
        {"_private": 1, "bogus": 1},
    ],
)
def test_schema_mapping_refuses_what_the_schema_refuses(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        arguments_model("odd", ODD_SCHEMA).model_validate(arguments)


def test_schema_without_properties() -> None:
    closed = arguments_model("none", {"type": "object"})
    assert closed.model_validate({}).model_dump() == {}
    with pytest.raises(ValidationError):
        closed.model_validate({"x": 1})
    anything = arguments_model("kw", {"type": "object", "additionalProperties": True})
    assert call_arguments(anything.model_validate({"x": 1})) == {"x": 1}


# -- results as text (the conversion alone, on the mcp package's own result types) ---------------


def test_result_text_for_every_kind_of_content() -> None:
    from mcp import types

    blob = "AAECAw=="  # 4 bytes
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="plain \x1b[31mred\x1b[0m"),
            types.AudioContent(type="audio", data=blob, mime_type="audio/wav"),
            types.ResourceLink(type="resource_link", uri="file:///a.txt", name="a.txt"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///b.txt", text="b's text"),
            ),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(
                    uri="file:///c.bin", blob=blob, mime_type="application/zip"
                ),
            ),
        ]
    )
    assert result_text(result).split("\n") == [
        "plain red",
        "[audio: audio/wav, 4 bytes, not shown]",
        "[resource link: file:///a.txt (a.txt)]",
        "[resource file:///b.txt]",
        "b's text",
        "[resource file:///c.bin: application/zip, 4 bytes of binary data, not shown]",
    ]
    structured = types.CallToolResult(content=[], structured_content={"n": 1})
    assert result_text(structured) == '{\n  "n": 1\n}'
    assert result_text(types.CallToolResult(content=[])) == ""


async def test_a_scaffold_config_names_mcp_servers_and_each_run_starts_and_stops_them(tmp_path):
    """``mcp_servers`` in a tool_loop config: the servers' tools join the scaffold's for the
    run, in the model's tool list and callable like any other; the server is gone after it."""
    config = ScaffoldConfig.model_validate(
        {
            **load_scaffold("mini").model_dump(),
            "name": "with-mcp",
            "tools": ["submit"],
            "call_format": "native",
            "mcp_servers": [{"type": "stdio", "command": sys.executable, "args": [str(FIXTURE)]}],
        }
    )
    backend = ScriptedBackend(
        [
            Completion(tool_calls=[ToolCall(id="1", name="add", arguments={"a": 2, "b": 3})]),
            Completion(tool_calls=[ToolCall(id="2", name="pid", arguments={})]),
            Completion(tool_calls=[ToolCall(id="3", name="submit", arguments={})]),
        ]
    )
    async with LocalRuntime(workdir=tmp_path) as runtime:
        await runtime.run("git init -q .")
        trajectory = await build_scaffold(config).solve(
            Task(instance_id="mcp", problem_statement="Add."), runtime, backend
        )
    assert trajectory.exit_status == ExitStatus.SUBMITTED
    outputs = [step.observation.output for step in trajectory.steps if step.observation]
    assert outputs[0].strip() == "5"
    server_pid = int(outputs[1].strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the MCP server (pid {server_pid}) outlived the run")
