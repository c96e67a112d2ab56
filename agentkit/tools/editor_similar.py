"""When ``old_str`` is not in the file: the lines of the file most like it, to copy from."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from agentkit.tools.editor_file import TextFile
from agentkit.tools.editor_messages import (
    NOTHING_SIMILAR,
    OLD_STR_NOT_FOUND,
    SIMILAR_REGION,
    WHITESPACE_ONLY,
    clip,
    span,
)
from agentkit.tools.editor_views import number_line, plain_lines


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
