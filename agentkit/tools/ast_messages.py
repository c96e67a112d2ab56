"""Everything the AST tools say to a model: message templates and the layout of their results.

Each template is a constant so tests can assert the exact text and reviewers see a wording change.
A message names what happened and what to do next: a refusal always says how to narrow or where
to look instead, because a model that is only told "no" tends to repeat the same call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from agentkit.tools.ast_index import Reference, Symbol
from agentkit.tools.ast_languages import source_extensions, supported_languages
from agentkit.tools.ast_workspace import SKIPPED_DIRECTORIES
from agentkit.types import Observation

CLIP_CHARS = 16_000
"""Characters of output a model sees before the rest is cut with :data:`CLIPPED`."""
BREAKDOWN_ITEMS = 15
"""Entries in a "per file" or "per directory" list of a refusal."""
MEMBERS_SHOWN = 8
"""Member names shown after a container in ``list_symbols``."""

# -- reading one file ------------------------------------------------------------------------------

FILE_NOT_FOUND = (
    "The file {path} does not exist. Paths are relative to the repository root ({workdir}); "
    "list_symbols on a directory shows the source files in it."
)
IS_A_DIRECTORY = (
    "{path} is a directory, not a file. file_skeleton outlines one file; list_symbols shows "
    "the source files in a directory and what each one defines."
)
UNKNOWN_LANGUAGE = (
    "{path} is not in a language these tools parse ({languages}; files ending in "
    "{extensions}). View the file directly, or search it with grep."
)
BINARY_FILE = "{path} is a binary file, not source code; there is nothing to outline."
READ_FAILED = "Could not read {path}: {reason}"

# -- file_skeleton -------------------------------------------------------------------------------

SKELETON_HEADER = (
    "{path} ({lines} line{s}, {language}); bodies are elided, line numbers are the file's:"
)
NOTHING_DEFINED = (
    "{path} ({lines} line{s}, {language}) defines no classes, functions, types or variables "
    "that an outline shows. View the file directly."
)
SYNTAX_ERRORS = (
    "[The parser met syntax errors in {path}; what follows is what it could read, and parts "
    "may be missing.]"
)

# -- searching a directory -----------------------------------------------------------------------

PATH_NOT_FOUND = (
    "The path {path} does not exist. Paths are relative to the repository root ({workdir})."
)
LISTING_FAILED = "Could not list the files under {path}: {reason}."
NO_SOURCE_FILES = (
    "There are no source files under {path} in a language these tools parse ({languages}). "
    "Hidden directories and vendored ones ({skipped}) are not searched."
)
TOO_MANY_FILES = (
    "{path} holds {count} source files; list_symbols lists at most {limit} at once. Call it on "
    "a subdirectory. Source files per subdirectory: {breakdown}."
)
NAME_IN_TOO_MANY_FILES = (
    "'{name}' occurs in {count} source files under {path}; at most {limit} are searched at "
    "once. Give a narrower path (a subdirectory or one file). Files per subdirectory: "
    "{breakdown}."
)
NAME_NOWHERE = (
    "'{name}' does not occur in any source file under {path} ({languages}). Check the "
    "spelling, or search other files with grep."
)

# -- find_definition -----------------------------------------------------------------------------

DEFINITIONS_FOUND = "{count} definition{s} of '{symbol}':"
NO_DEFINITION = (
    "No definition of '{symbol}' found under {path}. The name occurs in {count} source "
    "file{s} there, but none defines it: it may be defined in a language these tools do not "
    "parse, come from an installed library or the standard library, or be created at run "
    "time. find_references shows where it is used."
)
NO_QUALIFIED_MATCH = (
    "No definition of '{symbol}' found under {path}, but '{name}' is defined as: "
    "{candidates}. Ask for one of those names."
)
TOO_MANY_DEFINITIONS = (
    "'{symbol}' has {count} definitions in {files} files, more than the {limit} shown at once. "
    "Narrow the search: give a path (a directory or a file), or qualify the name with its "
    "container (Class.method). Definitions per file: {breakdown}."
)
MORE_LINES = "... {count} more lines: view {path} lines {start}-{end}"

# -- find_references -----------------------------------------------------------------------------

REFERENCES_FOUND = "{count} occurrence{s} of '{name}' in {files} file{fs}:"
QUALIFIED_NOTE = (
    "Occurrences are matched by the name '{name}' alone; which '{name}' each one means is not "
    "resolved."
)
ONLY_IN_TEXT = (
    "No identifier '{name}' under {path}: the name occurs in {count} source file{s} there, but "
    "only in comments or strings. grep finds text."
)
TOO_MANY_REFERENCES = (
    "'{name}' occurs {count} times in {files} files, more than the {limit} shown at once. Give "
    "a narrower path (a subdirectory or one file). Occurrences per file: {breakdown}."
)

# -- list_symbols ----------------------------------------------------------------------------------

NOTHING_AT_TOP_LEVEL = "{count} more source file{s} define nothing at top level: {names}"

# -- clipping --------------------------------------------------------------------------------------

CLIPPED = "[... {omitted} more characters not shown. {hint} ...]"
CLIP_HINT_SKELETON = "View a line range of the file, or use find_definition for one symbol."
CLIP_HINT_SEARCH = "Give a narrower path to see fewer results."


def scope(shown: str) -> str:
    """A searched path in a sentence: the work dir itself is "the repository"."""
    return "the repository" if shown == "." else shown


def plural(count: int) -> str:
    """The ``s`` of a plural noun (``1 line``, ``2 lines``)."""
    return "" if count == 1 else "s"


def unknown_language(path: str) -> str:
    return UNKNOWN_LANGUAGE.format(
        path=path,
        languages=", ".join(supported_languages()),
        extensions=" ".join(source_extensions()),
    )


def no_source_files(path: str) -> str:
    return NO_SOURCE_FILES.format(
        path=scope(path),
        languages=", ".join(supported_languages()),
        skipped=", ".join(SKIPPED_DIRECTORIES),
    )


def name_nowhere(name: str, path: str) -> str:
    languages = ", ".join(supported_languages())
    return NAME_NOWHERE.format(name=name, path=scope(path), languages=languages)


def definition_block(path: str, symbol: Symbol, source: bytes, limit: int) -> str:
    """A definition's location and its first ``limit`` source lines, numbered."""
    lines = source.decode("utf-8", errors="replace").split("\n")
    end = min(symbol.end_line, symbol.start_line + limit - 1, len(lines))
    width = len(str(end))
    head = f"{path}:{symbol.start_line}-{symbol.end_line} {symbol.kind} {symbol.qualified_name}"
    body = [
        f"{number:>{width}} | {lines[number - 1].rstrip()}"
        for number in range(symbol.start_line, end + 1)
    ]
    if end < symbol.end_line:
        more = MORE_LINES.format(
            count=symbol.end_line - end, path=path, start=symbol.start_line, end=symbol.end_line
        )
        body.append(f"{'':>{width}} | {more}")
    return head + "\n" + "\n".join(body)


