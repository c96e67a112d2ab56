"""Markdown fences inside ``bash_block`` actions: longer fences, misplaced fences, and the gold run.

The rule under test is CommonMark's (see :mod:`agentkit.tools.bash_block`): a block opened by N
backticks closes only at a line of at least N backticks, so ``render`` fences a value that holds
``` lines with more backticks and any value round-trips; a ``` that does not start its line is
reported, not guessed at. The last test replays a gold patch that edits a README full of fences
through the agent loop in every call format.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tools_support import all_tools

from agentkit.agent import Agent
from agentkit.backends.gold import GoldBackend
from agentkit.evals.environment import open_task_runtime
from agentkit.evals.eval_script import patch_files
from agentkit.evals.examples import build_examples
from agentkit.evals.examples.docsnip import EXAMPLE as DOCSNIP
from agentkit.evals.grader import grade_patch
from agentkit.scaffolds import load_scaffold
from agentkit.tasks import Task, load_tasks
from agentkit.tools import BashBlockFormat, BashTool, Tool, ToolCallError, get_format, get_tool
from agentkit.tools import errors as e
from agentkit.types import Completion, ExitStatus, ToolCall

FORMAT = BashBlockFormat()

FENCED_VALUES = [
    "```",
    "a\n```\nb",
    "````",
    "a\n````\n```\nb",
    "```python\nprint(1)\n```",
    "cat > README.md <<'EOF'\n# T\n\n```bash\npip install t\n```\nEOF",
    "  ```bash\n   ``` \n\t```",
    "``\n`````\n``````python\n`",
    "echo '```'\n```` trailing words",
    "a\r\n```\r\nb\r\n",
    "```\n",
    "\n```",
    " ``````````",
]


def _single() -> list[Tool]:
    return [BashTool()]


def _leading_backticks(line: str) -> int:
    stripped = line.lstrip(" \t")
    return len(stripped) - len(stripped.lstrip("`"))


def _misplaced(tools: list[Tool]) -> str:
    return e.MALFORMED_BLOCK.format(problem=e.BLOCK_MISPLACED_FENCE, syntax=FORMAT.syntax(tools))


def _unclosed(tools: list[Tool]) -> str:
    return e.MALFORMED_BLOCK.format(problem=e.BLOCK_UNCLOSED, syntax=FORMAT.syntax(tools))


def _error(text: str, tools: list[Tool]) -> str:
    with pytest.raises(ToolCallError) as caught:
        FORMAT.parse(Completion(text=text), tools)
    return caught.value.message


# -- render and parse -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", FENCED_VALUES)
def test_single_tool_round_trip(value: str) -> None:
    call = ToolCall(name="bash", arguments={"command": value})
    completion = FORMAT.render(call, _single(), thought="Writing the README.")
    action = FORMAT.parse(completion, _single())
    assert action.call == call
    assert action.thought == "Writing the README."
    # The fence is longer than every backtick run that starts a line of the value.
    fence = completion.text.split("\n")[2].removesuffix("bash")
    longest = max(_leading_backticks(line) for line in value.split("\n"))
    assert set(fence) == {"`"} and len(fence) == max(3, longest + 1)
    assert completion.text.endswith(f"\n{fence}")


@pytest.mark.parametrize("value", FENCED_VALUES)
def test_command_line_round_trip(value: str) -> None:
    tools = all_tools()
    calls = [
        ToolCall(name="edit", arguments={"path": "/r/README.md", "line": 3, "text": value}),
        ToolCall(name="edit", arguments={"path": "/r/a.md", "line": 1, "text": f"x\n{value}\n"}),
        ToolCall(name="count", arguments={"n": 2, "label": value}),
        ToolCall(name="bash", arguments={"command": f"cat > a.md <<'EOF'\n{value}\nEOF"}),
    ]
    for call in calls:
        completion = FORMAT.render(call, tools, thought="Editing.")
        assert FORMAT.parse(completion, tools).call == call, completion.text


def test_unfenced_values_keep_three_backticks() -> None:
    call = ToolCall(name="bash", arguments={"command": "echo '```' x```"})
    assert FORMAT.render(call, _single()).text == "```bash\necho '```' x```\n```"


def test_four_backtick_block_carries_three_backtick_lines() -> None:
    text = (
        "I will write the README.\n"
        "````bash\n"
        "cat > README.md <<'EOF'\n"
        "```python\n"
        "print(1)\n"
        "```\n"
        "EOF\n"
        "````\n"
    )
    action = FORMAT.parse(Completion(text=text), _single())
    assert action.call.arguments == {
        "command": "cat > README.md <<'EOF'\n```python\nprint(1)\n```\nEOF"
    }
    assert action.thought == "I will write the README."


def test_a_longer_closing_fence_closes() -> None:
    text = "````\nls\n```\n``````\n"
    assert FORMAT.parse(Completion(text=text), _single()).call.arguments == {"command": "ls\n```"}


def test_crlf_fences_still_work() -> None:
    text = "Look.\r\n```bash\r\nls -la\r\n```\r\n"
    assert FORMAT.parse(Completion(text=text), _single()).call.arguments == {"command": "ls -la\r"}
    longer = "````bash\r\na\r\n```\r\n````\r\n"
    action = FORMAT.parse(Completion(text=longer), _single())
    assert action.call.arguments == {"command": "a\r\n```\r"}


def test_the_thought_may_not_hold_a_fence_line() -> None:
    call = ToolCall(name="bash", arguments={"command": "ls"})
    with pytest.raises(ValueError, match="thought"):
        FORMAT.render(call, _single(), thought="See:\n```\nx")


# -- misplaced fences ---------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [_single(), all_tools()], ids=["single_tool", "command_line"])
@pytest.mark.parametrize(
    "text",
    [
        # The two reported replies: one used to run "```bash\npwd", one was called unclosed.
        "x```bash\nls\n```\n```bash\npwd\n```",
        "Run it: ```bash\nls\n```",
        "Run it: ```bash ls```",
        "I will now ```bash\nls",
    ],
)
def test_a_fence_that_does_not_start_its_line_is_reported(text: str, tools: list[Tool]) -> None:
    assert _error(text, tools) == _misplaced(tools)


def test_inline_backticks_beside_a_clean_block_are_harmless() -> None:
    text = "I use ```bash blocks, as in ```ls```.\n```bash\nls\n```\nDone ```."
    action = FORMAT.parse(Completion(text=text), _single())
    assert action.call.arguments == {"command": "ls"}


@pytest.mark.parametrize(
    "text",
    [
        "```bash\nls\n``` done",  # text after the closing fence on its line
        "```bash\nls\n```. Done.",
        "```bash\nls\n```bash\npwd\n```",  # a second block opened before the first closed
        "```\nls\n````sh\npwd\n````",
    ],
)
def test_a_block_without_a_clean_closing_fence_is_unclosed(text: str) -> None:
    assert _error(text, _single()) == _unclosed(_single())


def test_a_cut_reply_with_a_misplaced_fence_is_truncated() -> None:
    with pytest.raises(e.TruncatedReply) as caught:
        FORMAT.parse(Completion(text="Run it: ```bash\nls", finish_reason="length"), _single())
    assert isinstance(caught.value.cause, ToolCallError)
    assert caught.value.cause.message == _misplaced(_single())


# -- instructions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [_single(), all_tools()], ids=["single_tool", "command_line"])
def test_instructions_teach_the_longer_fence(tools: list[Tool]) -> None:
    text = FORMAT.instructions(tools)
    assert "more backticks" in text and "````bash" in text


# -- the gold patch of a task whose README holds fences -------------------------------------------


@pytest.fixture(scope="module")
def docsnip_task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    (task,) = load_tasks(build_examples(tmp_path_factory.mktemp("docsnip"), [DOCSNIP]))
    return task


def test_the_gold_patch_holds_fence_lines(docsnip_task: Task) -> None:
    assert {"README.md", "docsnip/blocks.py"} <= set(patch_files(docsnip_task.patch).modified)
    lines = docsnip_task.patch.split("\n")
    # Context lines of the README and of the docstring are fence lines of the heredoc.
    assert " ```bash" in lines and " ```" in lines and "         ```" in lines
    assert "+````markdown" in lines and "+```" in lines


@pytest.mark.parametrize("format_name", ["bash_block", "xml", "native"])
async def test_gold_resolves_the_fenced_task_in_every_format(
    docsnip_task: Task, format_name: str, tmp_path: Path
) -> None:
    config = load_scaffold("mini").model_copy(update={"call_format": format_name})
    tools = [get_tool(name) for name in config.tools]
    backend = GoldBackend(
        docsnip_task.patch, get_format(format_name), tools, config.submit_sentinel
    )
    async with await open_task_runtime(docsnip_task, "local") as runtime:
        agent = Agent(config, backend, runtime, tools, trajectory_path=tmp_path / "t.json")
        trajectory = await agent.run(docsnip_task)
    assert trajectory.exit_status is ExitStatus.SUBMITTED, trajectory.exit_message
    assert not any(step.format_error for step in trajectory.steps)
    assert set(patch_files(trajectory.submission).modified) == {"README.md", "docsnip/blocks.py"}

    async with await open_task_runtime(docsnip_task, "local") as runtime:
        report = await grade_patch(runtime, docsnip_task, trajectory.submission, timeout=300)
    assert report.resolved, report.test_output
