"""Turn the raw bytes a command printed into text a model can use.

A model pays for every character it reads and is confused by control bytes, so output is shaped
before it leaves the runtime. The rules, in order:

1. **Binary.** Output that contains a NUL byte, or where more than 30% of the first 8 KiB is
   non-printable (control bytes or undecodable UTF-8), is replaced by :data:`BINARY_NOTE`: a model
   cannot read it and it would waste the context. Otherwise the bytes are decoded as UTF-8 with
   replacement characters, ANSI escape sequences (colours, cursor moves) are removed, ``\\r\\n``
   becomes ``\\n``, and any other control character except tab and newline is written as a visible
   escape such as ``\\x07`` so nothing invisible reaches the model.
2. **Empty.** Output that is empty or only whitespace becomes :data:`EMPTY_OK` or
   :data:`EMPTY_FAILED`, so the model never sees nothing and wonders whether the command ran.
3. **Long.** Text over the limit keeps its head and tail and loses the middle, with
   :data:`TRUNCATION_NOTE` in between: errors tend to sit at the end, context at the start.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from agentkit.runtime.base import CommandResult

DEFAULT_OUTPUT_LIMIT = 16_000
"""Characters of output a model sees per command before the middle is cut."""

EMPTY_OK = "(command ran successfully and produced no output)"
EMPTY_FAILED = "(command failed with exit code {exit_code} and produced no output)"
EMPTY_TIMED_OUT = "(command produced no output before it was stopped)"
BINARY_NOTE = "[binary output: {size} bytes not shown; pipe it through `xxd | head` or `file -` to inspect it]"
TRUNCATION_NOTE = (
    "[... {cut} characters cut from the middle of the output; narrow the command "
    "(grep, head, tail, sed -n) to see the part you need ...]"
)
# A timeout is reported by ``CommandResult.timed_out``, not in the text: what to tell a model
# about it is the tool's business (see agentkit.tools.bash.COMMAND_TIMED_OUT).

_BINARY_SAMPLE = 8192
_BINARY_RATIO = 0.30
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ShapedOutput(BaseModel):
    """Output ready for a model, and whether the middle was cut."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    truncated: bool = False


def looks_binary(data: bytes) -> bool:
    """True when bytes are not worth showing as text (see the module docstring for the rule)."""
    if b"\x00" in data:
        return True
    sample = data[:_BINARY_SAMPLE]
    if not sample:
        return False
    text = sample.decode("utf-8", errors="replace")
    # A multi-byte character cut at the sample's end is not evidence of binary.
    if len(data) > _BINARY_SAMPLE:
        text = text[:-1]
    bad = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\x1b"))
    return bad > _BINARY_RATIO * max(len(text), 1)


def clean_text(text: str) -> str:
    """Remove terminal escape sequences and make the remaining control characters visible."""
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def cut_middle(text: str, limit: int = DEFAULT_OUTPUT_LIMIT, extra_cut: int = 0) -> ShapedOutput:
    """Keep the head and tail of ``text`` within ``limit`` characters and say what was cut.

    ``extra_cut`` counts characters already dropped upstream (a command that printed gigabytes is
    not kept in memory whole); they are added to the number in the note.
    """
    if len(text) <= limit and extra_cut == 0:
        return ShapedOutput(text=text)
    keep = max(limit, 2)
    head = text[: keep // 2]
    tail = text[len(text) - (keep - keep // 2) :] if len(text) > keep else text[keep // 2 :]
    cut = len(text) - len(head) - len(tail) + extra_cut
    note = TRUNCATION_NOTE.format(cut=cut)
    return ShapedOutput(text=f"{head}\n{note}\n{tail}", truncated=True)


def shape_output(
    data: bytes | str,
    exit_code: int | None,
    *,
    limit: int = DEFAULT_OUTPUT_LIMIT,
    dropped: int = 0,
) -> ShapedOutput:
    """Apply every rule of this module to a command's raw output.

    ``exit_code`` is ``None`` for a command that did not finish; ``dropped`` is the number of
    bytes the reader discarded from the middle before shaping.
    """
    if isinstance(data, bytes):
        if looks_binary(data):
            return ShapedOutput(text=BINARY_NOTE.format(size=len(data) + dropped))
        text = data.decode("utf-8", errors="replace")
    else:
        text = data
    text = clean_text(text)
    if not text.strip() and dropped == 0:
        if exit_code is None:
            return ShapedOutput(text=EMPTY_TIMED_OUT)
        if exit_code == 0:
            return ShapedOutput(text=EMPTY_OK)
        return ShapedOutput(text=EMPTY_FAILED.format(exit_code=exit_code))
    return cut_middle(text, limit, extra_cut=dropped)


def add_note(text: str, note: str) -> str:
    """Append a runtime note (timeout, restarted shell) on its own line."""
    if not text:
        return note
    return f"{text}\n{note}" if not text.endswith("\n") else f"{text}{note}"


class OutputBuffer:
    """Collects a command's output while bounding memory.

    The first ``cap`` bytes are kept, then a sliding tail of ``cap`` bytes; what falls out of the
    middle is only counted. ``cap`` is far above any output limit, so shaping still sees enough.
    """

    def __init__(self, cap: int = 4 * 1024 * 1024) -> None:
        self.cap = cap
        self.head: bytes | None = None
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        self.tail += data
        if len(self.tail) <= 2 * self.cap:
            return
        if self.head is None:
            self.head = bytes(self.tail[: self.cap])
            del self.tail[: self.cap]
        excess = len(self.tail) - self.cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def getvalue(self) -> bytes:
        return (self.head or b"") + bytes(self.tail)


class RawRun(BaseModel):
    """What a runner saw, before shaping for a model."""

    model_config = ConfigDict(extra="forbid")

    data: bytes
    dropped: int = 0
    exit_code: int | None
    timed_out: bool = False
    shell_exited: bool = False
    """The persistent shell ended during this command (``exit``, a crash, a lost container)."""
    duration_s: float = 0.0


def to_result(
    raw: RawRun,
    *,
    limit: int = DEFAULT_OUTPUT_LIMIT,
    notes: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> CommandResult:
    """Shape a raw run into the :class:`CommandResult` a caller gets: ``prefix`` notes go before
    the output (they concern what came before it), ``notes`` after it, each on its own line."""
    shaped = shape_output(raw.data, raw.exit_code, limit=limit, dropped=raw.dropped)
    text = shaped.text
    for note in notes:
        text = add_note(text, note)
    if prefix:
        text = "\n".join((*prefix, text))
    return CommandResult(
        output=text,
        exit_code=raw.exit_code,
        timed_out=raw.timed_out,
        truncated=shaped.truncated,
        duration_s=raw.duration_s,
    )
