"""Reading a git diff into what the gold backend replays: files, hunks and their exact texts.

Pure functions over the patch text; nothing here sees a repository. A patch is cut into one
:class:`FileDiff` per ``diff --git`` section, kept verbatim (so any part of it can still go to
``git apply`` unchanged), and each section says whether the ``str_replace_editor`` can replay
it exactly, judging from the diff alone (:attr:`FileDiff.editable`):

- ``modify``: a plain change of one file (no rename, copy or mode change) whose hunks all have
  a non-empty pre-image and ASCII text only. ASCII keeps the editor's choice of encoding out of
  it (every encoding it writes is ASCII-compatible); a pre-image is what ``old_str`` matches.
- ``create``: a new regular file (mode 100644) whose text is valid Unicode (``create`` writes
  UTF-8, which is the patch's own encoding).

Everything else (deletions, renames, copies, mode changes, binary patches, symlinks, quoted
paths, non-ASCII edits, empty pre-images, anything not understood) is ``other`` and goes to
``git apply``. Lines are split on ``\\n`` only: a ``\\r`` before it is part of the line, so CRLF
content survives, and ``\\ No newline at end of file`` takes the newline off the line before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["modify", "create", "other"]

_DIFF_GIT = "diff --git "
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$", re.DOTALL)
_MODIFY_HEADERS = ("index ",)
_CREATE_HEADERS = ("index ", "new file mode 100644")


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    rest: str
    """What follows the second ``@@`` (the function context and the newline)."""
    body: str
    """The hunk's lines after its header, verbatim."""
    old_text: str
    """The pre-image: context and removed lines, exactly as in the file."""
    new_text: str
    """The post-image: context and added lines."""

    def shifted(self, delta: int) -> str:
        """The hunk, verbatim, with its pre-image start moved by ``delta`` lines (for a file in
        which earlier hunks are already applied)."""
        header = (
            f"@@ -{self.old_start + delta},{self.old_count} "
            f"+{self.new_start},{self.new_count} @@{self.rest}"
        )
        return header + self.body


@dataclass(frozen=True)
class FileDiff:
    kind: Kind
    path: str
    """The file's path in the repository (the new path; the old one when it is deleted)."""
    header: str
    """The section up to its first hunk, verbatim."""
    hunks: tuple[Hunk, ...]
    text: str
    """The whole section, verbatim."""

    @property
    def editable(self) -> bool:
        return self.kind != "other"

    def rest_from(self, index: int) -> str:
        """This section with only hunks ``index`` and later, their pre-image starts moved to fit
        a file in which the hunks before ``index`` are applied."""
        delta = sum(h.new_count - h.old_count for h in self.hunks[:index])
        return self.header + "".join(h.shifted(delta) for h in self.hunks[index:])


def split_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only, each keeping its ``\\n`` (the last may have none)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def parse_patch(patch: str) -> list[FileDiff] | None:
    """The patch's file sections, or ``None`` when it is not a git diff read here (then the whole
    patch goes to ``git apply``)."""
    lines = split_lines(patch)
    starts = [i for i, line in enumerate(lines) if line.startswith(_DIFF_GIT)]
    if not starts or "".join(lines[: starts[0]]).strip():
        return None
    ends = [*starts[1:], len(lines)]
    return [_section(lines[start:end]) for start, end in zip(starts, ends, strict=True)]


def _section(lines: list[str]) -> FileDiff:
    text = "".join(lines)
    first_hunk = next((i for i, line in enumerate(lines) if line.startswith("@@ ")), len(lines))
    header_lines = lines[:first_hunk]
    header = "".join(header_lines)
    hunks = _hunks(lines[first_hunk:])
    path = _path(header_lines)
    loose = header_lines[0].rstrip("\n").rsplit(" b/", 1)[-1]  # a name for any section
    other = FileDiff("other", path or loose, header, hunks or (), text)
    if hunks is None or path is None:
        return other
    fields = [line.rstrip("\n") for line in header_lines[1:]]
    minus = [f for f in fields if f.startswith("--- ")]
    plus = [f for f in fields if f.startswith("+++ ")]
    rest = [f for f in fields if not f.startswith(("--- ", "+++ "))]
    if "new file mode 100644" in rest:
        if not all(f.startswith(_CREATE_HEADERS) for f in rest):
            return other
        if hunks and (minus != ["--- /dev/null"] or plus != [f"+++ b/{path}"]):
            return other
        if len(hunks) > 1 or (hunks and hunks[0].old_count != 0) or not _unicode(text):
            return other
        return FileDiff("create", path, header, hunks, text)
    if not all(f.startswith(_MODIFY_HEADERS) for f in rest):
        return other
    if minus != [f"--- a/{path}"] or plus != [f"+++ b/{path}"] or not hunks:
        return other
    if not all(h.old_text and h.old_text.isascii() and h.new_text.isascii() for h in hunks):
        return other
    return FileDiff("modify", path, header, hunks, text)


def _path(header: list[str]) -> str | None:
    """The path of a section that names one path, unquoted, on both sides; else ``None``."""
    first = header[0].rstrip("\n")[len(_DIFF_GIT) :]
    if '"' in first or not first.startswith("a/"):
        return None
    # ``a/P b/P``: both halves are the same path, so the split point is known.
    half = (len(first) - 1) // 2
    old, new = first[:half], first[half + 1 :]
    if len(first) % 2 == 0 or first[half] != " " or old[2:] != new[2:] or new[:2] != "b/":
        return None
    return old[2:]


def _hunks(lines: list[str]) -> tuple[Hunk, ...] | None:
    """The hunks of a section body, or ``None`` when the body is not plain text hunks."""
    hunks: list[Hunk] = []
    i = 0
    while i < len(lines):
        match = _HUNK.match(lines[i])
        if match is None:
            return None
        old_count = 1 if match[2] is None else int(match[2])
        new_count = 1 if match[4] is None else int(match[4])
        old: list[str] = []
        new: list[str] = []
        start = i + 1
        i = start
        old_left, new_left = old_count, new_count
        while i < len(lines) and (old_left > 0 or new_left > 0 or lines[i].startswith("\\")):
            line = lines[i]
            tag, content = (line[0], line[1:]) if line != "\n" else (" ", "\n")
            if tag == "\\":
                # "\ No newline at end of file": the line before it ends the file unterminated.
                before = lines[i - 1][0] if i > start else ""
                if before in (" ", "\n"):
                    old[-1], new[-1] = old[-1].removesuffix("\n"), new[-1].removesuffix("\n")
                elif before == "-":
                    old[-1] = old[-1].removesuffix("\n")
                elif before == "+":
                    new[-1] = new[-1].removesuffix("\n")
                else:
                    return None
            elif tag == " " and old_left > 0 and new_left > 0:
                old.append(content)
                new.append(content)
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == "-" and old_left > 0:
                old.append(content)
                old_left -= 1
            elif tag == "+" and new_left > 0:
                new.append(content)
                new_left -= 1
            else:
                return None
            i += 1
        if old_left or new_left:
            return None
        hunks.append(
            Hunk(
                old_start=int(match[1]),
                old_count=old_count,
                new_start=int(match[3]),
                new_count=new_count,
                rest=match[5],
                body="".join(lines[start:i]),
                old_text="".join(old),
                new_text="".join(new),
            )
        )
    return tuple(hunks)


def _unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (a patch read with ``surrogateescape`` carries the bytes
    that are not UTF-8 as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
