"""Symbols of a source file, read from its syntax tree: what is defined where, and where a name is used.

Pure functions over source bytes, for the AST tools and for pipelines that localize code without a
model loop (Agentless): no runtime, no files, no state. One parse serves many questions through
:class:`ParsedSource`; :func:`definitions`, :func:`references` and :func:`skeleton` are the
one-shot forms.

Positions are 1-based lines and 1-based character columns, as an editor shows them. A definition's
line range covers what belongs to it in the source (decorators, ``export``, Rust attributes) but
not the comment above it. Names are matched as the grammar sees them, with no type resolution: a
reference to ``run`` is every identifier spelled ``run``, whichever ``run`` it means.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict
from tree_sitter import Node, Parser, QueryCursor

from agentkit.tools.ast_languages import (
    DefinitionRule,
    LanguageSpec,
    SymbolKind,
    detect_language,
    get_spec,
    load_grammar,
)
from agentkit.tools.ast_nodes import (
    cut,
    definition_query,
    first_token,
    follow,
    join_lines,
    last_row,
    name_of,
    node_key,
    receiver_type,
    reference_query,
    strip_comment,
)

__all__ = [
    "ParsedSource",
    "Reference",
    "Symbol",
    "definitions",
    "detect_language",
    "parse",
    "references",
    "skeleton",
]

CLASS_LIKE: frozenset[str] = frozenset(
    {"class", "interface", "struct", "enum", "trait", "impl", "record", "type"}
)
"""Container kinds whose functions are methods (a module's or namespace's are still functions)."""

_SIGNATURE_CHARS = 200
_DOC_CHARS = 160
_LINE_CHARS = 200


class Symbol(BaseModel):
    """One definition: a class, function, method, type, constant..."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SymbolKind
    qualified_name: str
    """Names of the enclosing definitions and this one, joined by dots (``Greeter.greet``; a Go
    method is qualified by its receiver type, a Rust method by its ``impl``'s type)."""
    container: str | None = None
    """Qualified name of the enclosing definition; ``None`` at file level."""
    start_line: int
    end_line: int
    """Inclusive."""
    signature: str
    """The header without its body, on one line (``def greet(self, loud: bool = False) -> str``)."""
    doc: str | None = None
    """First line of the docstring or of the comment right above."""
    depth: int = 0
    """How deeply the definition is nested in the syntax: 0 for file level (a Go method too)."""


