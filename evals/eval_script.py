"""The bash script that runs a task's tests after a patch, and reading its output back.

A 5.x task carries its own ``eval_script``, which is used unchanged. For the others the script is
built here. It protects the grade from the patch under test:

1. every file the test patch touches is put back to its ``base_commit`` state (files the test
   patch creates are deleted), and so are tracked ``conftest.py`` files — SWE-bench counts those
   as test files, so a source patch has no business changing them;
2. untracked files under the test patch's test directories, and untracked ``conftest.py`` /
   ``pytest.ini`` / ``sitecustomize.py`` / ``usercustomize.py`` anywhere, are deleted: any of them
   can make pytest report passes that did not happen;
3. the test patch is applied (``git apply``);
4. the test command runs in a child shell between the SWE-bench markers, so an unset variable in
   it cannot trip the script's ``set -u`` before the end marker, and its exit code is printed.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agentkit.tasks import Task

__all__ = [
    "END_MARKER",
    "EXIT_CODE_PREFIX",
    "START_MARKER",
    "TEST_PATCH_FAILED_MARKER",
    "PatchFiles",
    "build_eval_script",
    "default_test_command",
    "eval_script_for",
    "patch_files",
    "split_test_output",
]

START_MARKER = ">>>>> Start Test Output"
END_MARKER = ">>>>> End Test Output"
EXIT_CODE_PREFIX = ">>>>> Test Exit Code: "
TEST_PATCH_FAILED_MARKER = ">>>>> Test Patch Failed"

# Files that change what pytest or Python does at start-up wherever they sit.
_FORGEABLE_NAMES = ("conftest.py", "pytest.ini", "sitecustomize.py", "usercustomize.py")
_TEST_DIR_NAME = re.compile(r"^(tests?|testing)$|^test_|_tests?$")


@dataclass(frozen=True)
class PatchFiles:
    """What a unified git diff does to the tree, path by path."""

    modified: list[str] = field(default_factory=list)
    """Paths that exist before the patch (changed, deleted, or renamed away)."""
    created: list[str] = field(default_factory=list)
    """Paths the patch creates (new files and rename targets)."""
    deleted: list[str] = field(default_factory=list)


_DIFF_HEADER = re.compile(r"^diff --git a/(.+) b/(.+)$")


def _unquote(path: str) -> str:
    """Git quotes paths with unusual characters in C style; undo the common cases."""
    if len(path) >= 2 and path[0] == '"' and path[-1] == '"':
        return path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return path


def patch_files(diff: str) -> PatchFiles:
    """Classify the paths a ``git diff`` touches (pure; no repository needed)."""
    modified: list[str] = []
    created: list[str] = []
    deleted: list[str] = []
    old_path: str | None = None
    new_path: str | None = None
    is_new = is_deleted = False

    def flush() -> None:
        if old_path is None or new_path is None:
            return
        if is_new:
            created.append(new_path)
            return
        modified.append(old_path)
        if is_deleted:
            deleted.append(old_path)
        elif new_path != old_path:
            created.append(new_path)

    for line in diff.splitlines():
        header = _DIFF_HEADER.match(line)
        if header:
            flush()
            old_path, new_path = _unquote(header[1]), _unquote(header[2])
            is_new = is_deleted = False
        elif line.startswith("new file mode"):
            is_new = True
        elif line.startswith("deleted file mode"):
            is_deleted = True
        elif line.startswith("rename from "):
            old_path = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            new_path = _unquote(line[len("rename to ") :])
    flush()
    return PatchFiles(modified=modified, created=created, deleted=deleted)


def _test_files(files: PatchFiles) -> list[str]:
    """Python test modules the test patch leaves in the tree (what pytest should run)."""
    present = [path for path in [*files.modified, *files.created] if path not in files.deleted]
    seen: list[str] = []
    for path in present:
        name = PurePosixPath(path).name
        if path.endswith(".py") and name not in ("conftest.py", "__init__.py") and path not in seen:
            seen.append(path)
    return seen


def _test_dirs(files: PatchFiles) -> list[str]:
    """Directories holding the test patch's files whose own name says they hold tests.

    A test module that sits beside source code (``pkg/test_x.py``) does not make ``pkg`` a test
    directory: wiping untracked files there would delete new modules of a legitimate fix.
    """
    dirs: list[str] = []
    for path in [*files.modified, *files.created]:
        parent = PurePosixPath(path).parent
        while parent != PurePosixPath("."):
            if _TEST_DIR_NAME.search(parent.name):
                if str(parent) not in dirs:
                    dirs.append(str(parent))
                break
            parent = parent.parent
    return dirs


def default_test_command(task: Task) -> str:
    """``task.test_cmd`` (``{test_files}`` in it is replaced), else pytest on the test files."""
    files = " ".join(shlex.quote(path) for path in _test_files(patch_files(task.test_patch)))
    if task.test_cmd:
        return task.test_cmd.replace("{test_files}", files)
    return f"python3 -m pytest -rA -p no:cacheprovider {files}".rstrip()


def _heredoc_tag(text: str) -> str:
    """A heredoc delimiter that does not occur in ``text``."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    tag = f"EOF_TEST_PATCH_{digest}"
    while tag in text:
        tag += "_"
    return tag


