"""Pure grading: markers, expected-test bookkeeping, resolution rules, report shape."""

from __future__ import annotations

import json
from pathlib import Path

from agentkit.evals.eval_script import END_MARKER, START_MARKER, split_test_output
from agentkit.evals.grading import (
    InstanceReport,
    TestResults,
    grade_eval_output,
    grade_test_log,
    parse_test_log,
    report_for_apply_failure,
    report_for_no_patch,
)
from agentkit.evals.log_parsers import get_log_parser, has_log_parser
from agentkit.tasks import Task

PATCH = "diff --git a/x.py b/x.py\n"


def _task(**fields: object) -> Task:
    base: dict[str, object] = {
        "instance_id": "demo__demo-1",
        "FAIL_TO_PASS": ["t.py::test_fix"],
        "PASS_TO_PASS": ["t.py::test_old"],
    }
    base.update(fields)
    return Task.model_validate(base)


def _eval_output(summary: list[str], exit_code: int = 0) -> str:
    return "\n".join(
        [
            "+ git apply ...",
            START_MARKER,
            "==== test session starts ====",
            "==== short test summary info ====",
            *summary,
            "==== done in 0.1s ====",
            END_MARKER,
            f">>>>> Test Exit Code: {exit_code}",
        ]
    )


def test_all_expected_pass_resolves() -> None:
    output = _eval_output(["PASSED t.py::test_fix", "PASSED t.py::test_old"])
    report = grade_eval_output(_task(), output, PATCH)
    assert report.resolved and report.patch_successfully_applied and report.patch_exists
    assert report.error is None
    assert report.test_exit_code == 0
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.success == ["t.py::test_fix"]
    assert report.test_output == output


def test_failing_fail_to_pass_is_unresolved() -> None:
    report = grade_eval_output(
        _task(),
        _eval_output(["FAILED t.py::test_fix - assert 1", "PASSED t.py::test_old"], 1),
        PATCH,
    )
    assert not report.resolved and report.error is None
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == ["t.py::test_fix"]


def test_pass_to_pass_regression_is_unresolved() -> None:
    report = grade_eval_output(
        _task(), _eval_output(["PASSED t.py::test_fix", "FAILED t.py::test_old - x"], 1), PATCH
    )
    assert not report.resolved
    assert report.tests_status is not None
    assert report.tests_status.PASS_TO_PASS.failure == ["t.py::test_old"]


def test_error_skipped_and_missing_tests_are_failures() -> None:
    """As in SWE-bench 5.x: a skipped FAIL_TO_PASS test is not a fix, a skipped PASS_TO_PASS
    test is no regression, a test missing from the log failed either way."""
    task = _task(
        FAIL_TO_PASS=["t.py::test_fix", "t.py::test_fix_skip"],
        PASS_TO_PASS=["t.py::test_old", "t.py::test_gone", "t.py::test_skip"],
    )
    output = _eval_output(
        ["ERROR t.py::test_fix - RuntimeError: setup", "PASSED t.py::test_old"], 1
    )
    skips = "\nt.py::test_skip SKIPPED (why)\nt.py::test_fix_skip SKIPPED (why)"
    output = output.replace(START_MARKER, START_MARKER + skips)
    report = grade_eval_output(task, output, PATCH)
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == ["t.py::test_fix", "t.py::test_fix_skip"]
    assert report.tests_status.PASS_TO_PASS.success == ["t.py::test_old", "t.py::test_skip"]
    assert report.tests_status.PASS_TO_PASS.failure == ["t.py::test_gone"]
    assert not report.resolved


def test_fail_only_tasks_count_only_failed_tests() -> None:
    task = _task(eval_type="fail_only", PASS_TO_PASS=["t.py::test_old", "t.py::test_gone"])
    report = grade_eval_output(task, _eval_output(["PASSED t.py::test_fix"]), PATCH)
    assert report.resolved
    failed = grade_eval_output(task, _eval_output(["FAILED t.py::test_old - x"], 1), PATCH)
    assert failed.tests_status is not None
    assert failed.tests_status.PASS_TO_PASS.failure == ["t.py::test_old"]
    assert not failed.resolved


