"""The pure half of the file editor: deciding what a file's bytes mean and splicing into them.

Everything here works on the file's original bytes, never on a rewritten copy: a match is found
in the bytes, the new text is encoded in the file's own encoding and line endings, and the result
is ``bytes before + new bytes + bytes after``. That is what keeps an edit from touching anything
it did not match (tabs, CRLF, a missing final newline, Latin-1 characters). It works because
every encoding accepted here (UTF-8 and single-byte encodings) is ASCII-compatible: ``\\n`` is one
byte, and a UTF-8 pattern found in valid UTF-8 always starts on a character boundary. UTF-16/32
files are refused rather than half-supported.

Lines are split on ``\\n`` only, never with ``str.splitlines`` (which also splits on form feeds,
``\\x1c``-``\\x1e`` and Unicode separators and so miscounts lines in real source files). A ``\\r``
before a ``\\n`` belongs to its line and is hidden when lines are shown.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import Enum

OUTPUT_LIMIT = 16_000
"""Characters of file text, snippet or listing shown in one observation."""
SNIPPET_CONTEXT = 4
"""Unchanged lines shown either side of an edit."""
LISTING_BYTES = 12_000
"""Bytes of directory listing asked of the shell: under any runtime's output limit, so the
runtime never cuts the middle out of it."""

# -- what the model is told about views (the tool module holds the rest) --------------------------

VIEW_FILE = "{path} ({total}), numbered as by `cat -n`:\n{body}"
VIEW_RANGE = "{lines} of {path} ({total} in all), numbered as by `cat -n`:\n{body}"
VIEW_EMPTY_FILE = "{path} is empty (0 lines)."
VIEW_RANGE_CLAMPED = (
    "Note: {path} has only {total}, so the range [{start}, {requested}] was shortened to "
    "[{start}, {last}]."
)
VIEW_RANGE_SHAPE = (
    "view_range must be two line numbers, [start, end], e.g. [10, 40]; use -1 as the end to view "
    "to the end of the file. Got {got}."
)
VIEW_RANGE_START = (
    "view_range starts at line {start}, but {path} has {total}: the start must be between 1 and "
    "{last}."
)
VIEW_RANGE_EMPTY_FILE = "{path} is empty (0 lines), so view_range has nothing to show."
VIEW_RANGE_ORDER = (
    "view_range [{start}, {end}] ends before it starts: the end must be at least the start, or -1 "
    "for the end of the file."
)
VIEW_RANGE_DIRECTORY = (
    "view_range applies to files, and {path} is a directory. Leave view_range out to list it."
)
CLIPPED = (
    "[Output clipped at {limit} characters, after line {last}. View further lines with "
    "view_range, e.g. [{next}, {next_end}], or find what you need with `grep -n PATTERN {path}`.]"
)
CLIPPED_LONG_LINE = (
    "[Output clipped at {limit} characters, inside line {line}, which has {length} characters. "
    "Read that line in parts with `sed -n '{line}p' {path} | cut -c START-END`.]"
)

LISTING = "Files and directories in {path}, two levels deep (directories end in /):\n{body}"
LISTING_EMPTY = "{path} is an empty directory."
HIDDEN_LEFT_OUT = (
    "Left out: {count} hidden {entries} (names starting with a dot); list them with `ls -a {path}`."
)
LISTING_CLIPPED = (
    "[Listing clipped: there are more entries than fit here. View a subdirectory, or search with "
    "`find {path} -name PATTERN`.]"
)

OLD_STR_NOT_FOUND = (
    "No replacement was made: old_str does not occur in {path}. It must match the file exactly, "
    "including indentation, whitespace and line breaks."
)
SIMILAR_REGION = "The most similar part of {path}, {lines}:\n{body}"
WHITESPACE_ONLY = (
    "These lines differ from old_str only in whitespace (indentation, tabs, spaces or line "
    "breaks); copy them exactly as shown."
)
NOTHING_SIMILAR = "No part of the file resembles it; view the file to see its current text."

UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe", b"\xfe\xff")
_CONTROL_BYTES = bytes([*range(1, 8), *range(14, 27), *range(28, 32), 127])
"""Bytes that plain text almost never holds (NUL is checked on its own)."""
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_CONTROL_SHARE = 0.05
"""A file that is not UTF-8 and has more than this share of control bytes is not text."""
_C1_BYTES = re.compile(rb"[\x80-\x9f]")
_CHUNK = 1 << 12


class Refusal(Exception):
    """A command that was not carried out; ``message`` tells the model why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotText(Enum):
    """Why a file's bytes are not text the editor can show and write back unchanged."""

    BINARY = "binary"
    WIDE_UNICODE = "wide_unicode"
    CONTROL_BYTES = "control_bytes"


