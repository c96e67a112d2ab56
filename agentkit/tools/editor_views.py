"""What the editor shows of a file or a directory: numbered lines, views, snippets, listings.

Every view is cut at :data:`~agentkit.tools.editor_messages.OUTPUT_LIMIT` characters, and a cut
view ends with a note that says which lines to view next.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentkit.tools.editor_file import Refusal, TextFile, context_span, line_end
from agentkit.tools.editor_messages import (
    CLIPPED,
    CLIPPED_LONG_LINE,
    HIDDEN_LEFT_OUT,
    LISTING,
    LISTING_CLIPPED,
    LISTING_EMPTY,
    OUTPUT_LIMIT,
    SNIPPET_CONTEXT,
    VIEW_EMPTY_FILE,
    VIEW_FILE,
    VIEW_RANGE,
    VIEW_RANGE_CLAMPED,
    VIEW_RANGE_EMPTY_FILE,
    VIEW_RANGE_ORDER,
    VIEW_RANGE_SHAPE,
    VIEW_RANGE_START,
    lines_phrase,
    span,
)

# -- showing lines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """Numbered lines, and where they stopped when the character limit cut them short."""

    text: str
    last_line: int
    """Number of the last line shown (fully or in part); ``first - 1`` when none."""
    clipped: bool = False
    partial_length: int | None = None
    """Length of the last line when only its start is shown."""


def number_line(number: int, line: str) -> str:
    """One line as ``cat -n`` prints it: the number right-aligned in six columns, then a tab."""
    return f"{number:6}\t{line}"


def render_lines(file: TextFile, start: int, end: int, first_line: int, limit: int) -> Rendered:
    """Lines of ``data[start:end]`` numbered from ``first_line``, at most ``limit`` characters.

    Only what can be shown is decoded (at most 4 bytes per character of the limit), so viewing the
    top of a 50,000-line file does not decode all of it.
    """
    cap = min(end, start + 4 * limit + 4)
    text = file.decode(start, cap)
    lines = text.split("\n")
    last_complete = len(lines) - 1 if cap < end else len(lines)
    if cap >= end and lines and lines[-1] == "":
        lines.pop()  # the segment ended with a newline
        last_complete = len(lines)
    if first_line == 1 and file.begin and lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    out: list[str] = []
    used = 0
    for index, raw in enumerate(lines):
        line = raw[:-1] if raw.endswith("\r") else raw
        number = first_line + index
        piece = number_line(number, line)
        if used + len(piece) + 1 > limit or index >= last_complete:
            if not out:  # a single line longer than the limit: show its start
                length = _full_line_length(file, start)
                out.append(piece[: max(limit - 1, 0)])
                return Rendered("\n".join(out), number, clipped=True, partial_length=length)
            return Rendered("\n".join(out), number - 1, clipped=True)
        out.append(piece)
        used += len(piece) + 1
    return Rendered("\n".join(out), first_line + len(out) - 1)


def _full_line_length(file: TextFile, start: int) -> int:
    text = file.decode(start, line_end(file.data, start))
    return len(text.removesuffix("\n").removesuffix("\r"))


def plain_lines(file: TextFile) -> list[str]:
    """Every line of the file as text, without line endings (for the slow, error-only paths)."""
    text = file.decode(file.begin)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# -- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """Text ready for the model holding numbered lines ``first``-``last`` (a clip note included
    when ``clipped``); ``line`` is the line an edit starts on."""

    text: str
    first: int
    last: int
    line: int
    clipped: bool = False


def view_file(file: TextFile, path: str, view_range: list[int] | None) -> Shown:
    """The model's view of a file: all of it or ``view_range``, numbered and clipped."""
    data = file.data
    if view_range is None:
        total = file.line_count
        if total == 0:
            return Shown(VIEW_EMPTY_FILE.format(path=path), 1, 0, 1)
        shown = render(file, file.begin, len(data), 1, path)
        text = VIEW_FILE.format(path=path, total=lines_phrase(total), body=shown.text)
        return Shown(text, shown.first, shown.last, 1, shown.clipped)
    if len(view_range) != 2:
        raise Refusal(VIEW_RANGE_SHAPE.format(got=view_range))
    start, requested = view_range
    total = file.line_count
    low = file.line_start(start)
    if low == -1:
        if total == 0:
            raise Refusal(VIEW_RANGE_EMPTY_FILE.format(path=path))
        phrase = lines_phrase(total)
        raise Refusal(VIEW_RANGE_START.format(start=start, path=path, total=phrase, last=total))
    if requested != -1 and requested < start:
        raise Refusal(VIEW_RANGE_ORDER.format(start=start, end=requested))
    high = len(data) if requested == -1 or requested >= total else file.nth_newline(requested) + 1
    end = total if requested == -1 else min(requested, total)
    shown = render(file, low, high, start, path)
    text = VIEW_RANGE.format(
        lines=span(start, end), path=path, total=lines_phrase(total), body=shown.text
    )
    if requested > total:
        note = VIEW_RANGE_CLAMPED.format(
            path=path, total=lines_phrase(total), start=start, requested=requested, last=total
        )
        text = f"{note}\n{text}"
    return Shown(text, shown.first, shown.last, start, shown.clipped)


