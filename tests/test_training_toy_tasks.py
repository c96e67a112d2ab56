"""The RL toy tasks: real repositories whose gold patch resolves and whose empty patch does not,
graded by the real grader on the local runtime; generation is a pure function of the seed."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from agentkit.evals.environment import open_task_runtime
from agentkit.evals.grader import grade_patch
from agentkit.runtime import LocalRuntime
from agentkit.tasks import Task, load_tasks
from agentkit.training.toy_tasks import (
    TOY_DATASET_NAME,
    ToyTaskConfig,
    build_toy_tasks,
    solution_command,
    split_tasks,
)

CONFIG = ToyTaskConfig(count=6, seed=3, kinds=["number", "word"], vary_names=True)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[Task]:
    return build_toy_tasks(tmp_path_factory.mktemp("toy"), CONFIG)


def test_tasks_are_swebench_instances(tasks: list[Task]) -> None:
    assert len(tasks) == CONFIG.count
    assert len({t.instance_id for t in tasks}) == len(tasks)
    for task in tasks:
        assert task.instance_id.startswith("agentkit-toy__") and len(task.base_commit) == 40
        assert task.patch.startswith("diff --git a/answer.py")
        assert task.test_patch.startswith("diff --git a/tests/test_answer.py")
        assert len(task.FAIL_TO_PASS) == 1 and len(task.PASS_TO_PASS) == 1
        assert task.repo_dir and (Path(task.repo_dir) / ".git").is_dir()
        # The statement names the value the command writes: the skill is copying it.
        value = task.problem_statement.rstrip(".").rsplit(" ", 1)[-1]
        assert value in solution_command(task) and len(task.problem_statement) < 60
        status = subprocess.run(
            ["git", "-C", task.repo_dir, "status", "--porcelain"], capture_output=True, text=True
        ).stdout
        assert status == ""


def test_generation_is_deterministic_and_seeded(tasks: list[Task], tmp_path: Path) -> None:
    again = build_toy_tasks(tmp_path / "again", CONFIG)
    key = [
        (t.instance_id, t.base_commit, t.patch, t.test_patch, t.problem_statement) for t in tasks
    ]
    assert [
        (t.instance_id, t.base_commit, t.patch, t.test_patch, t.problem_statement) for t in again
    ] == key
    other = build_toy_tasks(tmp_path / "other", CONFIG.model_copy(update={"seed": 4}))
    assert [t.problem_statement for t in other] != [t.problem_statement for t in tasks]
    reloaded = load_tasks(tmp_path / "again" / TOY_DATASET_NAME)
    assert [solution_command(t) for t in reloaded] == [solution_command(t) for t in tasks]


def test_split_keeps_order() -> None:
    tasks = [Task(instance_id=str(i)) for i in range(5)]
    train, held_out = split_tasks(tasks, 3)
    assert [t.instance_id for t in train] == ["0", "1", "2"]
    assert [t.instance_id for t in held_out] == ["3", "4"]
    with pytest.raises(ValueError):
        split_tasks(tasks, 6)


def test_gold_resolves_and_empty_patch_does_not(tasks: list[Task]) -> None:
    async def grade(task: Task, patch: str) -> bool | None:
        runtime = await open_task_runtime(task, "local")
        async with runtime:
            report = await grade_patch(runtime, task, patch)
        assert report.error is None, report.error
        return report.resolved

    async def grade_all() -> list[tuple[bool | None, bool | None]]:
        results = await asyncio.gather(
            *(asyncio.gather(grade(t, t.patch), grade(t, "")) for t in tasks)
        )
        return [(gold, empty) for gold, empty in results]

    assert asyncio.run(grade_all()) == [(True, False)] * len(tasks)


def test_solution_command_solves_the_task(tasks: list[Task]) -> None:
    """The one-line command the cold start demonstrates writes exactly the gold patch's tree."""

    async def run(task: Task) -> str:
        runtime = await open_task_runtime(task, "local")
        async with runtime:
            assert isinstance(runtime, LocalRuntime)
            await runtime.run(solution_command(task), timeout=30)
            result = await runtime.run("git diff", timeout=30)
        return result.output

    for task in tasks[:2]:
        diff = asyncio.run(run(task))
        assert diff.strip().splitlines()[-2:] == task.patch.strip().splitlines()[-2:]
