"""Messages and tool specs as the plain dicts that chat templates and OpenAI-style APIs read.

One conversion for every consumer: a backend that renders a model's chat template and the
training code that renders it again to find what the model saw must produce the same dicts, or
the training tokens drift from the generated ones.
"""

from __future__ import annotations

from typing import Any

from agentkit.tools.native import RAW_ARGUMENTS_KEY
from agentkit.types import Message, ToolCall, ToolSpec


def tool_dicts(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the OpenAI ``{"type": "function", "function": {...}}`` shape."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def template_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as chat-template dicts.

    Arguments stay dicts (templates serialise them with ``tojson``), except a malformed argument
    string, which is passed through as the string the model wrote, so the template renders the
    turn as it was generated.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "type": "function",
                    "id": call.id,
                    "function": {"name": call.name, "arguments": template_arguments(call)},
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


def template_arguments(call: ToolCall) -> dict[str, Any] | str:
    """A call's arguments for a template: the dict, or the malformed original string."""
    raw = call.arguments.get(RAW_ARGUMENTS_KEY)
    if isinstance(raw, str) and len(call.arguments) == 1:
        return raw
    return call.arguments
