"""Search tools of the SWE-agent interface: ``find_file``, ``search_dir``, ``search_file``.

``find_file`` and ``search_dir`` run in the sandbox's shell, over the whole tree: ``search_dir``
uses ``rg`` when the sandbox has it and ``grep`` otherwise (looked up once per runtime), and both
leave out hidden files and directories, and binary files. Each is one command, run in a subshell
that turns off ``errexit``, ``nounset`` and ``pipefail`` (the model may have set them in its
shell, where grep's "no match" would end the script), that sorts what it found and prints at most
:data:`~agentkit.tools.aci_messages.MAX_HITS` entries and a count, so the runtime never cuts its
answer. ``search_file`` reads the one file through the runtime's file API, as the viewer does, so
its line numbers are the ones ``goto`` and ``edit`` use, CRLF files and Latin-1 files included.

Terms are plain text, not regular expressions, and case-sensitive. Past the limit, nothing is
listed: the model is told how many matched and asked to narrow the search.
"""

from __future__ import annotations

import re
import shlex
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentkit.runtime.base import CommandResult
from agentkit.tools import aci_messages as msg
from agentkit.tools import register_tool
from agentkit.tools.aci_files import SearchEngine, load, resolve, state_of
from agentkit.tools.aci_viewer import AciTool
from agentkit.tools.ast_workspace import display_path
from agentkit.tools.base import ToolContext
from agentkit.tools.editor_text import Refusal

_MARK = "agentkit-aci:"
_STATUS = re.compile(rf"^{_MARK} (\w+)((?: \d+)*)$", re.MULTILINE)
_LISTED_CHARS = 12_000
"""Characters of entries the shell prints at most: under any runtime's output limit."""
_DETECT = f'command -v rg >/dev/null 2>&1 && echo "{_MARK} rg" || echo "{_MARK} grep"'
_HIDDEN = "-mindepth 1 -name '.?*' -prune -o -type f"
"""``find`` arguments: files under the directory, hidden files and directories left out."""


def _script(directory: str, listing: str, *, summed: bool) -> str:
    """A subshell that checks ``directory``, sorts the lines ``listing`` prints (``PATH`` or
    ``PATH:COUNT``), prints the first of them and ends with ``done N TOTAL``: how many lines
    there were and, when ``summed``, the sum of their counts."""
    add = "total += $NF;" if summed else ""
    return f"""(
set +e +u +o pipefail 2>/dev/null
d={shlex.quote(directory)}
[ -e "$d" ] || {{ echo "{_MARK} missing"; exit 0; }}
[ -d "$d" ] || {{ echo "{_MARK} notdir"; exit 0; }}
{listing} | LC_ALL=C sort | awk -F: -v max={msg.MAX_HITS} -v cap={_LISTED_CHARS} '
{{ n++; {add} if (n <= max && used + length($0) < cap) {{ print; used += length($0) + 1 }} }}
END {{ print "{_MARK} done " n + 0 " " total + 0 }}'
)"""


def _find(name: str) -> str:
    return f'find "$d" {_HIDDEN} -name {shlex.quote(name)} -print 2>/dev/null'


def _count(engine: SearchEngine, term: str) -> str:
    """``PATH:LINES`` for each file under ``$d`` that has lines containing ``term``."""
    if engine == "rg":
        search = (
            "rg --count --with-filename --no-ignore --fixed-strings --no-messages "
            f'-e {shlex.quote(term)} -- "$d"'
        )
    else:
        search = (
            f'find "$d" {_HIDDEN} -print0 2>/dev/null'
            f" | xargs -0 -r grep -cIFH -e {shlex.quote(term)} -- 2>/dev/null"
        )
    return f"{search} | awk -F: '$NF > 0'"


class FindFileArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(
        description="The file name to find, or a shell wildcard pattern such as `*_test.py`."
    )
    dir: str | None = Field(
        default=None,
        description="The directory to search (default: the repository root).",
    )


class SearchDirArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_term: str = Field(description="The text to find (plain text, case-sensitive).")
    dir: str | None = Field(
        default=None,
        description="The directory to search (default: the repository root).",
    )


class SearchFileArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_term: str = Field(description="The text to find (plain text, case-sensitive).")
    path: str | None = Field(
        default=None, description="The file to search (default: the file open in the viewer)."
    )


@register_tool
class FindFileTool(AciTool):
    name: ClassVar[str] = "find_file"
    description: ClassVar[str] = (
        "Find files by name (or a shell wildcard pattern such as `*.cfg`) under a directory, "
        "hidden directories left out. Paths are listed relative to the repository root."
    )
    Arguments: ClassVar[type[BaseModel]] = FindFileArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        arguments = self.arguments(args, FindFileArguments)
        name = arguments.file_name
        if not name.strip():
            raise Refusal(msg.EMPTY_TERM)
        if "/" in name:
            raise Refusal(msg.NAME_WITH_SLASH.format(name=name))
        directory = resolve(arguments.dir or ".", ctx.runtime.workdir)
        script = _script(directory, _find(name), summed=False)
        counts, entries = _answer(await _run(ctx, script), directory, ctx.runtime.workdir)
        found = counts[0]
        if found == 0:
            return msg.NO_FILES.format(name=name, path=directory)
        if found > msg.MAX_HITS:
            raise Refusal(
                msg.TOO_MANY_FILES.format(
                    count=found, name=name, path=directory, limit=msg.MAX_HITS
                )
            )
        header = msg.FILES_FOUND.format(count=found, s=_s(found), name=name, path=directory)
        return "\n".join([header, *entries, *_cut(found, len(entries))])


