"""What the SWE-agent interface tools share: the open file, reading files, drawing the window.

The viewer (``open``, ``goto``, ``scroll_up``, ``scroll_down``), ``search_file`` and ``edit`` are
separate tools, yet ``goto`` must move in the file that ``open`` opened. So their state is kept here,
per runtime (:func:`state_of`): one tool instance serves every concurrent run of a harness, and a
run's state goes away with its runtime.

Files go through the runtime's file API (``read_file`` / ``write_file``); the shell only answers a
probe made of builtins (is this a file, a directory...), so the tools work in any sandbox image,
with or without Python. Text is read as the ``str_replace_editor`` reads it
(:mod:`agentkit.tools.editor_text`): UTF-8 or a single-byte encoding, lines split on ``\\n`` only,
a ``\\r`` before it hidden.
"""

from __future__ import annotations

import posixpath
import shlex
import weakref
from dataclasses import dataclass, field
from typing import Literal

from agentkit.runtime.base import Runtime
from agentkit.tools import aci_messages as msg
from agentkit.tools.base import ToolContext
from agentkit.tools.editor_text import (
    NotText,
    NotTextError,
    Refusal,
    TextFile,
    plain_lines,
    read_text,
)

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Larger files are refused: a model reads them by searching, not by scrolling."""

Kind = Literal["file", "directory", "other", "missing"]
SearchEngine = Literal["rg", "grep"]

_PROBE = (
    "if [ -d {p} ]; then echo directory; elif [ -f {p} ]; then echo file; "
    "elif [ -e {p} ] || [ -L {p} ]; then echo other; else echo missing; fi"
)
"""Shell builtins only, and no variable set: it runs in the model's own shell session."""
_KINDS: tuple[Kind, ...] = ("file", "directory", "other", "missing")
_NOT_TEXT = {
    NotText.BINARY: msg.WHY_BINARY,
    NotText.WIDE_UNICODE: msg.WHY_WIDE,
    NotText.CONTROL_BYTES: msg.WHY_CONTROL,
}


@dataclass
class Loaded:
    """A file read as text: its path, how its bytes decode, and its lines without endings."""

    path: str
    file: TextFile
    lines: list[str]

    @property
    def total(self) -> int:
        return len(self.lines)


@dataclass
class AciState:
    """What the interface remembers for one runtime."""

    path: str | None = None
    """The open file (absolute), or ``None`` before the first ``open``."""
    first: int = 1
    """The window's first line."""
    engine: SearchEngine | None = None
    """The search program found in the sandbox; ``None`` until the first ``search_dir``."""
    cache: dict[str, Loaded] = field(default_factory=dict)
    """The last reading of the open file, used again while its bytes stay the same."""


_STATES: weakref.WeakKeyDictionary[Runtime, AciState] = weakref.WeakKeyDictionary()


def state_of(runtime: Runtime) -> AciState:
    """The interface's state for ``runtime`` (created on first use)."""
    return _STATES.setdefault(runtime, AciState())


def resolve(path: str, workdir: str) -> str:
    """``path`` made absolute: a relative path starts at the repository root, not at the shell's
    current directory, so the same call always means the same file."""
    return posixpath.normpath(posixpath.join(workdir, path))


async def probe(ctx: ToolContext, path: str) -> Kind:
    """What ``path`` is in the sandbox."""
    result = await ctx.runtime.run(_PROBE.format(p=shlex.quote(path)), ctx.command_timeout)
    # Whole lines only: a shell where the model turned on `set -x` adds trace lines.
    for line in result.output.splitlines():
        if line in _KINDS:
            return _KINDS[_KINDS.index(line)]
    answer = result.output.strip()[:200]
    raise Refusal(msg.READ_FAILED.format(path=path, reason=f"the shell answered {answer!r}"))


async def load(ctx: ToolContext, path: str, kind: Kind | None = None) -> Loaded:
    """The text file at ``path``, or the :class:`Refusal` that says why it cannot be read."""
    if kind is None:
        kind = await probe(ctx, path)
    if kind == "missing":
        raise Refusal(msg.NOT_FOUND.format(path=path, workdir=ctx.runtime.workdir))
    if kind == "directory":
        raise Refusal(msg.IS_DIRECTORY.format(path=path))
    if kind == "other":
        raise Refusal(msg.NOT_REGULAR.format(path=path))
    try:
        data = await ctx.runtime.read_file(path)
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__
        raise Refusal(msg.READ_FAILED.format(path=path, reason=reason)) from None
    if len(data) > MAX_FILE_BYTES:
        size = f"{len(data) / 2**20:.1f}"
        raise Refusal(msg.TOO_LARGE.format(path=path, size=size, limit=MAX_FILE_BYTES // 2**20))
    cache = state_of(ctx.runtime).cache
    known = cache.get(path)
    if known is not None and known.file.data == data:
        return known
    try:
        file = read_text(data)
    except NotTextError as exc:
        raise Refusal(msg.NOT_TEXT.format(path=path, why=_NOT_TEXT[exc.kind])) from None
    loaded = Loaded(path, file, plain_lines(file))
    cache.clear()
    cache[path] = loaded
    return loaded


async def open_file(ctx: ToolContext, command: str) -> Loaded:
    """The file the viewer has open, read again (a shell command may have changed it)."""
    path = state_of(ctx.runtime).path
    if path is None:
        raise Refusal(msg.NO_FILE_OPEN.format(command=command))
    return await load(ctx, path)


# -- the window ----------------------------------------------------------------------------------


def clamp_first(first: int, total: int) -> int:
    """A window start that shows as many lines as possible: never before line 1, never so late
    that the window ends in empty space below the last line."""
    return max(1, min(first, total - msg.WINDOW + 1))


def check_line(loaded: Loaded, line: int) -> None:
    """Refuse a line number that is not in the file."""
    if loaded.total == 0:
        raise Refusal(msg.LINE_IN_EMPTY_FILE.format(path=loaded.path, line=line))
    if not 1 <= line <= loaded.total:
        raise Refusal(msg.LINE_OUT_OF_RANGE.format(path=loaded.path, line=line, total=loaded.total))


def numbered(lines: list[str], first: int, last: int) -> list[str]:
    """Lines ``first``-``last`` (1-based, inclusive) as ``N:text``, each cut at a readable length."""
    shown = []
    for number in range(first, last + 1):
        line = lines[number - 1]
        if len(line) > msg.LINE_CHARS:
            line = line[: msg.LINE_CHARS] + msg.LINE_CUT.format(length=len(line))
        shown.append(f"{number}:{line}")
    return shown


def window(loaded: Loaded, first: int) -> str:
    """The viewer's window starting at ``first``: header, lines above, numbered lines, lines below."""
    total = loaded.total
    parts = [msg.HEADER.format(path=loaded.path, total=total)]
    if total == 0:
        parts.append(msg.EMPTY_FILE)
        return "\n".join(parts)
    last = min(total, first + msg.WINDOW - 1)
    if first > 1:
        parts.append(msg.ABOVE.format(count=first - 1))
    parts.extend(numbered(loaded.lines, first, last))
    if last < total:
        parts.append(msg.BELOW.format(count=total - last))
    return "\n".join(parts)


def show(ctx: ToolContext, loaded: Loaded, first: int) -> str:
    """Make ``loaded`` the open file with its window at ``first`` (clamped), and draw it."""
    state = state_of(ctx.runtime)
    state.path = loaded.path
    state.first = clamp_first(first, loaded.total)
    return window(loaded, state.first)
