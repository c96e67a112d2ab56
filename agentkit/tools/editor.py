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
"""

from __future__ import annotations

import posixpath
import shlex
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field

from agentkit.runtime.base import Runtime
from agentkit.tools import register_tool
from agentkit.tools.base import Tool, ToolContext
from agentkit.tools.editor_text import (
    LISTING_BYTES,
    VIEW_RANGE_DIRECTORY,
    NotText,
    NotTextError,
    Refusal,
    Shown,
    TextFile,
    adapt_newlines,
    count_lines,
    find_all,
    line_numbers,
    lines_phrase,
    listing,
    match_variants,
    not_found,
    read_text,
    snippet,
    span,
    unencodable,
    view_file,
)
from agentkit.types import Observation

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Files larger than this are refused: no model can use that much text, and edits keep copies."""
HISTORY_LIMIT = 10
"""Edits of one file that ``undo_edit`` can take back."""
_REMEMBERED_FILES = 4
_MAX_LISTED_LINES = 20

# -- what the model is told -----------------------------------------------------------------------

RELATIVE_PATH = (
    "The path `{path}` is not absolute. Give the full path, for example `{suggestion}` (the "
    "repository is at {workdir})."
)
MISSING_PARAMETER = "The `{command}` command needs the `{parameter}` parameter."
NOT_FOUND = "{path} does not exist. View its directory to see what is there: {parent}"
ALREADY_EXISTS = (
    "{path} already exists, and `create` never overwrites a file. Change it with `str_replace` "
    "or `insert` (view it first), or create a file at another path."
)
IS_DIRECTORY = (
    "{path} is a directory; `{command}` works on files, and directories can only be viewed."
)
NOT_REGULAR = (
    "{path} is not a regular file (it is a device, pipe, socket or broken link), so the editor "
    "does not open it."
)
TOO_LARGE = (
    "{path} is {size} MB, over the editor's limit of {limit} MB. Search it with `grep -n PATTERN "
    "{path}` and read parts of it with `sed -n 'START,ENDp' {path}`."
)
BINARY = (
    "{path} is a binary file (it contains NUL bytes), so the editor cannot show or edit it. Look "
    "at it with a shell command, e.g. `file {path}` or `xxd {path} | head`."
)
WIDE_UNICODE = (
    "{path} is encoded in UTF-16 or UTF-32, which the editor does not write back; it handles "
    "UTF-8 and single-byte encodings. Use a shell command to inspect or convert it."
)
CONTROL_BYTES = (
    "{path} is neither UTF-8 nor text in a single-byte encoding (it is full of control bytes), so "
    "the editor cannot show or edit it safely. Look at it with `file {path}` or `xxd {path} | "
    "head`."
)
READ_FAILED = "{path} could not be read: {reason}."
WRITE_FAILED = "Nothing was written: {path} could not be written: {reason}."

CREATED = "Created {path} ({lines})."

OLD_STR_EMPTY = (
    "old_str is empty. Give the exact text to replace, with enough surrounding lines to match "
    "one place only."
)
SAME_STRINGS = (
    "No replacement was made: new_str is identical to old_str, so the edit would change nothing. "
    "Put the new text in new_str."
)
OLD_STR_UNENCODABLE = (
    "No replacement was made: old_str contains {chars}, which cannot occur in {path} because the "
    "file is encoded as {encoding}. View the file and copy the text as it is shown."
)
OLD_STR_MANY = (
    "No replacement was made: old_str occurs {count} times in {path}, starting at lines {lines}. "
    "Add surrounding lines to old_str so that it matches exactly one place."
)
NEW_STR_UNENCODABLE = (
    "Nothing was written: the new text contains {chars}, which cannot be written in {path} "
    "because the file is encoded as {encoding}. Use characters that exist in that encoding."
)
REPLACED = "Replaced the text at line {line} of {path}."
DELETED = "Deleted the text at line {line} of {path}."
INSERT_EMPTY = "new_str is empty, so there is nothing to insert."
INSERT_LINE_RANGE = (
    "insert_line {line} is out of range: {path} has {total}, so insert_line must be between 0 "
    "(before the first line) and {last} (after the last line)."
)
INSERTED = "Inserted {count} after line {line} of {path}."
SNIPPET = "{lines} of the file now, numbered as by `cat -n`:\n{snippet}"
EMPTIED = "The file is now empty."
REVIEW = (
    "Check that this is what you intended (indentation, nothing duplicated or lost); if not, edit "
    "again or use undo_edit."
)
CRLF_KEPT = "The file has CRLF line endings; the new text was written with CRLF too."
ENCODING_KEPT = "The file is encoded as {encoding}; it was written back in that encoding."

