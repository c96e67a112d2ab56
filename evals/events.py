"""The harness's progress events: what a progress bar, a log or a training driver listens to.

They are plain data (frozen pydantic models), so they travel unchanged from a Ray worker to the
process that runs the harness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentkit.evals.run_folder import TaskResult

__all__ = ["EventHandler", "HarnessEvent", "TaskFinished", "TaskProgress", "TaskStarted"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskStarted(_Event):
    kind: Literal["task_started"] = "task_started"
    instance_id: str
    attempt: int = 0


class TaskProgress(_Event):
    """A task moved on: a phase began, or the agent finished a step (``step`` set)."""

    kind: Literal["task_progress"] = "task_progress"
    instance_id: str
    attempt: int = 0
    phase: Literal["image", "sandbox", "agent", "grading"]
    step: int | None = None
    action: str | None = None


class TaskFinished(_Event):
    kind: Literal["task_finished"] = "task_finished"
    result: TaskResult


HarnessEvent = TaskStarted | TaskProgress | TaskFinished
EventHandler = Callable[[HarnessEvent], None]
