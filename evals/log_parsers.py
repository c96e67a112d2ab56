"""Test-log parsers: the text a test run printed → ``{test name: status}``, and their registry.

Parsers are pure functions over the log text so grading can be replayed from a saved
``test_output.txt`` without a sandbox. Status names are SWE-bench's (``PASSED``, ``FAILED``,
``SKIPPED``, ``ERROR``, ``XFAIL``) so reports stay comparable with its harness.

Two families are registered:

* ``pytest`` and ``unittest`` (this module) are agentkit's own readers, for tasks whose test
  lists agentkit produced: full pytest ids (spaces and brackets included), only the real short
  summary, the worst outcome when a test is reported twice.
* every ``parse_log_*`` name a SWE-bench 5.x instance may carry in its ``log_parser`` field
  reads the log exactly as SWE-bench's parser of that name does (modules
  ``log_parsers_swebench_*``), because those instances' test lists were written by that reader,
  quirks included; any other reading would grade differently from SWE-bench.
"""

from __future__ import annotations

import re

from agentkit.evals.log_parsers_swebench_django import parse_swebench_django
from agentkit.evals.log_parsers_swebench_pytest import (
    parse_swebench_matplotlib,
    parse_swebench_pytest,
    parse_swebench_pytest_options,
    parse_swebench_pytest_v2,
    parse_swebench_seaborn,
)
from agentkit.evals.log_parsers_swebench_sympy import parse_swebench_sympy
from agentkit.evals.log_status import LogParser, TestStatus

__all__ = [
    "LogParser",
    "TestStatus",
    "UnknownLogParserError",
    "get_log_parser",
    "has_log_parser",
    "log_parser_name_for",
    "log_parser_names",
    "parse_log_pytest",
    "parse_log_unittest",
    "swebench_log_parser_for_repo",
]


