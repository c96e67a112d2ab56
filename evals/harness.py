"""Run-and-grade as a library: tasks × scaffold × backend × runtime → graded results on disk.

For each task: open a sandbox, run the agent, grade its patch in a *fresh* sandbox (so nothing
the agent left behind can sway the tests), and write everything through :class:`RunFolder`.
Tasks run on ``workers`` concurrent workers, in this process or as Ray tasks (``executor``, see
:mod:`agentkit.evals.executors`); progress arrives as typed events, which the CLI shows as a
progress bar and a training driver can consume the same way.

Failure is per task. Whatever one task raises (a backend, tool, template or grader bug, a
sandbox that died) becomes that task's error with its message, and the other tasks go on; only
cancellation (Ctrl-C) stops the run, and then the ``async with`` blocks close every sandbox.
The run report and predictions are written at the end in every case.

The backend comes from the caller (``backend_for``): this module never chooses or builds one,
so it works with any backend, including a user's own.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agentkit.backend import Backend
from agentkit.errors import UserFacingError
from agentkit.evals.environment import open_task_runtime
from agentkit.evals.events import (
    EventHandler,
    HarnessEvent,
    TaskFinished,
    TaskProgress,
    TaskStarted,
)
from agentkit.evals.executors import Executor, ExecutorSpec, LocalExecutor, make_executor
from agentkit.evals.grader import grade_patch
from agentkit.evals.grading import InstanceReport
from agentkit.evals.jobs import RuntimeKind, TaskJob, TaskOutcome, grade_key
from agentkit.evals.prebuild import PrebuiltImages, prebuild_images
from agentkit.evals.predictions import Prediction
from agentkit.evals.run_folder import RunFolder, TaskResult
from agentkit.runtime.base import SandboxError
from agentkit.scaffold import BaseScaffoldConfig
from agentkit.scaffolding import build_scaffold
from agentkit.tasks import Task
from agentkit.tools import Tool
from agentkit.types import ExitStatus, Step, Trajectory

__all__ = [
    "ExecutorSpec",
    "HarnessEvent",
    "TaskFinished",
    "TaskProgress",
    "TaskStarted",
    "attempt_seed",
    "grade_key",
    "grade_predictions",
    "run_and_grade",
]

NOT_GRADED = frozenset({ExitStatus.BACKEND_ERROR, ExitStatus.RUNTIME_ERROR, ExitStatus.ERROR})
"""Exits that are not the agent's doing: no grade, so the next run retries the task."""


async def run_and_grade(
    tasks: Sequence[Task],
    scaffold: BaseScaffoldConfig,
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
    executor: ExecutorSpec = "local",
    grade: bool = True,
) -> list[TaskResult]:
    """Run and grade each of ``tasks`` ``attempts`` times; the results, task by task and
    attempt by attempt. Attempts already graded in ``folder`` are not run again unless
    ``rerun``. With several attempts each gets its own sampling seed (:func:`attempt_seed`: the
    scaffold's seed or 0, plus the attempt number, plus an offset fixed by the task id), so a
    backend that takes a seed samples differently, and differently for each task. The
    folder's run report and ``preds.jsonl`` (named ``model_name``) cover every task in it when
    this returns, raises or is cancelled. An attempt graded before under another
    :func:`grade_key` (its task, eval script or image changed since) has its submitted patch
    graded again, without running the agent. ``executor`` ``"ray"`` runs each attempt as a Ray
    task; ``backend_for`` (called where the attempt runs) must then pickle with cloudpickle.
    ``grade=False`` only runs the agent (tasks without tests, such as a user's own repository):
    each result has ``graded=False``, and an attempt that ended without an error is finished."""
    if workers < 1 or attempts < 1:
        raise ValueError(f"workers and attempts must be at least 1, not {workers}, {attempts}")
    emit = on_event or (lambda event: None)
    runner = make_executor(executor)
    folder.prepare()
    await _start(runner, emit)
    try:
        pending: list[tuple[Task, int]] = []
        regrades: list[RegradeJob] = []
        done: dict[tuple[str, int], TaskResult] = {}
        for task in tasks:
            for attempt in range(attempts):
                previous = None if rerun else folder.finished(task.instance_id, attempt=attempt)
                if previous is None:
                    pending.append((task, attempt))
                    continue
                folder.save_result(previous)
                regrade = _regrade_if_changed(task, previous, folder, runtime)
                if regrade is not None:
                    regrades.append(regrade)
                else:
                    done[task.instance_id, attempt] = previous
                    emit(TaskFinished(result=previous))
        first = list({task.instance_id: task for task, _ in pending}.values())
        images = await _images_up_front(first, runtime, workers, emit, runner)
        limit = asyncio.Semaphore(workers)

        async def one(task: Task, attempt: int) -> TaskResult:
            job = AttemptJob(
                task=task,
                runtime=runtime,
                attempt=attempt,
                images_built=runner.builds_images_up_front,
                scaffold=_attempt_scaffold(scaffold, task.instance_id, attempt, attempts),
                tools=list(tools),
                backend_for=backend_for,
                grade=grade,
            )
            async with limit:
                return await _run_job(
                    runner, job, folder, emit, images.errors.get(task.instance_id)
                )

        async def again(job: RegradeJob) -> TaskResult:
            async with limit:
                return await _run_job(runner, job, folder, emit, previous=job.previous)

        async with asyncio.TaskGroup() as group:
            handles = {
                (task.instance_id, attempt): group.create_task(one(task, attempt))
                for task, attempt in pending
            }
            handles.update(
                {
                    (job.task.instance_id, job.attempt): group.create_task(again(job))
                    for job in regrades
                }
            )
        done.update({key: handle.result() for key, handle in handles.items()})
        return [done[task.instance_id, n] for task in tasks for n in range(attempts)]
    finally:
        try:
            folder.write_summary(model_name)
        finally:
            await runner.stop()


