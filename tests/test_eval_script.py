"""The eval script: patch bookkeeping, and running it for real against a git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentkit.evals.eval_script import (
    END_MARKER,
    START_MARKER,
    TAMPER_CHECK_FAILED_MARKER,
    build_eval_script,
    default_test_command,
    eval_script_for,
    patch_files,
    split_test_output,
)
from agentkit.evals.grading import grade_eval_output
from agentkit.tasks import Task

RENAME_AND_NEW = """\
diff --git a/tests/test_old.py b/tests/test_new.py
similarity index 90%
rename from tests/test_old.py
rename to tests/test_new.py
diff --git a/tests/data/fixture.txt b/tests/data/fixture.txt
new file mode 100644
index 0000000..e69de29
diff --git a/tests/test_gone.py b/tests/test_gone.py
deleted file mode 100644
index e69de29..0000000
diff --git a/pkg/test_beside.py b/pkg/test_beside.py
index e69de29..e69de29 100644
"""


def test_patch_files_classifies_paths() -> None:
    files = patch_files(RENAME_AND_NEW)
    assert files.modified == ["tests/test_old.py", "tests/test_gone.py", "pkg/test_beside.py"]
    assert files.created == ["tests/test_new.py", "tests/data/fixture.txt"]
    assert files.deleted == ["tests/test_gone.py"]


def test_default_command_and_overrides() -> None:
    task = Task(instance_id="x", test_patch=RENAME_AND_NEW)
    command = default_test_command(task)
    assert command.startswith(
        "python3 -c 'import os, sys; sys.path[0] = os.getcwd(); import pytest"
    )
    assert command.endswith(
        " -rA -p no:cacheprovider tests/test_old.py pkg/test_beside.py tests/test_new.py"
    )
    custom = Task(instance_id="x", test_patch=RENAME_AND_NEW, test_cmd="tox -- {test_files}")
    assert default_test_command(custom).startswith("tox -- tests/test_old.py")
    script = build_eval_script(task, "/work dir")
    assert "cd '/work dir'" in script
    # Only directories named for tests are the task's; pkg/ is not one.
    assert "'test_dirs': ['tests']" in script


CONFTEST_PATCH = "diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n"


def test_the_check_runs_only_when_the_patch_names_a_file_it_guards() -> None:
    task = Task(instance_id="x", test_patch=RENAME_AND_NEW)
    assert TAMPER_CHECK_FAILED_MARKER in build_eval_script(task, patch=CONFTEST_PATCH)
    assert "'paths': ['conftest.py']" in build_eval_script(task, patch=CONFTEST_PATCH)
    honest = "diff --git a/pkg/mod.py b/pkg/mod.py\n--- a/pkg/mod.py\n+++ b/pkg/mod.py\n"
    assert TAMPER_CHECK_FAILED_MARKER not in build_eval_script(task, patch=honest)
    assert TAMPER_CHECK_FAILED_MARKER in build_eval_script(task)  # no patch: look at the tree
    own = Task(instance_id="x", eval_script="echo mine")
    assert eval_script_for(own, "/elsewhere", honest) == "echo mine"  # nothing to check
    wrapped = eval_script_for(own, "/elsewhere", CONFTEST_PATCH)
    assert wrapped.index(TAMPER_CHECK_FAILED_MARKER) < wrapped.index("\necho mine\n")


# --- a real repository -------------------------------------------------------------------

CALC = "def add(a, b):\n    return a - b\n\n\ndef neg(a):\n    return -a\n"
OLD_TESTS = "from calc import neg\n\n\ndef test_neg():\n    assert neg(2) == -2\n"
NEW_TESTS = OLD_TESTS + "\n\ndef test_add():\n    from calc import add\n    assert add(2, 3) == 5\n"
FORGED_CONFTEST = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def task(tmp_path: Path) -> Task:
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text(CALC)
    (repo / "tests" / "test_calc.py").write_text(OLD_TESTS)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    (repo / "tests" / "test_calc.py").write_text(NEW_TESTS)
    test_patch = _git(repo, "diff")
    _git(repo, "checkout", "-q", "--", ".")
    return Task(
        instance_id="calc-1",
        base_commit=base,
        test_patch=test_patch,
        FAIL_TO_PASS=["tests/test_calc.py::test_add"],
        PASS_TO_PASS=["tests/test_calc.py::test_neg"],
        workdir=str(repo),
    )


def _run_script(task: Task) -> str:
    script = build_eval_script(task)
    completed = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    return completed.stdout + completed.stderr


def test_unfixed_repo_fails_fail_to_pass(task: Task) -> None:
    output = _run_script(task)
    split = split_test_output(output)
    assert split is not None and split[1] == 1
    report = grade_eval_output(task, output, "")
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == ["tests/test_calc.py::test_add"]
    assert report.tests_status.PASS_TO_PASS.success == ["tests/test_calc.py::test_neg"]


def test_fixed_repo_resolves(task: Task) -> None:
    repo = Path(task.workdir)
    (repo / "calc.py").write_text(CALC.replace("a - b", "a + b"))
    report = grade_eval_output(task, _run_script(task), "patch")
    assert report.resolved, report.test_output


def test_forged_conftests_and_edited_tests_are_neutralised(task: Task) -> None:
    repo = Path(task.workdir)
    (repo / "conftest.py").write_text(FORGED_CONFTEST)  # untracked, repo root
    (repo / "tests" / "conftest.py").write_text(FORGED_CONFTEST)  # untracked, test dir
    (repo / "tests" / "helper_plugin.py").write_text("x = 1\n")  # untracked, test dir
    (repo / "tests" / "test_calc.py").write_text("def test_add():\n    pass\n")  # agent edit
    output = _run_script(task)
    assert not (repo / "conftest.py").exists()
    assert not (repo / "tests" / "helper_plugin.py").exists()
    report = grade_eval_output(task, output, "patch")
    assert not report.resolved
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == ["tests/test_calc.py::test_add"]


def test_forged_conftest_would_have_worked_without_the_cleanup(task: Task) -> None:
    """Guards the guard: the forged conftest really does turn failures into passes."""
    repo = Path(task.workdir)
    (repo / "tests" / "test_calc.py").write_text(NEW_TESTS)
    (repo / "conftest.py").write_text(FORGED_CONFTEST)
    completed = subprocess.run(
        ["python3", "-m", "pytest", "-rA", "-p", "no:cacheprovider", "tests/test_calc.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "PASSED tests/test_calc.py::test_add" in completed.stdout


def test_unset_variable_in_test_command_still_reaches_end_marker(task: Task) -> None:
    task = task.model_copy(update={"test_cmd": 'echo "$UNSET_VARIABLE_X"; exit 3'})
    output = _run_script(task)
    assert split_test_output(output) == ("\n", 3)
    assert START_MARKER in output and END_MARKER in output


def test_test_patch_that_does_not_apply_is_reported(task: Task) -> None:
    broken = task.model_copy(
        update={"test_patch": task.test_patch.replace("def test_neg", "def test_nope")}
    )
    report = grade_eval_output(broken, _run_script(broken), "patch")
    assert report.error == "the test patch did not apply, so the tests did not run"


def test_nothing_printed_after_pytest_returns_reaches_the_log(task: Task) -> None:
    repo = Path(task.workdir)
    late = "import atexit\natexit.register(print, 'PASSED tests/test_calc.py::test_add')\n"
    (repo / "calc.py").write_text(late + CALC)
    output = _run_script(task)
    assert "PASSED tests/test_calc.py::test_add" not in output
    assert grade_eval_output(task, output, "patch").tests_status.FAIL_TO_PASS.failure == [  # type: ignore[union-attr]
        "tests/test_calc.py::test_add"
    ]
    # Guards the guard: plain ``python -m pytest`` does let it through.
    (repo / "tests" / "test_calc.py").write_text(NEW_TESTS)
    plain = subprocess.run(
        ["python3", "-m", "pytest", "-rA", "-p", "no:cacheprovider", "tests/test_calc.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.stdout.rstrip().endswith("PASSED tests/test_calc.py::test_add")


def test_a_tamper_check_that_cannot_run_stops_the_script(task: Task) -> None:
    broken = task.model_copy(update={"base_commit": "f" * 40})
    output = _run_script(broken)
    assert TAMPER_CHECK_FAILED_MARKER in output and START_MARKER not in output
    report = grade_eval_output(broken, output, "patch")
    assert report.error == "the tamper check could not run in the sandbox, so the tests did not run"


def test_own_script_runs_after_the_check_unchanged(task: Task, tmp_path: Path) -> None:
    repo = Path(task.workdir)
    (repo / "conftest.py").write_text(FORGED_CONFTEST)
    own = task.model_copy(update={"eval_script": "pwd\nls conftest.py\nexit 7\n"})
    completed = subprocess.run(
        ["bash", "-c", eval_script_for(own)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 7
    assert completed.stdout.splitlines()[:2] == [">>>>> Neutralized: conftest.py", str(tmp_path)]
    assert not (repo / "conftest.py").exists()
