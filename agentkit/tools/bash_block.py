"""The fenced-block text format: one ```bash block per reply holds the action.

Two shapes, chosen by the tool set:

* one tool with one string argument (``bash(command)``): the block's content *is* that argument,
  the mini-swe-agent style, so the model writes plain shell;
* otherwise the block is a command line, ``TOOL ARG1 ARG2 ...``, split like a shell would
  (``shlex``) and mapped onto the tool's arguments in declaration order. A multi-line text (a file
  body, a replacement) would be painful to quote, so the tool's last string argument may instead be
  written verbatim on the lines after the first: ``create /tmp/a.py`` then the file's lines.
  A word ``NAME=VALUE`` whose NAME is one of the tool's arguments sets that argument by name, so
  an optional argument can be skipped.

Blocks fenced with another language (```python) are illustrations, not actions, and are ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from agentkit.tools import errors
from agentkit.tools.arguments import (
    field_names,
    find_tool,
    is_required,
    is_string_field,
    value_as_text,
)
from agentkit.tools.base import Tool
from agentkit.tools.call_format import CallFormat, ParsedAction
from agentkit.types import Completion, ToolCall

ACTION_LANGUAGES = frozenset({"", "bash", "sh"})
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[ \t]*\r?$")


@dataclass
class _Block:
    language: str
    start: int
    """Offset of the opening fence in the reply."""
    lines: list[str]
    closed: bool

    @property
    def content(self) -> str:
        return "\n".join(self.lines)


def _blocks(text: str) -> list[_Block]:
    """Fenced blocks in ``text``; a bare ``` opens a block outside one and closes it inside."""
    found: list[_Block] = []
    current: _Block | None = None
    offset = 0
    for line in text.split("\n"):
        # Most lines hold no backticks; a substring test is far cheaper than the regex.
        fence = _FENCE.match(line) if "```" in line else None
        if current is None:
            if fence:
                current = _Block(fence.group(1).lower(), offset, [], closed=False)
        elif fence and not fence.group(1):
            current.closed = True
            found.append(current)
            current = None
        else:
            current.lines.append(line)
        offset += len(line) + 1
    if current is not None:
        found.append(current)
    return found


def single_argument(tools: Sequence[Tool]) -> str | None:
    """The argument that a whole block fills, when the tool set is one tool with one string
    argument; otherwise ``None`` (command-line shape)."""
    if len(tools) != 1:
        return None
    names = field_names(tools[0])
    if len(names) == 1 and is_string_field(tools[0], names[0]):
        return names[0]
    return None


def remainder_argument(tool: Tool) -> str | None:
    """The argument that may be written verbatim on the lines after the command line."""
    strings = [name for name in field_names(tool) if is_string_field(tool, name)]
    return strings[-1] if strings else None


