"""Building every task's Docker image before the first task starts, each image once.

An instance image takes seconds to build; built up front, ``workers`` at a time, the first tasks
do not all wait on the same build, and each task's run starts from a ready image. Jobs that run
elsewhere (on Ray nodes) build their own image where they run instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel

from agentkit.errors import UserFacingError
from agentkit.evals.environment import image_id, task_image
from agentkit.evals.events import EventHandler, TaskProgress
from agentkit.runtime.base import SandboxError
from agentkit.tasks import Task

__all__ = ["PrebuiltImages", "prebuild_images"]


class PrebuiltImages(BaseModel):
    errors: dict[str, str] = {}
    """Instance id → why its image could not be built (that task's error)."""
    ids: dict[str, str] = {}
    """Instance id → the id of the image it runs in."""


async def prebuild_images(
    tasks: Sequence[Task], workers: int, emit: EventHandler
) -> PrebuiltImages:
    """Build (or find) each task's image, ``workers`` at a time in threads; a failed build is
    that task's error, never the run's."""
    images = PrebuiltImages()
    if not tasks:
        return images
    limit = asyncio.Semaphore(workers)

    async def build(task: Task) -> None:
        async with limit:
            emit(TaskProgress(instance_id=task.instance_id, phase="image"))
            try:
                tag = await asyncio.to_thread(task_image, task)
                images.ids[task.instance_id] = await asyncio.to_thread(image_id, tag)
            except (UserFacingError, SandboxError) as exc:
                images.errors[task.instance_id] = str(exc)

    async with asyncio.TaskGroup() as group:
        for task in tasks:
            group.create_task(build(task))
    return images
