"""Deterministic fuzzing of tool calls: malformed and adversarial replies in every call format.

The replies are generated here from a fixed seed (valid calls, then mutated: cut short, spliced
with control bytes, fences, tags, quotes and JSON fragments, renamed, duplicated). Whatever the
reply, parsing must end in either a validated action or a :class:`ToolCallError` whose message is
one of the documented templates of :mod:`agentkit.tools.errors`, printable, with no traceback or
library text. A sample also goes through whole agent loops, which must end with a recorded exit
status, never an exception.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from test_tools_support import all_tools

from agentkit.agent import Agent
from agentkit.backends import ScriptedBackend
from agentkit.runtime import LocalRuntime
from agentkit.scaffold import ScaffoldConfig
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task
from agentkit.tools import ToolCallError, get_format, get_tool
from agentkit.tools import errors as e
from agentkit.tools.formats import tool_call_from_json
from agentkit.types import Completion, ExitStatus, ToolCall

SEED = 20261130
CALLS_PER_FORMAT = 1000
TOOLS = all_tools()
FORMATS = ("native", "xml", "bash_block")

NASTY = [
    "\x00", "\x1b[31m", "\r", "\r\n", "\t", "\x7f", "\u202e", "\ufeff", "é", "😀", "\\", "'",
    '"', "`", "```", "````", "```bash", "```python", "<function=", "</function>", "<parameter=",
    "</parameter>", "{", "}", "[", "]", ":", ",", "null", "true", "=", "$(", "\n", "\n\n",
    " " * 5, "x" * 300,
]  # fmt: skip

TEMPLATES = [
    value
    for name, value in vars(e).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
]


def _template_pattern(template: str) -> re.Pattern[str]:
    pieces = re.split(r"\{[^{}]*\}", template)
    return re.compile(".*".join(re.escape(piece) for piece in pieces), re.DOTALL)


# The outer templates (the ones a message starts with); phrases fill their {problem} slots.
_OUTER = [_template_pattern(t) for t in TEMPLATES if t[:1].isupper()]


def is_documented(message: str) -> bool:
    """Every part of the message (formats join several problems with a blank line) starts as a
    documented template does and contains it."""
    return any(pattern.match(message) for pattern in _OUTER)


def _valid_calls(rng: random.Random) -> list[ToolCall]:
    words = ["a b", "x", "12", "-3", "true", "[1, 2]", "path/to/file.py", "line1\nline2"]
    calls = [
        ToolCall(name="count", arguments={"n": rng.randint(-5, 50)}),
        ToolCall(name="count", arguments={"n": 3, "label": rng.choice(words)}),
        ToolCall(name="span", arguments={"start": rng.randint(0, 9), "end": rng.randint(0, 9)}),
        ToolCall(name="edit", arguments={"path": "/a.py", "line": 2, "text": rng.choice(words)}),
        ToolCall(name="bash", arguments={"command": rng.choice(["ls", "echo hi", "cat <<EOF\n```\nEOF"])}),
        ToolCall(name="submit", arguments={}),
    ]  # fmt: skip
    return calls


def _mutate_text(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        at = rng.randint(0, len(text))
        if kind == 0:
            text = text[:at]  # cut short
        elif kind == 1:
            text = text[:at] + rng.choice(NASTY) + text[at:]
        elif kind == 2 and text:
            end = min(len(text), at + rng.randint(1, 20))
            text = text[:at] + text[end:]  # drop a piece
        elif kind == 3:
            text = text + "\n" + text  # two calls
        elif kind == 4:
            text = rng.choice(["Let me look.\n", "", "```\n", "x"]) + text
        else:
            text = text.replace(rng.choice(["\n", " ", "=", ">"]), rng.choice(NASTY), 1)
    return text


def _fuzzed_completion(fmt: str, rng: random.Random) -> Completion:
    call = rng.choice(_valid_calls(rng))
    rendered = get_format(fmt).render(
        call, TOOLS, thought=rng.choice(["", "Thinking.", "Use `x`."])
    )
    if fmt != "native":
        return Completion(text=_mutate_text(rendered.text, rng))
    arguments = json.dumps(call.arguments)
    mutation = rng.randrange(7)
    name = call.name
    if mutation == 0:
        arguments = _mutate_text(arguments, rng)
    elif mutation == 1:
        arguments = rng.choice(["null", "[]", '"x"', "1", "true", "", "{", '{"n": }'])
    elif mutation == 2:
        name = _mutate_text(name, rng)
    elif mutation == 3:
        name = rng.choice(["", " ", "\x00", "count\x00", "Count", "bash;rm"])
    calls = [tool_call_from_json(name, arguments, rng.choice([None, "", "call_1"]))]
    if mutation == 4:
        calls = calls * 2
    if mutation == 5:
        calls = []
    finish = "length" if mutation == 6 else "stop"
    return Completion(text=_mutate_text("ok", rng), tool_calls=calls, finish_reason=finish)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_fuzzed_call_parses_or_gets_a_documented_printable_message(fmt: str) -> None:
    rng = random.Random(f"{SEED}-{fmt}")
    call_format = get_format(fmt)
    outcomes = {"parsed": 0, "error": 0}
    for _ in range(CALLS_PER_FORMAT):
        completion = _fuzzed_completion(fmt, rng)
        try:
            action = call_format.parse(completion, TOOLS)
        except ToolCallError as error:
            outcomes["error"] += 1
            message = error.message
            assert is_documented(message), message
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", message), repr(message)
            assert "Traceback" not in message and "pydantic" not in message.lower()
        else:
            outcomes["parsed"] += 1
            assert action.tool in TOOLS
    # The generator must exercise both paths, or it tests nothing.
    assert outcomes["parsed"] > 50 and outcomes["error"] > 300, outcomes


def _loop_config(fmt: str) -> ScaffoldConfig:
    config = load_scaffold("mini")
    return config.model_copy(
        update={
            "call_format": fmt,
            "limits": config.limits.model_copy(
                update={"max_steps": 6, "max_format_errors": 6, "command_timeout_s": 5}
            ),
        }
    )


async def _one_loop(fmt: str, rng: random.Random, runtime: LocalRuntime) -> ExitStatus | None:
    tools = [get_tool("bash")]
    replies: list[Completion] = []
    call_format = get_format(fmt)
    for _ in range(6):
        command = rng.choice(["echo hi", "printf '\\x00\\x1b'", "fi", "cat <<EOF\n```\nEOF"])
        good = call_format.render(ToolCall(name="bash", arguments={"command": command}), tools)
        if fmt == "native":
            bad = Completion(
                tool_calls=[tool_call_from_json(rng.choice(["", "bash", "x"]), "[", None)]
            )
        else:
            bad = Completion(text=_mutate_text(good.text, rng))
        replies.append(rng.choice([good, bad]))
    backend = ScriptedBackend(replies)
    agent = Agent(_loop_config(fmt), backend, runtime, tools)
    trajectory = await agent.run(Task(instance_id="fuzz", problem_statement="Fuzz."))
    for step in trajectory.steps:
        if step.format_error is not None:
            assert is_documented(step.format_error), step.format_error
    return trajectory.exit_status


@pytest.mark.parametrize("fmt", FORMATS)
async def test_fuzzed_agent_loops_end_with_a_recorded_exit(fmt: str) -> None:
    rng = random.Random(f"{SEED}-loop-{fmt}")
    async with LocalRuntime() as runtime:
        await runtime.run("git init -q .")
        statuses = [await _one_loop(fmt, rng, runtime) for _ in range(10)]
    assert all(status is not None for status in statuses)
    assert ExitStatus.ERROR not in statuses, statuses
