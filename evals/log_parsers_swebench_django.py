"""Django's test runner log read exactly as SWE-bench's harness (5.x) reads it.

SWE-bench runs ``./tests/runtests.py --verbosity 2``, whose lines look like
``test_x (app.tests.Case) ... ok``. A test with a docstring prints its name on one line and the
docstring's first line, followed by `` ... ok``, on the next; SWE-bench then records the
*docstring* as the test's name, and Django instances' ``PASS_TO_PASS`` lists contain those
sentences. So the name here is whatever precedes `` ... `` on the line, as in SWE-bench, and
not the ``test_x (app.tests.Case)`` a unittest-aware parser would pick.

Why the odd rules below exist: a test that writes to the terminal splits ``... ok`` over two
lines, so a line starting with ``ok`` passes the last test that was announced; and a few
long messages Django prints mid-run (``Testing against Django installed in …``,
``Internal Server Error: /…/``) are recognised over several lines.

One deliberate difference: SWE-bench crashes (``IndexError``) on a line that is exactly
``FAIL:`` or ``ERROR:``; such a line is skipped here. Django always prints a test name after
those words, so honest logs are read identically.
"""

from __future__ import annotations

import re

from agentkit.evals.log_status import TestStatus

__all__ = ["parse_swebench_django"]

_PASS_ENDINGS = (" ... ok", " ... OK", " ...  OK")
# django__django-7188 prints a migration progress line and the test's result on one line.
_MIGRATION_PREFIX = "Applying sites.0002_alter_domain_unique...test_no_migrations"
_VERSION_TEST = "--version is equivalent to version"

# A result interrupted by a message that spans lines, then ``ok`` alone on the next line.
_INTERRUPTED_PASSES = (
    re.compile(
        r"^(?P<test>.*?)\s\.\.\.\sTesting against Django installed in (?s:.*?) silenced\)\.\nok$",
        re.MULTILINE,
    ),
    re.compile(r"^(?P<test>.*?)\s\.\.\.\sInternal Server Error: /.*/\nok$", re.MULTILINE),
    # As SWE-bench writes it: without the full stop Django prints, so it rarely matches.
    re.compile(
        r"^(?P<test>.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$",
        re.MULTILINE,
    ),
)


def _second_word(line: str) -> str | None:
    words = line.split()
    return words[1] if len(words) > 1 else None


def _read_line(line: str, statuses: dict[str, TestStatus], announced: str | None) -> str | None:
    """Apply one stripped line's rules in SWE-bench's order; return the last announced test.

    The rules are not exclusive: a later rule overwrites an earlier one for the same name.
    """
    if _VERSION_TEST in line:
        statuses[_VERSION_TEST] = TestStatus.PASSED
    if " ... " in line:
        announced = line.partition(" ... ")[0]
    ending = next((ending for ending in _PASS_ENDINGS if line.endswith(ending)), None)
    if ending is not None:
        if line.startswith(_MIGRATION_PREFIX):
            line = line.split("...", 1)[-1].strip()
        statuses[line.rsplit(ending, 1)[0]] = TestStatus.PASSED
    if " ... skipped" in line:
        statuses[line.partition(" ... skipped")[0]] = TestStatus.SKIPPED
    if line.endswith(" ... FAIL"):
        statuses[line.partition(" ... FAIL")[0]] = TestStatus.FAILED
    if line.startswith("FAIL:") and (name := _second_word(line)) is not None:
        statuses[name] = TestStatus.FAILED
    if line.endswith(" ... ERROR"):
        statuses[line.partition(" ... ERROR")[0]] = TestStatus.ERROR
    if line.startswith("ERROR:") and (name := _second_word(line)) is not None:
        statuses[name] = TestStatus.ERROR
    if line.startswith("ok") and announced is not None:
        statuses[announced] = TestStatus.PASSED
    return announced


def parse_swebench_django(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_django``: ``name ... ok|FAIL|ERROR|skipped``, ``FAIL:``/``ERROR:``.

    ``ok``/``OK`` → passed, ``skipped …`` → skipped, ``FAIL`` → failed, ``ERROR`` → error.
    ``expected failure`` and ``unexpected success`` are not recorded (SWE-bench ignores them).
    The ``FAIL: test_x (app.tests.Case)`` headers of the failure report record the bare word
    ``test_x``, as SWE-bench does.
    """
    statuses: dict[str, TestStatus] = {}
    announced: str | None = None
    for line in log.split("\n"):
        announced = _read_line(line.strip(), statuses, announced)
    for pattern in _INTERRUPTED_PASSES:
        for match in pattern.finditer(log):
            statuses[match["test"]] = TestStatus.PASSED
    return statuses
