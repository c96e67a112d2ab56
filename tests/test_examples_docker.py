"""Bundled tasks validated in Docker: instance images built from the base image, graded for real.

Images are built once per session (and cached across sessions by content hash); every runtime is
closed, and the test checks that no container of these images is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.evals.environment import (
    BASE_IMAGE,
    BaseImageMissingError,
    TaskEnvironmentError,
    ensure_base_image,
    instance_image_tag,
    open_task_runtime,
    task_image,
)
from agentkit.evals.examples import EXAMPLES, build_examples
from agentkit.evals.grader import grade_patch
from agentkit.tasks import Task, load_tasks

pytestmark = pytest.mark.docker


def _client() -> Any:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    return client


@pytest.fixture(scope="session")
def docker_tasks(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[Task], list[str]]]:
    client = _client()
    try:
        ensure_base_image()
    except BaseImageMissingError as exc:
        pytest.skip(str(exc))
    tasks = load_tasks(build_examples(tmp_path_factory.mktemp("docker-examples")))
    images = [task_image(task) for task in tasks]
    yield tasks, images
    leftovers = [
        container.name
        for image in set(images)
        for container in client.containers.list(all=True, filters={"ancestor": image})
    ]
    assert leftovers == [], f"containers left behind: {leftovers}"


def test_instance_images_are_cached_by_content(docker_tasks: tuple[list[Task], list[str]]) -> None:
    tasks, images = docker_tasks
    assert len(set(images)) == len(tasks)
    client = _client()
    again = task_image(tasks[0])
    assert again == images[0]
    assert client.images.get(again).id == client.images.get(images[0]).id
    assert again == instance_image_tag(tasks[0], ensure_base_image())


async def test_image_holds_the_repository_at_base_commit(
    docker_tasks: tuple[list[Task], list[str]],
) -> None:
    tasks, _ = docker_tasks
    task = tasks[0]
    async with await open_task_runtime(task, "docker", run_id="evals-test") as runtime:
        assert runtime.workdir == task.workdir
        head = await runtime.run("git rev-parse HEAD && git status --porcelain | wc -l")
        log = await runtime.run("git log --all --oneline | wc -l")
    assert head.output.split() == [task.base_commit, "0"]
    assert log.output.strip() == "1"


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[s.name for s in EXAMPLES])
async def test_gold_resolves_and_empty_patch_fails_in_docker(
    docker_tasks: tuple[list[Task], list[str]], index: int
) -> None:
    task = docker_tasks[0][index]
    async with await open_task_runtime(task, "docker", run_id="evals-test") as runtime:
        gold = await grade_patch(runtime, task, task.patch, timeout=300)
    assert gold.error is None, gold.error
    assert gold.resolved, gold.test_output
    assert set(gold.test_statuses) == {*task.FAIL_TO_PASS, *task.PASS_TO_PASS}

    async with await open_task_runtime(task, "docker", run_id="evals-test") as runtime:
        empty = await grade_patch(runtime, task, "", timeout=300)
    assert empty.error is None and not empty.resolved
    assert empty.tests_status is not None
    assert empty.tests_status.FAIL_TO_PASS.failure == task.FAIL_TO_PASS
    assert empty.tests_status.PASS_TO_PASS.success == task.PASS_TO_PASS


async def test_grading_runs_concurrently(docker_tasks: tuple[list[Task], list[str]]) -> None:
    tasks, _ = docker_tasks

    async def grade(task: Task) -> bool:
        async with await open_task_runtime(task, "docker", run_id="evals-test") as runtime:
            return (await grade_patch(runtime, task, task.patch, timeout=300)).resolved

    # A task group cancels (and so closes) the siblings of a failed grading.
    async with asyncio.TaskGroup() as group:
        graded = [group.create_task(grade(task)) for task in tasks[:3]]
    assert [g.result() for g in graded] == [True, True, True]


def test_task_image_used_as_is_when_present(docker_tasks: tuple[list[Task], list[str]]) -> None:
    tasks, images = docker_tasks
    prebuilt = tasks[0].model_copy(update={"image": images[1], "repo_dir": None})
    assert task_image(prebuilt) == images[1]


def test_missing_image_without_repo_dir_is_a_clear_error(
    docker_tasks: tuple[list[Task], list[str]],
) -> None:
    task = docker_tasks[0][0].model_copy(
        update={"image": "agentkit-missing/nothing:here", "repo_dir": None}
    )
    with pytest.raises(TaskEnvironmentError, match="not present locally.*no repo_dir"):
        task_image(task)
    bare = task.model_copy(update={"image": None})
    with pytest.raises(TaskEnvironmentError, match="neither an image nor a repo_dir"):
        task_image(bare)


def test_missing_base_image_points_at_setup_script(tmp_path: Path) -> None:
    _client()
    with pytest.raises(BaseImageMissingError, match="scripts/setup.sh"):
        ensure_base_image("agentkit-missing/base:none")
    assert BASE_IMAGE == "agentkit-base:bookworm"
