"""A file's bytes as text the editor can change without touching anything else in them.

Everything works on the file's original bytes, never on a rewritten copy: a match is found in the
bytes, the new text is encoded in the file's own encoding and line endings, and the result is
``bytes before + new bytes + bytes after``. That is what keeps an edit from touching anything it
did not match (tabs, CRLF, a missing final newline, Latin-1 characters). It works because every
encoding accepted here (UTF-8 and single-byte encodings) is ASCII-compatible: ``\\n`` is one byte,
and a UTF-8 pattern found in valid UTF-8 always starts on a character boundary. UTF-16/32 files
are refused rather than half-supported.

Lines are split on ``\\n`` only, never with ``str.splitlines`` (which also splits on form feeds,
``\\x1c``-``\\x1e`` and Unicode separators and so miscounts lines in real source files). A ``\\r``
before a ``\\n`` belongs to its line and is hidden when lines are shown.
"""

from __future__ import annotations

import bisect
import functools
import re
from enum import Enum

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
        # The line index, when a view has built it, already knows how many newlines there are
        # (none is hidden in a byte-order mark): no second pass over the file to count them.
        if "_newline_sums" in self.__dict__:
            newlines = self._newline_sums[-1]
        else:
            newlines = self.data.count(b"\n")
        return "\r\n" if self.data.count(b"\r\n") * 2 > newlines else "\n"

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
