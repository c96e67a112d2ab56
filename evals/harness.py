"""Run-and-grade as a library: tasks × scaffold × backend × runtime → graded results on disk.

For each task: open a sandbox, run the agent, grade its patch in a *fresh* sandbox (so nothing
the agent left behind can sway the tests), and write everything through :class:`RunFolder`.
Tasks run on ``workers`` concurrent workers; progress arrives as typed events, which the CLI
shows as a progress bar and a training driver can consume the same way.

Failure is per task. Whatever one task raises (a backend, tool, template or grader bug, a
sandbox that died) becomes that task's error with its message, and the other tasks go on; only
cancellation (Ctrl-C) stops the run, and then the ``async with`` blocks close every sandbox.
The run report and predictions are written at the end in every case.

The backend comes from the caller (``backend_for``): this module never chooses or builds one,
so it works with any backend, including a user's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentkit.agent import Agent
from agentkit.backend import Backend
from agentkit.errors import UserFacingError
from agentkit.evals.environment import open_task_runtime, task_image
from agentkit.evals.grader import grade_patch
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.runtime.base import SandboxError
from agentkit.scaffold import ScaffoldConfig
from agentkit.tasks import Task
from agentkit.tools import Tool
from agentkit.types import ExitStatus, Step, Trajectory

__all__ = [
    "HarnessEvent",
    "TaskFinished",
    "TaskProgress",
    "TaskStarted",
    "run_and_grade",
]

RuntimeKind = Literal["docker", "local"]

NOT_GRADED = frozenset({ExitStatus.BACKEND_ERROR, ExitStatus.RUNTIME_ERROR, ExitStatus.ERROR})
"""Exits that are not the agent's doing: no grade, so the next run retries the task."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskStarted(_Event):
    kind: Literal["task_started"] = "task_started"
    instance_id: str


class TaskProgress(_Event):
    """A task moved on: a phase began, or the agent finished a step (``step`` set)."""

    kind: Literal["task_progress"] = "task_progress"
    instance_id: str
    phase: Literal["image", "sandbox", "agent", "grading"]
    step: int | None = None
    action: str | None = None


class TaskFinished(_Event):
    kind: Literal["task_finished"] = "task_finished"
    result: TaskResult


HarnessEvent = TaskStarted | TaskProgress | TaskFinished
EventHandler = Callable[[HarnessEvent], None]


async def run_and_grade(
    tasks: Sequence[Task],
    scaffold: ScaffoldConfig,
    tools: Sequence[Tool],
    backend_for: Callable[[Task], Backend],
    folder: RunFolder,
    *,
    runtime: RuntimeKind = "docker",
    workers: int = 1,
    rerun: bool = False,
    model_name: str = "agentkit",
    on_event: EventHandler | None = None,
) -> list[TaskResult]:
    """Run and grade ``tasks``; their results, in order. Tasks already graded in ``folder`` are
    not run again unless ``rerun``. The folder's run report and ``preds.jsonl`` (named
    ``model_name``) cover every task in it when this returns, raises or is cancelled."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    emit = on_event or (lambda event: None)
    runner = _TaskRunner(scaffold, list(tools), backend_for, folder, runtime, emit)
    folder.prepare()
    try:
        pending: list[Task] = []
        done: dict[str, TaskResult] = {}
        for task in tasks:
            previous = None if rerun else folder.finished(task.instance_id)
            if previous is None:
                pending.append(task)
            else:
                folder.save_result(previous)
                done[task.instance_id] = previous
                emit(TaskFinished(result=previous))
        image_errors = await _build_images(pending, runtime, workers, emit)
        limit = asyncio.Semaphore(workers)

        async def one(task: Task) -> TaskResult:
            async with limit:
                return await runner.run(task, image_errors.get(task.instance_id))

        async with asyncio.TaskGroup() as group:
            handles = {task.instance_id: group.create_task(one(task)) for task in pending}
        done.update({instance_id: handle.result() for instance_id, handle in handles.items()})
        return [done[task.instance_id] for task in tasks]
    finally:
        folder.write_summary(model_name)


async def _build_images(
    tasks: Sequence[Task], runtime: RuntimeKind, workers: int, emit: EventHandler
) -> dict[str, str]:
    """Build every Docker image up front, each once, ``workers`` at a time in threads (so the
    first tasks do not all wait on the same build); a failed build is that task's error."""
    if runtime != "docker" or not tasks:
        return {}
    limit = asyncio.Semaphore(workers)
    errors: dict[str, str] = {}

    async def build(task: Task) -> None:
        async with limit:
            emit(TaskProgress(instance_id=task.instance_id, phase="image"))
            try:
                await asyncio.to_thread(task_image, task)
            except (UserFacingError, SandboxError) as exc:
                errors[task.instance_id] = str(exc)

    async with asyncio.TaskGroup() as group:
        for task in tasks:
            group.create_task(build(task))
    return errors


