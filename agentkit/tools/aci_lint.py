"""The lint gate of ``edit``: which errors an edit would add to a file.

Pure functions over source text. :func:`lint` lists a text's errors with their lines:

- Python: what Python's own compiler rejects (its first syntax error, with tree-sitter's other
  parse errors on other lines, since the compiler stops at the first), and — when the text
  compiles — names that are read but defined nowhere: not in the module, not as builtins, not in an
  enclosing function (found with :mod:`symtable`, which resolves scopes as the compiler does). A
  module with ``from x import *`` gets no name check, since any name may come from it.
- Every other language the tree-sitter grammars cover (:mod:`agentkit.tools.ast_languages`):
  the parser's error and missing-token nodes.
- Anything else: nothing (the gate lets every edit through).

:func:`introduced` compares the errors after an edit with those before it: an error before the
edited lines keeps its line, one after them moves by the edit's change in size, and one inside
them may reappear anywhere in the new lines. Only what is left over is the edit's doing; so an
edit in a file that is already broken is judged on what it adds, and an edit that fixes an error
passes. Names are compared only when the text compiled before the edit too: while a syntax error
hides them, they cannot be told apart from new ones.
"""

from __future__ import annotations

import ast
import builtins
import symtable
import warnings
from collections import Counter
from dataclasses import dataclass

from agentkit.tools import aci_messages as msg
from agentkit.tools.ast_languages import UnsupportedLanguage, load_grammar

_MODULE_NAMES = frozenset(
    {
        "__annotations__",
        "__builtins__",
        "__cached__",
        "__doc__",
        "__file__",
        "__loader__",
        "__name__",
        "__package__",
        "__path__",
        "__spec__",
    }
)
"""Names every module has without defining them."""
_KNOWN = frozenset(dir(builtins)) | _MODULE_NAMES
_UNDEFINED = msg.UNDEFINED_NAME.split("{", 1)[0]
_ERROR_TEXT = 40
"""Characters of unparsable source quoted in a message."""


@dataclass(frozen=True, order=True)
class LintError:
    line: int
    """1-based."""
    message: str


@dataclass(frozen=True)
class Lint:
    """A text's errors; ``names_checked`` is false when undefined names could not be looked for
    (the Python text does not compile)."""

    errors: list[LintError]
    names_checked: bool = True


def lint(text: str, language: str | None) -> Lint:
    """The errors of ``text`` written in ``language`` (a name from
    :func:`~agentkit.tools.ast_languages.detect_language`; ``None`` checks nothing)."""
    if language == "python":
        return _python(text)
    if language is None:
        return Lint([])
    return Lint(parse_errors(text.encode("utf-8"), language))


def introduced(before: Lint, after: Lint, start: int, end: int, added: int) -> list[LintError]:
    """Errors of ``after`` that ``before`` does not explain, for an edit that replaced lines
    ``start``-``end`` (``end`` = ``start`` - 1 for an insertion) with ``added`` lines."""
    shift = added - (end - start + 1)
    outside: Counter[LintError] = Counter()
    inside: Counter[str] = Counter()
    for error in before.errors:
        if error.line < start:
            outside[error] += 1
        elif error.line > end:
            outside[LintError(error.line + shift, error.message)] += 1
        else:
            inside[error.message] += 1
    new: list[LintError] = []
    for error in sorted(after.errors):
        if not before.names_checked and error.message.startswith(_UNDEFINED):
            continue
        if outside[error] > 0:
            outside[error] -= 1
        elif start <= error.line < start + added and inside[error.message] > 0:
            inside[error.message] -= 1
        else:
            new.append(error)
    return new


# -- tree-sitter -----------------------------------------------------------------------------------


def parse_errors(source: bytes, language: str) -> list[LintError]:
    """Where the tree-sitter grammar of ``language`` could not read ``source``; nothing when the
    grammar is not installed."""
    from tree_sitter import Parser

    try:
        grammar = load_grammar(language)
    except UnsupportedLanguage:
        return []
    root = Parser(grammar).parse(source).root_node
    if not root.has_error:
        return []
    errors: list[LintError] = []
    stack = [root]
    while stack:
        node = stack.pop()
        line = node.start_point.row + 1
        if node.is_missing:
            errors.append(LintError(line, msg.PARSE_MISSING.format(token=node.type)))
        elif node.is_error:
            text = (node.text or b"").decode("utf-8", errors="replace").strip()
            first = text.split("\n", 1)[0].strip()
            if len(first) > _ERROR_TEXT:
                first = first[:_ERROR_TEXT] + "..."
            errors.append(LintError(line, msg.PARSE_ERROR.format(text=first)))
        elif node.has_error:
            stack.extend(reversed(node.children))
    return sorted(errors)


# -- Python --------------------------------------------------------------------------------------


def _python(text: str) -> Lint:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like are not errors
            compile(text, "<edit>", "exec", dont_inherit=True)
            tree = ast.parse(text)
            table = symtable.symtable(text, "<edit>", "exec")
    except SyntaxError as exc:
        line = exc.lineno or 1
        errors = [LintError(line, msg.SYNTAX_ERROR.format(detail=exc.msg))]
        others = parse_errors(text.encode("utf-8"), "python")
        errors.extend(error for error in others if error.line != line)
        return Lint(sorted(errors), names_checked=False)
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return Lint([LintError(1, msg.SYNTAX_ERROR.format(detail=str(exc)))], False)
    return Lint(_undefined_names(tree, table))


def _undefined_names(tree: ast.Module, table: symtable.SymbolTable) -> list[LintError]:
    """Every line that reads a name no scope defines."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return []
    defined = {
        symbol.get_name()
        for symbol in table.get_symbols()
        if symbol.is_assigned() or symbol.is_imported()
    }
    wanted: set[str] = set()
    tables = [table]
    while tables:
        scope = tables.pop()
        tables.extend(scope.get_children())
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            if symbol.is_declared_global() and symbol.is_assigned():
                defined.add(name)
            elif symbol.is_referenced() and symbol.is_global():
                wanted.add(name)
    missing = wanted - defined - _KNOWN
    if not missing:
        return []
    found = {
        LintError(node.lineno, msg.UNDEFINED_NAME.format(name=node.id))
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id in missing and not isinstance(node.ctx, ast.Store)
    }
    return sorted(found)