def test_truncated_parametrised_ids_match_when_the_full_ids_agree() -> None:
    task = _task(FAIL_TO_PASS=["t.py::test_fix[log(photon"], PASS_TO_PASS=["t.py::test_old[a"])
    lines = [
        "PASSED t.py::test_fix[log(photon)-1]",
        "PASSED t.py::test_fix[log(photon)-2]",
        "PASSED t.py::test_old[a-1]",
        "FAILED t.py::test_old[a-2] - x",
    ]
    report = grade_eval_output(task, _eval_output(lines, 1), PATCH)
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.success == ["t.py::test_fix[log(photon"]
    assert report.tests_status.PASS_TO_PASS.failure == ["t.py::test_old[a"]


def test_xfail_counts_as_pass() -> None:
    report = grade_eval_output(
        _task(), _eval_output(["PASSED t.py::test_fix", "XFAIL t.py::test_old"]), PATCH
    )
    assert report.resolved


def test_collection_error_fails_every_test_of_the_file() -> None:
    report = grade_eval_output(_task(), _eval_output(["ERROR t.py"], 2), PATCH)
    assert not report.resolved and report.error is None
    assert report.test_statuses == {"t.py": "ERROR"}


def test_missing_markers_is_an_infrastructure_error() -> None:
    report = grade_eval_output(_task(), "PASSED t.py::test_fix\nPASSED t.py::test_old\n", PATCH)
    assert report.error is not None and report.error_kind == "no_test_output"
    assert not report.resolved and report.tests_status is None
    assert "error" in report.to_swebench()["demo__demo-1"]
    no_end = _eval_output(["PASSED t.py::test_fix"]).replace(END_MARKER, "")
    assert grade_eval_output(_task(), no_end, PATCH).error_kind == "no_test_output"


def test_test_command_not_found_is_an_infrastructure_error() -> None:
    report = grade_test_log(_task(), "bash: pytest: command not found\n", 127, PATCH)
    assert report.error_kind == "test_command_missing"


def test_json_string_expected_tests() -> None:
    task = _task(
        FAIL_TO_PASS=json.dumps(["t.py::test_fix"]),
        PASS_TO_PASS=json.dumps(["t.py::test_old"]),
        PASS_TO_FAIL=json.dumps(["t.py::test_meant_to_break"]),
    )
    report = grade_eval_output(
        task, _eval_output(["PASSED t.py::test_fix", "PASSED t.py::test_old"]), PATCH
    )
    assert report.resolved
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.success == ["t.py::test_fix"]
    # Not graded, as in SWE-bench 5.x: the lists stay empty.
    assert report.tests_status.PASS_TO_FAIL == TestResults()


def test_no_patch_and_apply_failure_reports() -> None:
    none = report_for_no_patch(_task())
    assert none.patch_is_None and not none.patch_exists and not none.resolved
    failed = report_for_apply_failure(_task(), "garbage", "error: corrupt patch")
    assert failed.patch_exists and not failed.patch_successfully_applied and not failed.resolved
    empty = report_for_apply_failure(_task(), "", "")
    assert not empty.patch_exists and not empty.patch_is_None


def test_swebench_report_shape_round_trips() -> None:
    report = grade_eval_output(
        _task(), _eval_output(["PASSED t.py::test_fix", "PASSED t.py::test_old"]), PATCH
    )
    body = report.to_swebench()["demo__demo-1"]
    assert set(body) == {
        "patch_is_None",
        "patch_exists",
        "patch_successfully_applied",
        "resolved",
        "infra_failure",
        "tests_status",
    }
    assert set(body["tests_status"]) == {
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "FAIL_TO_FAIL",
        "PASS_TO_FAIL",
    }
    assert InstanceReport.model_validate_json(report.model_dump_json()) == report


def test_split_uses_whole_marker_lines() -> None:
    traced = f"+ echo '{START_MARKER}'\n{START_MARKER}\nbody\n+ echo '{END_MARKER}'\n{END_MARKER}\n"
    assert split_test_output(traced) == ("body\n+ echo '>>>>> End Test Output'\n", None)
    assert split_test_output("nothing") is None


# --- tampering and output the code under test can forge ---------------------------------------