async def _start(executor: Executor, emit: EventHandler) -> None:
    """Start ``executor``; when that fails, release what it took and write no report."""
    try:
        await executor.start(emit)
    except BaseException:
        await executor.stop()
        raise


def _regrade_if_changed(
    task: Task, previous: TaskResult, folder: RunFolder, runtime: RuntimeKind
) -> RegradeJob | None:
    """The job that checks a graded attempt's grade key where it runs and grades its patch
    again when the key changed; ``None`` for results stored without a key (older folders) or
    without their trajectory, which are kept as they are."""
    if previous.grade_key is None:
        return None
    trajectory = folder.saved_trajectory(task.instance_id, previous.attempt)
    if trajectory is None:
        return None
    return RegradeJob(
        task=task,
        runtime=runtime,
        attempt=previous.attempt,
        images_built=False,
        patch=trajectory.submission,
        stored_key=previous.grade_key,
        previous=previous,
        trajectory=trajectory,
    )


def attempt_seed(seed: int, instance_id: str, attempt: int) -> int:
    """The sampling seed of one attempt: the scaffold's ``seed`` plus the attempt number plus an
    offset fixed by the task's id. The offset matters as soon as a model ignores part of its
    prompt: with the same seed for attempt ``k`` of every task, a sampled model would give all
    tasks the same ``k``-th try (correlated samples make pass@k and RL group rewards wrong)."""
    return (seed + attempt + zlib.crc32(instance_id.encode("utf-8"))) % 2**31


def _attempt_scaffold(
    scaffold: BaseScaffoldConfig, instance_id: str, attempt: int, attempts: int
) -> BaseScaffoldConfig:
    """The scaffold of one attempt: with several attempts, its own seed (:func:`attempt_seed`,
    from the scaffold's seed or 0); a single attempt keeps the scaffold's seed (``None``: the
    server draws one)."""
    if attempts == 1:
        return scaffold
    seed = attempt_seed(scaffold.sampling.seed or 0, instance_id, attempt)
    return scaffold.model_copy(
        update={"sampling": scaffold.sampling.model_copy(update={"seed": seed})}
    )


async def _images_up_front(
    tasks: Sequence[Task],
    runtime: RuntimeKind,
    workers: int,
    emit: EventHandler,
    executor: Executor,
) -> PrebuiltImages:
    """Every Docker image built before the first job, when the jobs run in this process; an
    executor whose jobs run elsewhere has each job build its image where it runs."""
    if runtime != "docker" or not executor.builds_images_up_front:
        return PrebuiltImages()
    return await prebuild_images(tasks, workers, emit)


async def _run_job(
    executor: Executor,
    job: TaskJob,
    folder: RunFolder,
    emit: EventHandler,
    setup_error: str | None = None,
    *,
    previous: TaskResult | None = None,
) -> TaskResult:
    """Run one job (or, with ``setup_error``, only record that error); record and announce
    its result. ``previous`` is the stored result a grade job may find still valid."""
    instance_id, attempt = job.task.instance_id, job.attempt
    if setup_error is not None:
        emit(TaskStarted(instance_id=instance_id, attempt=attempt))
        outcome = TaskOutcome(result=TaskResult(instance_id=instance_id, error=setup_error))
    else:
        outcome = await executor.run(job, folder)
    if outcome.skipped and previous is not None:
        emit(TaskFinished(result=previous))
        return previous
    result = outcome.result
    if outcome.traceback is not None:
        error = folder.save_traceback(instance_id, result.error or "", outcome.traceback, attempt)
        result = result.model_copy(update={"error": error})
    result = result.model_copy(update={"attempt": attempt, "repo": job.task.repo})
    folder.save_result(result)
    emit(TaskFinished(result=result))
    return result


