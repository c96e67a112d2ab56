"""The ``str_replace_editor`` tool: view, create and edit files by exact text replacement.

This is the editor shape most SWE scaffolds give their models (``view``, ``create``,
``str_replace``, ``insert``, ``undo_edit``). What it adds over the usual implementations:

- Files go through the runtime's own file API (``read_file`` / ``write_file``); the shell is used
  only for a probe made of builtins, directory listings (``find``) and removing a file when its
  creation is undone, so it works in any sandbox image, with or without Python in it.
- An edit splices the new text into the original bytes (see :mod:`agentkit.tools.editor_text`),
  so tabs, CRLF endings, a missing final newline and a Latin-1 encoding all survive it.
- Every refusal says what to do next: the closest lines when ``old_str`` is not found, the line
  of every occurrence when it is found several times, the range to view when output is clipped.

Undo history lives per runtime (a tool instance is shared by every run of a harness) and per
file, bounded to :data:`HISTORY_LIMIT` edits. Observations carry ``exit_code`` 0 when the command
did its work and 1 when it was refused; nothing is written when a command is refused.

This module holds the tool and its commands; file access is in :mod:`agentkit.tools.editor_io`,
the per-runtime memory in :mod:`agentkit.tools.editor_state`, and every message in
:mod:`agentkit.tools.editor_messages` (re-exported here).
"""

from __future__ import annotations

import shlex
import weakref
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.runtime.base import Runtime
from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.editor_file import (
    Refusal,
    TextFile,
    adapt_newlines,
    count_lines,
    find_all,
    line_numbers,
    match_variants,
    unencodable,
)
from agentkit.tools.editor_io import (
    MAX_FILE_BYTES,
    Kind,
    absolute,
    encode,
    list_directory,
    load,
    probe,
    read_bytes,
    write_bytes,
)
from agentkit.tools.editor_messages import (
    ALREADY_EXISTS,
    BINARY,
    CONTROL_BYTES,
    CREATED,
    CRLF_KEPT,
    DELETED,
    EMPTIED,
    ENCODING_KEPT,
    INSERT_EMPTY,
    INSERT_LINE_RANGE,
    INSERTED,
    IS_DIRECTORY,
    MISSING_PARAMETER,
    NEW_STR_UNENCODABLE,
    NOT_FOUND,
    NOT_REGULAR,
    NOTHING_TO_UNDO,
    OLD_STR_EMPTY,
    OLD_STR_MANY,
    OLD_STR_UNENCODABLE,
    READ_FAILED,
    RELATIVE_PATH,
    REPLACED,
    REVIEW,
    SAME_STRINGS,
    SNIPPET,
    TOO_LARGE,
    UNDO_CHANGED,
    UNDO_LEFT,
    UNDONE,
    UNDONE_CREATE,
    VIEW_RANGE_DIRECTORY,
    WIDE_UNICODE,
    WRITE_FAILED,
    char_list,
    line_list,
    lines_phrase,
    span,
)
from agentkit.tools.editor_similar import not_found
from agentkit.tools.editor_state import HISTORY_LIMIT, Edit, EditorState
from agentkit.tools.editor_views import Shown, snippet, view_file
from agentkit.types import Observation

__all__ = [
    "ALREADY_EXISTS",
    "BINARY",
    "CONTROL_BYTES",
    "CREATED",
    "CRLF_KEPT",
    "DELETED",
    "EMPTIED",
    "ENCODING_KEPT",
    "HISTORY_LIMIT",
    "INSERTED",
    "INSERT_EMPTY",
    "INSERT_LINE_RANGE",
    "IS_DIRECTORY",
    "MAX_FILE_BYTES",
    "MISSING_PARAMETER",
    "NEW_STR_UNENCODABLE",
    "NOTHING_TO_UNDO",
    "NOT_FOUND",
    "NOT_REGULAR",
    "OLD_STR_EMPTY",
    "OLD_STR_MANY",
    "OLD_STR_UNENCODABLE",
    "READ_FAILED",
    "RELATIVE_PATH",
    "REPLACED",
    "REVIEW",
    "SAME_STRINGS",
    "SNIPPET",
    "TOO_LARGE",
    "UNDONE",
    "UNDONE_CREATE",
    "UNDO_CHANGED",
    "UNDO_LEFT",
    "WIDE_UNICODE",
    "WRITE_FAILED",
    "Command",
    "EditorArguments",
    "Kind",
    "StrReplaceEditor",
]

Command = Literal["view", "create", "str_replace", "insert", "undo_edit"]


class EditorArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: Command = Field(
        description="`view`, `create`, `str_replace`, `insert` or `undo_edit`."
    )
    path: str = Field(description="Absolute path of the file or directory.")
    file_text: str | None = Field(
        default=None, description="`create` only: the whole content of the new file."
    )
    old_str: str | None = Field(
        default=None,
        description=(
            "`str_replace` only: the exact text to replace, whitespace included. It must occur "
            "exactly once in the file."
        ),
    )
    new_str: str | None = Field(
        default=None,
        description=(
            "`str_replace`: the text that replaces old_str (leave it out to delete old_str). "
            "`insert`: the text to insert."
        ),
    )
    insert_line: int | None = Field(
        default=None,
        description="`insert` only: insert after this line; 0 inserts before the first line.",
    )
    view_range: list[int] | None = Field(
        default=None,
        description=(
            "`view` of a file only: [start, end], 1-based and inclusive; end -1 means to the end "
            "of the file. Leave it out to view the whole file."
        ),
    )


@dataclass(frozen=True)
class _Result:
    output: str
    truncated: bool = False

    @classmethod
    def of(cls, shown: Shown) -> _Result:
        return cls(shown.text, shown.clipped)


@register_tool
class StrReplaceEditor(Tool):
    name: ClassVar[str] = "str_replace_editor"
    description: ClassVar[str] = (
        "View, create and edit files. `view` shows a file with line numbers (optionally a "
        "view_range) or lists a directory two levels deep. `create` writes a new file. "
        "`str_replace` replaces old_str, which must occur exactly once, with new_str. `insert` "
        "adds new_str after line insert_line. `undo_edit` takes back the last edit of a file. "
        "Paths are absolute. Edits keep the file's indentation, line endings and encoding."
    )
    Arguments: ClassVar[type[BaseModel]] = EditorArguments

    def __init__(self) -> None:
        # Keyed on the runtime, so concurrent runs sharing this instance never see each other's
        # history, and a finished run's history goes with its runtime.
        self._states: weakref.WeakKeyDictionary[Runtime, EditorState] = weakref.WeakKeyDictionary()

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        """Carry out one command; a refusal is an observation with ``exit_code`` 1."""
        if not isinstance(args, EditorArguments):
            args = EditorArguments.model_validate(args.model_dump())
        try:
            path = absolute(args.path, ctx.runtime.workdir)
            result = await _COMMANDS[args.command](self, args, path, ctx)
        except Refusal as refusal:
            return Observation(output=refusal.message, exit_code=1)
        return Observation(output=result.output, exit_code=0, truncated=result.truncated)

    def _state(self, runtime: Runtime) -> EditorState:
        return self._states.setdefault(runtime, EditorState())

    # -- commands ---------------------------------------------------------------------------------

    async def _view(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        kind = await probe(ctx, path)
        if kind == "directory":
            if args.view_range is not None:
                raise Refusal(VIEW_RANGE_DIRECTORY.format(path=path))
            return _Result.of(await list_directory(ctx, path))
        file = await load(ctx, self._state(ctx.runtime), path, kind, "view")
        return _Result.of(view_file(file, path, args.view_range))

    async def _create(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        if args.file_text is None:
            raise Refusal(MISSING_PARAMETER.format(command="create", parameter="file_text"))
        kind = await probe(ctx, path)
        if kind == "directory":
            raise Refusal(IS_DIRECTORY.format(path=path, command="create"))
        if kind != "missing":
            raise Refusal(ALREADY_EXISTS.format(path=path))
        data = encode(args.file_text, "utf-8", path)
        await write_bytes(ctx, path, data)
        state = self._state(ctx.runtime)
        state.history(path).append(Edit(None, data))
        state.files.pop(path, None)
        return _Result(CREATED.format(path=path, lines=lines_phrase(count_lines(data))))

    async def _str_replace(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        old, new = args.old_str, args.new_str if args.new_str is not None else ""
        if old is None:
            raise Refusal(MISSING_PARAMETER.format(command="str_replace", parameter="old_str"))
        if old == "":
            raise Refusal(OLD_STR_EMPTY)
        if old == new:
            raise Refusal(SAME_STRINGS)
        state = self._state(ctx.runtime)
        file = await load(ctx, state, path, await probe(ctx, path), "str_replace")
        data = file.data
        offsets: list[int] = []
        pattern, matched = b"", None
        for variant, newline in match_variants(old, file):
            try:
                pattern = variant.encode(file.encoding)
            except UnicodeEncodeError:
                raise Refusal(
                    OLD_STR_UNENCODABLE.format(
                        chars=char_list(unencodable(variant, file.encoding)),
                        path=path,
                        encoding=file.encoding,
                    )
                ) from None
            offsets = find_all(data, pattern)
            if offsets:
                matched = newline
                break
        if not offsets:
            raise Refusal(not_found(file, path, old))
        if len(offsets) > 1:
            lines = line_numbers(data, offsets, file.begin)
            raise Refusal(
                OLD_STR_MANY.format(count=len(offsets), path=path, lines=line_list(lines))
            )
        replacement = adapt_newlines(new, file, matched)
        encoded = encode(replacement, file.encoding, path)
        start = offsets[0]
        view = memoryview(data)
        result = b"".join((view[:start], encoded, view[start + len(pattern) :]))
        await write_bytes(ctx, path, result)
        state.history(path).append(Edit(data, result))
        edited = TextFile(result, file.encoding, file.begin)
        state.remember(path, edited)
        shown = snippet(edited, start, start + len(encoded), path, file.line_of(start))
        text = (REPLACED if new else DELETED).format(line=shown.line, path=path)
        return _Result(_report(text, shown, file, replacement, new), shown.clipped)

    async def _insert(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        if args.insert_line is None:
            raise Refusal(MISSING_PARAMETER.format(command="insert", parameter="insert_line"))
        if args.new_str is None:
            raise Refusal(MISSING_PARAMETER.format(command="insert", parameter="new_str"))
        if args.new_str == "":
            raise Refusal(INSERT_EMPTY)
        state = self._state(ctx.runtime)
        file = await load(ctx, state, path, await probe(ctx, path), "insert")
        data, after, total = file.data, args.insert_line, file.line_count
        if not 0 <= after <= total:
            raise Refusal(
                INSERT_LINE_RANGE.format(
                    line=after, path=path, total=lines_phrase(total), last=total
                )
            )
        text = adapt_newlines(args.new_str, file)
        newline = file.newline
        if after == 0:
            at = file.begin
        else:
            end_of_line = file.nth_newline(after)
            at = len(data) if end_of_line == -1 else end_of_line + 1
        lead = 0
        if at == len(data) and len(data) > file.begin and not data.endswith(b"\n"):
            # After a last line that has no newline: start a new line, and keep the file
            # without a final newline, as it was.
            text = newline + text.removesuffix(newline)
            lead = len(newline)
        elif not text.endswith("\n"):
            text += newline
        encoded = encode(text, file.encoding, path)
        view = memoryview(data)
        result = b"".join((view[:at], encoded, view[at:]))
        await write_bytes(ctx, path, result)
        state.history(path).append(Edit(data, result))
        edited = TextFile(result, file.encoding, file.begin)
        state.remember(path, edited)
        shown = snippet(edited, at + lead, at + len(encoded), path, after + 1)
        count = lines_phrase(args.new_str.count("\n") + (0 if args.new_str.endswith("\n") else 1))
        message = INSERTED.format(count=count, line=after, path=path)
        return _Result(_report(message, shown, file, text, args.new_str), shown.clipped)

    async def _undo_edit(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        state = self._state(ctx.runtime)
        state.files.pop(path, None)
        history = state.history(path)
        if not history:
            raise Refusal(NOTHING_TO_UNDO.format(path=path, limit=HISTORY_LIMIT))
        kind = await probe(ctx, path)
        if kind in ("directory", "other"):
            raise Refusal(
                (IS_DIRECTORY if kind == "directory" else NOT_REGULAR).format(
                    path=path, command="undo_edit"
                )
            )
        current = await read_bytes(ctx, path) if kind == "file" else None
        edit = history.pop()
        if edit.before is None:
            await ctx.runtime.run(f"rm -f -- {shlex.quote(path)}", timeout=ctx.command_timeout)
            message = UNDONE_CREATE.format(path=path)
        else:
            try:
                await write_bytes(ctx, path, edit.before)
            except Refusal:
                history.append(edit)
                raise
            left = (
                UNDO_LEFT.format(count=len(history), edits="edit" if len(history) == 1 else "edits")
                if history
                else ""
            )
            message = UNDONE.format(path=path, left=left).rstrip()
        if current != edit.after:
            message += "\n" + UNDO_CHANGED
        return _Result(message)


_COMMANDS = {
    "view": StrReplaceEditor._view,
    "create": StrReplaceEditor._create,
    "str_replace": StrReplaceEditor._str_replace,
    "insert": StrReplaceEditor._insert,
    "undo_edit": StrReplaceEditor._undo_edit,
}


def _report(done: str, shown: Shown, file: TextFile, written: str, sent: str) -> str:
    """What an edit did, the lines around it, a nudge to check them, and notes on how the text
    was adapted to the file."""
    if shown.last < shown.first:
        parts = [done, EMPTIED]
    else:
        lines = span(shown.first, shown.last)
        parts = [done, SNIPPET.format(lines=lines, snippet=shown.text), REVIEW]
    if written != sent and "\r\n" in written:
        parts.append(CRLF_KEPT)
    if file.encoding != "utf-8" and not written.isascii():
        parts.append(ENCODING_KEPT.format(encoding=file.encoding))
    return "\n".join(parts)
