"""Chat plumbing shared by backends that run a model's own chat template.

agentkit's :class:`~agentkit.types.Message` becomes the plain dicts that Hugging Face chat templates
(and OpenAI-style APIs) expect, and a generated text carrying hermes-style
``<tool_call>{"name": ..., "arguments": ...}</tool_call>`` blocks becomes :class:`ToolCall` s.
Parsing never raises: a block whose arguments are not a JSON object still becomes a call (with its
raw text kept, see :func:`agentkit.tools.native.tool_call_from_json`), so the agent loop reports a
format error to the model instead of the run crashing; a block with no readable tool name is left
in the text, where the call format reports that no action was found.
"""

from __future__ import annotations

import json
import re

from agentkit.chat_dicts import template_messages, tool_dicts
from agentkit.tools.native import RAW_ARGUMENTS_KEY, new_call_id, tool_call_from_json
from agentkit.types import ToolCall

__all__ = [
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "arguments_json",
    "parse_tool_call_blocks",
    "template_messages",
    "tool_dicts",
]

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"\\]+)"')
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*(.*)\}\s*$', re.DOTALL)


def arguments_json(call: ToolCall) -> str:
    """A call's arguments as the JSON string an API carries; a malformed original is kept as is."""
    raw = call.arguments.get(RAW_ARGUMENTS_KEY)
    if isinstance(raw, str) and len(call.arguments) == 1:
        return raw
    return json.dumps(call.arguments, ensure_ascii=False)


def parse_tool_call_blocks(text: str) -> tuple[str, list[ToolCall]]:
    """Split generated text into its prose and the ``<tool_call>`` blocks it holds.

    Returns the text with every parsed block removed (then stripped) and the calls in order, each
    with a fresh call id; text without a parsable block comes back unchanged. Unterminated blocks
    (a reply cut by the token limit or a stop string) stay in the text.
    """
    calls: list[ToolCall] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        call = _parse_block(match.group(1))
        if call is None:
            continue
        kept.append(text[position : match.start()])
        position = match.end()
        calls.append(call)
    if not calls:
        return text, calls
    kept.append(text[position:])
    return "".join(kept).strip(), calls


def _parse_block(body: str) -> ToolCall | None:
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        arguments = value.get("arguments", {})
        if isinstance(arguments, str):  # some models nest the arguments as a JSON string
            return tool_call_from_json(value["name"], arguments, new_call_id())
        if isinstance(arguments, dict):
            return ToolCall(name=value["name"], arguments=arguments, id=new_call_id())
        return tool_call_from_json(value["name"], json.dumps(arguments), new_call_id())
    name = _NAME.search(body)
    if name is None:
        return None
    found = _ARGUMENTS.search(body)
    raw = found.group(1).strip() if found else body.strip()
    return tool_call_from_json(name.group(1), raw, new_call_id())
