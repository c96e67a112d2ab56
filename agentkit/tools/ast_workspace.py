"""Finding and reading a task's source files through its runtime, for the AST tools.

Files are listed by the sandbox's own shell and read through the runtime's file API; parsing
happens on the host. Nothing here needs Python, or any program beyond a POSIX shell with GNU
``find``, ``grep``, ``xargs`` and ``tar`` (git when the directory is a repository), in the
sandbox: a task image for a Go or Rust project works as it is.

One listing costs a fixed number of round trips, however many files it covers: one command
lists the files (``git ls-files`` in a repository, so ignored files stay out; ``find`` otherwise),
keeps the source files (known extensions, under 1 MB, not in hidden or vendored directories), keeps
only those that contain the searched word when there is one (``grep -w``, which cannot miss a file
the parser would find it in), and packs them into one tar; one read brings the tar back; one
command removes it. The scratch files live in a fresh temporary directory outside the repository,
so they can never end up in a submission.
"""

from __future__ import annotations

import io
import posixpath
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from typing import Literal

from agentkit.runtime.base import Runtime
from agentkit.tools.ast_languages import detect_language, source_extensions

SKIPPED_DIRECTORIES: tuple[str, ...] = (
    "node_modules",
    "bower_components",
    "vendor",
    "site-packages",
    "__pycache__",
)
"""Directories never searched (besides hidden ones): other people's code, installed copies."""
MAX_FILE_BYTES = 1_000_000
"""Larger files are generated or data; they are left out of listings."""

_MARK = "agentkit-ast:"
_STATUS = re.compile(rf"^{_MARK} (\w+)(?: (\S+) (\d+) (\d+))?$", re.MULTILINE)

PathKind = Literal["file", "directory", "missing"]


class ListingFailed(Exception):
    """The sandbox's shell could not list the files; the message says what it printed."""


@dataclass
class Listing:
    """Source files under a directory, and the contents of those that were fetched."""

    kind: PathKind
    """What the path is; a file or a missing path has no files listed."""
    path: str
    """The path as shown to the model: relative to the work dir when inside it."""
    source_files: int = 0
    """Source files under the directory (after the filters)."""
    files: list[str] = field(default_factory=list)
    """Shown paths of the files that matched (all source files when no word was given)."""
    contents: dict[str, bytes] = field(default_factory=dict)
    """Shown path → bytes, for the matched files when they were no more than ``max_files``."""

    @property
    def fetched(self) -> bool:
        return len(self.contents) == len(self.files)


def display_path(path: str, workdir: str) -> str:
    """``path`` as the model should see it: relative to ``workdir`` when it lies inside it."""
    if posixpath.isabs(path):
        norm = posixpath.normpath(path)
        root = posixpath.normpath(workdir)
        if norm == root:
            return "."
        if norm.startswith(root.rstrip("/") + "/"):
            return posixpath.relpath(norm, root)
        return norm
    return posixpath.normpath(path)


async def list_sources(
    runtime: Runtime,
    path: str,
    *,
    word: str | None = None,
    max_files: int,
    timeout: float | None = None,
) -> Listing:
    """Source files under ``path`` (relative to the work dir, or absolute) and, when at most
    ``max_files`` match, their contents. ``word`` keeps only files that contain it as a whole
    word. Raises :class:`ListingFailed` when the shell's answer is not understood."""
    shown = display_path(path, runtime.workdir)
    result = await runtime.run(_script(runtime.workdir, path, word, max_files), timeout=timeout)
    if result.timed_out:
        raise ListingFailed(f"listing the files under {shown} took too long")
    matches = list(_STATUS.finditer(result.output))
    match = matches[-1] if matches else None
    if match is None:
        raise ListingFailed(f"the sandbox's shell answered: {result.output.strip()[:500]}")
    status = match.group(1)
    if status in ("missing", "file"):
        return Listing(kind="missing" if status == "missing" else "file", path=shown)
    if status != "listed" or match.group(2) is None:
        raise ListingFailed(f"the sandbox's shell answered: {result.output.strip()[:500]}")
    scratch, total, hits = match.group(2), int(match.group(3)), int(match.group(4))
    try:
        listing = Listing(kind="directory", path=shown, source_files=total)
        if hits == 0:
            return listing
        if hits <= max_files:
            data = await runtime.read_file(f"{scratch}/files.tar")
            listing.contents = _unpack(data, shown)
            listing.files = sorted(listing.contents)
        else:
            names = await runtime.read_file(f"{scratch}/hits")
            listing.files = sorted(
                _join(shown, name.decode("utf-8", errors="replace"))
                for name in names.split(b"\0")
                if name
            )
        listing.files = [name for name in listing.files if detect_language(name) is not None]
        listing.contents = {
            name: listing.contents[name] for name in listing.files if name in listing.contents
        }
        return listing
    finally:
        await runtime.run(f"rm -rf -- {shlex.quote(scratch)}", timeout=timeout)


def _script(workdir: str, path: str, word: str | None, max_files: int) -> str:
    extensions = "|".join(re.escape(ext.lstrip(".")) for ext in source_extensions())
    skipped = "|".join(re.escape(name) for name in SKIPPED_DIRECTORIES)
    keep = rf"\.({extensions})$"
    drop = rf"(^|/)(\.[^/]|-|({skipped})/)|\.min\.m?js$"
    kb = MAX_FILE_BYTES // 1000
    search = (
        f'xargs -0 -r grep -lZIwF -e {shlex.quote(word)} -- < "$t/src" > "$t/hits" 2>/dev/null'
        if word
        else 'cp "$t/src" "$t/hits"'
    )
    prune = " -o ".join(["-name '.?*'", *(f"-name {name}" for name in SKIPPED_DIRECTORIES)])
    # A subshell, so the agent's shell keeps its directory; options the agent may have set in
    # it (errexit, nounset, pipefail) would end the script at grep's "no match".
    return f"""(
set +e +u +o pipefail
cd -- {shlex.quote(workdir)} 2>/dev/null || {{ echo "{_MARK} no-workdir"; exit 0; }}
s={shlex.quote(path)}
[ -e "$s" ] || {{ echo "{_MARK} missing"; exit 0; }}
[ -d "$s" ] || {{ echo "{_MARK} file"; exit 0; }}
cd -- "$s" || exit 0
t=$(mktemp -d) || exit 0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -c core.quotepath=off ls-files -z --cached --others --exclude-standard > "$t/all" 2>/dev/null
fi
if [ ! -s "$t/all" ]; then
  find . \\( {prune} \\) -prune -o -type f -print0 > "$t/all" 2>/dev/null
fi
grep -zaiE {shlex.quote(keep)} "$t/all" | grep -zavE {shlex.quote(drop)} \\
  | xargs -0 -r sh -c 'find "$@" -maxdepth 0 -type f -size -{kb}k -print0' sh > "$t/src" 2>/dev/null
{search}
n=$(tr -cd '\\0' < "$t/src" | wc -c)
h=$(tr -cd '\\0' < "$t/hits" | wc -c)
if [ "$h" -gt 0 ] && [ "$h" -le {max_files} ]; then
  tar -cf "$t/files.tar" --null -T "$t/hits" 2>/dev/null
fi
echo "{_MARK} listed $t $n $h"
)"""


def _join(shown: str, name: str) -> str:
    name = name.removeprefix("./")
    return name if shown == "." else posixpath.normpath(posixpath.join(shown, name))


def _unpack(data: bytes, shown: str) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            if extracted is not None:
                contents[_join(shown, member.name)] = extracted.read()
    return contents
