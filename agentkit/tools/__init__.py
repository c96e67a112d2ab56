"""Tools an agent can call, the formats it calls them in, and the errors it is shown.

``get_tool`` and ``get_format`` turn the names in a scaffold config into objects; other tool
modules add themselves with :func:`register_tool`.
"""

from __future__ import annotations

from agentkit.registry import Registry
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

_REGISTRY: Registry[Tool] = Registry(UNKNOWN_TOOL_NAME, [BashTool])
TOOLS = _REGISTRY.entries
register_tool = _REGISTRY.register
"""Make a tool class available to :func:`get_tool` (usable as a class decorator)."""
get_tool = _REGISTRY.create
"""A new instance of the tool called ``name``; ``ValueError`` lists the known names."""

# Tool modules that register themselves; imported last because they use ``register_tool``.
from agentkit.tools import aci_edit as _aci_edit  # noqa: E402,F401
from agentkit.tools import aci_search as _aci_search  # noqa: E402,F401
from agentkit.tools import ast_tools as _ast_tools  # noqa: E402,F401
from agentkit.tools import editor as _editor  # noqa: E402,F401
from agentkit.tools import python_tool as _python_tool  # noqa: E402,F401
from agentkit.tools import submit as _submit  # noqa: E402,F401
from agentkit.tools import think as _think  # noqa: E402,F401