def test_neutralised_files_are_reported_only_when_there_are_some() -> None:
    clean = _eval_output(["PASSED t.py::test_fix", "PASSED t.py::test_old"])
    assert "tampering" not in grade_eval_output(_task(), clean, PATCH).to_swebench()["demo__demo-1"]
    flagged = ">>>>> Neutralized: tox.ini\n>>>>> Neutralized: conftest.py\n" + clean
    report = grade_eval_output(_task(), flagged, PATCH)
    assert report.tampering == ["tox.ini", "conftest.py"] and report.resolved
    assert report.to_swebench()["demo__demo-1"]["tampering"] == ["tox.ini", "conftest.py"]
    # The code under test prints after the start marker: it can neither add nor hide entries.
    printed = clean.replace(START_MARKER, START_MARKER + "\n>>>>> Neutralized: fake.ini")
    assert grade_eval_output(_task(), printed, PATCH).tampering == []
    broken = ">>>>> Neutralized: tox.ini\n>>>>> Tamper Check Failed\n"
    failed = grade_eval_output(_task(), broken, PATCH)
    assert failed.error_kind == "no_test_output" and failed.tampering == ["tox.ini"]
    assert failed.error == "the tamper check could not run in the sandbox, so the tests did not run"


REAL_SESSION = [
    "============================= test session starts ==============================",
    "collected 2 items",
    "",
    "t.py F.                                                                  [100%]",
    "=================================== FAILURES ===================================",
    "___________________________________ test_fix ___________________________________",
    "----------------------------- Captured stdout call -----------------------------",
    "=========================== short test summary info ============================",
    "PASSED t.py::test_fix",
    "============================== 2 passed in 0.01s ===============================",
    "==================================== PASSES ====================================",
    "=========================== short test summary info ============================",
    "PASSED t.py::test_old",
    "FAILED t.py::test_fix - assert False",
    "========================= 1 failed, 1 passed in 0.05s ==========================",
]
FAKE_AT_EXIT = [
    "=========================== short test summary info ============================",
    "PASSED t.py::test_fix",
    "PASSED t.py::test_old",
    "============================== 2 passed in 0.01s ===============================",
]


def _graded(lines: list[str]) -> InstanceReport:
    output = "\n".join([START_MARKER, *lines, END_MARKER, ">>>>> Test Exit Code: 0"])
    return grade_eval_output(_task(), output, PATCH)


def test_fake_summaries_in_captured_output_or_after_pytest_do_not_count() -> None:
    captured = _graded(REAL_SESSION)  # a fake summary and final line inside captured output
    assert captured.test_statuses["t.py::test_fix"] == "FAILED"
    plain = REAL_SESSION[:7] + REAL_SESSION[10:]
    printed_at_exit = _graded([*plain, *FAKE_AT_EXIT])  # e.g. by an atexit handler
    assert printed_at_exit.test_statuses["t.py::test_fix"] == "FAILED"
    assert not printed_at_exit.resolved
    # A second pytest run in the same command is a session of its own and still counts.
    rerun = _graded([*plain, REAL_SESSION[0], *FAKE_AT_EXIT])
    assert rerun.test_statuses["t.py::test_old"] == "PASSED"


def test_a_test_whose_module_failed_to_collect_did_not_run() -> None:
    report = _graded(
        [
            REAL_SESSION[0],
            "collected 0 items / 1 error",
            "==================================== ERRORS ====================================",
            "------------------------------- Captured stdout --------------------------------",
            REAL_SESSION[0],
            "t.py::test_fix PASSED",
            "t.py::test_old PASSED",
            "=========================== short test summary info ============================",
            "ERROR t.py",
            "=============================== 1 error in 0.10s ===============================",
        ]
    )
    assert report.test_statuses == {
        "t.py": "ERROR",
        "t.py::test_fix": "ERROR",
        "t.py::test_old": "ERROR",
    }
    assert not report.resolved


def _golden_logs() -> list[tuple[str, str, str]]:
    """(name, log, parser) for every golden log of the parsers (honest runs)."""
    golden = Path(__file__).parent / "golden"
    found = [(p.name, p.read_text(), "pytest") for p in sorted((golden / "grading").glob("*.txt"))]
    for record in sorted((golden / "log_parsers").glob("*.json")):
        data = json.loads(record.read_text())
        if "log" in data:
            log = (golden / "log_parsers" / data["log"]).read_text()
            found += [(data["log"], log, name) for name in data["expected"] if has_log_parser(name)]
    return found


def test_honest_logs_read_exactly_as_the_parser_reads_them() -> None:
    logs = _golden_logs()
    assert len(logs) >= 3
    for name, log, parser in logs:
        assert parse_test_log(log, parser) == get_log_parser(parser)(log), (name, parser)