class UnknownLogParserError(KeyError):
    """A task names a log parser that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Words pytest prints, mapped to our statuses. XPASS (an xfail test that passed, non-strict) is a
# pass: a strict xfail that passes is reported by pytest itself as FAILED.
_PYTEST_WORDS: dict[str, TestStatus] = {
    "PASSED": TestStatus.PASSED,
    "FAILED": TestStatus.FAILED,
    "ERROR": TestStatus.ERROR,
    "SKIPPED": TestStatus.SKIPPED,
    "XFAIL": TestStatus.XFAIL,
    "XPASS": TestStatus.PASSED,
}

# When one test is reported several times (verbose line, then summary; or a test that passed
# but errored in teardown) the worst outcome wins.
_SEVERITY = {
    TestStatus.PASSED: 0,
    TestStatus.XFAIL: 0,
    TestStatus.SKIPPED: 1,
    TestStatus.FAILED: 2,
    TestStatus.ERROR: 3,
}

_SUMMARY_LINE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S.*)$")
_VERBOSE_LINE = re.compile(
    r"^(?P<node>[^\s:]+::\S.*?) (?P<word>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)"
    r"(?: \(.*\))?(?:\s+\[\s*\d+%\])?\s*$"
)
# ``SKIPPED [1] tests/test_a.py:12: reason`` names a location, not a test: it cannot be mapped.
_SKIP_LOCATION = re.compile(r"^\[\d+\] ")


def _split_node_and_message(rest: str) -> str:
    """Cut the `` - message`` (or XPASS reason) pytest appends to a summary line.

    A node id has no spaces before its parameter part, so without a ``[`` in the first word the
    id is that word. A parameter id may contain spaces and even `` - ``, so it runs to the bracket
    that closes its ``[``; unbalanced brackets fall back to the first ``]`` that ends the line or
    is followed by `` - ``.
    """
    first_word = rest.split(" ", 1)[0]
    bracket = first_word.find("[")
    if bracket < 0:
        return first_word
    depth = 0
    for index in range(bracket, len(rest)):
        char = rest[index]
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                tail = rest[index + 1 :]
                if tail == "" or tail.startswith(" "):
                    return rest[: index + 1]
    for match in re.finditer(r"\](?= - |$)", rest):
        return rest[: match.end()]
    return first_word


def _record(statuses: dict[str, TestStatus], name: str, status: TestStatus) -> None:
    previous = statuses.get(name)
    if previous is None or _SEVERITY[status] > _SEVERITY[previous]:
        statuses[name] = status


_SECTION_HEADER = re.compile(r"^=+ (?P<title>.+?) =+$")


def _pytest_sessions(lines: list[str]) -> list[list[str]]:
    """Split a log into pytest runs (a test command may run pytest more than once)."""
    sessions: list[list[str]] = [[]]
    for line in lines:
        header = _SECTION_HEADER.match(line)
        if header and header["title"] == "test session starts" and sessions[-1]:
            sessions.append([])
        sessions[-1].append(line)
    return sessions


def _parse_pytest_session(lines: list[str], statuses: dict[str, TestStatus]) -> None:
    headers = [
        (index, match["title"])
        for index, line in enumerate(lines)
        if (match := _SECTION_HEADER.match(line))
    ]
    summary_starts = [index for index, title in headers if title == "short test summary info"]
    # Progress lines (``-v``) come before the first report section (FAILURES, PASSES, ...).
    first_section = next(
        (index for index, title in headers if title != "test session starts"), len(lines)
    )
    for line in lines[:first_section]:
        verbose = _VERBOSE_LINE.match(line)
        if verbose:
            _record(statuses, verbose["node"], _PYTEST_WORDS[verbose["word"]])
    if summary_starts:
        # Only the real (last) short summary counts: captured output of a test printed earlier in
        # the FAILURES/PASSES sections could contain lines that look like summary lines.
        start = summary_starts[-1] + 1
        end = next((index for index, _ in headers if index >= start), len(lines))
        summary_lines = lines[start:end]
    else:
        summary_lines = lines  # an unusual layout: accept summary lines anywhere
    for line in summary_lines:
        summary = _SUMMARY_LINE.match(line)
        if not summary:
            continue
        word, rest = summary.groups()
        if word == "SKIPPED" and _SKIP_LOCATION.match(rest):
            continue
        name = _split_node_and_message(rest)
        if name:
            _record(statuses, name, _PYTEST_WORDS[word])


def parse_log_pytest(log: str) -> dict[str, TestStatus]:
    """Parse pytest output run with ``-rA`` (short summary for every outcome); ``-v`` lines too.

    Handles: ``PASSED path::test``, ``FAILED path::test - message``, ``ERROR path`` (a module
    that failed to collect, recorded under the file path), parametrized ids with spaces or
    brackets, ANSI colours, several pytest runs in one log, and verbose
    ``path::test PASSED [ 50%]`` lines (the only place a skipped test's id appears: ``-rA``
    reports skips by location). When a test is reported more than once the worst outcome wins,
    so a forged "PASSED" line can never hide a real failure.
    """
    statuses: dict[str, TestStatus] = {}
    lines = [_ANSI.sub("", raw).rstrip() for raw in log.splitlines()]
    for session in _pytest_sessions(lines):
        _parse_pytest_session(session, statuses)
    return statuses


_UNITTEST_LINE = re.compile(
    r"^(?P<name>\S+ \([\w.]+\))(?: \S.*?)? \.\.\. (?P<outcome>ok|FAIL|ERROR|skipped.*|"
    r"expected failure|unexpected success)$"
)
_UNITTEST_OUTCOMES: dict[str, TestStatus] = {
    "ok": TestStatus.PASSED,
    "FAIL": TestStatus.FAILED,
    "ERROR": TestStatus.ERROR,
    "expected failure": TestStatus.XFAIL,
    "unexpected success": TestStatus.FAILED,
}


def parse_log_unittest(log: str) -> dict[str, TestStatus]:
    """Parse ``python -m unittest -v`` (and Django's runner) lines: ``test_x (mod.Case) ... ok``.

    An "unexpected success" fails the run in unittest, so it is a failure here too.
    """
    statuses: dict[str, TestStatus] = {}
    for raw_line in log.splitlines():
        match = _UNITTEST_LINE.match(_ANSI.sub("", raw_line).rstrip())
        if not match:
            continue
        outcome = match["outcome"]
        status = (
            TestStatus.SKIPPED if outcome.startswith("skipped") else _UNITTEST_OUTCOMES[outcome]
        )
        _record(statuses, match["name"], status)
    return statuses


# SWE-bench 5.x's parser names for Python repositories (its ``PARSER_REGISTRY``); several
# repositories share one reader under their own name.
_SWEBENCH_PARSERS: dict[str, LogParser] = {
    "parse_log_pytest": parse_swebench_pytest,
    "parse_log_astroid": parse_swebench_pytest,
    "parse_log_flask": parse_swebench_pytest,
    "parse_log_marshmallow": parse_swebench_pytest,
    "parse_log_pvlib": parse_swebench_pytest,
    "parse_log_pyvista": parse_swebench_pytest,
    "parse_log_sqlfluff": parse_swebench_pytest,
    "parse_log_xarray": parse_swebench_pytest,
    "parse_log_pytest_options": parse_swebench_pytest_options,
    "parse_log_pydicom": parse_swebench_pytest_options,
    "parse_log_pylint": parse_swebench_pytest_options,
    "parse_log_requests": parse_swebench_pytest_options,
    "parse_log_pytest_v2": parse_swebench_pytest_v2,
    "parse_log_astropy": parse_swebench_pytest_v2,
    "parse_log_scikit": parse_swebench_pytest_v2,
    "parse_log_sphinx": parse_swebench_pytest_v2,
    "parse_log_django": parse_swebench_django,
    "parse_log_matplotlib": parse_swebench_matplotlib,
    "parse_log_seaborn": parse_swebench_seaborn,
    "parse_log_sympy": parse_swebench_sympy,
}
_REGISTRY: dict[str, LogParser] = {
    "pytest": parse_log_pytest,
    "unittest": parse_log_unittest,
    **_SWEBENCH_PARSERS,
}
# Short names kept from earlier releases.
_ALIASES: dict[str, str] = {
    "pytest_v2": "parse_log_pytest_v2",
    "django": "parse_log_django",
}

# Which parser SWE-bench uses for each Python repository, for instances (SWE-bench before 5.x,
# SWE-bench Verified/Lite exports) that name a repository but no ``log_parser``.
_SWEBENCH_REPO_PARSERS: dict[str, str] = {
    "astropy/astropy": "parse_log_astropy",
    "django/django": "parse_log_django",
    "marshmallow-code/marshmallow": "parse_log_marshmallow",
    "matplotlib/matplotlib": "parse_log_matplotlib",
    "mwaskom/seaborn": "parse_log_seaborn",
    "pallets/flask": "parse_log_flask",
    "psf/requests": "parse_log_requests",
    "pvlib/pvlib-python": "parse_log_pvlib",
    "pydata/xarray": "parse_log_xarray",
    "pydicom/pydicom": "parse_log_pydicom",
    "pylint-dev/astroid": "parse_log_astroid",
    "pylint-dev/pylint": "parse_log_pylint",
    "pytest-dev/pytest": "parse_log_pytest",
    "pyvista/pyvista": "parse_log_pyvista",
    "scikit-learn/scikit-learn": "parse_log_scikit",
    "sphinx-doc/sphinx": "parse_log_sphinx",
    "sqlfluff/sqlfluff": "parse_log_sqlfluff",
    "sympy/sympy": "parse_log_sympy",
}


def swebench_log_parser_for_repo(repo: str) -> str | None:
    """The parser name SWE-bench uses for ``repo`` (``owner/name``), or ``None`` if it has none."""
    return _SWEBENCH_REPO_PARSERS.get(repo)


def log_parser_name_for(log_parser: str | None, repo: str) -> str:
    """The parser a task is graded with: its own ``log_parser``; else, for a repository SWE-bench
    knows (original SWE-bench datasets carry no parser name), the one SWE-bench uses for it, so
    the expected test ids (written by that parser) are found; else ``pytest``."""
    return log_parser or swebench_log_parser_for_repo(repo) or "pytest"


def log_parser_names() -> list[str]:
    """Every name :func:`get_log_parser` accepts."""
    return sorted([*_REGISTRY, *_ALIASES])


def has_log_parser(name: str) -> bool:
    """Whether :func:`get_log_parser` knows ``name``."""
    return name in _REGISTRY or name in _ALIASES


def get_log_parser(name: str | None) -> LogParser:
    """The parser registered as ``name`` (``None`` means ``pytest``, the SWE-bench default)."""
    key = "pytest" if name is None else _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownLogParserError(
            f"unknown log parser {name!r}; known parsers: {', '.join(log_parser_names())}"
        ) from None
