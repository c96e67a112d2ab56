"""Call formats: round trips, what each format accepts, and how turns enter the history.

Error messages have their own module (test_tools_errors.py); this one checks that what a format
writes it reads back unchanged, for every argument type the tools here declare.
"""

from __future__ import annotations

import pytest
from test_tools_support import TRICKY_TEXT, EditTool, all_tools

from agentkit.tools import (
    BashBlockFormat,
    BashTool,
    CallFormat,
    NativeFormat,
    ToolCallError,
    TruncatedReply,
    XmlFormat,
    get_format,
)
from agentkit.tools.errors import TRUNCATED_REPLY
from agentkit.tools.formats import (
    FORMATS,
    RAW_ARGUMENTS_KEY,
    UNKNOWN_FORMAT,
    parse_arguments_json,
    tool_call_from_json,
)
from agentkit.types import Completion, Message, ToolCall

FORMAT_NAMES = ["native", "xml", "bash_block"]

CALLS = {
    "every_argument": ToolCall(
        name="edit",
        arguments={
            "path": "/repo/my file.py",
            "line": 42,
            "dry_run": True,
            "view_range": [1, 20],
            "text": TRICKY_TEXT,
        },
    ),
    "required_only_quotes": ToolCall(
        name="edit", arguments={"path": "/a.py", "line": 1, "text": 'it\'s "quoted" `x`'}
    ),
    "empty_string_and_list": ToolCall(
        name="edit",
        arguments={"path": "/a.py", "line": 0, "dry_run": False, "view_range": [], "text": ""},
    ),
    "text_edges": ToolCall(
        name="edit", arguments={"path": "/a.py", "line": 3, "text": "\n  indented\n\n"}
    ),
    "unicode": ToolCall(name="edit", arguments={"path": "/é.py", "line": 2, "text": "naïve → ✓\n"}),
    "optional_omitted": ToolCall(name="count", arguments={"n": 3}),
    "optional_given": ToolCall(name="count", arguments={"n": 5, "label": "a <b> c"}),
    "no_arguments": ToolCall(name="submit", arguments={}),
    "span": ToolCall(name="span", arguments={"start": -1, "end": 10}),
    "bash_multiline": ToolCall(
        name="bash",
        arguments={"command": "cd /repo && cat > x.py <<'EOF'\nprint(\"$HOME\")\nEOF\npython x.py"},
    ),
}


def _with_id(format: CallFormat, call: ToolCall) -> ToolCall:
    # Native calls carry the backend's id; text formats have none.
    return call.model_copy(update={"id": "call_1"}) if format.native else call


@pytest.mark.parametrize("format_name", FORMAT_NAMES)
@pytest.mark.parametrize("case", sorted(CALLS))
def test_round_trip(format_name: str, case: str) -> None:
    format = get_format(format_name)
    tools = all_tools()
    call = _with_id(format, CALLS[case])
    completion = format.render(call, tools, thought="I will look first.")
    action = format.parse(completion, tools)
    assert action.call == call
    assert action.thought == "I will look first."
    assert action.tool.name == call.name
    assert action.args == action.tool.Arguments.model_validate(call.arguments)


@pytest.mark.parametrize(
    "command",
    ["ls -la", TRICKY_TEXT, "echo '```'\necho done", "", "  padded  ", "printf 'a\\n' | wc -l\n"],
)
def test_bash_block_single_tool_round_trip(command: str) -> None:
    """With only ``bash(command)`` the whole block is the command, verbatim."""
    format = BashBlockFormat()
    tools = [BashTool()]
    call = ToolCall(name="bash", arguments={"command": command})
    completion = format.render(call, tools)
    assert completion.text == f"```bash\n{command}\n```"
    assert format.parse(completion, tools).call == call


def test_text_values_are_typed_after_parsing() -> None:
    """A text format delivers strings; the recorded call holds the schema's types."""
    text = (
        "<function=edit>\n<parameter=path>/a</parameter>\n<parameter=line>7</parameter>\n"
        "<parameter=dry_run>true</parameter>\n<parameter=view_range>[3, 4]</parameter>\n"
        "<parameter=text>x</parameter>\n</function>"
    )
    action = XmlFormat().parse(Completion(text=text), all_tools())
    assert action.call.arguments == {
        "path": "/a",
        "line": 7,
        "dry_run": True,
        "view_range": [3, 4],
        "text": "x",
    }


