"""``edit``: replace a range of lines of the open file, behind a lint gate.

The new lines are spliced into the file's original bytes: everything outside the replaced lines
stays byte for byte as it was (tabs, CRLF endings, a missing final newline, a byte-order mark, a
Latin-1 encoding), and the new lines get the file's own line ending and encoding.

Before anything is written, the file and the would-be result are linted
(:mod:`agentkit.tools.aci_lint`). When the edit would add errors (a syntax error in any language
the tree-sitter grammars cover; for Python also a name that is not defined), nothing is written
and the model sees the errors, the edited lines as they would have been, and as they are. Errors
the file already had do not block an edit, and an edit that fixes one passes.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.tools import aci_messages as msg
from agentkit.tools import register_tool
from agentkit.tools.aci_files import Loaded, numbered, open_file, show, state_of
from agentkit.tools.aci_lint import LintError, introduced, lint
from agentkit.tools.aci_viewer import AciTool
from agentkit.tools.ast_languages import detect_language
from agentkit.tools.base import ToolContext
from agentkit.tools.editor_text import (
    Refusal,
    TextFile,
    lines_phrase,
    plain_lines,
    span,
    unencodable,
)


class EditArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_line: int = Field(description="The first line of the open file to replace.")
    end_line: int = Field(
        description=(
            "The last line to replace (inclusive). start_line - 1 replaces nothing: the "
            "replacement is inserted before start_line."
        )
    )
    replacement: str = Field(
        description=(
            "The new text for those lines, with its full indentation; empty to delete them."
        )
    )


@register_tool
class EditTool(AciTool):
    name: ClassVar[str] = "edit"
    description: ClassVar[str] = (
        "Replace lines start_line to end_line (inclusive) of the file open in the viewer with "
        "the replacement text; the window then shows the result. An edit that would add syntax "
        "errors (or, in Python, undefined names) is not applied; the errors are shown instead. "
        "Indent the replacement exactly as the file needs it."
    )
    Arguments: ClassVar[type[BaseModel]] = EditArguments
    lint_gate: ClassVar[bool] = True
    """A subclass may set it to ``False`` to apply every edit unchecked."""

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        arguments = self.arguments(args, EditArguments)
        loaded = await open_file(ctx, self.name)
        start, end = arguments.start_line, arguments.end_line
        _check_range(loaded, start, end)
        new_lines = _split(arguments.replacement)
        if end < start and not new_lines:
            raise Refusal(msg.EDIT_NOTHING)
        file = loaded.file
        result = _splice(loaded, start, end, new_lines)
        if result == file.data:
            raise Refusal(msg.EDIT_NO_CHANGE.format(span=span(start, end).lower()))
        edited = TextFile(result, file.encoding, file.begin)
        after = Loaded(loaded.path, edited, plain_lines(edited))
        if self.lint_gate:
            errors = _new_errors(loaded, after, start, end, len(new_lines))
            if errors:
                raise Refusal(_rejection(loaded, after, start, end, len(new_lines), errors))
        try:
            await ctx.runtime.write_file(loaded.path, result)
        except OSError as exc:
            reason = exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__
            raise Refusal(msg.WRITE_FAILED.format(path=loaded.path, reason=reason)) from None
        state = state_of(ctx.runtime)
        state.cache.clear()
        state.cache[loaded.path] = after
        first = state.first
        if not first <= start < first + msg.WINDOW:
            first = start - msg.WINDOW // 2
        return "\n".join([*_report(loaded, start, end, len(new_lines)), show(ctx, after, first)])


def _check_range(loaded: Loaded, start: int, end: int) -> None:
    total, path = loaded.total, loaded.path
    if not 1 <= start <= total + 1:
        raise Refusal(
            msg.EDIT_START_RANGE.format(start=start, path=path, total=total, after=total + 1)
        )
    if end > total:
        raise Refusal(msg.EDIT_END_RANGE.format(end=end, path=path, total=total))
    if end < start - 1:
        raise Refusal(msg.EDIT_ORDER.format(start=start, end=end, before=start - 1))


def _split(replacement: str) -> list[str]:
    """The replacement's lines: one final newline is optional, and CRLF counts as one break."""
    text = replacement.replace("\r\n", "\n").removesuffix("\n")
    return [] if replacement == "" else text.split("\n")