@register_tool
class SearchDirTool(AciTool):
    name: ClassVar[str] = "search_dir"
    description: ClassVar[str] = (
        "Search every file under a directory for a text and list the files that contain it, "
        "with how many lines match in each. Hidden directories and binary files are left out."
    )
    Arguments: ClassVar[type[BaseModel]] = SearchDirArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        arguments = self.arguments(args, SearchDirArguments)
        term = _checked(arguments.search_term)
        directory = resolve(arguments.dir or ".", ctx.runtime.workdir)
        script = _script(directory, _count(await _engine(ctx), term), summed=True)
        counts, entries = _answer(await _run(ctx, script), directory, ctx.runtime.workdir)
        files, lines = counts
        if files == 0:
            return msg.NO_MATCHES_DIR.format(term=term, path=directory)
        if files > msg.MAX_HITS:
            raise Refusal(
                msg.TOO_MANY_DIR.format(
                    term=term, lines=lines, files=files, path=directory, limit=msg.MAX_HITS
                )
            )
        listed = []
        for entry in entries:
            path, _, number = entry.rpartition(":")
            hits = int(number)
            listed.append(msg.MATCHES_DIR_ENTRY.format(path=path, count=hits, s=_s(hits)))
        header = msg.MATCHES_DIR.format(
            lines=lines, s=_s(lines), term=term, files=files, fs=_s(files), path=directory
        )
        end = msg.MATCHES_DIR_END.format(term=term, path=directory)
        return "\n".join([header, *listed, *_cut(files, len(entries)), end])


@register_tool
class SearchFileTool(AciTool):
    name: ClassVar[str] = "search_file"
    description: ClassVar[str] = (
        "Search one file (by default the file open in the viewer) for a text and list the "
        "matching lines with their line numbers, ready for goto."
    )
    Arguments: ClassVar[type[BaseModel]] = SearchFileArguments

    async def run(self, args: BaseModel, ctx: ToolContext) -> str:
        arguments = self.arguments(args, SearchFileArguments)
        term = _checked(arguments.search_term)
        if arguments.path is not None:
            path = resolve(arguments.path, ctx.runtime.workdir)
        else:
            open_path = state_of(ctx.runtime).path
            if open_path is None:
                raise Refusal(msg.NO_FILE_TO_SEARCH)
            path = open_path
        loaded = await load(ctx, path)
        hits = [(n, line) for n, line in enumerate(loaded.lines, start=1) if term in line]
        if not hits:
            return msg.NO_MATCHES_FILE.format(term=term, path=path)
        if len(hits) > msg.MAX_HITS:
            raise Refusal(
                msg.TOO_MANY_FILE.format(term=term, count=len(hits), path=path, limit=msg.MAX_HITS)
            )
        header = msg.MATCHES_FILE.format(count=len(hits), s=_s(len(hits)), term=term, path=path)
        listed = [
            msg.MATCHES_FILE_ENTRY.format(line=n, text=_short(line.rstrip())) for n, line in hits
        ]
        return "\n".join([header, *listed, msg.MATCHES_FILE_END.format(term=term, path=path)])


# -- the shell's side ----------------------------------------------------------------------------


async def _engine(ctx: ToolContext) -> SearchEngine:
    """``rg`` when the sandbox has it, else ``grep``; asked once per runtime."""
    state = state_of(ctx.runtime)
    if state.engine is None:
        result = await ctx.runtime.run(_DETECT, ctx.command_timeout)
        state.engine = "rg" if f"{_MARK} rg" in result.output.splitlines() else "grep"
    return state.engine


async def _run(ctx: ToolContext, script: str) -> CommandResult:
    return await ctx.runtime.run(script, ctx.command_timeout)


def _answer(result: CommandResult, directory: str, workdir: str) -> tuple[list[int], list[str]]:
    """The counts after ``done`` and the entries listed, shown relative to the repository root;
    a :class:`Refusal` when the directory is not there or the shell's answer is not understood."""
    if result.timed_out:
        raise Refusal(msg.SEARCH_TIMED_OUT.format(path=directory))
    matches = list(_STATUS.finditer(result.output))
    if not matches:
        raise Refusal(msg.SEARCH_FAILED.format(answer=result.output.strip()[:300]))
    status, numbers = matches[-1].group(1), matches[-1].group(2).split()
    if status == "missing":
        raise Refusal(msg.DIR_NOT_FOUND.format(path=directory, workdir=workdir))
    if status == "notdir":
        raise Refusal(msg.NOT_A_DIRECTORY.format(path=directory))
    if status != "done" or len(numbers) != 2:
        raise Refusal(msg.SEARCH_FAILED.format(answer=result.output.strip()[:300]))
    prefix = directory.rstrip("/") + "/"
    entries = [
        display_path(line, workdir)
        for line in result.output.split("\n")
        if line.startswith(prefix)  # leaves out anything else, say a traced shell's `+ ...`
    ]
    return [int(number) for number in numbers], entries


def _checked(term: str) -> str:
    if term == "":
        raise Refusal(msg.EMPTY_TERM)
    if "\n" in term.rstrip("\n"):
        raise Refusal(msg.MULTILINE_TERM)
    return term.rstrip("\n")


def _cut(found: int, listed: int) -> list[str]:
    """A note when the shell listed fewer entries than it found (very long paths)."""
    return [msg.LIST_CUT.format(count=found - listed)] if listed < found else []


def _short(text: str) -> str:
    return text if len(text) <= msg.HIT_CHARS else text[: msg.HIT_CHARS] + " [...]"


def _s(count: int) -> str:
    return "" if count == 1 else "s"