NOTHING_TO_UNDO = (
    "There is nothing to undo for {path}: undo_edit takes back edits made with this tool "
    "(create, str_replace, insert) in this session, the last {limit} of each file."
)
UNDONE = "Undid the last edit of {path}: it is back to how it was before that edit. {left}"
UNDO_LEFT = "{count} earlier {edits} of this file can still be undone."
UNDONE_CREATE = "Undid the creation of {path}: the file was removed."
UNDO_CHANGED = (
    "Note: the file had changed since that edit (by a shell command, for example); those later "
    "changes are gone too."
)

_PROBE = (
    "if [ -d {p} ]; then echo directory; elif [ -f {p} ]; then echo file; "
    "elif [ -e {p} ] || [ -L {p} ]; then echo other; else echo missing; fi"
)
"""Shell builtins only: no process is started, so a probe costs one round trip of the shell. No
variable is set either: the commands run in the model's own shell session."""
_LIST = r"""printf 'hidden %s\n' "$(find {p} -mindepth 1 -maxdepth 2 -name '.*' -prune -print 2>/dev/null | wc -l)"
printf 'entries %s\n' "$(find {p} -mindepth 1 -maxdepth 2 -name '.*' -prune -o -print 2>/dev/null | wc -l)"
find {p} -mindepth 1 -maxdepth 2 -name '.*' -prune -o -type d -exec printf '%s/\n' {{}} + -o -print 2>/dev/null | LC_ALL=C sort | head -c {limit}"""
"""Three answers: how many hidden entries were left out, how many entries there are, and the
sorted entries themselves, cut at ``limit`` bytes so the runtime never shortens the answer."""

Command = Literal["view", "create", "str_replace", "insert", "undo_edit"]
Kind = Literal["file", "directory", "other", "missing"]


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
class _Edit:
    before: bytes | None
    """The file before the edit; ``None`` when the edit created it."""
    after: bytes


@dataclass(frozen=True)
class _Result:
    output: str
    truncated: bool = False

    @classmethod
    def of(cls, shown: Shown) -> _Result:
        return cls(shown.text, shown.clipped)


