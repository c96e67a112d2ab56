"""The OpenAI chat-completions wire format, shared by every backend that speaks it (the ``openai``
client, litellm): messages and tools out, one reply's text, tool calls, usage and finish reason in.
Pure functions, no I/O."""

from __future__ import annotations

import json
from typing import Any

from agentkit.backend import BackendError
from agentkit.tools.native import RAW_ARGUMENTS_KEY, tool_call_from_json
from agentkit.types import Completion, FinishReason, Message, ToolCall, ToolSpec, Usage

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "abort": "error",
    "error": "error",
}


def message_to_openai(message: Message) -> dict[str, Any]:
    """One :class:`Message` in the chat-completions wire format."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [tool_call_to_openai(call) for call in message.tool_calls]
        # A reply that was only a call had no content; send it back as it came (null), so a
        # server's chat template renders the turn as the model produced it.
        if not message.content:
            out["content"] = None
    return out


def tool_call_to_openai(call: ToolCall) -> dict[str, Any]:
    """Arguments go back as a JSON string; malformed ones exactly as the model wrote them."""
    raw = call.arguments.get(RAW_ARGUMENTS_KEY)
    arguments = raw if isinstance(raw, str) else json.dumps(call.arguments, ensure_ascii=False)
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def tool_to_openai(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _finish_reason(reason: str | None, has_calls: bool) -> FinishReason:
    if reason is None:
        return "tool_calls" if has_calls else "stop"
    return _FINISH_REASONS.get(reason, "stop")


def parse_chat_response(response: Any, who: str) -> tuple[Any, Completion]:
    """The first choice of a chat-completions reply, and the :class:`Completion` it says (text,
    tool calls, usage, finish reason, model; no cost, no token ids: those are the caller's).

    Tool-call arguments that are not valid JSON are kept raw, so the agent loop can tell the model
    its call was malformed. ``who`` names the answering side in errors."""
    if not response.choices:
        raise BackendError(f"{who} answered with no choices.")
    choice = response.choices[0]
    message = choice.message
    calls = [
        tool_call_from_json(call.function.name or "", call.function.arguments or "", call.id)
        for call in (getattr(message, "tool_calls", None) or [])
        if getattr(call, "function", None) is not None
    ]
    raw_usage = getattr(response, "usage", None)
    usage = Usage(
        prompt_tokens=int(getattr(raw_usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(raw_usage, "completion_tokens", 0) or 0),
    )
    return choice, Completion(
        text=message.content or "",
        tool_calls=calls,
        finish_reason=_finish_reason(choice.finish_reason, bool(calls)),
        usage=usage,
        model=getattr(response, "model", None),
    )
