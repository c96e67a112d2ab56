"""Tools an agent can call, the formats it calls them in, and the errors it is shown.

``get_tool`` and ``get_format`` turn the names in a scaffold config into objects; other tool
modules add themselves with :func:`register_tool`.
"""

from __future__ import annotations

from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.bash import BashTool
from agentkit.tools.errors import ToolCallError, TruncatedReply
from agentkit.tools.formats import (
    BashBlockFormat,
    CallFormat,
    NativeFormat,
    ParsedAction,
    XmlFormat,
    get_format,
    register_format,
)

__all__ = [
    "TOOLS",
    "UNKNOWN_TOOL_NAME",
    "BashBlockFormat",
    "BashTool",
    "CallFormat",
    "NativeFormat",
    "ParsedAction",
    "Tool",
    "ToolCallError",
    "ToolContext",
    "TruncatedReply",
    "XmlFormat",
    "get_format",
    "get_tool",
    "register_format",
    "register_tool",
]

UNKNOWN_TOOL_NAME = "Unknown tool '{name}'. The known tools are: {valid}."

TOOLS: dict[str, type[Tool]] = {BashTool.name: BashTool}


def register_tool(cls: type[Tool]) -> type[Tool]:
    """Make a tool class available to :func:`get_tool` (usable as a class decorator)."""
    TOOLS[cls.name] = cls
    return cls


def get_tool(name: str) -> Tool:
    """A new instance of the tool called ``name``; ``ValueError`` lists the known names."""
    try:
        cls = TOOLS[name]
    except KeyError:
        valid = ", ".join(sorted(TOOLS))
        raise ValueError(UNKNOWN_TOOL_NAME.format(name=name, valid=valid)) from None
    return cls()