def test_native_accepts_json_strings_for_lists() -> None:
    call = ToolCall(name="count", arguments={"n": "2"}, id="c")
    action = NativeFormat().parse(Completion(tool_calls=[call]), all_tools())
    assert action.call == ToolCall(name="count", arguments={"n": 2}, id="c")


# -- what each text format accepts ------------------------------------------------------------


def test_xml_thought_and_trailing_text() -> None:
    text = (
        "Let me look.\n<function=count>\n<parameter=n>\n4\n</parameter>\n</function>\n"
        "trailing words are ignored"
    )
    action = XmlFormat().parse(Completion(text=text), all_tools())
    assert action.thought == "Let me look."
    assert action.call.arguments == {"n": 4}


def test_xml_keeps_inline_whitespace() -> None:
    text = (
        "<function=edit><parameter=path> /a </parameter><parameter=line>1</parameter>"
        "<parameter=text>  two  </parameter></function>"
    )
    action = XmlFormat().parse(Completion(text=text), all_tools())
    assert action.call.arguments == {"path": " /a ", "line": 1, "text": "  two  "}


def test_xml_value_may_hold_closing_tag_not_at_a_boundary() -> None:
    text = (
        "<function=count>\n<parameter=n>1</parameter>\n<parameter=label>a</parameter>b"
        "</parameter>\n</function>"
    )
    action = XmlFormat().parse(Completion(text=text), all_tools())
    assert action.call.arguments == {"n": 1, "label": "a</parameter>b"}


def test_xml_render_refuses_a_value_it_cannot_carry() -> None:
    call = ToolCall(name="count", arguments={"n": 1, "label": "x</parameter>\n</function>"})
    with pytest.raises(ValueError, match="label"):
        XmlFormat().render(call, all_tools())


@pytest.mark.parametrize("fence", ["```bash", "```", "```sh", "``` bash", "```BASH"])
def test_bash_block_fence_variants(fence: str) -> None:
    completion = Completion(text=f"Thinking.\n{fence}\nls -la\n```\nafter")
    action = BashBlockFormat().parse(completion, [BashTool()])
    assert action.call.arguments == {"command": "ls -la"}
    assert action.thought == "Thinking."


def test_bash_block_ignores_blocks_in_other_languages() -> None:
    text = "Example:\n```python\nprint(1)\n```\nNow:\n```bash\nls\n```"
    action = BashBlockFormat().parse(Completion(text=text), [BashTool()])
    assert action.call.arguments == {"command": "ls"}


def test_bash_block_command_line_shapes() -> None:
    format, tools = BashBlockFormat(), all_tools()

    def parse(content: str) -> dict[str, object]:
        return format.parse(Completion(text=f"```\n{content}\n```"), tools).call.arguments

    assert parse("count 3") == {"n": 3}
    assert parse("count 3 'two words'") == {"n": 3, "label": "two words"}
    # A quoted word may span lines: the whole block is then one command line.
    assert parse("count 3 'a\nb'") == {"n": 3, "label": "a\nb"}
    # The last string argument may follow verbatim; positional words fill the others in order.
    assert parse("edit /a.py 9\nline one\n  'line' \"two\"") == {
        "path": "/a.py",
        "line": 9,
        "text": "line one\n  'line' \"two\"",
    }
    # A blank line before the closing fence is not a verbatim argument.
    assert parse("span 1 2\n") == {"start": 1, "end": 2}


def test_bash_block_names_arguments_after_a_gap() -> None:
    """Positional words cannot skip an optional argument; ``NAME=VALUE`` can."""
    format, tools = BashBlockFormat(), all_tools()
    skip = ToolCall(
        name="edit", arguments={"path": "/a", "line": 1, "view_range": [1], "text": "t"}
    )
    assert format.render(skip, tools).text == "```bash\nedit /a 1 'view_range=[1]' text=t\n```"
    assert format.parse(format.render(skip, tools), tools).call == skip
    looks_named = ToolCall(name="count", arguments={"n": 1, "label": "n=2"})
    assert format.parse(format.render(looks_named, tools), tools).call == looks_named
    parsed = format.parse(Completion(text="```\ncount label=x 4\n```"), tools)
    assert parsed.call.arguments == {"n": 4, "label": "x"}


def test_bash_block_render_fences_a_fence_line_with_more_backticks() -> None:
    """More cases in test_tools_fences.py."""
    fenced = ToolCall(name="bash", arguments={"command": "a\n```\nb"})
    completion = BashBlockFormat().render(fenced, [BashTool()])
    assert completion.text == "````bash\na\n```\nb\n````"
    assert BashBlockFormat().parse(completion, [BashTool()]).call == fenced


