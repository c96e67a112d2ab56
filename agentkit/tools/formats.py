"""Call formats by name: the one place a scaffold's ``call_format: xml`` becomes an object.

The formats live in their own modules (:mod:`~agentkit.tools.native`,
:mod:`~agentkit.tools.xml_format`, :mod:`~agentkit.tools.bash_block`); this module gathers them
and re-exports the shared contract so users import from one place.
"""

from __future__ import annotations

from agentkit.registry import Registry
from agentkit.tools.bash_block import BashBlockFormat
from agentkit.tools.call_format import CallFormat, ParsedAction
from agentkit.tools.native import (
    RAW_ARGUMENTS_KEY,
    NativeFormat,
    parse_arguments_json,
    tool_call_from_json,
)
from agentkit.tools.xml_format import XmlFormat

__all__ = [
    "FORMATS",
    "RAW_ARGUMENTS_KEY",
    "UNKNOWN_FORMAT",
    "BashBlockFormat",
    "CallFormat",
    "NativeFormat",
    "ParsedAction",
    "XmlFormat",
    "get_format",
    "parse_arguments_json",
    "register_format",
    "tool_call_from_json",
]

UNKNOWN_FORMAT = "Unknown call format '{name}'. The known formats are: {valid}."

_REGISTRY: Registry[CallFormat] = Registry(
    UNKNOWN_FORMAT, (NativeFormat, XmlFormat, BashBlockFormat)
)
FORMATS = _REGISTRY.entries
register_format = _REGISTRY.register
get_format = _REGISTRY.create
