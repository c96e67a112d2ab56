"""Every message a model can be shown for a bad tool call, in every format, asserted exactly.

Each case is checked twice: against the template constant filled in (so the format picks the
right message with the right details) and against a golden file (so a wording change is seen in
review). Regenerate the golden files with ``AGENTKIT_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict
from test_tools_support import CountTool, EditTool, SpanTool, all_tools

from agentkit.tools import BashTool, Tool, ToolCallError, ToolContext, TruncatedReply, get_format
from agentkit.tools import errors as e
from agentkit.tools.formats import parse_arguments_json, tool_call_from_json
from agentkit.types import Completion, FinishReason, Observation, ToolCall

GOLDEN = Path(__file__).parent / "golden" / "tools"
UPDATE = os.environ.get("AGENTKIT_UPDATE_GOLDEN") == "1"

TOOLS = all_tools()
VALID = "edit, count, span, submit, bash"


def native(*calls: ToolCall, text: str = "", finish_reason: FinishReason = "stop") -> Completion:
    return Completion(text=text, tool_calls=list(calls), finish_reason=finish_reason)


def call(name: str, **arguments: object) -> ToolCall:
    return ToolCall(name=name, arguments=arguments, id="call_1")


def xml(body: str) -> Completion:
    return Completion(text=f"Reasoning first.\n{body}")


def block(content: str) -> Completion:
    return Completion(text=f"Reasoning first.\n```bash\n{content}\n```")


@dataclass(frozen=True)
class Case:
    format: str
    name: str
    completion: Completion
    expected: str
    tools: tuple[Tool, ...] = tuple(TOOLS)
    truncated: bool = False

    @property
    def id(self) -> str:
        return f"{self.format}/{self.name}"


def _usage(format: str, tool: Tool) -> str:
    return get_format(format).usage(tool)


def _syntax(format: str, tools: list[Tool] = TOOLS) -> str:
    return get_format(format).syntax(tools)


def _common(format: str, replies: dict[str, Completion]) -> list[Case]:
    """The mistakes every format can express, with the reply that makes them in ``format``."""
    text_value = format != "native"
    expected = {
        "no_action": e.NO_ACTION.format(syntax=_syntax(format)),
        "multiple_actions": e.MULTIPLE_ACTIONS.format(count=2, syntax=_syntax(format)),
        "unknown_tool": e.UNKNOWN_TOOL.format(name="grep", valid=VALID),
        "missing_argument": e.MISSING_ARGUMENT.format(
            tool="span", argument="end", usage=_usage(format, SpanTool())
        ),
        "missing_arguments": e.MISSING_ARGUMENTS.format(
            tool="edit", arguments="'line', 'text'", usage=_usage(format, EditTool())
        ),
        "wrong_type": e.WRONG_ARGUMENT_TYPE.format(
            argument="n", tool="count", expected="integer", value='"many"'
        ),
        "wrong_type_list": e.WRONG_ARGUMENT_TYPE.format(
            argument="view_range",
            tool="edit",
            expected="list of integer or null",
            value='"["a"]"' if text_value else '["a"]',
        ),
        "invalid_value": e.INVALID_ARGUMENT_VALUE.format(
            argument="n",
            tool="count",
            value='"0"' if text_value else "0",
            reason="input should be greater than or equal to 1",
        ),
        "invalid_arguments": e.INVALID_ARGUMENTS.format(
            tool="span", reason="start must not be after end", usage=_usage(format, SpanTool())
        ),
        "unknown_argument": e.UNKNOWN_ARGUMENT.format(
            tool="count", argument="colour", usage=_usage(format, CountTool())
        ),
    }
    return [Case(format, name, replies[name], expected[name]) for name in replies]


def _cases() -> list[Case]:
    cases = _common(
        "native",
        {
            "no_action": native(text="I think it is fixed."),
            "multiple_actions": native(call("count", n=1), call("count", n=2)),
            "unknown_tool": native(call("grep", pattern="x")),
            "missing_argument": native(call("span", start=1)),
            "missing_arguments": native(call("edit", path="/a")),
            "wrong_type": native(call("count", n="many")),
            "wrong_type_list": native(call("edit", path="/a", line=1, text="", view_range=["a"])),
            "invalid_value": native(call("count", n=0)),
            "invalid_arguments": native(call("span", start=5, end=1)),
            "unknown_argument": native(call("count", n=1, colour="red")),
        },
    )
    cases += [
        Case(
            "native",
            "malformed_json",
            native(tool_call_from_json("count", '{"n": 1,}', "call_1")),
            e.MALFORMED_JSON.format(
                tool="count",
                detail="Expecting property name enclosed in double quotes at line 1 column 9",
            ),
        ),
        Case(
            "native",
            "json_not_an_object",
            native(tool_call_from_json("count", "[1]", "call_1")),
            e.MALFORMED_JSON.format(tool="count", detail="got an array instead of an object"),
        ),
        Case(
            "native",
            "json_null",
            native(tool_call_from_json("count", "null", "call_1")),
            e.MALFORMED_JSON.format(tool="count", detail="got null instead of an object"),
        ),
        Case(
            "native",
            "json_string",
            native(tool_call_from_json("count", '"n=1"', "call_1")),
            e.MALFORMED_JSON.format(tool="count", detail="got a string instead of an object"),
        ),
        Case(
            "native",
            "nameless_call",
            native(call("", n=1)),
            e.NAMELESS_CALL.format(valid=", ".join(tool.name for tool in TOOLS)),
        ),
        Case(
            "native",
            "control_bytes_are_escaped",
            native(call("gr\x00ep\x1b[2J\r", pattern="x")),
            e.UNKNOWN_TOOL.format(
                name="gr\\x00ep\\x1b[2J\\x0d", valid=", ".join(tool.name for tool in TOOLS)
            ),
        ),
        Case(
            "native",
            "truncated",
            native(text="I will", finish_reason="length"),
            e.TRUNCATED_REPLY,
            truncated=True,
        ),
    ]

    def fn(name: str, *params: tuple[str, str]) -> str:
        inner = "".join(f"<parameter={p}>{v}</parameter>\n" for p, v in params)
        return f"<function={name}>\n{inner}</function>"

    cases += _common(
        "xml",
        {
            "no_action": xml("I think it is fixed."),
            "multiple_actions": xml(fn("count", ("n", "1")) + "\n" + fn("count", ("n", "2"))),
            "unknown_tool": xml(fn("grep", ("pattern", "x"))),
            "missing_argument": xml(fn("span", ("start", "1"))),
            "missing_arguments": xml(fn("edit", ("path", "/a"))),
            "wrong_type": xml(fn("count", ("n", "many"))),
            "wrong_type_list": xml(
                fn("edit", ("path", "/a"), ("line", "1"), ("text", ""), ("view_range", '["a"]'))
            ),
            "invalid_value": xml(fn("count", ("n", "0"))),
            "invalid_arguments": xml(fn("span", ("start", "5"), ("end", "1"))),
            "unknown_argument": xml(fn("count", ("n", "1"), ("colour", "red"))),
        },
    )
    xml_syntax = _syntax("xml")
    cases += [
        Case("xml", name, xml(body), e.MALFORMED_XML.format(problem=problem, syntax=xml_syntax))
        for name, body, problem in [
            (
                "unclosed_function",
                "<function=count>\n<parameter=n>1</parameter>\n",
                e.XML_UNCLOSED_FUNCTION.format(name="count"),
            ),
            (
                "unclosed_parameter",
                "<function=count>\n<parameter=n>1\n</function>",
                e.XML_UNCLOSED_PARAMETER.format(name="n"),
            ),
            (
                "missing_function_name",
                "<function=>\n<parameter=n>1</parameter>\n</function>",
                e.XML_MISSING_FUNCTION_NAME,
            ),
            (
                "missing_parameter_name",
                "<function=count>\n<parameter=>1</parameter>\n</function>",
                e.XML_MISSING_PARAMETER_NAME,
            ),
            (
                "stray_text",
                "<function=count>\nn=1\n</function>",
                e.XML_STRAY_TEXT.format(name="count", text="n=1"),
            ),
        ]
    ]
    cases += [
        Case(
            "xml",
            "duplicate_argument",
            xml(fn("count", ("n", "1"), ("n", "2"))),
            e.DUPLICATE_ARGUMENT.format(argument="n", tool="count"),
        ),
        Case(
            "xml",
            "truncated",
            Completion(text="<function=count>\n<parameter=n>1", finish_reason="length"),
            e.TRUNCATED_REPLY,
            truncated=True,
        ),
    ]

    cases += [
        case
        for case in _common(
            "bash_block",
            {
                "no_action": Completion(text="I think it is fixed."),
                "multiple_actions": Completion(text="```bash\ncount 1\n```\n```sh\ncount 2\n```"),
                "unknown_tool": block("grep x"),
                "missing_argument": block("span 1"),
                "missing_arguments": block("edit /a"),
                "wrong_type": block("count many"),
                "wrong_type_list": block("edit /a 1 false '[\"a\"]' ''"),
                "invalid_value": block("count 0"),
                "invalid_arguments": block("span 5 1"),
            },
        )
    ]
    block_syntax = _syntax("bash_block")
    cases += [
        Case(
            "bash_block",
            name,
            completion,
            e.MALFORMED_BLOCK.format(problem=problem, syntax=block_syntax),
        )
        for name, completion, problem in [
            ("unclosed_block", Completion(text="Run it.\n```bash\ncount 1\n"), e.BLOCK_UNCLOSED),
            ("empty_block", block(""), e.BLOCK_EMPTY),
            (
                "misplaced_fence",
                Completion(text="Run it: ```bash\ncount 1\n```"),
                e.BLOCK_MISPLACED_FENCE,
            ),
            (
                "bad_quotes",
                block("count 1 'label"),
                e.BLOCK_BAD_QUOTES.format(detail="No closing quotation"),
            ),
        ]
    ]
    cases += [
        Case(
            "bash_block",
            "too_many_arguments",
            block("count 1 two words"),
            e.TOO_MANY_ARGUMENTS.format(
                tool="count", limit=2, count=3, usage=_usage("bash_block", CountTool())
            ),
        ),
        Case(
            "bash_block",
            "duplicate_argument",
            block("count n=1 n=2"),
            e.DUPLICATE_ARGUMENT.format(argument="n", tool="count"),
        ),
        Case(
            "bash_block",
            "duplicate_verbatim_argument",
            block("edit /a 1 text=one\ntwo"),
            e.DUPLICATE_ARGUMENT.format(argument="text", tool="edit"),
        ),
        Case(
            "bash_block",
            "truncated",
            Completion(text="```bash\ncount 1", finish_reason="length"),
            e.TRUNCATED_REPLY,
            truncated=True,
        ),
    ]

    single = (BashTool(),)
    single_syntax = _syntax("bash_block", list(single))
    cases += [
        Case(
            "bash_block",
            "single_tool/no_action",
            Completion(text="Done?"),
            e.NO_ACTION.format(syntax=single_syntax),
            tools=single,
        ),
        Case(
            "bash_block",
            "single_tool/multiple_actions",
            Completion(text="```bash\nls\n```\n```\npwd\n```"),
            e.MULTIPLE_ACTIONS.format(count=2, syntax=single_syntax),
            tools=single,
        ),
        Case(
            "bash_block",
            "single_tool/unclosed_block",
            Completion(text="```bash\nls\n"),
            e.MALFORMED_BLOCK.format(problem=e.BLOCK_UNCLOSED, syntax=single_syntax),
            tools=single,
        ),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_error_message(case: Case) -> None:
    with pytest.raises(ToolCallError) as caught:
        get_format(case.format).parse(case.completion, list(case.tools))
    assert caught.value.message == case.expected
    assert str(caught.value) == case.expected
    assert isinstance(caught.value, TruncatedReply) == case.truncated


def test_every_template_is_exercised() -> None:
    """A new template without a case here would ship untested."""
    templates = {
        name: getattr(e, name)
        for name in dir(e)
        if name.isupper() and not name.startswith("_") and isinstance(getattr(e, name), str)
    }
    unused = {
        name
        for name, template in templates.items()
        if not any(_fills(template, case.expected) for case in CASES)
    }
    assert unused == set()


def _fills(template: str, message: str) -> bool:
    """Whether ``message`` contains ``template`` with its placeholders filled in somehow."""
    pieces = re.split(r"\{[^{}]*\}", template)
    pattern = ".*".join(re.escape(piece) for piece in pieces)
    return re.search(pattern, message, re.DOTALL) is not None


def test_no_message_leaks_library_text() -> None:
    for case in CASES:
        assert "Traceback" not in case.expected
        assert "validation error" not in case.expected.lower()
        assert "pydantic" not in case.expected.lower()


def test_golden_messages() -> None:
    actual = {case.id: case.expected for case in CASES}
    _check_golden("error_messages.json", json.dumps(actual, indent=1, ensure_ascii=False) + "\n")


@pytest.mark.parametrize("format_name", ["native", "xml", "bash_block"])
def test_golden_instructions(format_name: str) -> None:
    text = get_format(format_name).instructions(TOOLS)
    _check_golden(f"instructions_{format_name}.txt", text + "\n")


def test_golden_single_tool_instructions() -> None:
    text = get_format("bash_block").instructions([BashTool()])
    _check_golden("instructions_bash_block_single_tool.txt", text + "\n")


def test_parse_arguments_json_raises_the_template() -> None:
    with pytest.raises(ToolCallError) as caught:
        parse_arguments_json("nope", "count")
    assert caught.value.message == e.MALFORMED_JSON.format(
        tool="count", detail="Expecting value at line 1 column 1"
    )


class Point(BaseModel):
    x: float
    y: float


class PlotArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[Point]
    label: str | None = None


class PlotTool(Tool):
    """Its argument is a list of objects whose own fields are required."""

    name = "plot"
    description = "Plot points."
    Arguments = PlotArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        raise AssertionError("format tests never execute a tool")


def _plot_reply(format: str, points: str) -> Completion:
    if format == "native":
        return native(call("plot", points=json.loads(points)))
    if format == "xml":
        return xml(f"<function=plot>\n<parameter=points>{points}</parameter>\n</function>")
    return block(f"plot '{points}'")


@pytest.mark.parametrize("format_name", ["native", "xml", "bash_block"])
@pytest.mark.parametrize(
    ("points", "template", "missing"),
    [
        ('[{"x": 1}]', e.MISSING_ARGUMENT, "points[0].y"),
        ('[{"x": 1, "y": 2}, {}]', e.MISSING_ARGUMENTS, "'points[1].x', 'points[1].y'"),
    ],
    ids=["one", "several"],
)
def test_a_missing_nested_field_is_named_by_its_location(
    format_name: str, points: str, template: str, missing: str
) -> None:
    """Not "needs the argument 'points'": the model gave points, and must learn what it lacks."""
    tools: list[Tool] = [PlotTool()]
    with pytest.raises(ToolCallError) as caught:
        get_format(format_name).parse(_plot_reply(format_name, points), tools)
    usage = _usage(format_name, PlotTool())
    name = "argument" if template == e.MISSING_ARGUMENT else "arguments"
    assert caught.value.message == template.format(tool="plot", usage=usage, **{name: missing})


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with AGENTKIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")
