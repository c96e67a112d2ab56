"""Outlines of source files: what a file defines, with bodies elided and lines numbered as in it.

An outline is the cheapest way for a model to see a file's shape before it reads a range: every
class, function and method with its signature and the first line of its documentation, members
under their containers, and nothing of the bodies. It reuses the file's own text (indentation,
decorators, ``export``, attributes) rather than re-printing the syntax, so what the model sees is
what it will find when it opens the lines.

Python bodies become ``...`` (the stub-file convention); brace languages get ``{ ... }``. A
container's members are shown between its header and its closing brace. Definitions that have no
body (a constant, a type alias, an interface method) are shown as written, cut after their first
line for variables and after five lines otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentkit.tools.ast_index import DefinitionNode, ParsedSource

INDENT = "    "
"""Indentation for a member that shares its line with its container's header."""
_WHOLE_ROWS = 4
"""A body-less definition other than a variable shows at most this many rows after its first."""

Line = tuple[int | None, str]
"""A 1-based source line number (``None`` for a line the outline adds) and the text shown."""


def render_outline(parsed: ParsedSource) -> str:
    """The numbered outline of ``parsed`` (``"12 | def run(self) -> None: ..."``); ``""`` when the
    file defines nothing."""
    lines = _Outline(parsed).lines()
    numbers = [number for number, _ in lines if number is not None]
    if not numbers:
        return ""
    width = len(str(max(numbers)))
    return "".join(
        f"{'' if number is None else number:>{width}} | {text}\n" for number, text in lines
    )


class _Outline:
    def __init__(self, parsed: ParsedSource) -> None:
        self.parsed = parsed
        self.spec = parsed.spec
        self.out: list[Line] = []
        self.shown = 0
        """Bytes before this offset are already in the outline (a one-line container's members
        start after its header, not at their line's start)."""

    def lines(self) -> list[Line]:
        root = self.parsed.tree.root_node
        for child in root.named_children:
            if child.type in self.spec.header_nodes:
                row = child.start_point.row
                self.out.append((row + 1, self._decode(self.parsed.line_bytes(row)).rstrip()))
        if self.spec.docstrings:
            doc, line = self.parsed.docstring(root)
            if doc is not None and line is not None:
                self.out.append((line, self.spec.doc_template.format(doc)))
        if not self.parsed.definition_nodes():
            return []
        for item in self.parsed.definition_nodes():
            self._emit(item, "")
        return self.out

    def _emit(self, item: DefinitionNode, parent_indent: str) -> None:
        parsed, spec, symbol = self.parsed, self.spec, item.symbol
        row = item.start.start_point.row
        if parsed.line_start(row) < self.shown:
            indent = prefix = parent_indent + INDENT
            begin = item.start.start_byte
        else:
            text = self._decode(parsed.line_bytes(row))
            indent, prefix = text[: len(text) - len(text.lstrip())], ""
            begin = parsed.line_start(row)
        if not spec.docstrings and symbol.doc and item.doc_line:
            self.out.append((item.doc_line, indent + spec.doc_template.format(symbol.doc)))
        if item.header_end is None:
            self._whole(item, begin, prefix)
            self.shown = max(self.shown, item.outer.end_byte)
            return
        header = self._numbered(self._slice(begin, item.header_end).rstrip(), row, prefix)
        last_header_row = row + len(header) - 1
        doc_line = item.doc_line if spec.docstrings and symbol.doc else None
        if doc_line is not None and doc_line - 1 <= last_header_row:
            doc_line = None  # a docstring on the header's own line stays hidden with the body
        members = item.children if item.rule.container else []
        if spec.indented_bodies:
            body_indent = self._indent_of(doc_line - 1) if doc_line else ""
            if doc_line is None and not members:
                header[-1] = (header[-1][0], header[-1][1] + " ...")
            self.out.extend(header)
            if doc_line is not None:
                self.out.append((doc_line, body_indent + spec.doc_template.format(symbol.doc)))
                if not members:
                    self.out.append((None, body_indent + "..."))
        else:
            header[-1] = (header[-1][0], header[-1][1] + (" {" if members else " { ... }"))
            self.out.extend(header)
        if members:
            self.shown = item.header_end
            for member in members:
                self._emit(member, indent)
            if not spec.indented_bodies:
                closing = item.body if item.body is not None else item.outer
                self.out.append((closing.end_point.row + 1, indent + "}"))
        self.shown = max(self.shown, item.outer.end_byte)

    def _whole(self, item: DefinitionNode, begin: int, prefix: str) -> None:
        """A definition without an elidable body, as written (cut when long)."""
        parsed = self.parsed
        last_row = item.outer.end_point.row
        if item.outer.end_point.column == 0 and last_row > item.outer.start_point.row:
            last_row -= 1
        first_row = item.node.start_point.row
        one_line = item.rule.variable or item.rule.first_line_only
        end_row = min(last_row, first_row + (0 if one_line else _WHOLE_ROWS))
        line_end = parsed.line_start(end_row) + len(parsed.line_bytes(end_row))
        text = self._slice(begin, min(line_end, item.outer.end_byte)).rstrip()
        if end_row < last_row:
            text += " ..."
        self.out.extend(self._numbered(text, item.start.start_point.row, prefix))

    def _numbered(self, text: str, row: int, prefix: str) -> list[Line]:
        return [
            (row + 1 + offset, (prefix if offset == 0 else "") + line.rstrip("\r"))
            for offset, line in enumerate(text.split("\n"))
        ]

    def _indent_of(self, row: int) -> str:
        text = self._decode(self.parsed.line_bytes(row))
        return text[: len(text) - len(text.lstrip())]

    def _slice(self, begin: int, end: int) -> str:
        return self._decode(self.parsed.source[begin:end])

    @staticmethod
    def _decode(data: bytes) -> str:
        return data.decode("utf-8", errors="replace")