class NotTextError(Exception):
    def __init__(self, kind: NotText) -> None:
        super().__init__(kind.value)
        self.kind = kind


class TextFile:
    """A file's bytes and how to read them: ``encoding`` (``utf-8``, ``latin-1`` or ``cp1252``)
    and ``begin`` (3 after a UTF-8 byte-order mark, else 0; nothing is ever inserted before it)."""

    def __init__(self, data: bytes, encoding: str, begin: int) -> None:
        self.data = data
        self.encoding = encoding
        self.begin = begin

    @functools.cached_property
    def has_crlf(self) -> bool:
        # Looking for a lone CR is a memchr; looking for CRLF directly is many times slower.
        return b"\r" in self.data and b"\r\n" in self.data

    @functools.cached_property
    def newline(self) -> str:
        """``\\r\\n`` when most lines end with CRLF, else ``\\n`` (computed on first use:
        counting costs a pass over the file, and only edits need it)."""
        if not self.has_crlf:
            return "\n"
        return "\r\n" if self.data.count(b"\r\n") * 2 > self.data.count(b"\n") else "\n"

    @functools.cached_property
    def _newline_sums(self) -> list[int]:
        """``sums[i]``: newlines in the ``i`` chunks of :data:`_CHUNK` bytes after ``begin``.

        One pass at C speed, made on first use and kept with this object: the editor keeps a
        file's :class:`TextFile` while its bytes stay the same, so later views find any line in
        one chunk instead of counting from the top again.
        """
        data, sums, total = self.data, [0], 0
        for pos in range(self.begin, len(data), _CHUNK):
            total += data.count(b"\n", pos, pos + _CHUNK)
            sums.append(total)
        return sums

    @property
    def line_count(self) -> int:
        """Lines after ``begin``: a last line without a final newline counts; empty has 0."""
        ends_open = len(self.data) > self.begin and not self.data.endswith(b"\n")
        return self._newline_sums[-1] + ends_open

    def nth_newline(self, n: int) -> int:
        """Offset of the ``n``-th ``\\n`` (1-based) after ``begin``, or -1 when there are fewer."""
        sums = self._newline_sums
        if not 1 <= n <= sums[-1]:
            return -1
        chunk = bisect.bisect_left(sums, n) - 1
        index = self.begin + chunk * _CHUNK - 1
        for _ in range(n - sums[chunk]):
            index = self.data.find(b"\n", index + 1)
        return index

    def line_start(self, line: int) -> int:
        """Offset where 1-based ``line`` starts, or -1 when there is no such line."""
        if not 1 <= line <= self.line_count:
            return -1
        return self.begin if line == 1 else self.nth_newline(line - 1) + 1

    def line_of(self, offset: int) -> int:
        """The 1-based line that holds ``offset``: counted from the nearest chunk start when the
        index exists, from ``begin`` otherwise (cheaper than building it for one question)."""
        if "_newline_sums" not in self.__dict__:
            return self.data.count(b"\n", self.begin, offset) + 1
        chunk = (offset - self.begin) // _CHUNK
        start = self.begin + chunk * _CHUNK
        return self._newline_sums[chunk] + self.data.count(b"\n", start, offset) + 1

    def decode(self, start: int = 0, end: int | None = None) -> str:
        """Text of ``data[start:end]`` (a cut multi-byte character at either end is replaced)."""
        return self.data[start:end].decode(self.encoding, errors="replace")


