"""Grading: a test log and the task's expected tests → a per-instance report.

Everything here is a pure function, so a saved ``test_output.txt`` can be re-graded without a
sandbox and every edge case can be tested on strings. Field names follow SWE-bench's
``report.json`` so reports interoperate with its tooling.

Rules, each applied where it is handled below:

* A test passes when its status is ``PASSED`` or ``XFAIL`` (SWE-bench's rule: an expected failure
  that failed is the suite working as written).
* Everything else is a failure: ``FAILED``, ``ERROR``, ``SKIPPED`` (stricter than SWE-bench, which
  silently drops skipped tests from both lists: a skipped FAIL_TO_PASS test is no evidence of a fix)
  and a test missing from the log (it did not run: a collection error, a crash, a renamed test).
* ``resolved`` = every FAIL_TO_PASS and every PASS_TO_PASS test passes, the patch applied, and
  the suite demonstrably ran.
* Without the start/end markers there is no evidence the suite ran: that is an infrastructure
  error (``error`` is set), never "unresolved".
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agentkit.evals.eval_script import TEST_PATCH_FAILED_MARKER, split_test_output
from agentkit.evals.log_parsers import TestStatus, get_log_parser
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

    def to_swebench(self) -> dict[str, Any]:
        """The ``report.json`` shape: ``{instance_id: {patch_is_None, ..., tests_status}}``."""
        body: dict[str, Any] = {
            "patch_is_None": self.patch_is_None,
            "patch_exists": self.patch_exists,
            "patch_successfully_applied": self.patch_successfully_applied,
            "resolved": self.resolved,
        }
        if self.tests_status is not None:
            body["tests_status"] = self.tests_status.model_dump()
        if self.error is not None:
            body["error"] = self.error
        return {self.instance_id: body}


def _expected(task: Task, field: str) -> list[str]:
    """Expected tests of a category; FAIL_TO_FAIL / PASS_TO_FAIL are optional dataset extras and,
    like FAIL_TO_PASS, may arrive as JSON strings."""
    value = getattr(task, field, None)
    if value is None and task.model_extra:
        value = task.model_extra.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        return list(Task.model_validate({"instance_id": "_", "FAIL_TO_PASS": value}).FAIL_TO_PASS)
    return [str(item) for item in value]


def parse_test_log(test_log: str, log_parser: str | None) -> dict[str, TestStatus]:
    """Per-test statuses from the text between the markers, with the task's parser."""
    return get_log_parser(log_parser)(test_log)


def _split(tests: list[str], statuses: dict[str, TestStatus]) -> TestResults:
    results = TestResults()
    for test in tests:
        # A test absent from the log did not run, which never counts as a pass.
        if statuses.get(test) in PASSING_STATUSES:
            results.success.append(test)
        else:
            results.failure.append(test)
    return results


def tests_status_from_statuses(statuses: dict[str, TestStatus], task: Task) -> TestsStatus:
    """Sort the task's expected tests into success/failure for every category."""
    return TestsStatus(
        FAIL_TO_PASS=_split(_expected(task, "FAIL_TO_PASS"), statuses),
        PASS_TO_PASS=_split(_expected(task, "PASS_TO_PASS"), statuses),
        FAIL_TO_FAIL=_split(_expected(task, "FAIL_TO_FAIL"), statuses),
        PASS_TO_FAIL=_split(_expected(task, "PASS_TO_FAIL"), statuses),
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
    statuses = parse_test_log(test_log, task.log_parser)
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
    split = split_test_output(eval_output)
    if split is None:
        test_patch_failed = TEST_PATCH_FAILED_MARKER in eval_output.splitlines()
        return report_for_error(
            task,
            patch,
            "no_test_output",
            "the test patch did not apply, so the tests did not run"
            if test_patch_failed
            else "the eval script did not print both test-output markers; the tests did not run",
            test_output=eval_output,
            apply_output=apply_output,
        )
    test_log, exit_code = split
    return grade_test_log(
        task, test_log, exit_code, patch, test_output=eval_output, apply_output=apply_output
    )
