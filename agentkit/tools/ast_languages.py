"""The languages the AST tools read: which files are which language, and which syntax defines what.

Each language is one :class:`LanguageSpec`: the file extensions it owns, the grammar package that
parses it (a tree-sitter grammar that ships compiled inside its wheel, so nothing is fetched at
run time), and a table of :class:`DefinitionRule` that says which syntax nodes define a symbol and
how to read its name, kind and body. Adding a language is adding an entry here; the parsing and
the tools never name a language.

Grammars are imported on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import importlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tree_sitter import Language

SymbolKind = Literal[
    "class",
    "interface",
    "struct",
    "enum",
    "trait",
    "impl",
    "record",
    "type",
    "module",
    "namespace",
    "function",
    "method",
    "constructor",
    "field",
    "variable",
    "constant",
    "macro",
]
"""What a definition is. Languages map their own syntax onto these words, so a model (and
Agentless localization) sees one vocabulary: a Go ``func`` and a Rust ``fn`` are both functions."""


class UnsupportedLanguage(ValueError):
    """A language name that has no entry here, or whose grammar package is not installed."""


@dataclass(frozen=True)
class DefinitionRule:
    """How one kind of syntax node defines a symbol.

    ``name`` is a path of field names from the node to its name (Java's ``int x;`` keeps the
    name under ``declarator`` then ``name``). ``body`` names the field whose contents an outline
    elides; ``None`` means the definition has no body (a variable, a type alias, a method
    signature) and is shown whole.
    """

    kind: SymbolKind
    member_kind: SymbolKind | None = None
    """The kind when the definition sits directly in a class-like container: a Python ``def``
    inside a class is a method."""
    name: tuple[str, ...] = ("name",)
    body: str | None = "body"
    header_ends_at_brace: bool = False
    """The header runs to the first ``{`` inside the node, for nodes whose body has no field of
    its own (Go's ``type Server struct {...}``)."""
    container: bool = False
    """Class-like: members are listed in outlines and their functions are methods."""
    variable: bool = False
    """Counted only directly in a file or a container body: a local variable inside a function
    is not a definition worth listing."""
    kind_from_type: Mapping[str, SymbolKind] = field(default_factory=dict)
    """Kind chosen by the node type of the ``type`` field (a Go ``type_spec`` of a
    ``struct_type`` is a struct)."""
    receiver: bool = False
    """Go methods: the container is the receiver's type, not the enclosing syntax."""
    first_line_only: bool = False
    """An outline shows only the first line (a macro's rules are its body in all but name).
    Variables are always shown by their first line."""
    function_values: frozenset[str] = frozenset()
    """JavaScript declarators: when the ``value`` field is one of these node types the
    definition is a function (its body is the value's body), otherwise a variable."""


@dataclass(frozen=True)
class LanguageSpec:
    """Everything the index needs to know about one language."""

    name: str
    module: str
    """Python module of the grammar package."""
    entry: str
    """Function of that module that returns the grammar (``language``, ``language_tsx``)."""
    extensions: tuple[str, ...]
    rules: Mapping[str, DefinitionRule]
    comments: frozenset[str]
    doc_template: str
    """How an outline shows the first line of a definition's documentation."""
    wrappers: frozenset[str] = frozenset()
    """Nodes that wrap one definition and belong to it (decorators, ``export``, a declaration
    statement around one declarator)."""
    decorations: frozenset[str] = frozenset()
    """Wrappers whose own text is not part of the signature (Python's decorated definitions)."""
    leading: frozenset[str] = frozenset()
    """Siblings right before a definition that belong to it (Rust's ``#[derive(...)]``)."""
    header_nodes: frozenset[str] = frozenset()
    """File-level nodes an outline shows first (Go's ``package main``)."""
    docstrings: bool = False
    """The first string in a body documents it (Python); otherwise comments right above do."""
    indented_bodies: bool = False
    """Bodies are indented blocks, not braces: outlines elide them with ``...`` lines."""


_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)

_JS_RULES: dict[str, DefinitionRule] = {
    "class_declaration": DefinitionRule("class", container=True),
    "function_declaration": DefinitionRule("function"),
    "generator_function_declaration": DefinitionRule("function"),
    "method_definition": DefinitionRule("method"),
    "variable_declarator": DefinitionRule(
        "variable", body=None, variable=True, function_values=_JS_FUNCTION_VALUES
    ),
    "field_definition": DefinitionRule("field", name=("property",), body=None, variable=True),
}

_TS_RULES: dict[str, DefinitionRule] = {
    **{k: v for k, v in _JS_RULES.items() if k != "field_definition"},
    "abstract_class_declaration": DefinitionRule("class", container=True),
    "interface_declaration": DefinitionRule("interface", container=True),
    "enum_declaration": DefinitionRule("enum", container=True),
    "type_alias_declaration": DefinitionRule("type", body=None),
    "internal_module": DefinitionRule("namespace", container=True),
    "module": DefinitionRule("namespace", container=True),
    "function_signature": DefinitionRule("function", body=None),
    "method_signature": DefinitionRule("method", body=None),
    "abstract_method_signature": DefinitionRule("method", body=None),
    "public_field_definition": DefinitionRule("field", body=None, variable=True),
    "property_signature": DefinitionRule("field", body=None, variable=True),
}

_JS_WRAPPERS = frozenset({"export_statement", "lexical_declaration", "variable_declaration"})
_TS_WRAPPERS = _JS_WRAPPERS | {"ambient_declaration", "expression_statement"}

_LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec(
        name="python",
        module="tree_sitter_python",
        entry="language",
        extensions=(".py", ".pyi"),
        rules={
            "class_definition": DefinitionRule("class", container=True),
            "function_definition": DefinitionRule("function", member_kind="method"),
            "assignment": DefinitionRule(
                "variable", member_kind="field", name=("left",), body=None, variable=True
            ),
        },
        comments=frozenset({"comment"}),
        doc_template='"""{}"""',
        wrappers=frozenset({"decorated_definition", "expression_statement"}),
        decorations=frozenset({"decorated_definition"}),
        docstrings=True,
        indented_bodies=True,
    ),
    LanguageSpec(
        name="javascript",
        module="tree_sitter_javascript",
        entry="language",
        extensions=(".js", ".jsx", ".mjs", ".cjs"),
        rules=_JS_RULES,
        comments=frozenset({"comment"}),
        doc_template="/** {} */",
        wrappers=_JS_WRAPPERS,
    ),
    LanguageSpec(
        name="typescript",
        module="tree_sitter_typescript",
        entry="language_typescript",
        extensions=(".ts", ".mts", ".cts"),
        rules=_TS_RULES,
        comments=frozenset({"comment"}),
        doc_template="/** {} */",
        wrappers=_TS_WRAPPERS,
    ),
    LanguageSpec(
        name="tsx",
        module="tree_sitter_typescript",
        entry="language_tsx",
        extensions=(".tsx",),
        rules=_TS_RULES,
        comments=frozenset({"comment"}),
        doc_template="/** {} */",
        wrappers=_TS_WRAPPERS,
    ),
    LanguageSpec(
        name="go",
        module="tree_sitter_go",
        entry="language",
        extensions=(".go",),
        rules={
            "function_declaration": DefinitionRule("function"),
            "method_declaration": DefinitionRule("method", receiver=True),
            "type_spec": DefinitionRule(
                "type",
                body=None,
                header_ends_at_brace=True,
                container=True,
                kind_from_type={"struct_type": "struct", "interface_type": "interface"},
            ),
            "type_alias": DefinitionRule("type", body=None),
            "method_elem": DefinitionRule("method", body=None),
            "field_declaration": DefinitionRule("field", body=None, variable=True),
            "const_spec": DefinitionRule("constant", body=None, variable=True),
            "var_spec": DefinitionRule("variable", body=None, variable=True),
        },
        comments=frozenset({"comment"}),
        doc_template="// {}",
        wrappers=frozenset(
            {"type_declaration", "const_declaration", "var_declaration", "var_spec_list"}
        ),
        header_nodes=frozenset({"package_clause"}),
    ),
    LanguageSpec(
        name="java",
        module="tree_sitter_java",
        entry="language",
        extensions=(".java",),
        rules={
            "class_declaration": DefinitionRule("class", container=True),
            "interface_declaration": DefinitionRule("interface", container=True),
            "annotation_type_declaration": DefinitionRule("interface", container=True),
            "enum_declaration": DefinitionRule("enum", container=True),
            "record_declaration": DefinitionRule("record", container=True),
            "method_declaration": DefinitionRule("method"),
            "constructor_declaration": DefinitionRule("constructor"),
            "compact_constructor_declaration": DefinitionRule("constructor"),
            "field_declaration": DefinitionRule(
                "field", name=("declarator", "name"), body=None, variable=True
            ),
        },
        comments=frozenset({"line_comment", "block_comment"}),
        doc_template="/** {} */",
        header_nodes=frozenset({"package_declaration"}),
    ),
    LanguageSpec(
        name="rust",
        module="tree_sitter_rust",
        entry="language",
        extensions=(".rs",),
        rules={
            "function_item": DefinitionRule("function", member_kind="method"),
            "function_signature_item": DefinitionRule("function", member_kind="method", body=None),
            "struct_item": DefinitionRule("struct", container=True),
            "union_item": DefinitionRule("struct", container=True),
            "field_declaration": DefinitionRule("field", body=None, variable=True),
            "enum_item": DefinitionRule("enum"),
            "trait_item": DefinitionRule("trait", container=True),
            "impl_item": DefinitionRule("impl", name=("type",), container=True),
            "mod_item": DefinitionRule("module", container=True),
            "type_item": DefinitionRule("type", body=None),
            "const_item": DefinitionRule("constant", body=None, variable=True),
            "static_item": DefinitionRule("variable", body=None, variable=True),
            "macro_definition": DefinitionRule("macro", body=None, first_line_only=True),
        },
        comments=frozenset({"line_comment", "block_comment"}),
        doc_template="/// {}",
        leading=frozenset({"attribute_item"}),
    ),
)