def render(file: TextFile, low: int, high: int, first_line: int, path: str) -> Shown:
    rendered = render_lines(file, low, high, first_line, OUTPUT_LIMIT)
    shown = Shown(rendered.text, first_line, rendered.last_line, first_line)
    if not rendered.clipped:
        return shown
    if rendered.partial_length is not None:
        note = CLIPPED_LONG_LINE.format(
            limit=OUTPUT_LIMIT, line=rendered.last_line, length=rendered.partial_length, path=path
        )
    else:
        count = rendered.last_line - first_line + 1
        note = CLIPPED.format(
            limit=OUTPUT_LIMIT,
            last=rendered.last_line,
            next=rendered.last_line + 1,
            next_end=rendered.last_line + count,
            path=path,
        )
    return Shown(f"{rendered.text}\n{note}", first_line, rendered.last_line, first_line, True)


def snippet(file: TextFile, low: int, high: int, path: str, line: int | None = None) -> Shown:
    """The edited lines with their context, numbered; ``line`` is the line that holds ``low``
    (pass it when known: the bytes before an edit did not change, nor did their line count)."""
    start, first, end, line = context_span(file, low, high, SNIPPET_CONTEXT, line)
    if start >= end:  # nothing left to show: the edit emptied the file
        return Shown("", first, first - 1, line)
    shown = render(file, start, end, first, path)
    return Shown(shown.text, shown.first, shown.last, line, shown.clipped)


def listing(path: str, output: str, cut: bool) -> Shown:
    """The model's view of a directory from the shell's answer to the listing command: lines
    ``hidden N`` (entries left out) and ``entries N``, then the sorted entries (directories end
    in ``/``), at most :data:`LISTING_BYTES` of them; ``cut`` says the runtime shortened the
    answer. Other lines (a traced shell's ``+ ...``) are ignored."""
    lines = output.split("\n")
    hidden, total = _counted(lines, "hidden"), _counted(lines, "entries")
    prefix = path.rstrip("/") + "/"
    entries = [line for line in lines if line.startswith(prefix)]
    clipped = cut or len(entries) < total
    if clipped and entries:
        entries.pop()  # `head -c` may have cut the last entry
    if not entries and not hidden and not clipped:
        return Shown(LISTING_EMPTY.format(path=path), 1, 0, 1)
    parts = [LISTING.format(path=path, body="\n".join(entries))]
    if clipped:
        parts.append(LISTING_CLIPPED.format(path=path))
    if hidden:
        entries_word = "entry" if hidden == 1 else "entries"
        parts.append(HIDDEN_LEFT_OUT.format(count=hidden, entries=entries_word, path=path))
    return Shown("\n".join(parts), 1, len(entries), 1, clipped)


def _counted(lines: list[str], label: str) -> int:
    for line in lines:
        words = line.split()
        if len(words) == 2 and words[0] == label and words[1].isdigit():
            return int(words[1])
    return 0
