"""Log parsers on real pytest output: goldens from the base image's pytest 7.2 and live runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentkit.evals.log_parsers import (
    TestStatus,
    UnknownLogParserError,
    get_log_parser,
    log_parser_names,
    parse_log_pytest,
    parse_log_unittest,
)

GOLDEN = Path(__file__).parent / "golden" / "grading"

EXPECTED_A = {
    "tests/test_a.py::test_ok": TestStatus.PASSED,
    "tests/test_a.py::test_bad": TestStatus.FAILED,
    "tests/test_a.py::test_p[a b]": TestStatus.FAILED,
    "tests/test_a.py::test_p[c - d]]": TestStatus.PASSED,
    "tests/test_a.py::test_p[e[f]]": TestStatus.PASSED,
    "tests/test_a.py::test_xf": TestStatus.XFAIL,
    "tests/test_a.py::test_xp": TestStatus.PASSED,
    "tests/test_a.py::test_err": TestStatus.ERROR,
    "tests/test_a.py::test_print": TestStatus.PASSED,
}

TEST_A_SOURCE = """
import pytest
def test_ok(): pass
def test_bad(): assert 1 == 2, "boom - [x]"
@pytest.mark.parametrize("v", ["a b", "c - d]", "e[f]"])
def test_p(v): assert v != "a b"
@pytest.mark.skip(reason="no")
def test_skip(): pass
@pytest.mark.xfail
def test_xf(): assert 0
@pytest.mark.xfail
def test_xp(): pass
@pytest.fixture
def broken(): raise RuntimeError("setup")
def test_err(broken): pass
def test_print(): print("PASSED tests/test_a.py::test_bad")
"""


def test_golden_rA() -> None:
    statuses = parse_log_pytest((GOLDEN / "pytest72_rA.txt").read_text())
    assert statuses == EXPECTED_A


def test_golden_verbose_adds_skipped_ids() -> None:
    statuses = parse_log_pytest((GOLDEN / "pytest72_verbose_rA.txt").read_text())
    assert statuses == {**EXPECTED_A, "tests/test_a.py::test_skip": TestStatus.SKIPPED}


def test_golden_collection_error_is_recorded_under_the_file() -> None:
    statuses = parse_log_pytest((GOLDEN / "pytest72_collection_error.txt").read_text())
    assert statuses == {"tests/test_b.py": TestStatus.ERROR}


def _run_pytest(project: Path, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout + completed.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(TEST_A_SOURCE)
    return tmp_path


def test_live_pytest_rA(project: Path) -> None:
    assert parse_log_pytest(_run_pytest(project, "-rA", "tests/test_a.py")) == EXPECTED_A


def test_live_pytest_verbose_and_color(project: Path) -> None:
    log = _run_pytest(project, "-rA", "-v", "--color=yes", "tests/test_a.py")
    assert "\x1b[" in log
    assert parse_log_pytest(log) == {
        **EXPECTED_A,
        "tests/test_a.py::test_skip": TestStatus.SKIPPED,
    }


def test_live_collection_error(project: Path) -> None:
    (project / "tests" / "test_b.py").write_text("def test_x(:\n    pass\n")
    statuses = parse_log_pytest(_run_pytest(project, "-rA", "tests"))
    assert statuses["tests/test_b.py"] == TestStatus.ERROR
    assert "tests/test_a.py::test_ok" not in statuses  # collection errors interrupt the run


def test_forged_summary_in_captured_output_is_ignored() -> None:
    log = "\n".join(
        [
            "============================= test session starts ==============================",
            "==================================== PASSES ====================================",
            "----------------------------- Captured stdout call -----------------------------",
            "PASSED tests/test_a.py::test_hidden",
            "=========================== short test summary info ============================",
            "PASSED tests/test_a.py::test_ok",
            "========================= 1 passed in 0.01s =========================",
        ]
    )
    assert parse_log_pytest(log) == {"tests/test_a.py::test_ok": TestStatus.PASSED}


def test_worst_outcome_wins_and_multiple_sessions() -> None:
    log = "\n".join(
        [
            "==== test session starts ====",
            "==== short test summary info ====",
            "PASSED a.py::t1",
            "ERROR a.py::t1 - teardown failed",
            "==== 1 passed, 1 error in 0.1s ====",
            "==== test session starts ====",
            "==== short test summary info ====",
            "FAILED b.py::t2 - x",
            "==== 1 failed in 0.1s ====",
        ]
    )
    assert parse_log_pytest(log) == {"a.py::t1": TestStatus.ERROR, "b.py::t2": TestStatus.FAILED}


def test_summary_without_headers_and_messages_with_brackets() -> None:
    log = "FAILED t.py::test_y - assert [1] == [2]\nPASSED t.py::C::test_z[1-2]\n"
    assert parse_log_pytest(log) == {
        "t.py::test_y": TestStatus.FAILED,
        "t.py::C::test_z[1-2]": TestStatus.PASSED,
    }


def test_unittest_parser() -> None:
    log = (
        "test_a (app.tests.T) ... ok\n"
        "test_b (app.tests.T) ... FAIL\n"
        "test_c (app.tests.T)\nDocstring ... ERROR\n"
        "test_d (app.tests.T) ... skipped 'why'\n"
        "test_e (app.tests.T) ... expected failure\n"
    )
    assert parse_log_unittest(log) == {
        "test_a (app.tests.T)": TestStatus.PASSED,
        "test_b (app.tests.T)": TestStatus.FAILED,
        "test_d (app.tests.T)": TestStatus.SKIPPED,
        "test_e (app.tests.T)": TestStatus.XFAIL,
    }


def test_registry() -> None:
    assert get_log_parser(None) is parse_log_pytest
    assert get_log_parser("parse_log_pytest") is parse_log_pytest
    assert "pytest" in log_parser_names()
    with pytest.raises(UnknownLogParserError, match="known parsers: .*pytest"):
        get_log_parser("nose")
