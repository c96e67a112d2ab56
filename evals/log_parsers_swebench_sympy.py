"""SymPy's own test runner log (``bin/test -C --verbose``) read exactly as SWE-bench 5.x reads it.

With ``--verbose`` the runner prints one line per test: ``test_name ok``, ``test_name F``
(failed), ``test_name E`` (exception), ``test_name f`` (expected failure), ``test_name X``
(unexpectedly passed), ``test_name reason s`` (skipped). Names are bare function names,
which is how SymPy instances' test lists spell them. Only ``ok``/``F``/``E`` are recorded: the
others grade as missing, i.e. as failures, exactly as in SWE-bench.

The report after the run has one header per failure or exception,
``____ sympy/core/tests/test_x.py:test_name ____``; SWE-bench records each as a failure under
the ``path.py:name`` spelling, which no dataset list uses, and so do we for identical output.
SWE-bench finds those headers with a loose pattern (a space, anything, ``.py:``, anything, a
space) that may also match other lines carrying ``.py:``; it is reproduced as is.
"""

from __future__ import annotations

import re

from agentkit.evals.log_status import TestStatus

__all__ = ["parse_swebench_sympy"]

# Greedy on purpose: the path runs to the last ``.py:`` and the name to the last space that
# still leaves a match, as in SWE-bench. ``.`` never crosses a newline, so a match is one line.
_REPORT_HEADER = re.compile(r"_* (?P<path>.*)\.py:(?P<name>.*) _*")

_VERDICTS = ((" E", TestStatus.ERROR), (" F", TestStatus.FAILED), (" ok", TestStatus.PASSED))


def parse_swebench_sympy(log: str) -> dict[str, TestStatus]:
    """SWE-bench's ``parse_log_sympy``: report headers as failures, then per-test verdict lines."""
    statuses: dict[str, TestStatus] = {}
    for match in _REPORT_HEADER.finditer(log):
        statuses[f"{match['path']}.py:{match['name']}"] = TestStatus.FAILED
    for raw_line in log.split("\n"):
        line = raw_line.strip()
        if not line.startswith("test_"):
            continue
        for ending, status in _VERDICTS:
            if line.endswith(ending):
                statuses[line.split()[0]] = status
    return statuses