def build_eval_script(task: Task, workdir: str | None = None) -> str:
    """The eval script for a task without one; ``workdir`` overrides ``task.workdir`` (a local
    runtime keeps the repository somewhere else than ``/testbed``)."""
    directory = shlex.quote(workdir or task.workdir)
    base = shlex.quote(task.base_commit or "HEAD")
    files = patch_files(task.test_patch)
    lines = [
        "#!/bin/bash",
        "set -uo pipefail",
        f"cd {directory} || exit 1",
    ]
    if files.modified:
        lines.append(f"git checkout {base} -- {' '.join(map(shlex.quote, files.modified))}")
    if files.created:
        lines.append(f"rm -rf -- {' '.join(map(shlex.quote, files.created))}")
    lines.append(
        f"git ls-tree -r --name-only -z {base} | grep -zE '(^|/)conftest\\.py$'"
        f" | xargs -0 -r git checkout {base} --"
    )
    for test_dir in _test_dirs(files):
        lines.append(
            f"git ls-files --others --exclude-standard -z -- {shlex.quote(test_dir)}"
            " | xargs -0 -r rm -f --"
        )
    name_pattern = "|".join(re.escape(name) for name in _FORGEABLE_NAMES)
    lines.append(
        f"git ls-files --others -z | grep -zE '(^|/)({name_pattern})$' | xargs -0 -r rm -f --"
    )
    if task.test_patch.strip():
        tag = _heredoc_tag(task.test_patch)
        patch_text = task.test_patch if task.test_patch.endswith("\n") else task.test_patch + "\n"
        lines += [
            f"if ! git apply --verbose - <<'{tag}'",
            patch_text + tag,
            "then",
            f"  echo {shlex.quote(TEST_PATCH_FAILED_MARKER)}",
            "  exit 1",
            "fi",
        ]
    lines += [
        f"echo {shlex.quote(START_MARKER)}",
        f"bash -c {shlex.quote(default_test_command(task))}",
        "test_exit_code=$?",
        f"echo {shlex.quote(END_MARKER)}",
        f'echo "{EXIT_CODE_PREFIX}$test_exit_code"',
        "",
    ]
    return "\n".join(lines)


def eval_script_for(task: Task, workdir: str | None = None) -> str:
    """The task's own script when it has one (5.x datasets), else :func:`build_eval_script`."""
    if task.eval_script:
        return task.eval_script
    return build_eval_script(task, workdir)


_EXIT_CODE_LINE = re.compile(r"^" + re.escape(EXIT_CODE_PREFIX) + r"(-?\d+)\s*$")


def split_test_output(output: str) -> tuple[str, int | None] | None:
    """``(text between the markers, the test command's exit code)``; ``None`` without both markers.

    Markers count only as whole lines (a shell trace of ``echo '>>>>> Start Test Output'`` is not
    one). The first start marker and the last end marker after it are used, so a test that prints
    a marker itself cannot cut its own failures out of the log. The exit code is ``None`` when a
    script (some 5.x ones) does not print it.
    """
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r") == START_MARKER]
    if not starts:
        return None
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r") == END_MARKER and i > starts[0]]
    if not ends:
        return None
    start, end = starts[0], ends[-1]
    exit_code: int | None = None
    for line in lines[end + 1 :]:
        match = _EXIT_CODE_LINE.match(line.rstrip("\r"))
        if match:
            exit_code = int(match[1])
            break
    return "\n".join(lines[start + 1 : end]) + "\n", exit_code