class BashBlockFormat(CallFormat):
    name: ClassVar[str] = "bash_block"
    native: ClassVar[bool] = False

    def syntax(self, tools: Sequence[Tool]) -> str:
        argument = single_argument(tools)
        if argument is not None:
            return f"```bash\n<{argument}>\n```"
        return "```bash\nTOOL_NAME FIRST_ARGUMENT SECOND_ARGUMENT\n```"

    def usage(self, tool: Tool) -> str:
        words = [tool.name]
        for name in field_names(tool):
            words.append(name if is_required(tool, name) else f"[{name}]")
        text = f"```bash\n{' '.join(words)}\n```\n{self._arguments(tool)}"
        remainder = remainder_argument(tool)
        if remainder is not None:
            text += (
                f"\nA multi-line {remainder} may instead follow, as is, on the lines after "
                "the first."
            )
        return text

    def instructions(self, tools: Sequence[Tool]) -> str:
        argument = single_argument(tools)
        if argument is not None:
            tool = tools[0]
            return (
                f"You have one tool, {tool.name}: {tool.description}\n\n"
                f"End every reply with exactly one fenced block that holds the {argument}, like "
                "this (your reasoning goes before it):\n\n"
                f"{self.syntax(tools)}\n\n"
                "Write one block per reply; a reply with no block or with several runs nothing."
            )
        return (
            "You can use these tools:\n\n"
            f"{self._tool_sections(tools)}\n\n"
            "To use a tool, end your reply with exactly one fenced block (your reasoning goes "
            "before it). Its first word is the tool name and the next words are the arguments in "
            "the order listed, quoted as in a shell when they contain spaces:\n\n"
            f"{self.syntax(tools)}\n\n"
            "Write booleans as true or false and lists as JSON in quotes ('[1, 2]'). Leave out "
            "optional arguments you do not need; to skip one and give a later one, write the "
            "later one as NAME=VALUE. Write one block per reply."
        )

    def _malformed(self, problem: str, tools: Sequence[Tool]) -> errors.ToolCallError:
        return errors.ToolCallError(
            errors.MALFORMED_BLOCK.format(problem=problem, syntax=self.syntax(tools))
        )

    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        text = completion.text
        actions = [block for block in _blocks(text) if block.language in ACTION_LANGUAGES]
        if not actions:
            raise errors.ToolCallError(errors.NO_ACTION.format(syntax=self.syntax(tools)))
        if len(actions) > 1:
            raise errors.ToolCallError(
                errors.MULTIPLE_ACTIONS.format(count=len(actions), syntax=self.syntax(tools))
            )
        block = actions[0]
        if not block.closed:
            raise self._malformed(errors.BLOCK_UNCLOSED, tools)
        thought = text[: block.start].strip()
        argument = single_argument(tools)
        if argument is not None:
            return self._action(tools[0].name, {argument: block.content}, tools, thought=thought)
        name, raw = self._command_line(block.content, tools)
        return self._action(name, raw, tools, thought=thought)

    def _command_line(self, content: str, tools: Sequence[Tool]) -> tuple[str, dict[str, Any]]:
        """Split ``TOOL ARG...`` (and an optional verbatim remainder) into a name and arguments."""
        first, _, rest = content.partition("\n")
        try:
            head = shlex.split(first)
        except ValueError:
            head = None  # a quoted word spans lines: the whole block is one command line
        if head and rest.strip():
            tool = find_tool(head[0], tools)
            remainder = remainder_argument(tool)
            if remainder is not None:
                names = [name for name in field_names(tool) if name != remainder]
                raw = self._assign(tool, names, head[1:], extra=1)
                if remainder in raw:
                    raise errors.ToolCallError(
                        errors.DUPLICATE_ARGUMENT.format(argument=remainder, tool=tool.name)
                    )
                raw[remainder] = rest
                return tool.name, raw
        try:
            words = shlex.split(content)
        except ValueError as exc:
            raise self._malformed(errors.BLOCK_BAD_QUOTES.format(detail=str(exc)), tools) from None
        if not words:
            raise self._malformed(errors.BLOCK_EMPTY, tools)
        tool = find_tool(words[0], tools)
        return tool.name, self._assign(tool, field_names(tool), words[1:], extra=0)

    def _assign(
        self, tool: Tool, names: list[str], words: list[str], *, extra: int
    ) -> dict[str, Any]:
        """Map words onto ``names``: ``NAME=VALUE`` (an argument of this tool) by name, any other
        word to the next argument not yet given, in declaration order."""
        known = set(field_names(tool))
        raw: dict[str, Any] = {}
        positional: list[str] = []
        for word in words:
            key, equals, value = word.partition("=")
            if equals and key in known:
                if key in raw:
                    raise errors.ToolCallError(
                        errors.DUPLICATE_ARGUMENT.format(argument=key, tool=tool.name)
                    )
                raw[key] = value
            else:
                positional.append(word)
        free = [name for name in names if name not in raw]
        if len(positional) > len(free):
            raise errors.ToolCallError(
                errors.TOO_MANY_ARGUMENTS.format(
                    tool=tool.name,
                    limit=len(known),
                    count=len(words) + extra,
                    usage=self.usage(tool),
                )
            )
        raw.update(zip(free, positional, strict=False))
        return raw

    def render(self, call: ToolCall, tools: Sequence[Tool], thought: str = "") -> Completion:
        """Write ``call`` as a block. Raises ``ValueError`` for a value holding a line that is
        only a fence, which no block can carry."""
        argument = single_argument(tools)
        if argument is not None:
            content = value_as_text(call.arguments.get(argument, ""))
        else:
            content = self._render_command_line(call, find_tool(call.name, tools))
        for part in (content, thought):
            if any(_FENCE.match(line) for line in part.split("\n")):
                raise ValueError("a value or the thought holds a fence line (```)")
        block = f"```bash\n{content}\n```"
        return Completion(text=f"{thought}\n\n{block}" if thought else block)

    def _render_command_line(self, call: ToolCall, tool: Tool) -> str:
        values = {name: call.arguments.get(name) for name in field_names(tool)}
        texts = {name: value_as_text(v) for name, v in values.items() if v is not None}
        remainder = remainder_argument(tool)
        verbatim = texts.get(remainder, "") if remainder is not None else ""
        others_flat = all("\n" not in text for name, text in texts.items() if name != remainder)
        if remainder is not None and "\n" in verbatim and verbatim.strip() and others_flat:
            names = [name for name in field_names(tool) if name != remainder]
            line = self._quoted_line(tool, names, texts)
            return f"{line}\n{verbatim}"
        return self._quoted_line(tool, field_names(tool), texts)

    @staticmethod
    def _quoted_line(tool: Tool, names: list[str], texts: dict[str, str]) -> str:
        """Arguments by position while there is no gap, as ``NAME=VALUE`` after one (and for a
        value that would itself read as ``NAME=VALUE``)."""
        known = set(field_names(tool))
        words = [tool.name]
        gap = False
        for name in names:
            if name not in texts:
                gap = True
                continue
            text = texts[name]
            key, equals, _ = text.partition("=")
            by_name = gap or (equals and key in known)
            words.append(f"{name}={text}" if by_name else text)
        return " ".join(shlex.quote(word) for word in words)
