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
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentkit.agent import Agent
from agentkit.backend import Backend
from agentkit.errors import UserFacingError
from agentkit.evals.environment import image_id, open_task_runtime, task_image
from agentkit.evals.eval_script import eval_script_for
from agentkit.evals.grader import grade_patch
from agentkit.evals.predictions import Prediction
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
    "grade_key",
    "grade_predictions",
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


async def run_and_grade(
    tasks: Sequence[Task],
    scaffold: ScaffoldConfig,
    tools: Sequence[Tool],
    backend_for: Callable[[Task], Backend],
    folder: RunFolder,
    *,
    runtime: RuntimeKind = "docker",
    workers: int = 1,
    attempts: int = 1,
    rerun: bool = False,
    model_name: str = "agentkit",
    on_event: EventHandler | None = None,
) -> list[TaskResult]:
    """Run and grade each of ``tasks`` ``attempts`` times; the results, task by task and
    attempt by attempt. Attempts already graded in ``folder`` are not run again unless
    ``rerun``. With several attempts each gets its own sampling seed (the scaffold's seed, or
    0, plus the attempt number), so a backend that takes a seed samples differently. The
    folder's run report and ``preds.jsonl`` (named ``model_name``) cover every task in it when
    this returns, raises or is cancelled."""
    if workers < 1 or attempts < 1:
        raise ValueError(f"workers and attempts must be at least 1, not {workers}, {attempts}")
    emit = on_event or (lambda event: None)
    runner = _TaskRunner(list(tools), backend_for, folder, runtime, emit)
    folder.prepare()
    try:
        pending: list[tuple[Task, int]] = []
        done: dict[tuple[str, int], TaskResult] = {}
        for task in tasks:
            for attempt in range(attempts):
                previous = None if rerun else folder.finished(task.instance_id, attempt=attempt)
                if previous is None:
                    pending.append((task, attempt))
                else:
                    folder.save_result(previous)
                    done[task.instance_id, attempt] = previous
                    emit(TaskFinished(result=previous))
        first = list({task.instance_id: task for task, _ in pending}.values())
        images = await _build_images(first, runtime, workers, emit)
        limit = asyncio.Semaphore(workers)

        async def one(task: Task, attempt: int) -> TaskResult:
            config = _attempt_scaffold(scaffold, attempt) if attempts > 1 else scaffold
            async with limit:
                return await runner.run(task, config, attempt, images.errors.get(task.instance_id))

        async with asyncio.TaskGroup() as group:
            handles = {
                (task.instance_id, attempt): group.create_task(one(task, attempt))
                for task, attempt in pending
            }
        done.update({key: handle.result() for key, handle in handles.items()})
        return [done[task.instance_id, n] for task in tasks for n in range(attempts)]
    finally:
        folder.write_summary(model_name)


def _attempt_scaffold(scaffold: ScaffoldConfig, attempt: int) -> ScaffoldConfig:
    seed = (scaffold.sampling.seed or 0) + attempt
    return scaffold.model_copy(
        update={"sampling": scaffold.sampling.model_copy(update={"seed": seed})}
    )


class _Images(BaseModel):
    errors: dict[str, str] = {}
    """Instance id → why its image could not be built (that task's error)."""
    ids: dict[str, str] = {}
    """Instance id → the id of the image it runs in."""


async def _build_images(
    tasks: Sequence[Task], runtime: RuntimeKind, workers: int, emit: EventHandler
) -> _Images:
    """Build every Docker image up front, each once, ``workers`` at a time in threads (so the
    first tasks do not all wait on the same build); a failed build is that task's error."""
    images = _Images()
    if runtime != "docker" or not tasks:
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


async def _guarded(
    task: Task,
    work: Callable[[], Awaitable[TaskResult]],
    folder: RunFolder,
    emit: EventHandler,
    setup_error: str | None = None,
    *,
    attempt: int = 0,
    grade_key: str | None = None,
) -> TaskResult:
    """Run one task's ``work`` so that whatever it raises (but cancellation) becomes that task's
    error; record and announce the result either way."""
    instance_id = task.instance_id
    emit(TaskStarted(instance_id=instance_id, attempt=attempt))
    if setup_error is not None:
        result = TaskResult(instance_id=instance_id, error=setup_error)
    else:
        try:
            result = await work()
        except (UserFacingError, SandboxError) as exc:
            result = TaskResult(instance_id=instance_id, error=str(exc))
        except Exception as exc:  # a bug in a backend, tool or grader: this task's error
            error = folder.save_exception(instance_id, exc, attempt)
            result = TaskResult(instance_id=instance_id, error=error)
    update: dict[str, object] = {"attempt": attempt, "repo": task.repo}
    if grade_key:
        update["grade_key"] = grade_key
    result = result.model_copy(update=update)
    folder.save_result(result)
    emit(TaskFinished(result=result))
    return result


