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

Fences follow CommonMark's rule. A fence line is a run of three or more backticks at the start of
a line (indentation allowed), followed on an opening fence by an optional language name and
nothing else. A block opened by N backticks is closed only by a line of at least N backticks and
nothing but whitespace, so a block whose content holds ``` lines (a README in a heredoc, a patch)
is fenced with more backticks (````bash ... ````); :meth:`BashBlockFormat.render` always picks
a fence longer than any backtick run that starts a content line, so it can write any value.

Two slips are refused with a message rather than guessed at, because what they would run is not
what the model meant:

* a ``` that does not start its line (``Run it: ```bash``) is a misplaced fence. Ignored while the
  reply still holds one clean action block (inline ``` in the reasoning is harmless), it is
  reported as such when it leaves the reply without one: no block, an unclosed block, or a block
  as below. Otherwise ``x```bash`` followed by two blocks would run their ```bash line as shell.
* a line inside a block that is itself an opening fence at least as long as the block's
  (```bash, or ``` done) means the model started another block or wrote text after its closing
  fence without closing this one: the block is reported as not closed.

Lines without ``` cost one substring test; only lines holding ``` meet the regex.
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
_LONGER_FENCE = (
    "A block whose content holds lines starting with ``` (a Markdown file, say) is opened and "
    "closed with more backticks: ````bash, then the content, then ````."
)
"""The longer-fence rule, told to the model in both shapes' instructions."""
_FENCE = re.compile(r"^[ \t]*(`{3,})[ \t]*([\w+-]*)[ \t]*\r?$")
"""A fence line: indentation, three or more backticks, and on an opening fence a language."""


@dataclass
class _Block:
    language: str
    start: int
    """Offset of the opening fence in the reply."""
    width: int
    """Backticks in the opening fence; a closing fence needs at least as many."""
    lines: list[str]
    closed: bool = False
    nested: bool = False
    """A content line is an opening fence as long as this one's: see the module docstring."""

    @property
    def content(self) -> str:
        return "\n".join(self.lines)


def _blocks(text: str) -> tuple[list[_Block], bool]:
    """Fenced blocks in ``text``, and whether a line outside them holds a misplaced ```."""
    found: list[_Block] = []
    current: _Block | None = None
    misplaced = False
    offset = 0
    for line in text.split("\n"):
        # Most lines hold no backticks; a substring test is far cheaper than the regex.
        if "```" not in line:
            if current is not None:
                current.lines.append(line)
            offset += len(line) + 1
            continue
        fence = _FENCE.match(line)
        if current is None:
            if fence:
                width = len(fence.group(1))
                current = _Block(fence.group(2).lower(), offset, width, [])
            else:
                misplaced = True
        elif fence and len(fence.group(1)) >= current.width:
            if fence.group(2):
                current.nested = True
                current.lines.append(line)
            else:
                current.closed = True
                found.append(current)
                current = None
        else:
            current.lines.append(line)
        offset += len(line) + 1
    if current is not None:
        found.append(current)
    return found, misplaced


def _fence_for(content: str) -> str:
    """A fence longer than every backtick run that starts a line of ``content`` (at least ```),
    so that no content line can close the block or read as another opening fence."""
    width = 3
    if "```" in content:
        for line in content.split("\n"):
            stripped = line.lstrip(" \t")
            run = len(stripped) - len(stripped.lstrip("`"))
            width = max(width, run + 1)
    return "`" * width


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
                "Write one block per reply; a reply with no block or with several runs nothing. "
                f"{_LONGER_FENCE}"
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
            f"later one as NAME=VALUE. Write one block per reply. {_LONGER_FENCE}"
        )

    def _malformed(self, problem: str, tools: Sequence[Tool]) -> errors.ToolCallError:
        return errors.ToolCallError(
            errors.MALFORMED_BLOCK.format(problem=problem, syntax=self.syntax(tools))
        )

    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        text = completion.text
        blocks, misplaced = _blocks(text)
        actions = [block for block in blocks if block.language in ACTION_LANGUAGES]
        if misplaced and not any(block.closed and not block.nested for block in actions):
            raise self._malformed(errors.BLOCK_MISPLACED_FENCE, tools)
        if not actions:
            raise errors.ToolCallError(errors.NO_ACTION.format(syntax=self.syntax(tools)))
        if len(actions) > 1:
            raise errors.ToolCallError(
                errors.MULTIPLE_ACTIONS.format(count=len(actions), syntax=self.syntax(tools))
            )
        block = actions[0]
        if not block.closed or block.nested:
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
        """Write ``call`` as a block, fenced with more backticks when a value holds ``` lines,
        so any value can be written. Raises ``ValueError`` only for a thought that holds a fence
        line: it would open a block of its own before the action's."""
        argument = single_argument(tools)
        if argument is not None:
            content = value_as_text(call.arguments.get(argument, ""))
        else:
            content = self._render_command_line(call, find_tool(call.name, tools))
        if "```" in thought and any(_FENCE.match(line) for line in thought.split("\n")):
            raise ValueError("the thought holds a fence line (```)")
        fence = _fence_for(content)
        block = f"{fence}bash\n{content}\n{fence}"
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