def reference_line(ref: Reference) -> str:
    """``  12:9  text  [in Scope]``."""
    if ref.is_definition:
        where = f"definition of {ref.scope}"
    else:
        where = f"in {ref.scope}" if ref.scope else "at top level"
    return f"  {ref.line}:{ref.column}  {ref.text}  [{where}]"


def symbol_line(symbol: Symbol, members: list[str]) -> str:
    """``     17  class Circle (members: area, scaled)``."""
    text = f"  {symbol.start_line:>5}  {symbol.kind} {symbol.qualified_name}"
    if members:
        shown = ", ".join(members[:MEMBERS_SHOWN])
        more = len(members) - MEMBERS_SHOWN
        text += f" (members: {shown}{f', +{more} more' if more > 0 else ''})"
    return text


def per_directory(files: Iterable[str], root: str) -> Counter[str]:
    """How many of ``files`` lie in each first-level subdirectory of ``root``."""
    counts: Counter[str] = Counter()
    prefix = "" if root == "." else root.rstrip("/") + "/"
    for file in files:
        rest = file.removeprefix(prefix)
        head, sep, _ = rest.partition("/")
        counts[prefix + head + "/" if sep else f"files directly in {scope(root)}"] += 1
    return counts


def breakdown(counts: Counter[str]) -> str:
    """``a (3), b (1), and 4 more``: the largest entries first."""
    shown = [f"{name} ({count})" for name, count in counts.most_common(BREAKDOWN_ITEMS)]
    if len(counts) > BREAKDOWN_ITEMS:
        shown.append(f"and {len(counts) - BREAKDOWN_ITEMS} more")
    return ", ".join(shown)


def answer(text: str, hint: str = CLIP_HINT_SEARCH) -> Observation:
    """A result, clipped at a line boundary to :data:`CLIP_CHARS` with a note saying so."""
    if len(text) <= CLIP_CHARS:
        return Observation(output=text, exit_code=0)
    cut = text.rfind("\n", 0, CLIP_CHARS) + 1 or CLIP_CHARS
    note = CLIPPED.format(omitted=len(text) - cut, hint=hint)
    return Observation(output=text[:cut] + note + "\n", exit_code=0, truncated=True)


def refuse(text: str) -> Observation:
    """A call that could not be answered as asked (exit code 1, so a template can say so)."""
    return Observation(output=text, exit_code=1)