class _TaskRunner:
    """Runs one attempt at a task start to finish; never raises except on cancellation."""

    def __init__(
        self,
        tools: list[Tool],
        backend_for: Callable[[Task], Backend],
        folder: RunFolder,
        runtime: RuntimeKind,
        emit: EventHandler,
    ) -> None:
        self.tools, self.backend_for = tools, backend_for
        self.folder, self.runtime, self.emit = folder, runtime, emit

    async def run(
        self, task: Task, scaffold: ScaffoldConfig, attempt: int, image_error: str | None
    ) -> TaskResult:
        return await _guarded(
            task,
            lambda: self._run_and_grade(task, scaffold, attempt),
            self.folder,
            self.emit,
            image_error,
            attempt=attempt,
        )

    async def _run_and_grade(
        self, task: Task, scaffold: ScaffoldConfig, attempt: int
    ) -> TaskResult:
        trajectory = await self._solve(task, scaffold, attempt)
        self.folder.save_patch(task.instance_id, trajectory.submission or "", attempt)
        outcome = TaskResult(
            instance_id=task.instance_id,
            attempt=attempt,
            repo=task.repo,
            exit_status=str(trajectory.exit_status),
            steps=len(trajectory.steps),
            cost=trajectory.cost,
            wall_time_s=trajectory.wall_time_s,
            prompt_tokens=sum(step.completion.usage.prompt_tokens for step in trajectory.steps),
            completion_tokens=sum(
                step.completion.usage.completion_tokens for step in trajectory.steps
            ),
        )
        if trajectory.exit_status in NOT_GRADED:
            error = f"{trajectory.exit_status}: {trajectory.exit_message}"
            return outcome.model_copy(update={"error": error})

        self.emit(TaskProgress(instance_id=task.instance_id, attempt=attempt, phase="grading"))
        grader_runtime = await open_task_runtime(task, self.runtime, run_id=self.folder.run_id)
        async with grader_runtime:
            report = await grade_patch(grader_runtime, task, trajectory.submission)
        resolved = report.resolved if report.error is None else None  # no evidence, no verdict
        result = outcome.model_copy(update={"resolved": resolved, "error": report.error})
        self.folder.save_grade(report, trajectory, result)
        return result

    async def _solve(self, task: Task, scaffold: ScaffoldConfig, attempt: int) -> Trajectory:
        instance_id = task.instance_id
        backend = self.backend_for(task)
        self.emit(TaskProgress(instance_id=instance_id, attempt=attempt, phase="sandbox"))
        runtime = await open_task_runtime(task, self.runtime, run_id=self.folder.run_id)
        async with runtime:

            def on_step(step: Step) -> None:
                action = step.action.name if step.action else None
                self.emit(
                    TaskProgress(
                        instance_id=instance_id,
                        attempt=attempt,
                        phase="agent",
                        step=step.index,
                        action=action,
                    )
                )

            self.emit(TaskProgress(instance_id=instance_id, attempt=attempt, phase="agent"))
            agent = Agent(
                scaffold,
                backend,
                runtime,
                self.tools,
                trajectory_path=self.folder.trajectory_path(instance_id, attempt),
                on_step=on_step,
            )
            return await agent.run(task)


# -- grade-only ---------------------------------------------------------------------------------


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


async def grade_predictions(
    tasks: Sequence[Task],
    predictions: Mapping[str, Prediction],
    folder: RunFolder,
    *,
    runtime: RuntimeKind = "docker",
    workers: int = 1,
    rerun: bool = False,
    on_event: EventHandler | None = None,
) -> list[TaskResult]:
    """Grade each prediction for ``tasks`` without running an agent; the results of the graded
    ones, in task order. Empty patches (``null`` or ``""``) are not run, as in SWE-bench. A task
    already graded with the same :func:`grade_key` is not graded again (unless ``rerun``); one
    whose patch, task, eval script or image changed is. The folder's run report (SWE-bench's
    format) and predictions cover every task when this returns, raises or is cancelled."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    emit = on_event or (lambda event: None)
    folder.prepare()
    to_grade = [
        task
        for task in tasks
        if task.instance_id in predictions and not predictions[task.instance_id].is_empty
    ]
    try:
        images = await _build_images(to_grade, runtime, workers, emit)
        done: dict[str, TaskResult] = {}
        pending: list[tuple[Task, str]] = []
        for task in to_grade:
            if task.instance_id in images.errors:
                key = ""
            else:
                patch = predictions[task.instance_id].model_patch
                key = grade_key(task, patch, runtime, images.ids.get(task.instance_id))
            previous = None if rerun or not key else folder.finished(task.instance_id, key)
            if previous is None:
                pending.append((task, key))
            else:
                done[task.instance_id] = previous
                emit(TaskFinished(result=previous))
        limit = asyncio.Semaphore(workers)

        async def one(task: Task, key: str) -> TaskResult:
            prediction = predictions[task.instance_id]
            async with limit:
                return await _guarded(
                    task,
                    lambda: _grade_one(task, prediction.model_patch, folder, runtime, emit),
                    folder,
                    emit,
                    images.errors.get(task.instance_id),
                    grade_key=key or None,
                )

        async with asyncio.TaskGroup() as group:
            handles = {task.instance_id: group.create_task(one(task, key)) for task, key in pending}
        done.update({instance_id: handle.result() for instance_id, handle in handles.items()})
        return [done[task.instance_id] for task in to_grade]
    finally:
        folder.write_swebench_report(tasks, predictions)


async def _grade_one(
    task: Task, patch: str | None, folder: RunFolder, runtime: RuntimeKind, emit: EventHandler
) -> TaskResult:
    folder.save_patch(task.instance_id, patch or "")
    emit(TaskProgress(instance_id=task.instance_id, phase="grading"))
    sandbox = await open_task_runtime(task, runtime, run_id=folder.run_id)
    async with sandbox:
        report = await grade_patch(sandbox, task, patch)
    resolved = report.resolved if report.error is None else None  # no evidence, no verdict
    result = TaskResult(instance_id=task.instance_id, resolved=resolved, error=report.error)
    folder.save_grade(report, None, result)
    return result
