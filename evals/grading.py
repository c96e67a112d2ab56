"""Grading: a test log and the task's expected tests → a per-instance report.

Everything here is a pure function, so a saved ``test_output.txt`` can be re-graded without a
sandbox and every edge case can be tested on strings. Field names follow SWE-bench's
``report.json`` so reports interoperate with its tooling.

Rules, each applied where it is handled below:

* The rules are SWE-bench 5.x's, so reports equal its reports field for field. A FAIL_TO_PASS
  test is fixed when its status is ``PASSED`` or ``XFAIL`` (an expected failure that failed is
  the suite working as written); ``FAILED``, ``ERROR``, ``SKIPPED`` (a skipped test is no
  evidence of a fix) and a test missing from the log (it did not run: a collection error, a
  crash, a renamed test) are failures. A PASS_TO_PASS test is kept when it passes or is
  ``SKIPPED`` (a skip is no regression). A task with ``eval_type: fail_only`` counts only
  ``FAILED`` as a failure. An expected id that a dataset cut short inside its parameters
  (``test_x[log(photon``) matches the log's full ids when they all agree on pass or fail.
  FAIL_TO_FAIL and PASS_TO_FAIL are not graded (their lists stay empty, as in SWE-bench).
* ``resolved`` = every FAIL_TO_PASS and every PASS_TO_PASS test succeeds, the patch applied, and
  the suite demonstrably ran.
* Without the start/end markers there is no evidence the suite ran: that is an infrastructure
  error (``error`` is set), never "unresolved".
* What the tamper check put back (``>>>>> Neutralized: PATH`` lines printed before the tests
  started) is listed in ``tampering``. The instance was graded on the neutralised tree, so it is
  resolved only when the code itself passes the tests; ``to_swebench`` adds a ``tampering`` key
  only when the list is not empty, so honest reports keep SWE-bench's exact shape.
* The code under test can print lines that look like pytest's. Test statuses are therefore read
  twice, from the whole log and from the log cut after each pytest session's first final line
  (``=== 1 failed in 0.1s ===``), and the worse reading of each test wins: a fake summary printed
  after pytest finished (``atexit``) and one printed inside pytest's captured-output sections
  each lose to the real one. A test whose module failed to collect did not run, whatever a
  line in the log claims.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.eval_script import (
    START_MARKER,
    TAMPER_CHECK_FAILED_MARKER,
    TEST_PATCH_FAILED_MARKER,
    split_test_output,
)
from agentkit.evals.log_parsers import TestStatus, get_log_parser, log_parser_name_for
from agentkit.evals.tamper import neutralized_paths
from agentkit.tasks import Task

__all__ = [
    "ErrorKind",
    "InstanceReport",
    "TestResults",
    "TestsStatus",
    "grade_eval_output",
    "grade_test_log",
    "is_resolved",
    "parse_test_log",
    "report_for_apply_failure",
    "report_for_error",
    "report_for_no_patch",
    "tests_status_from_statuses",
]

PASSING_STATUSES = frozenset({TestStatus.PASSED, TestStatus.XFAIL})

ErrorKind = Literal["no_test_output", "timeout", "sandbox", "test_command_missing"]
"""Why a run produced no gradeable evidence (never the patch's fault)."""


class TestResults(BaseModel):
    """Expected tests of one category split by outcome."""

    __test__ = False
    model_config = ConfigDict(extra="forbid")

    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)


class TestsStatus(BaseModel):
    """SWE-bench's ``tests_status`` block."""

    __test__ = False
    model_config = ConfigDict(extra="forbid")

    FAIL_TO_PASS: TestResults = Field(default_factory=TestResults)
    PASS_TO_PASS: TestResults = Field(default_factory=TestResults)
    FAIL_TO_FAIL: TestResults = Field(default_factory=TestResults)
    PASS_TO_FAIL: TestResults = Field(default_factory=TestResults)