class _TaskRunner:
    """Runs one task start to finish; never raises except on cancellation."""

    def __init__(
        self,
        scaffold: ScaffoldConfig,
        tools: list[Tool],
        backend_for: Callable[[Task], Backend],
        folder: RunFolder,
        runtime: RuntimeKind,
        emit: EventHandler,
    ) -> None:
        self.scaffold, self.tools, self.backend_for = scaffold, tools, backend_for
        self.folder, self.runtime, self.emit = folder, runtime, emit

    async def run(self, task: Task, image_error: str | None = None) -> TaskResult:
        instance_id = task.instance_id
        self.emit(TaskStarted(instance_id=instance_id))
        if image_error is not None:
            result = TaskResult(instance_id=instance_id, error=image_error)
        else:
            try:
                result = await self._run_and_grade(task)
            except (UserFacingError, SandboxError) as exc:
                result = TaskResult(instance_id=instance_id, error=str(exc))
            except Exception as exc:  # a bug in a backend, tool or grader: this task's error
                result = TaskResult(
                    instance_id=instance_id, error=self.folder.save_exception(instance_id, exc)
                )
        self.folder.save_result(result)
        self.emit(TaskFinished(result=result))
        return result

    async def _run_and_grade(self, task: Task) -> TaskResult:
        trajectory = await self._solve(task)
        self.folder.save_patch(task.instance_id, trajectory.submission or "")
        outcome = TaskResult(
            instance_id=task.instance_id,
            exit_status=str(trajectory.exit_status),
            steps=len(trajectory.steps),
            cost=trajectory.cost,
        )
        if trajectory.exit_status in NOT_GRADED:
            error = f"{trajectory.exit_status}: {trajectory.exit_message}"
            return outcome.model_copy(update={"error": error})

        self.emit(TaskProgress(instance_id=task.instance_id, phase="grading"))
        grader_runtime = await open_task_runtime(task, self.runtime, run_id=self.folder.run_id)
        async with grader_runtime:
            report = await grade_patch(grader_runtime, task, trajectory.submission)
        result = outcome.model_copy(update={"resolved": report.resolved, "error": report.error})
        self.folder.save_grade(report, trajectory, result)
        return result

    async def _solve(self, task: Task) -> Trajectory:
        instance_id = task.instance_id
        backend = self.backend_for(task)
        self.emit(TaskProgress(instance_id=instance_id, phase="sandbox"))
        runtime = await open_task_runtime(task, self.runtime, run_id=self.folder.run_id)
        async with runtime:

            def on_step(step: Step) -> None:
                action = step.action.name if step.action else None
                self.emit(
                    TaskProgress(
                        instance_id=instance_id, phase="agent", step=step.index, action=action
                    )
                )

            self.emit(TaskProgress(instance_id=instance_id, phase="agent"))
            agent = Agent(
                self.scaffold,
                backend,
                runtime,
                self.tools,
                trajectory_path=self.folder.trajectory_path(instance_id),
                on_step=on_step,
            )
            return await agent.run(task)