LANGUAGES: Mapping[str, LanguageSpec] = {spec.name: spec for spec in _LANGUAGES}
"""Every language the AST tools read, by name."""

_BY_EXTENSION: dict[str, str] = {ext: spec.name for spec in _LANGUAGES for ext in spec.extensions}
_SHEBANGS = {"python": "python", "node": "javascript", "deno": "typescript"}
_MINIFIED = (".min.js", ".min.mjs", ".bundle.js")


def supported_languages() -> tuple[str, ...]:
    """Names accepted wherever a language is asked for, in a stable order."""
    return tuple(LANGUAGES)


def source_extensions() -> tuple[str, ...]:
    """Every file extension that maps to a language (``.py``, ``.tsx``...)."""
    return tuple(_BY_EXTENSION)


def detect_language(path: str, source: bytes | None = None) -> str | None:
    """The language of a file from its name, or ``None`` when no language here owns it.

    A file without an extension is recognised by its ``#!`` line when ``source`` is given
    (``#!/usr/bin/env python3``). Minified bundles (``app.min.js``) count as no language: their
    one enormous line is nothing a model can read an outline of.
    """
    name = posixpath.basename(path.replace("\\", "/")).lower()
    if name.endswith(_MINIFIED):
        return None
    _, ext = posixpath.splitext(name)
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    if not ext and source is not None and source.startswith(b"#!"):
        first = source.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        words = first[2:].replace("/", " ").split()
        for word in words:
            for interpreter, language in _SHEBANGS.items():
                if word.startswith(interpreter):
                    return language
    return None