def read_text(data: bytes) -> TextFile:
    """Decide how to read ``data``; :class:`NotTextError` when it is not editable text.

    UTF-8 first (a pure-ASCII file is UTF-8 without decoding anything). Otherwise a single-byte
    encoding, whose decoding is exact and reversible byte for byte: ``latin-1`` when no byte is in
    0x80-0x9F (there Latin-1 and Windows-1252 agree, and Latin-1 is the name people know), else
    ``cp1252`` (curly quotes and dashes from Windows editors), else ``latin-1``.
    """
    if data.startswith(_WIDE_BOMS):
        raise NotTextError(NotText.WIDE_UNICODE)
    if b"\0" in data:
        raise NotTextError(NotText.BINARY)
    begin = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    if data.isascii():
        return TextFile(data, "utf-8", begin)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return TextFile(data, "utf-8", begin)
    controls = len(data.translate(None, _NOT_CONTROL))
    if controls > _CONTROL_SHARE * len(data):
        raise NotTextError(NotText.CONTROL_BYTES)
    if _C1_BYTES.search(data) is None:
        return TextFile(data, "latin-1", 0)
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return TextFile(data, "latin-1", 0)
    return TextFile(data, "cp1252", 0)


def unencodable(text: str, encoding: str) -> list[str]:
    """The distinct characters of ``text`` that ``encoding`` cannot write, in order."""
    found: list[str] = []
    for char in text:
        if char not in found:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                found.append(char)
    return found


# -- lines ---------------------------------------------------------------------------------------


def count_lines(data: bytes) -> int:
    """Lines in ``data``: a last line without a final newline counts; an empty file has 0."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def line_end(data: bytes, line_start_offset: int) -> int:
    """Offset just past the line starting at ``line_start_offset`` (past its ``\\n`` if any)."""
    newline = data.find(b"\n", line_start_offset)
    return len(data) if newline == -1 else newline + 1


def line_numbers(data: bytes, offsets: list[int], begin: int = 0) -> list[int]:
    """1-based line of each offset (ascending), counted incrementally: one pass for all of them."""
    numbers: list[int] = []
    line, previous = 1, begin
    for offset in offsets:
        line += data.count(b"\n", previous, offset)
        previous = offset
        numbers.append(line)
    return numbers


def find_all(data: bytes, pattern: bytes) -> list[int]:
    """Every offset where ``pattern`` starts, overlapping ones included (``aa`` in ``aaa`` is two
    places, so it is ambiguous, not unique)."""
    offsets: list[int] = []
    index = data.find(pattern)
    while index != -1:
        offsets.append(index)
        index = data.find(pattern, index + 1)
    return offsets


def context_span(
    file: TextFile, low: int, high: int, context: int, low_line: int | None = None
) -> tuple[int, int, int, int]:
    """``(start, first_line, end, low_line)``: the whole lines touching ``data[low:high]`` plus
    ``context`` lines either side; ``end`` is exclusive, line numbers are 1-based, and
    ``low_line`` is the line that holds ``low`` (counted unless the caller knows it)."""
    data, begin = file.data, file.begin
    if low_line is None:
        low_line = file.line_of(low)
    first_line = low_line
    start = data.rfind(b"\n", begin, low) + 1 or begin
    for _ in range(context):
        if start <= begin:
            break
        previous = data.rfind(b"\n", begin, start - 1)
        start = previous + 1 if previous != -1 else begin
        first_line -= 1
    last = max(low, high - 1)
    newline = data.find(b"\n", last) if last < len(data) else -1
    for _ in range(context):
        if newline == -1:
            break
        newline = data.find(b"\n", newline + 1)
    return start, first_line, len(data) if newline == -1 else newline + 1, low_line


# -- newlines in what the model sends ------------------------------------------------------------


def _to_crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def match_variants(old: str, file: TextFile) -> list[tuple[str, str | None]]:
    """The forms of ``old`` to look for, in order, each with the line ending it implies.

    The model sees lines without their ``\\r`` (and usually sends ``\\n`` only), so in a file that
    has CRLF endings an LF-only ``old`` is also tried with CRLF; an ``old`` sent with CRLF into
    an LF file is also tried with LF. The exact form always comes first.
    """
    variants: list[tuple[str, str | None]] = [(old, None)]
    if "\n" in old and "\r" not in old and file.has_crlf:
        variants.append((_to_crlf(old), "\r\n"))
    elif "\r\n" in old:
        variants.append((old.replace("\r\n", "\n"), "\n"))
    return variants


def adapt_newlines(new: str, file: TextFile, matched: str | None = None) -> str:
    """``new`` with the line endings of the place it goes: those ``old`` matched with, else the
    file's usual ending. A ``new`` that already mixes in ``\\r`` is taken as meant."""
    newline = matched or file.newline
    if newline == "\r\n":
        return new if "\r" in new else _to_crlf(new)
    return new.replace("\r\n", "\n") if matched == "\n" else new


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


