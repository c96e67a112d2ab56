"""grade_patch against a real runtime: every way a prediction can go, on a bundled task."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentkit.evals.environment import (
    TaskEnvironmentError,
    open_task_runtime,
    snapshot_repo,
)
from agentkit.evals.examples import build_examples
from agentkit.evals.grader import grade_patch
from agentkit.evals.grading import InstanceReport
from agentkit.tasks import Task, load_tasks

FORGED_CONFTEST = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    tasks = load_tasks(build_examples(tmp_path_factory.mktemp("examples")))
    return next(t for t in tasks if t.repo == "agentkit-examples/pagekit")


def _diff(task: Task, tmp_path: Path, files: dict[str, str]) -> str:
    """A real git diff against base_commit that writes ``files``."""
    assert task.repo_dir is not None
    repo = snapshot_repo(task.repo_dir, task.base_commit, tmp_path / "scratch")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "-C", str(repo), "add", "-N", "."], check=True)
    return subprocess.run(
        ["git", "-C", str(repo), "diff"], check=True, capture_output=True, text=True
    ).stdout


def _source(task: Task) -> str:
    assert task.repo_dir is not None
    return (Path(task.repo_dir) / "pagekit" / "paginate.py").read_text()


async def _grade(task: Task, patch: str | None, timeout: float = 300) -> InstanceReport:
    async with await open_task_runtime(task, "local") as runtime:
        return await grade_patch(runtime, task, patch, timeout=timeout)


async def test_no_prediction_is_not_run(task: Task) -> None:
    report = await _grade(task, None)
    assert report.patch_is_None and not report.resolved and report.test_output == ""


async def test_patch_that_does_not_apply(task: Task) -> None:
    broken = task.patch.replace("total // per_page + 1", "total // per_page + 2")
    report = await _grade(task, broken)
    assert report.patch_exists and not report.patch_successfully_applied
    assert not report.resolved and report.error is None
    assert "git apply" in report.apply_output


async def test_gold_patch_without_trailing_newline_applies(task: Task) -> None:
    report = await _grade(task, task.patch.rstrip("\n"))
    assert report.resolved
    assert report.eval_script.startswith("#!/bin/bash")


async def test_syntax_error_in_source_is_a_collection_error(task: Task, tmp_path: Path) -> None:
    patch = _diff(task, tmp_path, {"pagekit/paginate.py": _source(task) + "\ndef broken(:\n"})
    report = await _grade(task, patch)
    assert report.patch_successfully_applied and report.error is None and not report.resolved
    assert report.test_statuses == {"tests/test_paginate.py": "ERROR"}
    assert report.tests_status is not None
    assert report.tests_status.PASS_TO_PASS.failure == task.PASS_TO_PASS


async def test_exception_at_import_errors_every_test(task: Task, tmp_path: Path) -> None:
    source = _source(task) + '\nraise RuntimeError("misconfigured")\n'
    report = await _grade(task, _diff(task, tmp_path, {"pagekit/paginate.py": source}))
    assert not report.resolved and report.error is None
    assert report.tests_status is not None and not report.tests_status.FAIL_TO_PASS.success


async def test_fix_that_breaks_an_old_test_is_a_regression(task: Task, tmp_path: Path) -> None:
    source = _source(task).replace(
        "    return total // per_page + 1\n", "    return -(-total // per_page)\n"
    )
    report = await _grade(task, _diff(task, tmp_path, {"pagekit/paginate.py": source}))
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == []
    assert report.tests_status.PASS_TO_PASS.failure == [
        "tests/test_paginate.py::test_empty_listing_has_one_page"
    ]
    assert not report.resolved


async def test_forged_conftest_in_the_patch_does_not_count(task: Task, tmp_path: Path) -> None:
    patch = _diff(
        task,
        tmp_path,
        {"conftest.py": FORGED_CONFTEST, "tests/conftest.py": FORGED_CONFTEST},
    )
    report = await _grade(task, patch)
    assert report.patch_successfully_applied and not report.resolved
    assert report.tests_status is not None
    assert report.tests_status.FAIL_TO_PASS.failure == task.FAIL_TO_PASS
    assert report.tampering == ["conftest.py", "tests/conftest.py"]
    assert report.to_swebench()[task.instance_id]["tampering"] == report.tampering


def _swebench_style(task: Task, workdir: str) -> Task:
    """The task with its own 5.x-style eval script (the harness applies the model patch)."""
    script = "\n".join(
        [
            "#!/bin/bash",
            "set -uxo pipefail",
            f"cd {workdir}",
            f"git checkout {task.base_commit} tests/test_paginate.py",
            "git apply -v - <<'EOF_114329324912'",
            task.test_patch + "EOF_114329324912",
            "echo '>>>>> Start Test Output'",
            "python3 -m pytest -rA tests/test_paginate.py",
            "echo '>>>>> End Test Output'",
            "",
        ]
    )
    return task.model_copy(update={"eval_script": script, "log_parser": "pytest"})


async def test_own_eval_script_is_protected_too(task: Task, tmp_path: Path) -> None:
    patch = _diff(task, tmp_path, {"tests/conftest.py": FORGED_CONFTEST})
    async with await open_task_runtime(task, "local") as runtime:
        own = _swebench_style(task, runtime.workdir)
        report = await grade_patch(runtime, own, patch)
    assert not report.resolved and report.error is None
    assert report.tampering == ["tests/conftest.py"]
    assert (own.eval_script or "") in report.eval_script  # the task's script, unchanged


async def test_honest_patch_runs_the_task_script_as_is(task: Task) -> None:
    async with await open_task_runtime(task, "local") as runtime:
        own = _swebench_style(task, runtime.workdir)
        report = await grade_patch(runtime, own, task.patch)
    assert report.resolved and report.eval_script == own.eval_script
    assert set(report.to_swebench()[task.instance_id]) == {
        "patch_is_None",
        "patch_exists",
        "patch_successfully_applied",
        "resolved",
        "infra_failure",
        "tests_status",
    }


async def test_patch_writing_inside_git_is_refused(task: Task) -> None:
    hook = (
        "diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\n"
        "new file mode 100755\n--- /dev/null\n+++ b/.git/hooks/post-checkout\n"
        "@@ -0,0 +1,2 @@\n+#!/bin/sh\n+touch hooked\n"
    )
    report = await _grade(task, task.patch + hook)
    assert not report.patch_successfully_applied and not report.resolved
    assert report.tampering == [".git/hooks/post-checkout"]
    assert "inside .git" in report.apply_output


async def test_long_output_is_graded_whole(task: Task) -> None:
    noisy = task.model_copy(
        update={
            "test_cmd": "seq 1 200000; python3 -m pytest -rA -p no:cacheprovider "
            "tests/test_paginate.py"
        }
    )
    report = await _grade(noisy, task.patch)
    assert report.resolved and len(report.test_output) > 200000


async def test_script_without_markers_is_an_infrastructure_error(task: Task) -> None:
    silent = task.model_copy(update={"eval_script": "cd /nonexistent-dir && echo never\n"})
    report = await _grade(silent, task.patch)
    assert report.error_kind == "no_test_output" and not report.resolved
    assert "tests did not run" in (report.error or "")
    assert "error" in report.to_swebench()[task.instance_id]


async def test_timeout_is_an_infrastructure_error(task: Task) -> None:
    stuck = task.model_copy(update={"test_cmd": "sleep 60"})
    report = await _grade(stuck, task.patch, timeout=2)
    assert report.error_kind == "timeout" and not report.resolved


async def test_local_runtime_needs_repo_dir(task: Task) -> None:
    with pytest.raises(TaskEnvironmentError, match="repo_dir"):
        await open_task_runtime(task.model_copy(update={"repo_dir": None}), "local")


async def test_snapshot_holds_no_later_history(task: Task, tmp_path: Path) -> None:
    assert task.repo_dir is not None
    source = tmp_path / "source"
    subprocess.run(["git", "clone", "-q", task.repo_dir, str(source)], check=True)
    (source / "later.txt").write_text("the fix\n")
    subprocess.run(["git", "-C", str(source), "add", "."], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(source),
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "-qm",
            "later",
        ],
        check=True,
    )
    later_task = task.model_copy(update={"repo_dir": str(source)})
    async with await open_task_runtime(later_task, "local") as runtime:
        log = await runtime.run("git log --all --oneline | wc -l && ls", stateless=True)
    assert log.output.split()[0] == "1" and "later.txt" not in log.output
