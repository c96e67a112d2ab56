"""Bundled example tasks: built deterministically, well-formed, and valid for real.

Validation is the SWE-bench rule for instances: the gold patch resolves the task and the empty
patch leaves every FAIL_TO_PASS test failing while PASS_TO_PASS tests pass. It runs in a local
work dir here and in Docker in ``test_examples_docker.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentkit.evals.environment import open_task_runtime
from agentkit.evals.eval_script import patch_files
from agentkit.evals.examples import EXAMPLES, build_examples
from agentkit.evals.grader import grade_patch
from agentkit.tasks import Task, load_tasks


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return load_tasks(build_examples(tmp_path_factory.mktemp("examples")))


def test_at_least_five_varied_examples(tasks: list[Task]) -> None:
    assert len(tasks) >= 5
    assert len({task.repo for task in tasks}) == len(tasks)
    assert len({task.instance_id for task in tasks}) == len(tasks)


def test_tasks_are_complete_swebench_instances(tasks: list[Task]) -> None:
    for task in tasks:
        assert task.repo.startswith("agentkit-examples/")
        assert len(task.base_commit) == 40 and task.version
        assert task.FAIL_TO_PASS and task.PASS_TO_PASS
        assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
        assert task.patch.startswith("diff --git") and task.test_patch.startswith("diff --git")
        assert task.repo_dir and (Path(task.repo_dir) / ".git").is_dir()
        # The gold patch touches source only, the test patch tests only (SWE-bench's split).
        assert all("test" not in path for path in patch_files(task.patch).modified)
        assert all(path.startswith("tests/") for path in patch_files(task.test_patch).modified)
        # The issue describes the symptom; it does not quote the fix.
        added = [line[1:].strip() for line in task.patch.splitlines() if line.startswith("+")]
        assert not any(line and line in task.problem_statement for line in added[1:])


def test_some_examples_span_several_files(tasks: list[Task]) -> None:
    multi = [spec for spec in EXAMPLES if sum(p.endswith(".py") for p in spec.base_files) >= 4]
    assert len(multi) >= 2
    assert any(patch_files(task.test_patch).created for task in tasks)  # a new test module


def test_repositories_are_clean_at_base_commit(tasks: list[Task]) -> None:
    for task in tasks:
        assert task.repo_dir is not None
        head = subprocess.run(
            ["git", "-C", task.repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", task.repo_dir, "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        assert head == task.base_commit and status == ""


def test_build_is_deterministic(tasks: list[Task], tmp_path: Path) -> None:
    again = load_tasks(build_examples(tmp_path))
    assert [(t.base_commit, t.patch, t.test_patch) for t in again] == [
        (t.base_commit, t.patch, t.test_patch) for t in tasks
    ]


def test_module_entry_point(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "agentkit.evals.examples.build", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    assert Path(completed.stdout.strip()) == tmp_path / "out" / "examples.jsonl"
    assert len(load_tasks(completed.stdout.strip())) == len(EXAMPLES)


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[s.name for s in EXAMPLES])
async def test_gold_resolves_and_empty_patch_fails_locally(tasks: list[Task], index: int) -> None:
    task = tasks[index]
    async with await open_task_runtime(task, "local") as runtime:
        gold = await grade_patch(runtime, task, task.patch, timeout=300)
    assert gold.resolved, gold.test_output
    # Every test the suite ran is one the task expects: nothing unaccounted for.
    assert set(gold.test_statuses) == {*task.FAIL_TO_PASS, *task.PASS_TO_PASS}

    async with await open_task_runtime(task, "local") as runtime:
        empty = await grade_patch(runtime, task, "", timeout=300)
    assert empty.error is None and not empty.resolved
    assert empty.tests_status is not None
    assert empty.tests_status.FAIL_TO_PASS.failure == task.FAIL_TO_PASS
    assert empty.tests_status.PASS_TO_PASS.success == task.PASS_TO_PASS