class InstanceReport(BaseModel):
    """The outcome of grading one prediction.

    The first five fields are SWE-bench's per-instance report. ``error`` separates runs that gave
    no evidence (infrastructure) from patches that failed; ``test_output`` keeps the raw output of
    the eval script so a caller can write ``test_output.txt`` (it is left out of
    :meth:`to_swebench`).
    """

    model_config = ConfigDict(extra="forbid")

    instance_id: str
    patch_is_None: bool = False
    patch_exists: bool = False
    patch_successfully_applied: bool = False
    resolved: bool = False
    tests_status: TestsStatus | None = None
    error: str | None = None
    """Set when the run gave no evidence either way; ``resolved`` is then meaningless."""
    error_kind: ErrorKind | None = None
    test_exit_code: int | None = None
    test_statuses: dict[str, TestStatus] = Field(default_factory=dict)
    """Every test the log parser found, not only the expected ones."""
    apply_output: str = ""
    """What the patch-applying commands printed (why a patch did not apply)."""
    test_output: str = ""
    """The whole output of the eval script, markers included."""
    eval_script: str = ""
    """The script that ran (for ``eval.sh`` in the run's logs)."""
    tampering: list[str] = Field(default_factory=list)
    """Files the tamper check put back because the patch changed how the tests run (pytest
    configuration, ``conftest.py``, start-up hooks, plugin metadata), or that made the grader
    refuse the patch (paths inside ``.git``)."""

    def to_swebench(self) -> dict[str, Any]:
        """The ``report.json`` shape: ``{instance_id: {patch_is_None, ..., tests_status}}``.

        ``infra_failure`` is SWE-bench 5.x's advisory flag; it is always ``False`` here because a
        run without test evidence is an error (retried), never written as a report."""
        body: dict[str, Any] = {
            "patch_is_None": self.patch_is_None,
            "patch_exists": self.patch_exists,
            "patch_successfully_applied": self.patch_successfully_applied,
            "resolved": self.resolved,
            "infra_failure": False,
        }
        if self.tests_status is not None:
            body["tests_status"] = self.tests_status.model_dump()
        if self.error is not None:
            body["error"] = self.error
        if self.tampering:
            body["tampering"] = list(self.tampering)
        return {self.instance_id: body}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SESSION_START = re.compile(r"^=+ test session starts =+$")
# pytest's last line: ``=== 2 failed, 1 passed in 0.12s ===`` (``in 61.00s (0:01:01)``; before
# pytest 6 ``in 0.12 seconds``).
_SESSION_END = re.compile(r"^=+ .+ in \d+(?:\.\d+)? ?s(?:econds)?(?: \([\d:]+\))? =+$")
_SEVERITY = {"PASSED": 0, "XFAIL": 0, "SKIPPED": 1, "FAILED": 2, "ERROR": 3}


def _cut_after_session_ends(test_log: str) -> str:
    """The log with each pytest session cut after its first final line.

    Sessions are split where the parsers split them (the ``test session starts`` header). What
    follows a session's first final line and precedes the next header was printed after pytest
    finished, or is a second "final line" printed inside a captured-output section.
    """
    kept: list[str] = []
    ended = False
    for line in test_log.splitlines():
        bare = _ANSI.sub("", line).rstrip()
        if _SESSION_START.match(bare):
            ended = False
        if not ended:
            kept.append(line)
        ended = ended or bool(_SESSION_END.match(bare))
    return "\n".join(kept) + "\n"


def _worse(first: TestStatus, second: TestStatus) -> TestStatus:
    rank = _SEVERITY.get
    return second if rank(str(second), 2) > rank(str(first), 2) else first


def parse_test_log(test_log: str, log_parser: str | None) -> dict[str, TestStatus]:
    """Per-test statuses from the text between the markers, with the task's parser.

    The tests are those the parser finds in the whole log; the cut reading
    (:func:`_cut_after_session_ends`) can only make a test's status worse. Then a test whose
    module (or class) is reported as an ``ERROR`` of its own failed to collect, so it is an error.
    """
    parse = get_log_parser(log_parser)
    statuses = parse(test_log)
    cut = parse(_cut_after_session_ends(test_log))
    merged = {test: _worse(status, cut.get(test, status)) for test, status in statuses.items()}
    for test in merged:
        parts = test.split("::")
        for depth in range(1, len(parts)):
            if merged.get("::".join(parts[:depth])) == TestStatus.ERROR:
                merged[test] = TestStatus.ERROR
    return merged


def _status_of(test: str, statuses: dict[str, TestStatus]) -> TestStatus | None:
    """The logged status of an expected test, ``None`` when it did not run.

    Hundreds of SWE-bench ids are cut short inside a parametrisation (more ``[`` than ``]``);
    such an id stands for the logged ids it begins, when they all agree on pass or fail.
    """
    if test in statuses:
        return statuses[test]
    if test.count("[") > test.count("]"):
        found = [status for name, status in statuses.items() if name.startswith(test)]
        if found and len({status in PASSING_STATUSES for status in found}) == 1:
            return found[0]
    return None


def _split(tests: list[str], statuses: dict[str, TestStatus], succeeded: Outcome) -> TestResults:
    results = TestResults()
    for test in tests:
        ok = succeeded(_status_of(test, statuses))
        (results.success if ok else results.failure).append(test)
    return results


Outcome = Callable[[TestStatus | None], bool]
"""Whether an expected test succeeded, given its status (``None``: it did not run)."""


def _fixed(status: TestStatus | None) -> bool:
    return status in PASSING_STATUSES


def _kept(status: TestStatus | None) -> bool:
    return status in PASSING_STATUSES or status == TestStatus.SKIPPED


def _not_failed(status: TestStatus | None) -> bool:
    return status != TestStatus.FAILED


