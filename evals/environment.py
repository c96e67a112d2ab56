"""Open a runtime whose workdir holds a task's repository at ``base_commit``.

Docker: the task's own ``image`` when it exists locally (nothing is ever pulled: sandboxes run
offline), otherwise an instance image built from the base image with the repository copied in.
Instance images are tagged by a content hash of what goes into them, so a second run, or a
second task at the same commit, reuses the image. Local: a fresh work dir with a clone.

Only ``base_commit``'s history is copied, never the rest of ``repo_dir``: later commits (the fix
itself, for a dataset built from history) must not be reachable from inside the sandbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import re
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal

from agentkit.errors import UserFacingError
from agentkit.runtime.base import Runtime
from agentkit.tasks import Task

__all__ = [
    "BASE_IMAGE",
    "INSTANCE_IMAGE_LABEL",
    "INSTANCE_IMAGE_REPO",
    "BaseImageMissingError",
    "TaskEnvironmentError",
    "ensure_base_image",
    "image_id",
    "instance_image_tag",
    "open_task_runtime",
    "snapshot_repo",
    "task_image",
]

BASE_IMAGE = "agentkit-base:bookworm"
_RECIPE_VERSION = "1"
"""Bumped whenever the instance Dockerfile changes, so old cached images are not reused."""
INSTANCE_IMAGE_LABEL = "agentkit.instance-image"
"""The label every instance image carries (its value: the instance id): how `agentkit images`
finds them."""
INSTANCE_IMAGE_REPO = "agentkit-task"
_build_locks: dict[str, threading.Lock] = {}
_build_locks_guard = threading.Lock()


class TaskEnvironmentError(UserFacingError, RuntimeError):
    """The task's environment cannot be provided (missing image, repository, or engine)."""


class BaseImageMissingError(TaskEnvironmentError):
    """The base image instance images are built from is not present."""


def _docker_client() -> Any:
    import docker
    from docker.errors import DockerException

    try:
        return docker.from_env()
    except DockerException as exc:
        raise TaskEnvironmentError(f"cannot reach the Docker engine: {exc}") from exc


def _local_image(client: Any, name: str) -> Any | None:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(name)
    except ImageNotFound:
        return None


def ensure_base_image(image: str = BASE_IMAGE) -> str:
    """The id of ``image``; a clear error when it has not been built on this machine yet."""
    found = _local_image(_docker_client(), image)
    if found is None:
        raise BaseImageMissingError(
            f"the base image {image!r} is not present; build it with `bash scripts/setup.sh`"
        )
    return str(found.id)


def _git(cwd: Path, *args: str) -> None:
    completed = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise TaskEnvironmentError(f"git {' '.join(args)} failed: {completed.stderr.strip()}")


def snapshot_repo(repo_dir: str | Path, base_commit: str, dest: str | Path) -> Path:
    """Make ``dest`` (absent or empty) a repository checked out at ``base_commit`` that holds
    that commit's history and nothing newer."""
    source = Path(repo_dir).expanduser().resolve()
    if not (source / ".git").exists() and not (source / "HEAD").exists():
        raise TaskEnvironmentError(f"repo_dir {str(source)!r} is not a git repository")
    if not base_commit:
        raise TaskEnvironmentError("the task has no base_commit to check out")
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    _git(target, "init", "-q")
    try:
        _git(target, "fetch", "-q", "--no-tags", str(source), base_commit)
    except TaskEnvironmentError as exc:
        raise TaskEnvironmentError(
            f"base_commit {base_commit} is not in {source} (or not reachable from a ref): {exc}"
        ) from exc
    _git(target, "checkout", "-q", "-B", "main", base_commit)
    return target


def _slug(task: Task) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (task.repo or task.instance_id).lower()).strip("-") or "task"


def instance_image_tag(task: Task, base_image_id: str) -> str:
    """``agentkit-task/<repo>:<hash>``, the hash covering everything the image is made of."""
    key = "\n".join([_RECIPE_VERSION, base_image_id, task.workdir, task.base_commit])
    return f"{INSTANCE_IMAGE_REPO}/{_slug(task)}:{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def _dockerfile(base_image: str, workdir: str) -> str:
    return "\n".join(
        [
            f"FROM {base_image}",
            "RUN git config --global --add safe.directory '*' \\",
            " && git config --global user.email agentkit@localhost \\",
            " && git config --global user.name agentkit",
            f"COPY repo {workdir}",
            f"WORKDIR {workdir}",
            "",
        ]
    )