# -- when old_str is not there -------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    first: int
    """1-based, inclusive."""
    last: int
    score: float
    whitespace_only: bool
    """The region equals ``old`` once runs of whitespace are ignored."""


_CUTOFF = 0.6
_CANDIDATES = 12


def similar_regions(lines: list[str], old: str, count: int = 2) -> list[Region]:
    """Up to ``count`` non-overlapping runs of lines that look most like ``old``, best first.

    Each line of the file is compared (ignoring indentation) with the longest line of ``old``,
    with difflib's cheap upper bounds first so a 50,000-line file takes a fraction of a second;
    around the best hits a window as tall as ``old`` is scored as a whole.
    """
    wanted = [line.rstrip("\r") for line in old.split("\n")]
    while wanted and not wanted[-1].strip():
        wanted.pop()
    while wanted and not wanted[0].strip():
        wanted.pop(0)
    if not wanted:
        return []
    anchor_index = max(range(len(wanted)), key=lambda i: len(wanted[i].strip()))
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(wanted[anchor_index].strip())
    hits: list[tuple[float, int]] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        matcher.set_seq1(stripped)
        if matcher.real_quick_ratio() < _CUTOFF or matcher.quick_ratio() < _CUTOFF:
            continue
        ratio = matcher.ratio()
        if ratio >= _CUTOFF:
            hits.append((ratio, index))
    hits.sort(key=lambda hit: (-hit[0], hit[1]))
    target = "\n".join(line.strip() for line in wanted)
    collapsed = " ".join(old.split())
    scored: list[Region] = []
    for _, index in hits[:_CANDIDATES]:
        first = max(0, index - anchor_index)
        window = lines[first : first + len(wanted)]
        score = SequenceMatcher(
            None, "\n".join(line.strip() for line in window), target, autojunk=False
        ).ratio()
        same = " ".join(" ".join(window).split()) == collapsed
        scored.append(Region(first + 1, first + len(window), score, same))
    scored.sort(key=lambda region: (-region.whitespace_only, -region.score, region.first))
    chosen: list[Region] = []
    for region in scored:
        if all(region.last < other.first or region.first > other.last for other in chosen):
            chosen.append(region)
        if len(chosen) == count:
            break
    return chosen


def not_found(file: TextFile, path: str, old: str) -> str:
    """Why ``old`` was not replaced, with the lines of the file most like it."""
    lines = plain_lines(file)
    regions = similar_regions(lines, old)
    if regions and regions[0].whitespace_only:
        regions = regions[:1]  # the answer; a second guess would only distract
    parts = [OLD_STR_NOT_FOUND.format(path=path)]
    if not regions:
        parts.append(NOTHING_SIMILAR)
    for region in regions:
        body = "\n".join(
            number_line(number, lines[number - 1])
            for number in range(region.first, region.last + 1)
        )
        lines_shown = span(region.first, region.last).lower()
        parts.append(SIMILAR_REGION.format(path=path, lines=lines_shown, body=body))
        if region.whitespace_only:
            parts.append(WHITESPACE_ONLY)
    return clip("\n".join(parts))


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


def clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[...]"


def lines_phrase(count: int) -> str:
    """``1 line``, ``2 lines``."""
    return f"{count} line" if count == 1 else f"{count} lines"


def span(first: int, last: int) -> str:
    """``Line 4`` or ``Lines 4-9``."""
    return f"Line {first}" if first == last else f"Lines {first}-{last}"
