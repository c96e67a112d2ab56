"""The bash script that runs a task's tests after a patch, and reading its output back.

A 5.x task carries its own ``eval_script``, which runs unchanged. For the others the script is
built here. Both protect the grade from the patch under test:

1. the tamper check (:mod:`agentkit.evals.tamper`) puts back what the patch changed about how
   the tests run (pytest configuration, ``conftest.py``, start-up hooks, plugin metadata, files
   in the task's test directories) and prints a ``>>>>> Neutralized: PATH`` line per test-runner
   file; a task's own script runs after it. The grader passes the patch, so only the paths it
   names are looked at, and a patch that names none of those runs no check (one ``python3``
   process otherwise);
2. every file the test patch touches is put back to its ``base_commit`` state (files the test
   patch creates are deleted), then the test patch is applied (``git apply``);
3. the test command runs in a child shell between the SWE-bench markers, so an unset variable in
   it cannot trip the script's ``set -u`` before the end marker, and its exit code is printed.
   The default pytest command starts pytest through a launcher that silences the process once
   pytest has returned: nothing printed later (``atexit`` handlers, leftover threads of the code
   under test) can pose as pytest's summary.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from agentkit.evals.tamper import (
    TAMPER_CHECK_FAILED_MARKER,
    candidate_paths,
    program,
    touched_paths,
)
from agentkit.tasks import Task

__all__ = [
    "END_MARKER",
    "EXIT_CODE_PREFIX",
    "START_MARKER",
    "TAMPER_CHECK_FAILED_MARKER",
    "TEST_PATCH_FAILED_MARKER",
    "PatchFiles",
    "build_eval_script",
    "default_test_command",
    "eval_script_for",
    "patch_files",
    "split_test_output",
    "tamper_check_lines",
]

START_MARKER = ">>>>> Start Test Output"
END_MARKER = ">>>>> End Test Output"
EXIT_CODE_PREFIX = ">>>>> Test Exit Code: "
TEST_PATCH_FAILED_MARKER = ">>>>> Test Patch Failed"

# Interpreters tried for the tamper check, in order (a 5.x script activates its own
# environment only after the check has run).
_PYTHONS = ("python3", "/usr/bin/python3", "/opt/miniconda3/bin/python3", "/opt/conda/bin/python3")
# ``python -m pytest``, ended by silencing stdout and stderr at the file-descriptor level once
# pytest returns, so that nothing the code under test prints afterwards reaches the log.
_PYTEST_LAUNCHER = (
    "import os, sys; sys.path[0] = os.getcwd(); import pytest; "
    'code = int(pytest.console_main() if hasattr(pytest, "console_main") else pytest.main()); '
    "sys.stdout.flush(); sys.stderr.flush(); quiet = os.open(os.devnull, os.O_WRONLY); "
    "os.dup2(quiet, 1); os.dup2(quiet, 2); sys.exit(code)"
)
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
    return f"python3 -c {shlex.quote(_PYTEST_LAUNCHER)} -rA -p no:cacheprovider {files}".rstrip()


def _heredoc_tag(text: str, prefix: str = "EOF_TEST_PATCH") -> str:
    """A heredoc delimiter that does not occur in ``text``."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    tag = f"{prefix}_{digest}"
    while tag in text:
        tag += "_"
    return tag


def tamper_check_lines(task: Task, workdir: str, patch: str | None) -> list[str]:
    """Bash lines that run the tamper check in ``workdir``; stop the script when it cannot run.

    ``patch`` is the model patch (only the paths it names are checked; none of interest → no
    lines at all) or ``None`` (check every changed and untracked file of the tree).
    """
    test_dirs = _test_dirs(patch_files(task.test_patch))
    paths = None if patch is None else candidate_paths(touched_paths(patch), test_dirs)
    if paths == []:
        return []
    settings = {
        "workdir": workdir,
        "base": task.base_commit or "HEAD",
        "test_dirs": test_dirs,
        "paths": paths,
    }
    text = program(settings)
    tag = _heredoc_tag(text, "EOF_TAMPER_CHECK")
    finders = " || ".join(f"command -v {shlex.quote(name)}" for name in _PYTHONS)
    return [
        "# Undo what the patch changed about how the tests run (agentkit.evals.tamper).",
        f"agentkit_python=$({finders} || command -v python)",
        f"if ! \"${{agentkit_python:-false}}\" -I - <<'{tag}'",
        text + tag,
        "then",
        f"  echo {shlex.quote(TAMPER_CHECK_FAILED_MARKER)}",
        "  exit 1",
        "fi",
    ]


def build_eval_script(
    task: Task,
    workdir: str | None = None,
    patch: str | None = None,
    *,
    record_exit_code: bool = True,
) -> str:
    """The eval script for a task without one; ``workdir`` overrides ``task.workdir`` (a local
    runtime keeps the repository somewhere else than ``/testbed``); ``patch`` is the model patch
    (see :func:`tamper_check_lines`). Without ``record_exit_code`` the end marker follows the test
    command directly, the shape SWE-bench 5.x expects (its harness records the code itself)."""
    directory = workdir or task.workdir
    base = shlex.quote(task.base_commit or "HEAD")
    files = patch_files(task.test_patch)
    lines = [
        "#!/bin/bash",
        "set -uo pipefail",
        f"cd {shlex.quote(directory)} || exit 1",
        *tamper_check_lines(task, directory, patch),
    ]
    if files.modified:
        lines.append(f"git checkout {base} -- {' '.join(map(shlex.quote, files.modified))}")
    if files.created:
        lines.append(f"rm -rf -- {' '.join(map(shlex.quote, files.created))}")
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
    ]
    if record_exit_code:
        lines += [
            "test_exit_code=$?",
            f"echo {shlex.quote(END_MARKER)}",
            f'echo "{EXIT_CODE_PREFIX}$test_exit_code"',
        ]
    else:
        lines.append(f"echo {shlex.quote(END_MARKER)}")
    return "\n".join([*lines, ""])


def eval_script_for(task: Task, workdir: str | None = None, patch: str | None = None) -> str:
    """What the grader runs: :func:`build_eval_script`, or for a task with its own script (5.x
    datasets) the tamper check followed by that script, unchanged, in a shell of its own (it
    keeps its working directory, shell options and exit code). When the check has nothing to
    look at, the task's script is returned as it is."""
    if not task.eval_script:
        return build_eval_script(task, workdir, patch)
    check = tamper_check_lines(task, workdir or task.workdir, patch)
    if not check:
        return task.eval_script
    own = task.eval_script if task.eval_script.endswith("\n") else task.eval_script + "\n"
    tag = _heredoc_tag(own, "EOF_TASK_EVAL_SCRIPT")
    return "\n".join(
        [
            "#!/bin/bash",
            f"( cd {shlex.quote(workdir or task.workdir)} || exit 1",
            *check,
            ") || exit 1",
            "# The task's own eval script, unchanged.",
            "agentkit_task_script=$(mktemp) || exit 1",
            f"cat > \"$agentkit_task_script\" <<'{tag}'",
            own + tag,
            'bash "$agentkit_task_script"',
            "agentkit_status=$?",
            'rm -f "$agentkit_task_script"',
            'exit "$agentkit_status"',
            "",
        ]
    )


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
