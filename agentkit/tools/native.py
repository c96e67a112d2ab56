"""Native function calling: the backend carries calls as structured ``tool_calls``.

APIs deliver a call's arguments as a JSON string. A backend turns it into a dict with
:func:`tool_call_from_json`, which never raises: an argument string that is not a JSON object is
kept under :data:`RAW_ARGUMENTS_KEY`, so the error surfaces here, in ``parse``, as a format error
the model is told about, instead of as a backend failure that would end the run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from agentkit.tools import errors
from agentkit.tools.arguments import argument_lines
from agentkit.tools.base import Tool
from agentkit.tools.call_format import CallFormat, ParsedAction
from agentkit.types import Completion, Message, ToolCall

RAW_ARGUMENTS_KEY = "__raw_arguments__"
"""Holds an argument string that did not decode to a JSON object."""


def parse_arguments_json(text: str, tool: str = "?") -> dict[str, Any]:
    """Decode a native call's argument string, or raise :class:`ToolCallError` (``MALFORMED_JSON``).

    An empty string means no arguments: some servers send it for parameterless functions.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise errors.ToolCallError(errors.MALFORMED_JSON.format(tool=tool, detail=detail)) from None
    if not isinstance(value, dict):
        detail = f"got {json_kind(value)} instead of an object"
        raise errors.ToolCallError(errors.MALFORMED_JSON.format(tool=tool, detail=detail))
    return value


def json_kind(value: Any) -> str:
    """A decoded JSON value's kind in JSON's own words (``null``, ``an array``), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def tool_call_from_json(name: str, arguments: str, id: str | None = None) -> ToolCall:  # noqa: A002
    """Build a :class:`ToolCall` from an API's JSON argument string without ever raising.

    A call without an id gets a fresh one: the answer to the call (its result or its error) must
    name it, and OpenAI-compatible servers refuse a tool message whose id is null or empty.
    """
    try:
        parsed = parse_arguments_json(arguments, name)
    except errors.ToolCallError:
        parsed = {RAW_ARGUMENTS_KEY: arguments}
    return ToolCall(name=name, arguments=parsed, id=id or new_call_id())


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def with_call_ids(completion: Completion) -> Completion:
    """``completion`` with an id on every tool call (a backend of a user's may leave them out);
    the same object when none was missing."""
    if all(call.id for call in completion.tool_calls):
        return completion
    calls = [
        call if call.id else call.model_copy(update={"id": new_call_id()})
        for call in completion.tool_calls
    ]
    return completion.model_copy(update={"tool_calls": calls})


class NativeFormat(CallFormat):
    """Exactly one function call per reply; text beside it is kept as the thought."""

    name: ClassVar[str] = "native"
    native: ClassVar[bool] = True

    def instructions(self, tools: Sequence[Tool]) -> str:
        # The tools themselves reach the model as function specs; only the rule is stated here.
        return (
            "Call exactly one of the provided functions in every reply. "
            "You may write your reasoning as text before the call."
        )

    def syntax(self, tools: Sequence[Tool]) -> str:
        return "one function call, with its arguments as a JSON object"

    def usage(self, tool: Tool) -> str:
        return f"function {tool.name}, its arguments in one JSON object:\n{argument_lines(tool)}"

    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        calls = completion.tool_calls
        if not calls:
            raise errors.ToolCallError(errors.NO_ACTION.format(syntax=self.syntax(tools)))
        if len(calls) > 1:
            raise errors.ToolCallError(
                errors.MULTIPLE_ACTIONS.format(count=len(calls), syntax=self.syntax(tools))
            )
        call = calls[0]
        if not call.name.strip():
            valid = ", ".join(tool.name for tool in tools) or "(none)"
            raise errors.ToolCallError(errors.NAMELESS_CALL.format(valid=valid))
        raw = call.arguments
        if RAW_ARGUMENTS_KEY in raw:
            raw = parse_arguments_json(str(raw[RAW_ARGUMENTS_KEY]), call.name)
        return self._action(call.name, raw, tools, call_id=call.id, thought=completion.text.strip())

    def render(self, call: ToolCall, tools: Sequence[Tool], thought: str = "") -> Completion:
        """A reply carrying ``call``; a call without an id gets a fresh one, as an API gives."""
        rendered = call.model_copy(update={"id": call.id or new_call_id()})
        return Completion(text=thought, tool_calls=[rendered], finish_reason="tool_calls")

    def assistant_message(self, completion: Completion) -> Message:
        return Message(
            role="assistant", content=completion.text, tool_calls=list(completion.tool_calls)
        )

    def observation_message(self, action: ParsedAction, text: str) -> Message:
        return Message(role="tool", content=text, tool_call_id=action.call.id)

    def error_messages(self, completion: Completion, error: errors.ToolCallError) -> list[Message]:
        if not completion.tool_calls:
            return [Message(role="user", content=error.message)]
        return [
            Message(role="tool", content=error.message, tool_call_id=call.id)
            for call in completion.tool_calls
        ]