# -- truncated replies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("format_name", "completion"),
    [
        ("xml", Completion(text="<function=count>\n<parameter=n>3", finish_reason="length")),
        ("bash_block", Completion(text="```bash\nls -la", finish_reason="length")),
        ("native", Completion(text="Let me", finish_reason="length")),
        (
            "native",
            Completion(
                tool_calls=[tool_call_from_json("count", '{"n": 3, "lab', "c")],
                finish_reason="length",
            ),
        ),
    ],
)
def test_cut_reply_is_truncated_not_malformed(format_name: str, completion: Completion) -> None:
    with pytest.raises(TruncatedReply) as caught:
        get_format(format_name).parse(completion, all_tools())
    assert caught.value.message == TRUNCATED_REPLY
    assert isinstance(caught.value, ToolCallError)
    assert isinstance(caught.value.cause, ToolCallError)


def test_cut_reply_with_a_complete_call_still_runs() -> None:
    """The limit hit after the call: nothing the call needs was lost."""
    text = "<function=count>\n<parameter=n>3</parameter>\n</function>\nAnd then I wil"
    action = XmlFormat().parse(Completion(text=text, finish_reason="length"), all_tools())
    assert action.call.arguments == {"n": 3}


# -- native helpers ---------------------------------------------------------------------------


def test_tool_call_from_json_never_raises() -> None:
    assert tool_call_from_json("count", '{"n": 1}', "a") == ToolCall(
        name="count", arguments={"n": 1}, id="a"
    )
    assert tool_call_from_json("submit", "", "b").arguments == {}
    bad = tool_call_from_json("count", "{n: 1}", "c")
    assert bad.arguments == {RAW_ARGUMENTS_KEY: "{n: 1}"}
    assert parse_arguments_json(" {} ") == {}


def test_native_render_gives_an_id() -> None:
    completion = NativeFormat().render(ToolCall(name="submit"), all_tools(), thought="done")
    assert completion.text == "done"
    assert completion.finish_reason == "tool_calls"
    (call,) = completion.tool_calls
    assert call.id and call.id.startswith("call_")


# -- history ----------------------------------------------------------------------------------


def test_native_history_messages() -> None:
    format, tools = NativeFormat(), all_tools()
    call = ToolCall(name="count", arguments={"n": 1}, id="call_7")
    completion = format.render(call, tools, thought="why")
    action = format.parse(completion, tools)
    assert format.assistant_message(completion) == Message(
        role="assistant", content="why", tool_calls=[call]
    )
    assert format.observation_message(action, "out") == Message(
        role="tool", content="out", tool_call_id="call_7"
    )
    error = ToolCallError("bad")
    two = Completion(tool_calls=[call, call.model_copy(update={"id": "call_8"})])
    assert format.error_messages(two, error) == [
        Message(role="tool", content="bad", tool_call_id="call_7"),
        Message(role="tool", content="bad", tool_call_id="call_8"),
    ]
    assert format.error_messages(Completion(text="hm"), error) == [
        Message(role="user", content="bad")
    ]


@pytest.mark.parametrize("format_name", ["xml", "bash_block"])
def test_text_history_messages(format_name: str) -> None:
    format, tools = get_format(format_name), all_tools()
    completion = format.render(ToolCall(name="count", arguments={"n": 1}), tools, thought="t")
    action = format.parse(completion, tools)
    assistant = Message(role="assistant", content=completion.text)
    assert format.assistant_message(completion) == assistant
    assert format.observation_message(action, "out") == Message(role="user", content="out")
    assert format.error_messages(completion, ToolCallError("bad")) == [
        Message(role="user", content="bad")
    ]


# -- registry ---------------------------------------------------------------------------------


def test_registry() -> None:
    assert sorted(FORMATS) == sorted(FORMAT_NAMES)
    for name in FORMAT_NAMES:
        format = get_format(name)
        assert format.name == name
        assert format.native == (name == "native")
    with pytest.raises(ValueError) as caught:
        get_format("json")
    assert str(caught.value) == UNKNOWN_FORMAT.format(name="json", valid="bash_block, native, xml")


def test_instructions_mention_every_tool() -> None:
    tools = all_tools()
    for name in ("xml", "bash_block"):
        text = get_format(name).instructions(tools)
        for tool in tools:
            assert tool.name in text and tool.description in text
    assert EditTool().spec().parameters["required"] == ["path", "line", "text"]
