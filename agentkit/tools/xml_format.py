"""The XML-like text format: ``<function=NAME>`` with ``<parameter=P>value</parameter>`` inside.

This is the non-native calling style of SWE-agent and OpenHands: it works with any text model and
lets values span lines without escaping. The parser is written by hand rather than with an XML
library because values are raw text (code full of ``<``, ``&`` and quotes) and must come back byte
for byte. A value ends at the first ``</parameter>`` that is followed (after whitespace) by the next
``<parameter=``, by ``</function>`` or by the end of the reply, so a value may itself contain
XML-looking text, even ``</parameter>``, as long as it is not in that position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from agentkit.tools import errors
from agentkit.tools.arguments import field_names, value_as_text
from agentkit.tools.base import Tool
from agentkit.tools.call_format import CallFormat, ParsedAction
from agentkit.types import Completion, ToolCall

_OPEN_FUNCTION = re.compile(r"<function=([^>\n]*)>")
_OPEN_PARAMETER = re.compile(r"<parameter=([^>\n]*)>")
_PARAMETER_END = re.compile(r"</parameter>(?=\s*(?:<parameter=|</function>|\Z))")
_CLOSE_FUNCTION = "</function>"
_STRAY_PREVIEW_CHARS = 60
_SYNTAX = (
    "<function=TOOL_NAME>\n<parameter=ARGUMENT_NAME>value</parameter>\n"
    "<parameter=OTHER_ARGUMENT>value</parameter>\n</function>"
)


def _trim_one_newline(value: str) -> str:
    """Undo the newline a writer puts after ``<parameter=P>`` and before ``</parameter>``.

    Exactly one on each side, so that a value's own leading or trailing newlines survive.
    """
    for newline in ("\r\n", "\n"):
        if value.startswith(newline):
            value = value[len(newline) :]
            break
    for newline in ("\r\n", "\n"):
        if value.endswith(newline):
            value = value[: -len(newline)]
            break
    return value


class XmlFormat(CallFormat):
    name: ClassVar[str] = "xml"
    native: ClassVar[bool] = False

    def syntax(self, tools: Sequence[Tool]) -> str:
        return _SYNTAX

    def usage(self, tool: Tool) -> str:
        params = "".join(f"<parameter={name}>...</parameter>\n" for name in field_names(tool))
        return f"<function={tool.name}>\n{params}</function>\n{self._arguments(tool)}"

    def instructions(self, tools: Sequence[Tool]) -> str:
        return (
            "You can use these tools:\n\n"
            f"{self._tool_sections(tools)}\n\n"
            "To use a tool, end your reply with exactly one call written like this (your "
            "reasoning goes before it):\n\n"
            f"{self.syntax(tools)}\n\n"
            "Make one call per reply and write nothing after </function>. A value may span "
            "several lines and needs no escaping. Write numbers and booleans plainly (42, true) "
            "and lists or objects as JSON ([1, 2]). Leave out optional arguments you do not need."
        )

    def _malformed(self, problem: str) -> errors.ToolCallError:
        return errors.ToolCallError(errors.MALFORMED_XML.format(problem=problem, syntax=_SYNTAX))

    def _parse(self, completion: Completion, tools: Sequence[Tool]) -> ParsedAction:
        text = completion.text
        opening = _OPEN_FUNCTION.search(text)
        if opening is None:
            raise errors.ToolCallError(errors.NO_ACTION.format(syntax=self.syntax(tools)))
        name = opening.group(1).strip()
        if not name:
            raise self._malformed(errors.XML_MISSING_FUNCTION_NAME)
        raw, end = self._parameters(text, opening.end(), name)
        others = len(_OPEN_FUNCTION.findall(text, end))
        if others:
            raise errors.ToolCallError(
                errors.MULTIPLE_ACTIONS.format(count=others + 1, syntax=self.syntax(tools))
            )
        thought = text[: opening.start()].strip()
        return self._action(name, raw, tools, thought=thought)

    def _parameters(self, text: str, pos: int, function: str) -> tuple[dict[str, Any], int]:
        """Read ``<parameter=...>`` pairs from ``pos`` up to ``</function>``; return them and the
        offset just past ``</function>``."""
        raw: dict[str, Any] = {}
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if text.startswith(_CLOSE_FUNCTION, pos):
                return raw, pos + len(_CLOSE_FUNCTION)
            opening = _OPEN_PARAMETER.match(text, pos)
            if opening is None:
                rest = text[pos:]
                if not rest or _CLOSE_FUNCTION not in rest:
                    raise self._malformed(errors.XML_UNCLOSED_FUNCTION.format(name=function))
                stray = rest.split("\n", 1)[0][:_STRAY_PREVIEW_CHARS]
                raise self._malformed(errors.XML_STRAY_TEXT.format(name=function, text=stray))
            name = opening.group(1).strip()
            if not name:
                raise self._malformed(errors.XML_MISSING_PARAMETER_NAME)
            closing = _PARAMETER_END.search(text, opening.end())
            if closing is None:
                raise self._malformed(errors.XML_UNCLOSED_PARAMETER.format(name=name))
            if name in raw:
                raise errors.ToolCallError(
                    errors.DUPLICATE_ARGUMENT.format(argument=name, tool=function)
                )
            raw[name] = _trim_one_newline(text[opening.end() : closing.start()])
            pos = closing.end()

    def render(self, call: ToolCall, tools: Sequence[Tool], thought: str = "") -> Completion:
        """Write ``call`` as XML. ``None`` values are left out (absent means default).

        Raises ``ValueError`` for the rare value this format cannot carry (one holding
        ``</parameter>`` right before ``</function>`` or another ``<parameter=``).
        """
        if _OPEN_FUNCTION.search(thought):
            raise ValueError("the thought contains '<function=', which would read as a call")
        lines = [f"<function={call.name}>"]
        for name, value in call.arguments.items():
            if value is None:
                continue
            text = value_as_text(value)
            body = f"\n{text}\n" if "\n" in text else text
            closing = _PARAMETER_END.search(body + "</parameter>\n</function>")
            if closing is None or closing.start() != len(body):
                raise ValueError(f"argument {name!r} cannot be written in the xml format")
            lines.append(f"<parameter={name}>{body}</parameter>")
        lines.append(_CLOSE_FUNCTION)
        call_text = "\n".join(lines)
        text = f"{thought}\n\n{call_text}" if thought else call_text
        return Completion(text=text)
