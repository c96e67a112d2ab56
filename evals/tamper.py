"""Undo what a patch changed about *how* its tests run, before they run.

Some files decide how pytest and Python behave without being code under test: pytest's
configuration (``pytest.ini``, ``tox.ini`` ``[pytest]``, ``setup.cfg`` ``[tool:pytest]``,
``pyproject.toml`` ``[tool.pytest.ini_options]``, ...), ``conftest.py`` files, start-up hooks
(``sitecustomize`` / ``usercustomize`` modules, ``.pth`` files), environment files, and package
metadata that registers pytest plugins (``*.dist-info`` / ``*.egg-info`` entry points). A patch
that adds ``addopts = -p plug`` and a plugin marking every test passed would otherwise resolve a
task without fixing anything.

The check runs in the sandbox after the patch is applied and before the tests. Every such file
the patch changed goes back to its ``base_commit`` state (one the patch created is deleted) and
is reported on a ``>>>>> Neutralized: PATH`` line; grading turns those lines into the report's
``tampering`` list. In ``tox.ini``, ``setup.cfg`` and ``pyproject.toml`` only the test runner's
part counts: an edit of ``[metadata]`` or ``[project]`` is left alone and not reported. Files
under the task's test directories and compiled ``*.pyc`` files are put back as well, without a
report line: the tests belong to the task, and agents' diffs often carry bytecode.

Which paths are looked at: the ones the patch names (the grader passes them, so build output
that an image holds outside git is never touched), or, when no patch is known, every tracked
file that differs from ``base_commit`` and every untracked file (right for the clean trees
agentkit builds).

This module is also the program: an eval script embeds its source and runs it with the
sandbox's ``python3`` (3.7 or newer, standard library only, ``-I`` so the repository cannot
shadow a module it imports). Hence it imports nothing from agentkit and stays 3.7-compatible.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import posixpath
import re
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "NEUTRALIZED_PREFIX",
    "TAMPER_CHECK_FAILED_MARKER",
    "candidate_paths",
    "classify",
    "git_internal_paths",
    "ini_pytest_sections",
    "neutralize",
    "neutralized_paths",
    "program",
    "toml_pytest_tables",
    "touched_paths",
]

NEUTRALIZED_PREFIX = ">>>>> Neutralized: "
TAMPER_CHECK_FAILED_MARKER = ">>>>> Tamper Check Failed"

# Judged by their test-runner sections only.
_INI_NAMES = frozenset({"tox.ini", "setup.cfg"})
_TOML_NAMES = frozenset({"pyproject.toml"})
# Any change counts: pytest reads these whole (``.env`` through pytest-dotenv), Python runs them
# at start-up, or importlib.metadata finds plugins in them.
_FILE_NAMES = frozenset({"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "conftest.py"})
_FILE_PREFIXES = ("sitecustomize.", "usercustomize.")  # .py, .pyc, or an extension module
_FILE_SUFFIXES = (".pth", ".egg-link", ".env")
_ENVIRONMENT_DIRS = frozenset({"site-packages", "dist-packages", ".pytest_cache"})
_METADATA_SUFFIXES = (".egg-info", ".dist-info")
_BYTECODE_SUFFIXES = (".pyc", ".pyo")


# --- which paths matter -----------------------------------------------------------------------


def classify(path: str, test_dirs: Sequence[str]) -> tuple[str | None, bool]:
    """``(rule, reset)`` for a repository-relative path.

    ``rule`` says how a change is judged for the report: ``"ini"`` / ``"toml"`` (its pytest
    sections), ``"file"`` (any change), or ``None`` (never reported). ``reset`` is true for files
    put back whatever changed in them: the task's test directories and bytecode.
    """
    parts = path.split("/")
    name = parts[-1]
    rule: str | None = None
    if any(part in _ENVIRONMENT_DIRS or part.endswith(_METADATA_SUFFIXES) for part in parts):
        rule = "file"
    elif name in _INI_NAMES:
        rule = "ini"
    elif name in _TOML_NAMES:
        rule = "toml"
    elif name in _FILE_NAMES or name.startswith(_FILE_PREFIXES) or name.endswith(_FILE_SUFFIXES):
        rule = "file"
    reset = (
        name.endswith(_BYTECODE_SUFFIXES)
        or "__pycache__" in parts
        or any(path == d or path.startswith(d.rstrip("/") + "/") for d in test_dirs)
    )
    return rule, reset


def candidate_paths(paths: Iterable[str], test_dirs: Sequence[str]) -> list[str]:
    """The paths the check has to look at (empty: the eval script can skip it)."""
    return sorted({p for p in paths if classify(p, test_dirs) != (None, False)})


def ini_pytest_sections(text: str) -> list[tuple[str, list[str]]]:
    """The sections whose name mentions pytest, as pytest's ini reader (iniconfig) splits them.

    A header is a line that starts with ``[`` and, comments cut, ends with ``]``. Blank and
    comment lines are dropped (they mean nothing to pytest), so reformatting around a section
    does not count as changing it.
    """
    sections: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("["):
            head = line.split("#")[0].split(";")[0].rstrip()
            if head.endswith("]"):
                name = head[1:-1]
                current = [] if "pytest" in name.lower() else None
                if current is not None:
                    sections.append((name, current))
                continue
        if current is not None and line.strip() and not line.strip().startswith(("#", ";")):
            current.append(line.rstrip())
    return sections


def _toml_loads() -> Callable[[str], dict[str, Any]] | None:
    """A TOML parser: the standard library's (3.11+), else one that ships with pytest or pip."""
    for module in ("tomllib", "tomli", "pip._vendor.tomli", "pip._vendor.toml"):
        try:
            loads: Callable[[str], dict[str, Any]] = importlib.import_module(module).loads
            return loads
        except Exception:  # noqa: BLE001 - any failure just means: try the next one
            continue
    return None


