"""How the editor reaches files: through the runtime's own file API (``read_file`` /
``write_file``), and the shell only for a probe made of builtins and for directory listings
(``find``), so it works in any sandbox image, with or without Python in it.

Every failure is a :class:`~agentkit.tools.editor_file.Refusal` that tells the model why and what
to do instead.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Literal, cast, get_args

from agentkit.tools.base import ToolContext
from agentkit.tools.editor_file import (
    NotText,
    NotTextError,
    Refusal,
    TextFile,
    read_text,
    unencodable,
)
from agentkit.tools.editor_messages import (
    BINARY,
    CONTROL_BYTES,
    IS_DIRECTORY,
    LISTING_BYTES,
    NEW_STR_UNENCODABLE,
    NOT_FOUND,
    NOT_REGULAR,
    READ_FAILED,
    RELATIVE_PATH,
    TOO_LARGE,
    WIDE_UNICODE,
    WRITE_FAILED,
    char_list,
)
from agentkit.tools.editor_state import EditorState
from agentkit.tools.editor_views import Shown, listing

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Files larger than this are refused: no model can use that much text, and edits keep copies."""

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

Kind = Literal["file", "directory", "other", "missing"]


def absolute(path: str, workdir: str) -> str:
    if not posixpath.isabs(path):
        suggestion = posixpath.normpath(posixpath.join(workdir, path))
        raise Refusal(RELATIVE_PATH.format(path=path, suggestion=suggestion, workdir=workdir))
    return posixpath.normpath(path)


async def probe(ctx: ToolContext, path: str) -> Kind:
    result = await ctx.runtime.run(_PROBE.format(p=shlex.quote(path)), ctx.command_timeout)
    # Whole lines only: a session where the model turned on `set -x` adds trace lines.
    for line in result.output.splitlines():
        if line in get_args(Kind):
            return cast(Kind, line)
    answer = result.output.strip()[:200]
    raise Refusal(READ_FAILED.format(path=path, reason=f"the shell answered {answer!r}"))


async def list_directory(ctx: ToolContext, path: str) -> Shown:
    """The model's view of the directory at ``path``, two levels deep."""
    command = _LIST.format(p=shlex.quote(path), limit=LISTING_BYTES)
    result = await ctx.runtime.run(command, ctx.command_timeout)
    return listing(path, result.output, result.truncated)


async def read_bytes(ctx: ToolContext, path: str) -> bytes:
    try:
        return await ctx.runtime.read_file(path)
    except OSError as exc:
        raise Refusal(READ_FAILED.format(path=path, reason=_reason(exc))) from None


async def write_bytes(ctx: ToolContext, path: str, data: bytes) -> None:
    try:
        await ctx.runtime.write_file(path, data)
    except OSError as exc:
        raise Refusal(WRITE_FAILED.format(path=path, reason=_reason(exc))) from None


async def load(
    ctx: ToolContext, state: EditorState, path: str, kind: Kind, command: str
) -> TextFile:
    """The file at ``path`` as text, or the refusal that says why it cannot be."""
    if kind == "missing":
        raise Refusal(NOT_FOUND.format(path=path, parent=posixpath.dirname(path) or "/"))
    if kind == "directory":
        raise Refusal(IS_DIRECTORY.format(path=path, command=command))
    if kind == "other":
        raise Refusal(NOT_REGULAR.format(path=path))
    data = await read_bytes(ctx, path)
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


def encode(text: str, encoding: str, path: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        chars = char_list(unencodable(text, encoding))
        raise Refusal(
            NEW_STR_UNENCODABLE.format(chars=chars, path=path, encoding=encoding)
        ) from None