def get_spec(language: str) -> LanguageSpec:
    """The spec called ``language``; :class:`UnsupportedLanguage` names the known ones."""
    try:
        return LANGUAGES[language]
    except KeyError:
        known = ", ".join(LANGUAGES)
        raise UnsupportedLanguage(
            f"no AST support for the language {language!r}; supported: {known}"
        ) from None


@functools.cache
def load_grammar(language: str) -> Language:
    """The compiled tree-sitter grammar of ``language`` (imported once, on first use)."""
    from tree_sitter import Language

    spec = get_spec(language)
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        package = spec.module.replace("_", "-")
        raise UnsupportedLanguage(
            f"the grammar for {language} is not installed (the {package} package): {exc}"
        ) from exc
    return Language(getattr(module, spec.entry)())


@functools.cache
def identifier_kinds(language: str) -> tuple[str, ...]:
    """Node types of the grammar that hold a name (``identifier``, ``type_identifier``...): what a
    reference search matches against."""
    grammar = load_grammar(language)
    kinds = set()
    for kind_id in range(grammar.node_kind_count):
        kind = grammar.node_kind_for_id(kind_id)
        if (
            kind
            and kind.endswith("identifier")
            and grammar.node_kind_is_named(kind_id)
            and grammar.node_kind_is_visible(kind_id)
        ):
            kinds.add(kind)
    return tuple(sorted(kinds))