@dataclass(frozen=True, kw_only=True)
class AttemptJob(TaskJob):
    """One attempt at a task: the agent in a sandbox, then its patch graded in a fresh one."""

    scaffold: BaseScaffoldConfig
    tools: Sequence[Tool]
    backend_for: Callable[[Task], Backend]
    grade: bool = True
    """``False``: the trajectory and patch are the result; no tests run."""

    async def work(self, folder: RunFolder, emit: EventHandler) -> TaskResult:
        task, attempt = self.task, self.attempt
        await self._image_here(emit)
        trajectory = await self._solve(folder, emit)
        folder.save_patch(task.instance_id, trajectory.submission or "", attempt)
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
        if not self.grade:
            return outcome.model_copy(update={"graded": False})

        emit(TaskProgress(instance_id=task.instance_id, attempt=attempt, phase="grading"))
        grader_runtime = await open_task_runtime(task, self.runtime, run_id=folder.run_id)
        async with grader_runtime:
            report = await grade_patch(grader_runtime, task, trajectory.submission)
        resolved = report.resolved if report.error is None else None  # no evidence, no verdict
        key = grade_key(task, trajectory.submission, self.runtime, await self._image_id())
        update = {"resolved": resolved, "error": report.error, "grade_key": key}
        result = outcome.model_copy(update=update)
        folder.save_grade(report, trajectory, result)
        return result

    async def _solve(self, folder: RunFolder, emit: EventHandler) -> Trajectory:
        instance_id, attempt = self.task.instance_id, self.attempt
        backend = self.backend_for(self.task)
        emit(TaskProgress(instance_id=instance_id, attempt=attempt, phase="sandbox"))
        runtime = await open_task_runtime(self.task, self.runtime, run_id=folder.run_id)
        async with runtime:

            def on_step(step: Step) -> None:
                action = step.action.name if step.action else None
                emit(
                    TaskProgress(
                        instance_id=instance_id,
                        attempt=attempt,
                        phase="agent",
                        step=step.index,
                        action=action,
                    )
                )

            emit(TaskProgress(instance_id=instance_id, attempt=attempt, phase="agent"))
            # Any scaffold type, called the same way; no tools given: it builds its own.
            scaffold = build_scaffold(self.scaffold, tools=list(self.tools) or None)
            return await scaffold.solve(
                self.task,
                runtime,
                backend,
                trajectory_path=folder.trajectory_path(instance_id, attempt),
                on_step=on_step,
            )


# -- grade-only ---------------------------------------------------------------------------------


