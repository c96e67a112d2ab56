"""One task's work as a unit that an executor can run anywhere (the harness defines the two
kinds: an attempt, which runs the agent and grades its patch, and a grade of a given patch).

A job is plain data plus the caller's ``backend_for``, so it pickles for a Ray worker. It writes
its files through the :class:`RunFolder` it is given: the run's own folder when it runs in the
harness's process, a scratch folder on the node that runs it otherwise (the files then travel
back as data). It emits ``TaskStarted`` and ``TaskProgress``; recording the result and
``TaskFinished`` are the harness's. A job never raises except on cancellation: whatever its work
raises becomes the task's error, an unexpected exception's traceback travelling back as text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import traceback
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentkit.errors import UserFacingError, unexpected_error_message
from agentkit.evals.environment import image_id, task_image
from agentkit.evals.eval_script import eval_script_for
from agentkit.evals.events import EventHandler, TaskProgress, TaskStarted
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.runtime.base import SandboxError
from agentkit.tasks import Task

__all__ = ["RuntimeKind", "TaskJob", "TaskOutcome", "grade_key"]

RuntimeKind = Literal["docker", "local"]


class TaskOutcome(BaseModel):
    """What one job hands back to the harness."""

    model_config = ConfigDict(extra="forbid")

    result: TaskResult
    traceback: str | None = None
    """An unexpected exception's formatted traceback; the harness files it in ``error.log``."""
    files: dict[str, bytes] = {}
    """The task folder's files, when the job wrote them into a scratch folder elsewhere."""
    skipped: bool = False
    """Grade-only: the grade in the run folder was made under the same grade key; nothing ran."""


@dataclass(frozen=True, kw_only=True)
class TaskJob(ABC):
    task: Task
    runtime: RuntimeKind
    attempt: int = 0
    images_built: bool = True
    """Whether the harness built the task's image up front; if not, the job builds (or finds)
    it first, on the machine that runs it."""

    async def execute(self, folder: RunFolder, emit: EventHandler) -> TaskOutcome:
        emit(TaskStarted(instance_id=self.task.instance_id, attempt=self.attempt))
        return await _guarded(self.task.instance_id, lambda: self.work(folder, emit))

    @abstractmethod
    async def work(self, folder: RunFolder, emit: EventHandler) -> TaskResult:
        """The task's work; raises whatever goes wrong."""

    async def _image_here(self, emit: EventHandler) -> str | None:
        """The id of the task's image once it is here, or ``None`` when it was built up front
        (then the harness has it) or the runtime has none."""
        if self.images_built or self.runtime != "docker":
            return None
        emit(TaskProgress(instance_id=self.task.instance_id, attempt=self.attempt, phase="image"))
        return await self._image_id()

    async def _image_id(self) -> str | None:
        """The id of the task's image on this machine (built when missing); ``None`` for a
        runtime without images."""
        if self.runtime != "docker":
            return None
        tag = await asyncio.to_thread(task_image, self.task)
        return await asyncio.to_thread(image_id, tag)


async def _guarded(instance_id: str, work: Callable[[], Awaitable[TaskResult]]) -> TaskOutcome:
    """``work``'s result, or what it raised (but cancellation) as the task's error."""
    try:
        return TaskOutcome(result=await work())
    except (UserFacingError, SandboxError) as exc:
        return TaskOutcome(result=TaskResult(instance_id=instance_id, error=str(exc)))
    except Exception as exc:  # a bug in a backend, tool or grader: this task's error
        return TaskOutcome(
            result=TaskResult(instance_id=instance_id, error=unexpected_error_message(exc)),
            traceback="".join(traceback.format_exception(exc)),
        )


def grade_key(task: Task, patch: str | None, runtime: RuntimeKind, image: str | None) -> str:
    """A hash of everything a grade depends on: the patch, the task (tests, expected results,
    log parser), the eval script, the runtime kind and the image id."""
    parts = {
        "patch": patch,
        "task": task.model_dump(mode="json"),
        "eval_script": eval_script_for(task, task.workdir, patch),
        "runtime": runtime,
        "image": image,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