class Reference(BaseModel):
    """One identifier spelled like the name that was searched for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int
    column: int
    """1-based, in characters."""
    text: str
    """The source line, without its indentation (cut at 200 characters)."""
    is_definition: bool
    """The identifier is the name of a definition (``def run``, ``class Run``), not a use."""
    scope: str | None
    """Qualified name of the innermost definition around it; ``None`` at file level."""


@dataclass
class DefinitionNode:
    """A definition as syntax: its :class:`Symbol` and the tree-sitter nodes it came from, with
    the definitions nested in it. What outlines are drawn from."""

    node: Node
    outer: Node
    """``node`` with its wrappers (decorators, ``export``, the statement around a declarator)."""
    start: Node
    """The first node that belongs to the definition (Rust attributes come before ``outer``)."""
    rule: DefinitionRule
    name_node: Node
    symbol: Symbol
    header_end: int | None
    """Byte where an elidable body begins; ``None`` when the definition is shown whole."""
    body: Node | None
    doc_line: int | None = None
    children: list[DefinitionNode] = field(default_factory=list)


class ParsedSource:
    """One source file parsed once; ask it for symbols, references and an outline."""

    def __init__(self, source: bytes | str, language: str) -> None:
        self.spec: LanguageSpec = get_spec(language)
        self.language = language
        self.source = source.encode("utf-8") if isinstance(source, str) else source
        self.tree = Parser(load_grammar(language)).parse(self.source)
        self._line_starts = [0]
        newline = self.source.find(b"\n")
        while newline != -1:
            self._line_starts.append(newline + 1)
            newline = self.source.find(b"\n", newline + 1)
        self._roots: list[DefinitionNode] | None = None
        self._starts: dict[int, list[int]] = {}

    @property
    def has_errors(self) -> bool:
        """The parser met syntax it could not read; what it could read is still indexed."""
        return self.tree.root_node.has_error

    @property
    def line_count(self) -> int:
        ends_open = bool(self.source) and not self.source.endswith(b"\n")
        return len(self._line_starts) - 1 + int(ends_open)

    def definitions(self) -> list[Symbol]:
        """Every definition, in source order (a container before its members)."""
        out: list[Symbol] = []
        stack = list(reversed(self.definition_nodes()))
        while stack:
            item = stack.pop()
            out.append(item.symbol)
            stack.extend(reversed(item.children))
        return out

    def top_level(self) -> list[Symbol]:
        """Definitions at file level (depth 0), in source order."""
        return [item.symbol for item in self.definition_nodes()]

    def enclosing(self, line: int) -> Symbol | None:
        """The innermost definition whose range covers ``line`` (1-based), if any."""
        if not 1 <= line <= len(self._line_starts):
            return None
        found = self._innermost(self._line_starts[line - 1])
        return found.symbol if found is not None else None

    def references(self, name: str) -> list[Reference]:
        """Every identifier spelled ``name``, in source order, each with its enclosing scope."""
        query = reference_query(self.language, name)
        nodes = QueryCursor(query).captures(self.tree.root_node).get("name", [])
        if not nodes:
            return []
        names = {(item.name_node.start_byte, item.name_node.end_byte) for item in self._all()}
        found = []
        for node in sorted(nodes, key=lambda n: n.start_byte):
            row, column = node.start_point
            line = self.line_bytes(row)
            scope = self._innermost(node.start_byte)
            found.append(
                Reference(
                    line=row + 1,
                    column=len(line[:column].decode("utf-8", errors="replace")) + 1,
                    text=cut(line.decode("utf-8", errors="replace").strip(), _LINE_CHARS),
                    is_definition=(node.start_byte, node.end_byte) in names,
                    scope=scope.symbol.qualified_name if scope is not None else None,
                )
            )
        return found

    def skeleton(self) -> str:
        """The file's outline: definitions with their signatures and first doc lines, bodies
        elided, each line numbered as in the source. Empty when nothing is defined."""
        from agentkit.tools.ast_outline import render_outline

        return render_outline(self)

    # -- building the definition tree --------------------------------------------------------

    def definition_nodes(self) -> list[DefinitionNode]:
        """The file-level definitions as syntax, each with its nested definitions."""
        if self._roots is None:
            self._roots = self._build()
        return self._roots

    def _all(self) -> list[DefinitionNode]:
        out: list[DefinitionNode] = []
        stack = list(self.definition_nodes())
        while stack:
            item = stack.pop()
            out.append(item)
            stack.extend(item.children)
        return out

    def _build(self) -> list[DefinitionNode]:
        root = self.tree.root_node
        candidates = QueryCursor(definition_query(self.language)).captures(root).get("def", [])
        candidates.sort(key=lambda n: (n.start_byte, -n.end_byte))
        accepted: dict[tuple[int, int, int], DefinitionNode] = {}
        roots: list[DefinitionNode] = []
        for node in candidates:
            parent: DefinitionNode | None = None
            ancestor = node.parent
            while ancestor is not None and parent is None:
                parent = accepted.get(node_key(ancestor))
                ancestor = ancestor.parent
            made = self._make(node, parent)
            if made is None:
                continue
            accepted[node_key(node)] = made
            (parent.children if parent is not None else roots).append(made)
        return roots

    def _make(self, node: Node, parent: DefinitionNode | None) -> DefinitionNode | None:
        spec = self.spec
        rule = spec.rules[node.type]
        name_node = follow(node, rule.name)
        name = name_of(name_node) if name_node is not None else None
        if name_node is None or not name:
            return None
        kind: SymbolKind = rule.kind
        body = node.child_by_field_name(rule.body) if rule.body else None
        variable = rule.variable
        if rule.function_values:
            value = node.child_by_field_name("value")
            if value is not None and value.type in rule.function_values:
                kind, body, variable = "function", value.child_by_field_name("body"), False
        if rule.kind_from_type:
            type_node = node.child_by_field_name("type")
            if type_node is not None:
                kind = rule.kind_from_type.get(type_node.type, kind)
        in_class = parent is not None and parent.rule.container and parent.symbol.kind in CLASS_LIKE
        if in_class and rule.member_kind is not None:
            kind = rule.member_kind
        if variable and not self._directly_in(node, parent):
            return None
        outer = node
        while (
            outer.parent is not None
            and outer.parent.type in spec.wrappers
            and sum(1 for c in outer.parent.named_children if c.type == outer.type) == 1
        ):
            outer = outer.parent
        start = outer
        while (prev := start.prev_named_sibling) is not None and prev.type in spec.leading:
            start = prev
        header_end, body = self._header_end(node, rule, body)
        container = parent.symbol.qualified_name if parent is not None else None
        if rule.receiver:
            receiver = receiver_type(node)
            container = receiver or container
        qualified = f"{container}.{name}" if container else name
        sig_from = node if outer.type in spec.decorations else outer
        sig_to = header_end if header_end is not None else outer.end_byte
        if rule.first_line_only:
            row = node.start_point.row
            sig_to = min(sig_to, self._line_starts[row] + len(self.line_bytes(row)))
        doc, doc_line = self._doc(start, body)
        symbol = Symbol(
            name=name,
            kind=kind,
            qualified_name=qualified,
            container=container,
            start_line=start.start_point.row + 1,
            end_line=last_row(outer) + 1,
            signature=self._signature(sig_from.start_byte, sig_to),
            doc=doc,
            depth=parent.symbol.depth + 1 if parent is not None else 0,
        )
        return DefinitionNode(
            node, outer, start, rule, name_node, symbol, header_end, body, doc_line
        )

    def _directly_in(self, node: Node, parent: DefinitionNode | None) -> bool:
        """A variable counts only directly in the file or in a container's body."""
        if parent is not None and not parent.rule.container:
            return False
        place = node.parent
        while place is not None and place.type in self.spec.wrappers:
            place = place.parent
        if place is None:
            return False
        if parent is None:
            return place == self.tree.root_node
        return parent.body is not None and place == parent.body

    def _header_end(
        self, node: Node, rule: DefinitionRule, body: Node | None
    ) -> tuple[int | None, Node | None]:
        """Where the header stops and the elided body begins, and the body node."""
        if rule.header_ends_at_brace:
            brace = first_token(node, b"{")
            if brace is None or brace.parent is None:
                return None, None
            return brace.start_byte, brace.parent
        if body is None:
            return None, None
        if self.spec.indented_bodies or self.source[body.start_byte : body.start_byte + 1] == b"{":
            return body.start_byte, body
        return None, None

    def _doc(self, start: Node, body: Node | None) -> tuple[str | None, int | None]:
        if self.spec.docstrings:
            return self.docstring(body)
        comments: list[Node] = []
        below = start
        while (prev := below.prev_named_sibling) is not None and prev.type in self.spec.comments:
            if last_row(prev) < below.start_point.row - 1 or not self._starts_line(prev):
                break
            comments.append(prev)
            below = prev
        for comment in reversed(comments):
            text = self.source[comment.start_byte : comment.end_byte].decode(errors="replace")
            for offset, raw in enumerate(text.split("\n")):
                line = strip_comment(raw)
                if line:
                    return cut(line, _DOC_CHARS), comment.start_point.row + 1 + offset
        return None, None

    def docstring(self, body: Node | None) -> tuple[str | None, int | None]:
        """First line of the string that opens ``body`` (a Python docstring; pass the root node
        for the module's) and its 1-based line, or ``(None, None)``."""
        if body is None or not body.named_children:
            return None, None
        first = body.named_children[0]
        if first.type != "expression_statement" or not first.named_children:
            return None, None
        string = first.named_children[0]
        if string.type != "string":
            return None, None
        parts = string.children
        begin = parts[0].end_byte if parts else string.start_byte
        end = parts[-1].start_byte if len(parts) > 1 else string.end_byte
        text = self.source[begin:end].decode("utf-8", errors="replace")
        for offset, raw in enumerate(text.split("\n")):
            if raw.strip():
                return cut(raw.strip(), _DOC_CHARS), string.start_point.row + 1 + offset
        return None, None

    def _signature(self, begin: int, end: int) -> str:
        text = join_lines(self.source[begin:end].decode("utf-8", errors="replace"))
        if self.spec.indented_bodies:
            text = text.removesuffix(":").rstrip()
        return cut(text.removesuffix("{").rstrip(), _SIGNATURE_CHARS)

    # -- positions ---------------------------------------------------------------------------

    def _starts_line(self, node: Node) -> bool:
        begin = self._line_starts[node.start_point.row]
        return not self.source[begin : node.start_byte].strip()

    def line_start(self, row: int) -> int:
        """Byte offset where 0-based ``row`` begins."""
        return self._line_starts[row]

    def line_bytes(self, row: int) -> bytes:
        """The bytes of 0-based ``row``, without its newline."""
        begin = self._line_starts[row]
        end = self._line_starts[row + 1] - 1 if row + 1 < len(self._line_starts) else None
        return self.source[begin:end]

    def _innermost(self, byte: int) -> DefinitionNode | None:
        found: DefinitionNode | None = None
        level = self.definition_nodes()
        while level:
            starts = self._starts.get(id(level))
            if starts is None:
                starts = self._starts[id(level)] = [item.start.start_byte for item in level]
            index = bisect.bisect_right(starts, byte) - 1
            if index < 0 or level[index].outer.end_byte <= byte:
                break
            found = level[index]
            level = found.children
        return found


def parse(source: bytes | str, language: str) -> ParsedSource:
    """Parse ``source`` as ``language`` (a name from
    :func:`~agentkit.tools.ast_languages.supported_languages`); raises
    :class:`~agentkit.tools.ast_languages.UnsupportedLanguage` for any other."""
    return ParsedSource(source, language)


def definitions(source: bytes | str, language: str) -> list[Symbol]:
    """Every definition in ``source``, in source order."""
    return parse(source, language).definitions()


def references(source: bytes | str, language: str, name: str) -> list[Reference]:
    """Every identifier in ``source`` spelled ``name``."""
    return parse(source, language).references(name)


def skeleton(source: bytes | str, language: str) -> str:
    """The numbered outline of ``source`` (see :meth:`ParsedSource.skeleton`)."""
    return parse(source, language).skeleton()