async def grade_predictions(
    tasks: Sequence[Task],
    predictions: Mapping[str, Prediction],
    folder: RunFolder,
    *,
    runtime: RuntimeKind = "docker",
    workers: int = 1,
    rerun: bool = False,
    on_event: EventHandler | None = None,
    executor: ExecutorSpec = "local",
) -> list[TaskResult]:
    """Grade each prediction for ``tasks`` without running an agent; the results of the graded
    ones, in task order. Empty patches (``null`` or ``""``) are not run, as in SWE-bench. A task
    already graded with the same :func:`grade_key` is not graded again (unless ``rerun``); one
    whose patch, task, eval script or image changed is. The folder's run report (SWE-bench's
    format) and predictions cover every task when this returns, raises or is cancelled.
    ``executor`` ``"ray"`` grades each prediction as a Ray task."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    emit = on_event or (lambda event: None)
    runner = make_executor(executor)
    folder.prepare()
    to_grade = [
        task
        for task in tasks
        if task.instance_id in predictions and not predictions[task.instance_id].is_empty
    ]
    await _start(runner, emit)
    try:
        images = await _images_up_front(to_grade, runtime, workers, emit, runner)
        known = runtime != "docker" or runner.builds_images_up_front
        # In this process, up to ``workers`` more sandboxes start, get their files and stop
        # while ``workers`` test suites run: the tests, not the sandboxes, set the pace.
        test_slots = asyncio.Semaphore(workers) if isinstance(runner, LocalExecutor) else None
        limit = asyncio.Semaphore(2 * workers if test_slots else workers)
        done: dict[str, TaskResult] = {}
        pending: list[tuple[GradeJob, TaskResult | None]] = []
        for task in to_grade:
            patch = predictions[task.instance_id].model_patch
            key: str | None = None  # unknown until the image is where the job runs
            if task.instance_id in images.errors:
                key = ""
            elif known:
                key = grade_key(task, patch, runtime, images.ids.get(task.instance_id))
            stored = None if rerun else folder.finished(task.instance_id)
            if key and stored is not None and stored.grade_key == key:
                done[task.instance_id] = stored
                emit(TaskFinished(result=stored))
                continue
            job = GradeJob(
                task=task,
                runtime=runtime,
                images_built=runner.builds_images_up_front,
                patch=patch,
                grade_key=key or None,
                stored_key=stored.grade_key if stored is not None else None,
                test_slots=test_slots,
            )
            pending.append((job, stored))

        async def one(job: GradeJob, stored: TaskResult | None) -> TaskResult:
            async with limit:
                setup_error = images.errors.get(job.task.instance_id)
                return await _run_job(runner, job, folder, emit, setup_error, previous=stored)

        async with asyncio.TaskGroup() as group:
            handles = {
                job.task.instance_id: group.create_task(one(job, stored)) for job, stored in pending
            }
        done.update({instance_id: handle.result() for instance_id, handle in handles.items()})
        return [done[task.instance_id] for task in to_grade]
    finally:
        try:
            folder.write_swebench_report(tasks, predictions)
        finally:
            await runner.stop()


@dataclass(frozen=True, kw_only=True)
class GradeJob(TaskJob):
    """Grade ``patch`` (no agent) in a fresh sandbox.

    ``grade_key`` is known when the harness could compute it (the image was built up front, or
    the runtime has no image); otherwise the job computes it once the image is on its machine,
    and skips the grade when it equals ``stored_key``, the key of the grade already stored."""

    patch: str | None
    grade_key: str | None = None
    stored_key: str | None = None
    test_slots: asyncio.Semaphore | None = None
    """Shared by the jobs of one process: held only while tests run (see
    :func:`~agentkit.evals.grader.grade_patch`), so the next sandboxes start meanwhile."""

    async def execute(self, folder: RunFolder, emit: EventHandler) -> TaskOutcome:
        key = self.grade_key
        if key is None:
            try:
                key = grade_key(self.task, self.patch, self.runtime, await self._image_here(emit))
            except (UserFacingError, SandboxError) as exc:
                emit(TaskStarted(instance_id=self.task.instance_id, attempt=self.attempt))
                return TaskOutcome(
                    result=TaskResult(instance_id=self.task.instance_id, error=str(exc))
                )
            if key == self.stored_key:
                result = TaskResult(instance_id=self.task.instance_id, grade_key=key)
                return TaskOutcome(result=result, skipped=True)
        outcome = await super().execute(folder, emit)
        return outcome.model_copy(
            update={"result": outcome.result.model_copy(update={"grade_key": key})}
        )

    async def work(self, folder: RunFolder, emit: EventHandler) -> TaskResult:
        report = await self._grade(folder, emit)
        resolved = report.resolved if report.error is None else None  # no evidence, no verdict
        result = TaskResult(
            instance_id=self.task.instance_id,
            attempt=self.attempt,
            resolved=resolved,
            error=report.error,
        )
        folder.save_grade(report, None, result)
        return result

    async def _grade(self, folder: RunFolder, emit: EventHandler) -> InstanceReport:
        task = self.task
        folder.save_patch(task.instance_id, self.patch or "", self.attempt)
        emit(TaskProgress(instance_id=task.instance_id, attempt=self.attempt, phase="grading"))
        sandbox = await open_task_runtime(task, self.runtime, run_id=folder.run_id)
        async with sandbox:
            return await grade_patch(sandbox, task, self.patch, test_slot=self.test_slots)


@dataclass(frozen=True, kw_only=True)
class RegradeJob(GradeJob):
    """An attempt of an earlier run whose patch is graded again because its grade key changed:
    the agent's result (steps, cost, exit status) is kept, the verdict and reward are new."""

    previous: TaskResult
    trajectory: Trajectory

    async def work(self, folder: RunFolder, emit: EventHandler) -> TaskResult:
        report = await self._grade(folder, emit)
        resolved = report.resolved if report.error is None else None  # no evidence, no verdict
        update = {"resolved": resolved, "error": report.error, "resumed": False}
        result = self.previous.model_copy(update=update)
        folder.save_grade(report, self.trajectory.model_copy(deep=True), result)
        return result
