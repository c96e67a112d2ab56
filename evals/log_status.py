"""The vocabulary every log parser shares: test statuses and the parser signature.

It lives apart from :mod:`agentkit.evals.log_parsers` (which re-exports both names) so that the
parser modules can import it while the registry imports them, without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["LogParser", "TestStatus", "status_from_word"]


class TestStatus(StrEnum):
    """Outcome of one test, named as in SWE-bench's ``TestStatus``."""

    __test__ = False  # not a pytest test class despite the name

    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"
    XFAIL = "XFAIL"


LogParser = Callable[[str], dict[str, TestStatus]]
"""A pure function: the text a test run printed → ``{test name: status}``."""

_BY_WORD: dict[str, TestStatus] = {status.value: status for status in TestStatus}

STATUS_WORDS: tuple[str, ...] = tuple(_BY_WORD)
"""The status names as printed, for ``str.startswith``/``str.endswith`` checks."""


def status_from_word(word: str) -> TestStatus | None:
    """The status spelled exactly ``word``, or ``None`` for any other word (``ERROR:``, ``XPASS``)."""
    return _BY_WORD.get(word)