def _build_context(repo: Path, dockerfile: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(repo, arcname="repo")
    buffer.seek(0)
    return buffer


def _build_instance_image(task: Task, base_image: str) -> str:
    """Build (or find) the instance image; blocking, run in a worker thread."""
    from docker.errors import BuildError, DockerException

    base_id = ensure_base_image(base_image)
    tag = instance_image_tag(task, base_id)
    with _build_locks_guard:
        lock = _build_locks.setdefault(tag, threading.Lock())
    with lock:
        client = _docker_client()
        if _local_image(client, tag) is not None:
            return tag
        assert task.repo_dir is not None
        with tempfile.TemporaryDirectory(prefix="agentkit-context-") as scratch:
            repo = snapshot_repo(task.repo_dir, task.base_commit, Path(scratch) / "repo")
            context = _build_context(repo, _dockerfile(base_image, task.workdir))
            try:
                client.images.build(
                    fileobj=context,
                    custom_context=True,
                    tag=tag,
                    rm=True,
                    forcerm=True,
                    network_mode="none",
                    labels={INSTANCE_IMAGE_LABEL: task.instance_id},
                )
            except (BuildError, DockerException) as exc:
                raise TaskEnvironmentError(
                    f"building the image for {task.instance_id} failed: {exc}"
                ) from exc
    return tag


def task_image(task: Task, base_image: str = BASE_IMAGE) -> str:
    """The image a Docker runtime for ``task`` starts from, building it when needed (blocking:
    a harness may call it up front, in worker threads, to build every image before running)."""
    if task.image and _local_image(_docker_client(), task.image) is not None:
        return task.image
    if task.repo_dir:
        return _build_instance_image(task, base_image)
    if task.image:
        raise TaskEnvironmentError(
            f"task {task.instance_id}: image {task.image!r} is not present locally (images are "
            "never pulled) and the task has no repo_dir to build one from"
        )
    raise TaskEnvironmentError(
        f"task {task.instance_id} has neither an image nor a repo_dir: set `image` to a local "
        "image with the repository in its workdir, or `repo_dir` to a git repository holding "
        "base_commit"
    )


def image_id(name: str) -> str:
    """The id of a local image (blocking): what a grade is cached against, since a rebuilt
    image under the same tag can grade differently."""
    image = _local_image(_docker_client(), name)
    if image is None:
        raise TaskEnvironmentError(f"image {name!r} is not present locally")
    return str(image.id)


def _accepted(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(factory).parameters
    return {key: value for key, value in options.items() if key in parameters}


async def open_task_runtime(
    task: Task,
    kind: Literal["docker", "local"],
    *,
    base_image: str = BASE_IMAGE,
    run_id: str | None = None,
    **limits: Any,
) -> Runtime:
    """A started runtime with the task's repository at ``base_commit`` in ``runtime.workdir``.

    ``limits`` go to the runtime (``cpus``, ``memory``, ``pids_limit``, ``network``, ``env``,
    ``output_limit``); a local runtime takes ``env`` and ``output_limit`` and ignores the
    container limits it cannot enforce (so one set of options serves both kinds). The caller closes the runtime (``async with`` works).
    """
    if kind == "docker":
        from agentkit.runtime import DockerRuntime  # type: ignore[attr-defined]

        image = await asyncio.to_thread(task_image, task, base_image)
        runtime: Runtime = DockerRuntime(image, workdir=task.workdir, run_id=run_id, **limits)
    elif kind == "local":
        from agentkit.runtime import LocalRuntime

        if not task.repo_dir:
            raise TaskEnvironmentError(
                f"task {task.instance_id} has no repo_dir: a local runtime needs a git repository "
                "holding base_commit"
            )
        runtime = LocalRuntime(**_accepted(LocalRuntime, limits))
        try:
            await asyncio.to_thread(snapshot_repo, task.repo_dir, task.base_commit, runtime.workdir)
        except BaseException:
            await runtime.close()
            raise
    else:
        raise ValueError(f"unknown runtime kind {kind!r}; use 'docker' or 'local'")
    try:
        await runtime.start()
    except BaseException:
        await runtime.close()
        raise
    return runtime