@dataclass
class _State:
    """What the tool remembers for one runtime: undo history, and the last seen content of the
    files it used most recently. A file read again is compared with its remembered bytes; when
    they are equal, the remembered :class:`TextFile` (encoding found, line index built) is used
    again, so viewing one range after another does not count the file's lines each time."""

    histories: dict[str, deque[_Edit]] = field(default_factory=dict)
    files: dict[str, TextFile] = field(default_factory=dict)

    def history(self, path: str) -> deque[_Edit]:
        return self.histories.setdefault(path, deque(maxlen=HISTORY_LIMIT))

    def known(self, path: str, data: bytes) -> TextFile | None:
        file = self.files.get(path)
        return file if file is not None and file.data == data else None

    def remember(self, path: str, file: TextFile) -> None:
        self.files.pop(path, None)
        self.files[path] = file
        while len(self.files) > _REMEMBERED_FILES:
            del self.files[next(iter(self.files))]


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
        self._states: weakref.WeakKeyDictionary[Runtime, _State] = weakref.WeakKeyDictionary()

    async def execute(self, args: BaseModel, ctx: ToolContext) -> Observation:
        """Carry out one command; a refusal is an observation with ``exit_code`` 1."""
        if not isinstance(args, EditorArguments):
            args = EditorArguments.model_validate(args.model_dump())
        try:
            path = _absolute(args.path, ctx.runtime.workdir)
            result = await _COMMANDS[args.command](self, args, path, ctx)
        except Refusal as refusal:
            return Observation(output=refusal.message, exit_code=1)
        return Observation(output=result.output, exit_code=0, truncated=result.truncated)

    def _state(self, runtime: Runtime) -> _State:
        return self._states.setdefault(runtime, _State())

    # -- commands ---------------------------------------------------------------------------------

    async def _view(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        kind = await _probe(ctx, path)
        if kind == "directory":
            if args.view_range is not None:
                raise Refusal(VIEW_RANGE_DIRECTORY.format(path=path))
            command = _LIST.format(p=shlex.quote(path), limit=LISTING_BYTES)
            result = await ctx.runtime.run(command, ctx.command_timeout)
            return _Result.of(listing(path, result.output, result.truncated))
        file = await _load(ctx, self._state(ctx.runtime), path, kind, "view")
        return _Result.of(view_file(file, path, args.view_range))

    async def _create(self, args: EditorArguments, path: str, ctx: ToolContext) -> _Result:
        if args.file_text is None:
            raise Refusal(MISSING_PARAMETER.format(command="create", parameter="file_text"))
        kind = await _probe(ctx, path)
        if kind == "directory":
            raise Refusal(IS_DIRECTORY.format(path=path, command="create"))
        if kind != "missing":
            raise Refusal(ALREADY_EXISTS.format(path=path))
        data = _encode(args.file_text, "utf-8", path)
        await _write(ctx, path, data)
        state = self._state(ctx.runtime)
        state.history(path).append(_Edit(None, data))
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
        file = await _load(ctx, state, path, await _probe(ctx, path), "str_replace")
        data = file.data
        offsets: list[int] = []
        pattern, matched = b"", None
        for variant, newline in match_variants(old, file):
            try:
                pattern = variant.encode(file.encoding)
            except UnicodeEncodeError:
                raise Refusal(
                    OLD_STR_UNENCODABLE.format(
                        chars=_chars(unencodable(variant, file.encoding)),
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
            raise Refusal(OLD_STR_MANY.format(count=len(offsets), path=path, lines=_listing(lines)))
        replacement = adapt_newlines(new, file, matched)
        encoded = _encode(replacement, file.encoding, path)
        start = offsets[0]
        view = memoryview(data)
        result = b"".join((view[:start], encoded, view[start + len(pattern) :]))
        await _write(ctx, path, result)
        state.history(path).append(_Edit(data, result))
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
        file = await _load(ctx, state, path, await _probe(ctx, path), "insert")
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
        encoded = _encode(text, file.encoding, path)
        view = memoryview(data)
        result = b"".join((view[:at], encoded, view[at:]))
        await _write(ctx, path, result)
        state.history(path).append(_Edit(data, result))
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
        kind = await _probe(ctx, path)
        if kind in ("directory", "other"):
            raise Refusal(
                (IS_DIRECTORY if kind == "directory" else NOT_REGULAR).format(
                    path=path, command="undo_edit"
                )
            )
        current = await _read(ctx, path) if kind == "file" else None
        edit = history.pop()
        if edit.before is None:
            await ctx.runtime.run(f"rm -f -- {shlex.quote(path)}", timeout=ctx.command_timeout)
            message = UNDONE_CREATE.format(path=path)
        else:
            try:
                await _write(ctx, path, edit.before)
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


# -- paths and I/O -------------------------------------------------------------------------------


def _absolute(path: str, workdir: str) -> str:
    if not posixpath.isabs(path):
        suggestion = posixpath.normpath(posixpath.join(workdir, path))
        raise Refusal(RELATIVE_PATH.format(path=path, suggestion=suggestion, workdir=workdir))
    return posixpath.normpath(path)


async def _probe(ctx: ToolContext, path: str) -> Kind:
    result = await ctx.runtime.run(_PROBE.format(p=shlex.quote(path)), ctx.command_timeout)
    # Whole lines only: a session where the model turned on `set -x` adds trace lines.
    for line in result.output.splitlines():
        if line in get_args(Kind):
            return cast(Kind, line)
    answer = result.output.strip()[:200]
    raise Refusal(READ_FAILED.format(path=path, reason=f"the shell answered {answer!r}"))


async def _read(ctx: ToolContext, path: str) -> bytes:
    try:
        return await ctx.runtime.read_file(path)
    except OSError as exc:
        raise Refusal(READ_FAILED.format(path=path, reason=_reason(exc))) from None


async def _write(ctx: ToolContext, path: str, data: bytes) -> None:
    try:
        await ctx.runtime.write_file(path, data)
    except OSError as exc:
        raise Refusal(WRITE_FAILED.format(path=path, reason=_reason(exc))) from None


async def _load(ctx: ToolContext, state: _State, path: str, kind: Kind, command: str) -> TextFile:
    """The file at ``path`` as text, or the refusal that says why it cannot be."""
    if kind == "missing":
        raise Refusal(NOT_FOUND.format(path=path, parent=posixpath.dirname(path) or "/"))
    if kind == "directory":
        raise Refusal(IS_DIRECTORY.format(path=path, command=command))
    if kind == "other":
        raise Refusal(NOT_REGULAR.format(path=path))
    data = await _read(ctx, path)
    if len(data) > MAX_FILE_BYTES:
        raise Refusal(
            TOO_LARGE.format(
                path=path, size=f"{len(data) / 2**20:.1f}", limit=MAX_FILE_BYTES // 2**20
            )
        )
    file = state.known(path, data)
    if file is not None:
        return file
    try:
        file = read_text(data)
    except NotTextError as exc:
        template = {
            NotText.BINARY: BINARY,
            NotText.WIDE_UNICODE: WIDE_UNICODE,
            NotText.CONTROL_BYTES: CONTROL_BYTES,
        }[exc.kind]
        raise Refusal(template.format(path=path)) from None
    state.remember(path, file)
    return file


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__


def _encode(text: str, encoding: str, path: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        chars = _chars(unencodable(text, encoding))
        raise Refusal(
            NEW_STR_UNENCODABLE.format(chars=chars, path=path, encoding=encoding)
        ) from None


# -- wording -------------------------------------------------------------------------------------


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


def _listing(numbers: list[int]) -> str:
    shown = [str(n) for n in numbers[:_MAX_LISTED_LINES]]
    if len(numbers) > _MAX_LISTED_LINES:
        return ", ".join(shown) + f" and {len(numbers) - _MAX_LISTED_LINES} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _chars(chars: list[str]) -> str:
    return ", ".join(repr(char) for char in chars[:5])
