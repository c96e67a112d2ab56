"""Code navigation tools that read the syntax tree: ``file_skeleton``, ``find_definition``,
``find_references`` and ``list_symbols``.

They answer the questions a model otherwise answers with ``grep`` and long ``cat``s — what is in
this file, where is this defined, who uses it — with definitions rather than text matches, in every
language of :mod:`agentkit.tools.ast_languages`. Files are found by the sandbox's shell and read
through the runtime (:mod:`agentkit.tools.ast_workspace`), so the tools work in any task image,
one without Python included; parsing happens on the host, in a worker thread so a large search
does not stall other agents sharing the event loop. What they print is in
:mod:`agentkit.tools.ast_messages`.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.runtime.output import looks_binary
from agentkit.tools import ast_messages as msg
from agentkit.tools import register_tool
from agentkit.tools.ast_index import ParsedSource, Reference, Symbol
from agentkit.tools.ast_languages import detect_language
from agentkit.tools.ast_workspace import ListingFailed, display_path, list_sources
from agentkit.tools.base import Tool, ToolContext
from agentkit.types import Observation

MAX_SEARCH_FILES = 1000
"""Files containing a searched name that are parsed at once; more asks for a narrower path."""
MAX_LIST_FILES = 150
"""Source files ``list_symbols`` lists at once; more asks for a subdirectory."""
MAX_DEFINITIONS = 30
MAX_REFERENCES = 200
DEFINITION_LINES = 40
"""Source lines shown per definition when there are at most three; 8 when there are more."""
DEFINITION_LINES_MANY = 8

NAME_REASON = (
    "give a name such as `parse` or `Parser.parse`, without spaces, parentheses or arguments"
)
_NAME = re.compile(r"^[\w$#]+(\.[\w$#]+)*$")


def _symbol_name(value: str) -> str:
    """A bare or dotted name; Rust's and C++'s ``::`` become dots."""
    value = value.strip().replace("::", ".")
    if not _NAME.match(value):
        raise ValueError(NAME_REASON)
    return value


_SCOPE = (
    "A directory or file to search, relative to the repository root; the whole repository when "
    "omitted."
)


class FileSkeletonArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The file to outline, relative to the repository root.")


class FindDefinitionArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(
        description="The name to find: a bare name (`greet`) or one qualified by its container "
        "(`Greeter.greet`)."
    )
    path: str | None = Field(default=None, description=_SCOPE)

    _check_symbol = field_validator("symbol")(_symbol_name)


class FindReferencesArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(
        description="The name whose occurrences to find (`greet`; for `Greeter.greet` the part "
        "after the last dot is searched)."
    )
    path: str | None = Field(default=None, description=_SCOPE)

    _check_symbol = field_validator("symbol")(_symbol_name)


class ListSymbolsArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        default=".",
        description="A directory (searched recursively) or a file, relative to the repository "
        "root.",
    )


@register_tool
class FileSkeletonTool(Tool):
    name: ClassVar[str] = "file_skeleton"
    description: ClassVar[str] = (
        "Outline one source file: its classes, functions and methods with their signatures and "
        "the first line of their docs, bodies elided, with the file's line numbers. Read this "
        "before viewing a large file, then view only the lines you need."
    )
    Arguments: ClassVar[type[BaseModel]] = FileSkeletonArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        path = FileSkeletonArguments.model_validate(args.model_dump()).path
        shown = display_path(path, ctx.runtime.workdir)
        loaded = await _read_source(ctx, path, shown)
        if isinstance(loaded, Observation):
            return loaded
        parsed, outline = await asyncio.to_thread(_outline, loaded)
        facts = {
            "path": shown,
            "lines": parsed.line_count,
            "s": msg.plural(parsed.line_count),
            "language": parsed.language,
        }
        if not outline:
            return msg.answer(msg.NOTHING_DEFINED.format(**facts))
        text = msg.SKELETON_HEADER.format(**facts) + "\n" + outline
        if parsed.has_errors:
            text += msg.SYNTAX_ERRORS.format(path=shown) + "\n"
        return msg.answer(text, hint=msg.CLIP_HINT_SKELETON)


@register_tool
class FindDefinitionTool(Tool):
    name: ClassVar[str] = "find_definition"
    description: ClassVar[str] = (
        "Find where a class, function, method, type or variable is defined, by name, and show "
        "its source with line numbers. Searches the whole repository, or a directory or file."
    )
    Arguments: ClassVar[type[BaseModel]] = FindDefinitionArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        call = FindDefinitionArguments.model_validate(args.model_dump())
        symbol, name = call.symbol, call.symbol.rsplit(".", 1)[-1]
        found = await _search(ctx, call.path, name)
        if isinstance(found, Observation):
            return found
        shown, files = found
        if not files:
            return msg.answer(msg.name_nowhere(name, shown))
        named = await asyncio.to_thread(_definitions_named, files, name)
        hits = [(path, s) for path, s in named if _qualifies(s.qualified_name, symbol)]
        if not hits and named:
            candidates = ", ".join(sorted({s.qualified_name for _, s in named}))
            return msg.answer(
                msg.NO_QUALIFIED_MATCH.format(
                    symbol=symbol, path=msg.scope(shown), name=name, candidates=candidates
                )
            )
        if not hits:
            return msg.answer(
                msg.NO_DEFINITION.format(
                    symbol=symbol,
                    path=msg.scope(shown),
                    count=len(files),
                    s=msg.plural(len(files)),
                )
            )
        if len(hits) > MAX_DEFINITIONS:
            per_file = Counter(path for path, _ in hits)
            return msg.refuse(
                msg.TOO_MANY_DEFINITIONS.format(
                    symbol=symbol,
                    count=len(hits),
                    files=len(per_file),
                    limit=MAX_DEFINITIONS,
                    breakdown=msg.breakdown(per_file),
                )
            )
        limit = DEFINITION_LINES if len(hits) <= 3 else DEFINITION_LINES_MANY
        parts = [
            msg.DEFINITIONS_FOUND.format(count=len(hits), s=msg.plural(len(hits)), symbol=symbol)
        ]
        parts.extend(msg.definition_block(path, s, files[path], limit) for path, s in hits)
        return msg.answer("\n\n".join(parts) + "\n")


@register_tool
class FindReferencesTool(Tool):
    name: ClassVar[str] = "find_references"
    description: ClassVar[str] = (
        "Find every place an identifier occurs in the code (definitions, calls, imports, "
        "attribute uses), with line, column and the enclosing function or class. Comments and "
        "strings are not matched. Searches the whole repository, or a directory or file."
    )
    Arguments: ClassVar[type[BaseModel]] = FindReferencesArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        call = FindReferencesArguments.model_validate(args.model_dump())
        name = call.symbol.rsplit(".", 1)[-1]
        found = await _search(ctx, call.path, name)
        if isinstance(found, Observation):
            return found
        shown, files = found
        if not files:
            return msg.answer(msg.name_nowhere(name, shown))
        hits = await asyncio.to_thread(_references_in, files, name)
        total = sum(len(refs) for refs in hits.values())
        if not total:
            count = len(files)
            return msg.answer(
                msg.ONLY_IN_TEXT.format(
                    name=name, path=msg.scope(shown), count=count, s=msg.plural(count)
                )
            )
        if total > MAX_REFERENCES:
            per_file = Counter({path: len(refs) for path, refs in hits.items()})
            return msg.refuse(
                msg.TOO_MANY_REFERENCES.format(
                    name=name,
                    count=total,
                    files=len(per_file),
                    limit=MAX_REFERENCES,
                    breakdown=msg.breakdown(per_file),
                )
            )
        files_count = len(hits)
        parts = [
            msg.REFERENCES_FOUND.format(
                count=total,
                s=msg.plural(total),
                name=name,
                files=files_count,
                fs=msg.plural(files_count),
            )
        ]
        if name != call.symbol:
            parts.append(msg.QUALIFIED_NOTE.format(name=name))
        for path, refs in hits.items():
            parts.append(path + "\n" + "\n".join(msg.reference_line(ref) for ref in refs))
        return msg.answer("\n\n".join(parts) + "\n")


@register_tool
class ListSymbolsTool(Tool):
    name: ClassVar[str] = "list_symbols"
    description: ClassVar[str] = (
        "List the source files under a directory (recursively; hidden and vendored directories "
        "skipped) and what each defines at its top level: classes with their members, "
        "functions, types, constants, with line numbers."
    )
    Arguments: ClassVar[type[BaseModel]] = ListSymbolsArguments

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        path = ListSymbolsArguments.model_validate(args.model_dump()).path
        found = await _search(ctx, path, None, max_files=MAX_LIST_FILES)
        if isinstance(found, Observation):
            return found
        shown, files = found
        tops = await asyncio.to_thread(_top_levels, files)
        if not tops:
            return msg.answer(msg.no_source_files(shown))
        parts, empty = [], []
        for file, symbols in tops.items():
            if symbols:
                parts.append(file + "\n" + "\n".join(msg.symbol_line(s, m) for s, m in symbols))
            else:
                empty.append(file)
        if empty:
            count = len(empty)
            parts.append(
                msg.NOTHING_AT_TOP_LEVEL.format(
                    count=count, s=msg.plural(count), names=", ".join(empty)
                )
            )
        return msg.answer("\n".join(parts) + "\n")


# -- finding and reading files -------------------------------------------------------------------


async def _read_source(
    ctx: ToolContext, path: str, shown: str
) -> tuple[str, str, bytes] | Observation:
    """``(shown path, language, bytes)`` of one file, or the observation that says why not."""
    try:
        source = await ctx.runtime.read_file(path)
    except FileNotFoundError:
        return msg.refuse(msg.FILE_NOT_FOUND.format(path=shown, workdir=ctx.runtime.workdir))
    except IsADirectoryError:
        return msg.refuse(msg.IS_A_DIRECTORY.format(path=shown))
    except OSError as exc:
        return msg.refuse(msg.READ_FAILED.format(path=shown, reason=exc.strerror or exc))
    language = detect_language(path, source)
    if language is None:
        return msg.refuse(msg.unknown_language(shown))
    if looks_binary(source):
        return msg.refuse(msg.BINARY_FILE.format(path=shown))
    return shown, language, source


async def _search(
    ctx: ToolContext, path: str | None, word: str | None, *, max_files: int | None = None
) -> tuple[str, dict[str, bytes]] | Observation:
    """The shown scope and the source files under ``path`` that contain ``word`` (all of them
    when it is ``None``), read; or the observation that says why they cannot be."""
    limit = MAX_SEARCH_FILES if max_files is None else max_files
    scope = path if path is not None and path.strip() else "."
    shown = display_path(scope, ctx.runtime.workdir)
    try:
        listing = await list_sources(
            ctx.runtime, scope, word=word, max_files=limit, timeout=ctx.command_timeout
        )
    except ListingFailed as exc:
        return msg.refuse(msg.LISTING_FAILED.format(path=shown, reason=exc))
    if listing.kind == "missing":
        return msg.refuse(msg.PATH_NOT_FOUND.format(path=shown, workdir=ctx.runtime.workdir))
    if listing.kind == "file":
        loaded = await _read_source(ctx, scope, shown)
        if isinstance(loaded, Observation):
            return loaded
        return shown, {shown: loaded[2]}
    if listing.fetched:
        return shown, listing.contents
    counts = msg.breakdown(msg.per_directory(listing.files, shown))
    if word is None:
        message = msg.TOO_MANY_FILES.format(
            path=msg.scope(shown), count=len(listing.files), limit=limit, breakdown=counts
        )
    else:
        message = msg.NAME_IN_TOO_MANY_FILES.format(
            name=word,
            count=len(listing.files),
            path=msg.scope(shown),
            limit=limit,
            breakdown=counts,
        )
    return msg.refuse(message)


# -- parsing (in a worker thread) ----------------------------------------------------------------


def _outline(loaded: tuple[str, str, bytes]) -> tuple[ParsedSource, str]:
    _, language, source = loaded
    parsed = ParsedSource(source, language)
    return parsed, parsed.skeleton()


def _parsed(files: dict[str, bytes]) -> list[tuple[str, ParsedSource]]:
    """The files that are source code, parsed, in path order."""
    out = []
    for path in sorted(files):
        data = files[path]
        language = detect_language(path, data)
        if language is not None and not looks_binary(data):
            out.append((path, ParsedSource(data, language)))
    return out


def _qualifies(qualified: str, asked: str) -> bool:
    """``Outer.Circle.area`` answers ``area``, ``Circle.area`` and itself."""
    return qualified == asked or qualified.endswith("." + asked)


def _definitions_named(files: dict[str, bytes], name: str) -> list[tuple[str, Symbol]]:
    return [
        (path, s) for path, parsed in _parsed(files) for s in parsed.definitions() if s.name == name
    ]


def _references_in(files: dict[str, bytes], name: str) -> dict[str, list[Reference]]:
    found = {path: parsed.references(name) for path, parsed in _parsed(files)}
    return {path: refs for path, refs in found.items() if refs}


def _top_levels(files: dict[str, bytes]) -> dict[str, list[tuple[Symbol, list[str]]]]:
    """Per source file, its top-level symbols, each with the names of its members."""
    return {
        path: [
            (item.symbol, [child.symbol.name for child in item.children])
            for item in parsed.definition_nodes()
        ]
        for path, parsed in _parsed(files)
    }
