"""Log parsers on real runner output.

Two sets of goldens: ``golden/grading`` (the base image's pytest 7.2, for agentkit's own
``pytest`` parser) and ``golden/log_parsers`` (pytest 7/8, unittest, Django and SymPy runs made by
``scripts/make_parser_logs.py``, each with the statuses SWE-bench 5.x's parser of each name
reports, so the ``parse_log_*`` parsers are held to SWE-bench's reading without SWE-bench
installed here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit.evals.log_parsers import (
    TestStatus,
    UnknownLogParserError,
    get_log_parser,
    has_log_parser,
    log_parser_names,
    parse_log_pytest,
    parse_log_unittest,
    swebench_log_parser_for_repo,
)
from agentkit.evals.log_parsers_swebench_django import parse_swebench_django
from agentkit.evals.log_parsers_swebench_pytest import (
    parse_swebench_matplotlib,
    parse_swebench_pytest,
    parse_swebench_pytest_options,
    parse_swebench_pytest_v2,
    parse_swebench_seaborn,
)
from agentkit.evals.log_parsers_swebench_sympy import parse_swebench_sympy

GOLDEN = Path(__file__).parent / "golden" / "grading"
PARSER_GOLDEN = Path(__file__).parent / "golden" / "log_parsers"

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
    assert get_log_parser("pytest") is parse_log_pytest
    assert get_log_parser("unittest") is parse_log_unittest
    assert get_log_parser("parse_log_pytest") is parse_swebench_pytest
    assert "pytest" in log_parser_names()
    with pytest.raises(UnknownLogParserError, match="known parsers: .*pytest"):
        get_log_parser("nose")


# --- SWE-bench-compatible parsers on real logs (tests/golden/log_parsers) -------------------


def _golden_records() -> list[dict[str, Any]]:
    records = []
    for path in sorted(PARSER_GOLDEN.glob("*.json")):
        record = json.loads(path.read_text())
        if "expected" in record:
            records.append(record)
    return records


GOLDEN_CASES = [
    pytest.param(record, name, id=f"{record['log']}-{name}")
    for record in _golden_records()
    for name in record["expected"]
]
VALID_STATUSES = {status.value for status in TestStatus}


def test_the_goldens_cover_every_runner_and_reader() -> None:
    records = _golden_records()
    logs = {record["log"] for record in records}
    assert {"django_verbosity2.log", "sympy_verbose.log", "unittest_verbose.log"} <= logs
    assert len(logs) >= 10
    for record in records:
        assert set(record["expected"]) == {
            "parse_log_pytest",
            "parse_log_pytest_options",
            "parse_log_pytest_v2",
            "parse_log_django",
            "parse_log_sympy",
            "parse_log_matplotlib",
            "parse_log_seaborn",
        }
        assert len((PARSER_GOLDEN / record["log"]).read_bytes()) < 12_000  # goldens stay small


@pytest.mark.parametrize(("record", "name"), GOLDEN_CASES)
def test_golden_log_reads_as_swebench_reads_it(record: dict[str, Any], name: str) -> None:
    log = (PARSER_GOLDEN / record["log"]).read_text()
    statuses = get_log_parser(name)(log)
    assert {test: str(status) for test, status in statuses.items()} == record["expected"][name]


@pytest.mark.parametrize(("record", "name"), GOLDEN_CASES)
def test_golden_differs_from_swebench_only_by_non_status_words(
    record: dict[str, Any], name: str
) -> None:
    """SWE-bench stores ``ERROR:`` (from ``ERROR: test_x (...)`` lines) as a status; we drop it."""
    extra = record["swebench_only"].get(name, {})
    assert not set(extra) & set(record["expected"][name])
    assert not set(extra.values()) & VALID_STATUSES


def test_golden_expectations_are_not_empty_where_the_reader_fits() -> None:
    by_log = {record["log"]: record["expected"] for record in _golden_records()}
    assert by_log["django_verbosity2.log"]["parse_log_django"][
        "A docstring's first line becomes the name."
    ] == ("PASSED")
    assert by_log["sympy_verbose.log"]["parse_log_sympy"]["test_fail"] == "FAILED"
    assert by_log["pytest8_rA.log"]["parse_log_pytest"]["tests/test_sample.py::test_ids[a"] == (
        "FAILED"
    )
    assert by_log["pytest8_color.log"]["parse_log_pytest"] == {}  # colours hide the summary
    assert by_log["pytest8_color.log"]["parse_log_pytest_v2"]


def test_every_swebench_python_parser_name_is_registered_with_the_same_reader() -> None:
    registry = json.loads((PARSER_GOLDEN / "swebench_registry.json").read_text())
    names = log_parser_names()
    for name, reader in registry["parsers"].items():
        assert has_log_parser(name) and name in names
        assert get_log_parser(name) is get_log_parser(reader)
    for repo, reader in registry["repos"].items():
        name = swebench_log_parser_for_repo(repo)
        assert name is not None and get_log_parser(name) is get_log_parser(reader)
    assert swebench_log_parser_for_repo("octo/unknown") is None


def test_existing_short_names_still_resolve() -> None:
    for name in ("pytest", "unittest", "pytest_v2", "django"):
        assert has_log_parser(name) and name in log_parser_names()
    assert get_log_parser("django") is parse_swebench_django
    assert get_log_parser("pytest_v2") is parse_swebench_pytest_v2
    assert not has_log_parser("parse_log_jest")  # not a Python reader: not registered


def test_agentkit_pytest_parser_on_the_new_real_logs_keeps_full_ids() -> None:
    statuses = parse_log_pytest((PARSER_GOLDEN / "pytest8_color.log").read_text())
    assert statuses["tests/test_sample.py::test_ids[a b]"] == TestStatus.FAILED
    assert statuses["tests/test_sample.py::test_ids[c - d]"] == TestStatus.PASSED
    assert statuses["tests/test_sample.py::test_teardown_error"] == TestStatus.ERROR
    assert statuses["tests/test_sample.py::test_xpass"] == TestStatus.PASSED
    assert statuses["tests/test_sample.py::test_fail"] == TestStatus.FAILED


# --- SWE-bench-compatible parsers: edge cases, one rule each -------------------------------

P, F, E, S, X = (
    TestStatus.PASSED,
    TestStatus.FAILED,
    TestStatus.ERROR,
    TestStatus.SKIPPED,
    TestStatus.XFAIL,
)


def test_swebench_pytest_reads_the_first_word_and_the_last_report_wins() -> None:
    log = (
        "PASSED a.py::t[x y]\n"
        "FAILED a.py::u - assert 1\n"
        "FAILED a.py::v[p - q] - boom\n"
        "XFAIL a.py::w - reason\n"
        "XPASS a.py::z\n"
        "SKIPPED [2] a.py:3: why\n"
        "SKIPPED a.py::s\n"
        "PASSED a.py::u\r\n"
        "FAILED a.py::u\n"
        "\x1b[32mPASSED\x1b[0m a.py::coloured\n"
        "  PASSED a.py::indented\n"
        "PASSED\n"
    )
    assert parse_swebench_pytest(log) == {
        "a.py::t[x": P,
        "a.py::u": F,
        "a.py::v[p": F,
        "a.py::w": X,
        "a.py::s": S,
    }


def test_lines_whose_first_word_is_not_a_status_are_dropped() -> None:
    """Deliberate difference: SWE-bench records ``{"file": "ERROR:"}`` here (never a test)."""
    log = "ERROR: file or directory not found: a.py::t\nERRORS x\nPASSED a.py::t\n"
    assert parse_swebench_pytest(log) == {"a.py::t": P}
    assert parse_swebench_pytest_v2(log) == {"a.py::t": P}


def test_swebench_pytest_options_keeps_the_last_path_component() -> None:
    log = (
        "PASSED t.py::a[/testbed/data/one.dcm]\n"
        "PASSED t.py::b[//server/share]\n"
        "PASSED t.py::c[/testbed/*.txt]\n"
        "PASSED t.py::d[x][/y/z]tail\n"
        "PASSED t.py::e[unclosed\n"
        "FAILED t.py::f[/a/b - c] - msg\n"
    )
    assert parse_swebench_pytest_options(log) == {
        "t.py::a[/one.dcm]": P,
        "t.py::b[//server/share]": P,
        "t.py::c[/testbed/*.txt]": P,
        "t.py::d[x][/y/z]": P,
        "t.py::e[unclosed": P,
        "t.py::f[/a/b": F,
    }


def test_swebench_pytest_v2_whole_names_and_classic_verbose_lines() -> None:
    log = (
        "PASSED t.py::a[x y]\n"
        "FAILED t.py::b[p - q] - boom\n"
        "ERROR t.py::c - RuntimeError: x\n"
        "t.py::d PASSED\n"
        "t.py::e \x1b[32mPASSED\x1b[0m\n"
        "t.py::f PASSED [ 50%]\n"
        "t.py::g\tstuff XFAIL\n"
        "\x1b[1;31mFAILED\x1b[0m t.py::h\n"
        "SKIPPED [1] t.py:3: no\n"
        "t.py::i XPASSED\n"
    )
    assert parse_swebench_pytest_v2(log) == {
        "t.py::a[x y]": P,
        "t.py::b[p": F,
        "t.py::c - RuntimeError: x": E,
        "t.py::d": P,
        "t.py::e": P,
        "t.py::gstuff": X,
    }


def test_swebench_matplotlib_renames_mouse_buttons() -> None:
    log = "PASSED t.py::a[MouseButton.LEFT]\nFAILED t.py::b[MouseButton.RIGHT-x] - m\n"
    assert parse_swebench_matplotlib(log) == {"t.py::a[1]": P, "t.py::b[3-x]": F}


def test_swebench_seaborn_records_only_passes_and_failures() -> None:
    log = (
        "t.py::a PASSED [ 10%]\n"
        "t.py::b FAILED [ 20%]\n"
        "PASSED t.py::c\n"
        "PASSED t.py::d PASSED x\n"
        "FAILED t.py::e - m\n"
        "ERROR t.py::f\n"
        "XFAIL t.py::g\n"
    )
    assert parse_swebench_seaborn(log) == {"t.py::a": P, "t.py::c": P, "t.py::e": F}


def test_swebench_django_names_docstrings_and_late_oks() -> None:
    log = "\n".join(
        [
            "test_a (app.tests.T) ... ok",
            "test_b (app.tests.T)",
            "First docstring line. ... ok",
            "test_c (app.tests.T) ... printed output",
            "ok",
            "test_d (app.tests.T) ... skipped 'why'",
            "test_e (app.tests.T) ... FAIL",
            "test_f (app.tests.T) ... ERROR",
            "test_g (app.tests.T) ... expected failure",
            "test_h (app.tests.T) ... unexpected success",
            "test_i (app.tests.T) ... OK",
            "  test_j (app.tests.T) ...  OK  ",
            "FAIL: test_e (app.tests.T)",
            "ERROR: setUpClass (app.tests.U)",
        ]
    )
    assert parse_swebench_django(log) == {
        "test_a (app.tests.T)": P,
        "First docstring line.": P,
        "test_c (app.tests.T)": P,
        "test_d (app.tests.T)": S,
        "test_e (app.tests.T)": F,
        "test_f (app.tests.T)": E,
        "test_i (app.tests.T)": P,
        "test_j (app.tests.T)": P,
        "test_e": F,
        "setUpClass": E,
    }


def test_swebench_django_bare_report_headers_are_skipped() -> None:
    """Deliberate difference: SWE-bench raises IndexError on a bare ``FAIL:``/``ERROR:`` line."""
    log = "test_a (app.tests.T) ... ok\nFAIL:\nERROR:  \n"
    assert parse_swebench_django(log) == {"test_a (app.tests.T)": P}


def test_swebench_django_messages_that_interrupt_a_result() -> None:
    log = (
        "test_a (x.T) ... Testing against Django installed in '/d' with up to 8 processes\n"
        "System check identified no issues (0 silenced).\n"
        "ok\n"
        "test_b (x.T) ... Internal Server Error: /view/\n"
        "ok\n"
        "test_c (x.T) ... FAIL\n"
        "okay, some output\n"  # any line starting with "ok" passes the last announced test
        "Applying sites.0002_alter_domain_unique...test_no_migrations (m.T) ... ok\n"
        "--version is equivalent to version\n"
    )
    statuses = parse_swebench_django(log)
    assert statuses == {
        "test_a (x.T)": P,
        "test_b (x.T)": P,
        "test_c (x.T)": P,
        "test_no_migrations (m.T)": P,  # django__django-7188's glued migration line
        "--version is equivalent to version": P,
    }


def test_swebench_sympy_verdicts_and_report_headers() -> None:
    log = (
        "sympy/core/tests/test_a.py[5] \n"
        "test_ok ok\n"
        "test_fail F\n"
        "test_error E\n"
        "test_xfail f\n"
        "test_skip reason s\n"
        "   test_indented ok  \n"
        "not_a_test ok\n"
        "________ sympy/core/tests/test_a.py:test_fail ________\n"
    )
    assert parse_swebench_sympy(log) == {
        "test_ok": P,
        "test_fail": F,
        "test_error": E,
        "test_indented": P,
        "sympy/core/tests/test_a.py:test_fail": F,
    }


def test_a_task_without_a_parser_name_is_read_as_swebench_reads_its_repository():
    """Original SWE-bench datasets name no parser; their expected test ids are what SWE-bench's
    parser for the repository writes, so that parser is used (pytest for unknown repositories)."""
    from agentkit.evals.log_parsers import log_parser_name_for

    assert log_parser_name_for(None, "django/django") == "parse_log_django"
    assert log_parser_name_for(None, "sympy/sympy") == "parse_log_sympy"
    assert log_parser_name_for(None, "someone/unknown") == "pytest"
    assert log_parser_name_for("unittest", "django/django") == "unittest"