def tests_status_from_statuses(statuses: dict[str, TestStatus], task: Task) -> TestsStatus:
    """Sort the task's FAIL_TO_PASS and PASS_TO_PASS tests into success and failure."""
    fail_only = task.eval_type == "fail_only"
    return TestsStatus(
        FAIL_TO_PASS=_split(task.FAIL_TO_PASS, statuses, _not_failed if fail_only else _fixed),
        PASS_TO_PASS=_split(task.PASS_TO_PASS, statuses, _not_failed if fail_only else _kept),
    )


def is_resolved(tests_status: TestsStatus) -> bool:
    """Every FAIL_TO_PASS and PASS_TO_PASS test passed.

    FAIL_TO_FAIL and PASS_TO_FAIL are informational, as in SWE-bench. Empty lists pass
    vacuously, as in SWE-bench (a task without FAIL_TO_PASS tests is a dataset problem that
    instance validation reports, not something grading can decide).
    """
    f2p, p2p = tests_status.FAIL_TO_PASS, tests_status.PASS_TO_PASS
    return not f2p.failure and not p2p.failure


class _PatchFlags(TypedDict):
    patch_is_None: bool
    patch_exists: bool


def _patch_flags(patch: str | None) -> _PatchFlags:
    return {"patch_is_None": patch is None, "patch_exists": bool(patch and patch.strip())}


def report_for_no_patch(task: Task) -> InstanceReport:
    """``model_patch: null``: nothing to run; unresolved, not an error."""
    return InstanceReport(instance_id=task.instance_id, patch_is_None=True)


def report_for_apply_failure(task: Task, patch: str | None, apply_output: str) -> InstanceReport:
    """The model patch applied with none of the methods tried: unresolved, tests not run."""
    return InstanceReport(
        instance_id=task.instance_id, apply_output=apply_output, **_patch_flags(patch)
    )


def report_for_error(
    task: Task,
    patch: str | None,
    kind: ErrorKind,
    message: str,
    *,
    patch_applied: bool = True,
    test_output: str = "",
    apply_output: str = "",
) -> InstanceReport:
    """A run that gave no evidence about the patch (markers missing, sandbox died, timeout)."""
    return InstanceReport(
        instance_id=task.instance_id,
        patch_successfully_applied=patch_applied,
        error=message,
        error_kind=kind,
        test_output=test_output,
        apply_output=apply_output,
        **_patch_flags(patch),
    )


def grade_test_log(
    task: Task,
    test_log: str,
    exit_code: int | None,
    patch: str | None,
    *,
    test_output: str | None = None,
    apply_output: str = "",
) -> InstanceReport:
    """Grade the text the test command printed (already cut from between the markers)."""
    if exit_code in (126, 127):
        # The shell could not run the test command at all: the environment is broken.
        return report_for_error(
            task,
            patch,
            "test_command_missing",
            f"the test command could not be started (exit code {exit_code})",
            test_output=test_output if test_output is not None else test_log,
            apply_output=apply_output,
        )
    statuses = parse_test_log(test_log, log_parser_name_for(task.log_parser, task.repo))
    tests_status = tests_status_from_statuses(statuses, task)
    return InstanceReport(
        instance_id=task.instance_id,
        patch_successfully_applied=True,
        resolved=is_resolved(tests_status),
        tests_status=tests_status,
        test_exit_code=exit_code,
        test_statuses=statuses,
        test_output=test_output if test_output is not None else test_log,
        apply_output=apply_output,
        **_patch_flags(patch),
    )


def grade_eval_output(
    task: Task, eval_output: str, patch: str | None, *, apply_output: str = ""
) -> InstanceReport:
    """Grade the whole output of an eval script (the patch is known to have applied).

    The markers are the evidence that the suite ran; without them the run is an infrastructure
    error, because nothing can be said about the patch.
    """
    lines = eval_output.splitlines()
    before_tests = lines[: lines.index(START_MARKER)] if START_MARKER in lines else lines
    # Lines printed before the tests started, so the code under test cannot add to them.
    tampering = neutralized_paths("\n".join(before_tests))
    split = split_test_output(eval_output)
    if split is None:
        if TAMPER_CHECK_FAILED_MARKER in before_tests:
            message = "the tamper check could not run in the sandbox, so the tests did not run"
        elif TEST_PATCH_FAILED_MARKER in before_tests:
            message = "the test patch did not apply, so the tests did not run"
        else:
            message = (
                "the eval script did not print both test-output markers; the tests did not run"
            )
        report = report_for_error(
            task,
            patch,
            "no_test_output",
            message,
            test_output=eval_output,
            apply_output=apply_output,
        )
    else:
        test_log, exit_code = split
        report = grade_test_log(
            task, test_log, exit_code, patch, test_output=eval_output, apply_output=apply_output
        )
    return report.model_copy(update={"tampering": tampering}) if tampering else report