def toml_pytest_tables(text: str) -> tuple[str, Any]:
    """What pytest and its plugins read from a ``pyproject.toml``: the ``tool.*pytest*`` tables.

    Without any TOML parser the whole text stands in (any change then counts); a file that does
    not parse is compared as text too.
    """
    loads = _toml_loads()
    if loads is None:
        return ("text", text)
    try:
        tool = loads(text).get("tool")
    except Exception:  # noqa: BLE001 - pytest would fail on it; compare the text
        return ("text", text)
    if not isinstance(tool, dict):
        return ("tables", {})
    return ("tables", {key: value for key, value in tool.items() if "pytest" in key.lower()})


# --- the patch's paths (host side) ------------------------------------------------------------

_C_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_C_ESCAPES.update({"a": "\a", "b": "\b", "f": "\f", "v": "\v"})


def _unquote(name: str) -> str:
    """Git's C-style quoting: escapes and octal UTF-8 bytes."""
    if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
        return name
    out = bytearray()
    body, i = name[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            if body[i + 1 : i + 4].isdigit() and len(body[i + 1 : i + 4]) == 3:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out += _C_ESCAPES.get(body[i + 1], body[i + 1]).encode()
            i += 2
            continue
        out += char.encode()
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _variants(raw: str, strip: bool) -> list[str]:
    """The repository path a header name means: as written, or after ``-p1`` (both appliers
    drop the smallest prefix holding one run of slashes; a name without one is not usable)."""
    name = _unquote(raw.strip())
    if name == "/dev/null":
        return []
    if strip:
        cut = re.match(r"[^/]*/+", name)
        name = name[cut.end() :] if cut else ""
    clean = posixpath.normpath(name) if name else ""
    if not clean or clean.startswith(("/", "../")) or clean in (".", ".."):
        return []
    return [clean]


def touched_paths(patch: str) -> list[str]:
    """Every path a patch may write, read liberally from every header ``git apply`` or GNU
    ``patch`` understands (git headers, unified ``---``/``+++`` and context ``***``/``---``
    pairs, ``Index:``, renames and copies). Extra guesses are harmless: the check only acts on
    a path whose content differs from ``base_commit``."""
    found: set[str] = set()
    lines = patch.splitlines()
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        names: list[tuple[str, bool]] = []
        if line.startswith("diff --git "):
            # Two names, either of which may hold spaces: split at the first and the last space,
            # and in the middle (git's own reading when both names are the same).
            rest = line[len("diff --git ") :]
            for split in {rest.find(" "), rest.rfind(" "), len(rest) // 2}:
                if 0 < split < len(rest) and rest[split] == " ":
                    names += [(rest[:split], True), (rest[split + 1 :], True)]
        elif line.startswith(("--- ", "*** ")) and following.startswith(("+++ ", "--- ")):
            for header in (line, following):
                rest = header[4:]
                names += [(rest.split("\t")[0], True), (rest.split(" ")[0], True)]
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            names.append((line.split(" ", 2)[2], False))
        elif line.startswith("Index: "):  # as written and stripped: GNU patch may take either
            names += [(line[len("Index: ") :], False), (line[len("Index: ") :], True)]
        for name, strip in names:
            found.update(_variants(name, strip))
    return sorted(found)


def git_internal_paths(paths: Iterable[str]) -> list[str]:
    """Paths inside a ``.git`` directory: a patch that writes hooks or git's configuration
    would run code in every later git command, so such a patch is refused, not neutralised."""
    return sorted(p for p in paths if ".git" in (part.lower() for part in p.split("/")))


def neutralized_paths(text: str) -> list[str]:
    """The paths the check reported in ``text`` (the eval output before the tests started)."""
    return [
        line.rstrip("\r")[len(NEUTRALIZED_PREFIX) :]
        for line in text.splitlines()
        if line.startswith(NEUTRALIZED_PREFIX)
    ]


def program(settings: dict[str, Any]) -> str:
    """This module's source with a call to :func:`neutralize`, for ``python3 -I -``."""
    with open(os.path.abspath(__file__), encoding="utf-8") as handle:
        source = handle.read()
    return source + f"\n\nraise SystemExit(_main({settings!r}))\n"


# --- the program (sandbox side) ---------------------------------------------------------------


def _git(workdir: str, *args: str) -> bytes:
    command = ["git", "-c", "core.hooksPath=/dev/null", "--literal-pathspecs", *args]
    done = subprocess.run(command, cwd=workdir, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def _split_z(output: bytes) -> list[str]:
    return [os.fsdecode(item) for item in output.split(b"\0") if item]


def _base_tree(workdir: str, base: str) -> dict[str, tuple[str, str]]:
    """``{path: (mode, blob id)}`` of the base commit (submodules left out)."""
    tree = {}
    for entry in _split_z(_git(workdir, "ls-tree", "-r", "-z", base)):
        meta, path = entry.split("\t", 1)
        mode, kind, sha = meta.split(" ")
        if kind == "blob":
            tree[path] = (mode, sha)
    return tree


def _current(workdir: str, path: str) -> tuple[str, bytes] | None:
    """``("link" | "file" | "other", content)`` of a working-tree entry; ``None`` when absent or
    reached through a symlinked directory (then it is not the repository's file)."""
    full = os.path.join(workdir, path)
    parent = os.path.realpath(os.path.dirname(full))
    if parent != workdir and not parent.startswith(workdir + os.sep):
        return None
    try:
        info = os.lstat(full)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.fsencode(os.readlink(full)))
    if stat.S_ISREG(info.st_mode):
        with open(full, "rb") as handle:
            return ("file", handle.read())
    return ("other", b"")


def _same(current: tuple[str, bytes], base_entry: tuple[str, str]) -> bool:
    kind = "link" if base_entry[0] == "120000" else "file"
    digest = hashlib.sha256 if len(base_entry[1]) == 64 else hashlib.sha1
    blob = b"blob %d\0" % len(current[1]) + current[1]
    return kind == current[0] and digest(blob).hexdigest() == base_entry[1]


def _pytest_part(rule: str, content: bytes | None) -> Any:
    if content is None:
        return ("tables", {}) if rule == "toml" else []
    text = content.decode("utf-8", "replace")
    return toml_pytest_tables(text) if rule == "toml" else ini_pytest_sections(text)


def _remove(workdir: str, path: str) -> None:
    os.unlink(os.path.join(workdir, path))
    parent = os.path.dirname(path)
    while parent:  # leave no empty ``x.dist-info/`` behind
        try:
            os.rmdir(os.path.join(workdir, parent))
        except OSError:
            break
        parent = os.path.dirname(parent)


def neutralize(
    workdir: str, base: str, test_dirs: Sequence[str], paths: Sequence[str] | None
) -> list[str]:
    """Put back what the patch changed among ``paths`` (``None``: find them in the tree) and
    return the reported (test-runner) paths."""
    workdir = os.path.realpath(workdir)
    if paths is None:
        found = _split_z(_git(workdir, "diff", "--name-only", "-z", "--no-renames", base))
        untracked = _split_z(_git(workdir, "ls-files", "--others", "-z"))
        paths = found + [path for path in untracked if not path.endswith("/")]
    tree = _base_tree(workdir, base)
    restore: list[str] = []
    delete: list[str] = []
    reported: list[str] = []
    for path in candidate_paths(paths, test_dirs):
        rule, reset = classify(path, test_dirs)
        current, base_entry = _current(workdir, path), tree.get(path)
        if current is None and base_entry is None:
            continue
        if current is not None and (
            current[0] == "other" or (base_entry is not None and _same(current, base_entry))
        ):
            continue  # unchanged, or a directory (only files are judged)
        if rule in ("ini", "toml"):
            before = _git(workdir, "cat-file", "blob", base_entry[1]) if base_entry else None
            after = current[1] if current is not None else None
            changed = _pytest_part(rule, before) != _pytest_part(rule, after)
        else:
            changed = rule == "file"
        if not (changed or reset):
            continue
        if base_entry is not None:
            restore.append(path)
        elif current is not None:
            delete.append(path)
        if changed:
            reported.append(path)
    for start in range(0, len(restore), 200):
        _git(workdir, "checkout", base, "--", *restore[start : start + 200])
    for path in delete:
        _remove(workdir, path)
    return reported


def _main(settings: dict[str, Any]) -> int:
    try:
        reported = neutralize(
            settings["workdir"], settings["base"], settings["test_dirs"], settings["paths"]
        )
    except Exception as exc:  # noqa: BLE001 - reported; the eval script stops before the tests
        print(f"agentkit tamper check failed: {exc!r}", file=sys.stderr)
        return 1
    for path in reported:
        print(NEUTRALIZED_PREFIX + path.replace("\n", "\\n"))
    sys.stdout.flush()
    return 0
