"""The contract every call format implements: how tools are described, called, and answered.

A format owns the whole round trip of one turn: the instructions in the system prompt, reading
the model's reply into a validated action, the inverse (writing the reply a model would have
written, for scripted and gold backends), and how the reply and its result enter the history.
Keeping these together means a scaffold switches format by name and nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from agentkit.tools import errors
from agentkit.tools.arguments import argument_lines, find_tool, validate_arguments
from agentkit.tools.base import Tool
from agentkit.types import Completion, Message, ToolCall


@dataclass(frozen=True)
class ParsedAction:
    """A tool call that is ready to execute.

    ``call.arguments`` is the validated arguments dumped back to JSON values (only those the model
    gave), so what a trajectory records is typed (``5``, not ``"5"``) in every format.
    """

    tool: Tool
    args: BaseModel
    call: ToolCall
    thought: str = ""


class CallFormat(ABC):
    """How tool calls are written in a model's reply. Stateless; one instance may be shared."""

    name: ClassVar[str]
    native: ClassVar[bool]
    """True when calls travel as the backend's function calls, not as text in the reply."""

    @abstractmethod
    def instructions(self, tools: Sequence[Tool]) -> str:
        """Text for the system prompt: the tools, their arguments and the exact call syntax."""

    @abstractmethod
    def usage(self, tool: Tool) -> str:
        """How to call one tool in this format, with its argument list (shown in errors)."""

    @abstractmethod
    def syntax(self, tools: Sequence[Tool]) -> str:
        """A generic call skeleton, shown when the model wrote no usable call at all."""

    @abstractmethod
    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        """Parse a reply; raise :class:`ToolCallError` with a template message."""

    @abstractmethod
    def render(self, call: ToolCall, tools: Sequence[Tool], thought: str = "") -> Completion:
        """The reply a model would have written to make ``call``; ``parse`` reads it back."""

    def parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        """Read the one action in ``completion``.

        A reply cut at the token limit is judged by what it holds: if a complete call made it in,
        that call runs; otherwise :class:`TruncatedReply` replaces the format error, because the
        model did not get to finish, which is not the same as writing a malformed call.
        """
        try:
            return self._parse(completion, tools)
        except errors.ToolCallError as error:
            cut = completion.finish_reason == "length"
            if cut and not isinstance(error, errors.TruncatedReply):
                raise errors.TruncatedReply(error) from None
            raise

    def assistant_message(self, completion: Completion) -> Message:
        """The reply as it enters the history (text formats: its text only)."""
        return Message(role="assistant", content=completion.text)

    def observation_message(self, action: ParsedAction, text: str) -> Message:
        """The result of ``action`` as it enters the history (text formats: a user turn)."""
        return Message(role="user", content=text)

    def error_messages(self, completion: Completion, error: errors.ToolCallError) -> list[Message]:
        """What follows a reply that had no usable call. Native calling needs one answer per call
        id (APIs reject an unanswered call), so formats may return several messages."""
        return [Message(role="user", content=error.message)]

    # -- helpers for subclasses -------------------------------------------------------------------

    def _action(
        self,
        tool_name: str,
        raw: dict[str, Any],
        tools: Sequence[Tool],
        *,
        call_id: str | None = None,
        thought: str = "",
    ) -> ParsedAction:
        tool = find_tool(tool_name, tools)
        args = validate_arguments(tool, raw, self.usage)
        arguments = args.model_dump(mode="json", exclude_unset=True)
        call = ToolCall(name=tool.name, arguments=arguments, id=call_id)
        return ParsedAction(tool=tool, args=args, call=call, thought=thought)

    def _tool_sections(self, tools: Sequence[Tool]) -> str:
        """Each tool's name, description and usage, separated by blank lines."""
        return "\n\n".join(f"{tool.name}: {tool.description}\n{self.usage(tool)}" for tool in tools)

    @staticmethod
    def _arguments(tool: Tool) -> str:
        return "Arguments:\n" + argument_lines(tool)
