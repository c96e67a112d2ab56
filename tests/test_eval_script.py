"""The eval script: patch bookkeeping, and running it for real against a git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentkit.evals.eval_script import (
    END_MARKER,
    START_MARKER,
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
    assert default_test_command(task) == (
        "python3 -m pytest -rA -p no:cacheprovider tests/test_old.py pkg/test_beside.py "
        "tests/test_new.py"
    )
    custom = Task(instance_id="x", test_patch=RENAME_AND_NEW, test_cmd="tox -- {test_files}")
    assert default_test_command(custom).startswith("tox -- tests/test_old.py")
    own = Task(instance_id="x", eval_script="echo mine")
    assert eval_script_for(own, "/elsewhere") == "echo mine"
    script = build_eval_script(task, "/work dir")
    assert "cd '/work dir'" in script
    # Only directories named for tests are swept for untracked files; pkg/ is not one.
    assert "-- tests " in script and "-- pkg " not in script


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
