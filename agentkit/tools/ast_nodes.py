"""Small questions about tree-sitter nodes that the index asks while it reads definitions."""

from __future__ import annotations

import functools

from tree_sitter import Node, Query

from agentkit.tools.ast_languages import get_spec, identifier_kinds, load_grammar


@functools.cache
def definition_query(language: str) -> Query:
    kinds = " ".join(f"({kind})" for kind in get_spec(language).rules)
    return Query(load_grammar(language), f"[{kinds}] @def")


@functools.lru_cache(maxsize=256)
def reference_query(language: str, name: str) -> Query:
    """Identifiers spelled ``name`` (compiled once per name: a search asks it of every file)."""
    kinds = " ".join(f"({kind})" for kind in identifier_kinds(language))
    literal = name.replace("\\", "\\\\").replace('"', '\\"')
    return Query(load_grammar(language), f'([{kinds}] @name (#eq? @name "{literal}"))')


def node_key(node: Node) -> tuple[int, int, int]:
    return (node.start_byte, node.end_byte, node.kind_id)


def last_row(node: Node) -> int:
    """The last row with text of ``node`` (a comment that swallows its newline ends at column 0
    of the next row)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def follow(node: Node, path: tuple[str, ...]) -> Node | None:
    current: Node | None = node
    for name in path:
        if current is None:
            return None
        current = current.child_by_field_name(name)
    return current


def name_of(node: Node) -> str | None:
    """The name a name node spells: an identifier's text, a quoted module name without its
    quotes, or for a type (``impl<T> Trait for Vec<T>``) the bare type name."""
    for _ in range(8):
        text = (node.text or b"").decode("utf-8", errors="replace")
        if node.type.endswith("identifier") and node.child_count == 0:
            return text
        if node.type == "string":
            return text.strip("'\"`") or None
        inner = node.child_by_field_name("name") or node.child_by_field_name("type")
        if inner is None:
            return None
        node = inner
    return None


def receiver_type(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    found = _first_kind(receiver, "type_identifier") if receiver is not None else None
    return (found.text or b"").decode() if found is not None else None


def _first_kind(node: Node, kind: str) -> Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == kind:
            return current
        stack.extend(reversed(current.children))
    return None


def first_token(node: Node, text: bytes) -> Node | None:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.child_count == 0 and not current.is_named and current.text == text:
            return current
        stack.extend(reversed(current.children))
    return None


_COMMENT_OPENERS = ("/**", "/*!", "/*", "///", "//!", "//", "#")


def strip_comment(line: str) -> str:
    line = line.strip()
    for opener in _COMMENT_OPENERS:
        if line.startswith(opener):
            line = line[len(opener) :]
            break
    line = line.removesuffix("*/").strip()
    return line.lstrip("*").strip()


def join_lines(text: str) -> str:
    """Source text on one line: whitespace runs become one space, and a line break right inside
    brackets disappears with the trailing comma before a closing one
    (``def f(\n    a,\n)`` becomes ``def f(a)``)."""
    out = ""
    for raw in text.split("\n"):
        line = " ".join(raw.split())
        if not line:
            continue
        if not out:
            out = line
        elif line[0] in ")]}":
            out = out.removesuffix(",") + line
        elif out[-1] in "([{":
            out += line
        else:
            out += " " + line
    return out


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
