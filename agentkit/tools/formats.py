"""Call formats by name: the one place a scaffold's ``call_format: xml`` becomes an object.

The formats live in their own modules (:mod:`~agentkit.tools.native`,
:mod:`~agentkit.tools.xml_format`, :mod:`~agentkit.tools.bash_block`); this module gathers them
and re-exports the shared contract so users import from one place.
"""

from __future__ import annotations

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

FORMATS: dict[str, type[CallFormat]] = {
    cls.name: cls for cls in (NativeFormat, XmlFormat, BashBlockFormat)
}


def register_format(cls: type[CallFormat]) -> type[CallFormat]:
    """Make a custom format available to :func:`get_format` (usable as a class decorator)."""
    FORMATS[cls.name] = cls
    return cls


def get_format(name: str) -> CallFormat:
    """A new instance of the format called ``name``; ``ValueError`` lists the valid names."""
    try:
        cls = FORMATS[name]
    except KeyError:
        valid = ", ".join(sorted(FORMATS))
        raise ValueError(UNKNOWN_FORMAT.format(name=name, valid=valid)) from None
    return cls()