def _splice(loaded: Loaded, start: int, end: int, new_lines: list[str]) -> bytes:
    """The file with lines ``start``-``end`` replaced by ``new_lines``, as bytes."""
    file = loaded.file
    data, newline = file.data, file.newline
    low = file.line_start(start) if start <= loaded.total else len(data)
    if end < start:
        high = low
    else:
        last_newline = file.nth_newline(end)
        high = len(data) if last_newline == -1 else last_newline + 1
    open_ending = len(data) > file.begin and not data.endswith(b"\n")
    if high == len(data) and open_ending and end >= start:
        # The last line, which has no newline, is replaced: so is the last new line.
        text = newline.join(new_lines)
        if not new_lines and low > file.begin:
            low -= 1  # the line before becomes the last: it loses its newline
            if low > file.begin and data[low - 1 : low] == b"\r":
                low -= 1
    elif low == len(data) and open_ending:
        # Appending after a last line without a newline: end it, and keep none at the end.
        text = "".join(newline + line for line in new_lines)
    else:
        text = "".join(line + newline for line in new_lines)
    try:
        encoded = text.encode(file.encoding)
    except UnicodeEncodeError:
        chars = ", ".join(repr(char) for char in unencodable(text, file.encoding)[:5])
        raise Refusal(
            msg.EDIT_UNENCODABLE.format(chars=chars, path=loaded.path, encoding=file.encoding)
        ) from None
    return b"".join((data[:low], encoded, data[high:]))


def _new_errors(before: Loaded, after: Loaded, start: int, end: int, added: int) -> list[LintError]:
    language = detect_language(before.path, before.file.data)
    if language is None:
        return []
    old = lint(before.file.decode(before.file.begin), language)
    new = lint(after.file.decode(after.file.begin), language)
    return introduced(old, new, start, end, added)


def _rejection(
    before: Loaded, after: Loaded, start: int, end: int, added: int, errors: list[LintError]
) -> str:
    context = msg.EXCERPT_CONTEXT
    parts = [
        msg.LINT_REJECTED.format(
            count=len(errors), s="" if len(errors) == 1 else "s", path=before.path
        )
    ]
    parts.extend(msg.LINT_ERROR.format(line=error.line, message=error.message) for error in errors)
    first = max(1, start - context)
    last = min(after.total, start + added - 1 + context)
    parts.append(msg.LINT_WOULD_BE.format(first=first, last=last))
    parts.extend(numbered(after.lines, first, last))
    last = min(before.total, max(end, start - 1) + context)
    parts.append(msg.LINT_ORIGINAL.format(first=first, last=last))
    parts.extend(numbered(before.lines, first, last))
    parts.append(msg.LINT_RETRY.format(start=start, end=end))
    return "\n".join(parts)


def _report(loaded: Loaded, start: int, end: int, added: int) -> list[str]:
    path = loaded.path
    if end < start:
        done = msg.INSERTED.format(new=lines_phrase(added), start=start, path=path)
    elif added == 0:
        done = msg.DELETED.format(span=span(start, end).lower(), path=path)
    else:
        done = msg.EDITED.format(span=span(start, end).lower(), path=path, new=lines_phrase(added))
    shift = added - (end - start + 1)
    review = msg.EDIT_REVIEW.format(shift=f"{shift:+d}") if shift else msg.EDIT_REVIEW_SAME
    parts = [done, review]
    if loaded.file.newline == "\r\n" and added:
        parts.append(msg.CRLF_KEPT)
    return parts
