"""``agentkit run``: for each task, open a sandbox, run the agent, grade its patch in a fresh
sandbox, and write everything under ``OUTPUT/RUN_ID/INSTANCE_ID/``:

- ``trajectory.json``: the whole run (exact model inputs, actions, observations, exit, reward);
- ``patch.diff``: the submission;
- ``report.json``, ``test_output.txt`` and ``eval.sh``: the SWE-bench-format grading result, the
  test log and the script that produced it.

A task whose ``report.json`` exists is not run again (so an interrupted run resumes), unless
``rerun`` is set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from agentkit.agent import Agent
from agentkit.backend import Backend
from agentkit.errors import UserFacingError
from agentkit.scaffold import ScaffoldConfig
from agentkit.tasks import Task, TaskLoadError, load_tasks
from agentkit.tools import Tool, get_tool
from agentkit.types import ExitStatus, Step, write_text_atomic

if TYPE_CHECKING:
    from agentkit.backends.registry import BackendConfig


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path
    task_ids: list[str] = []
    scaffold: str = "mini"
    backend: str = "gold"
    runtime: Literal["docker", "local"] = "docker"
    output: Path = Path("runs")
    run_id: str | None = None
    rerun: bool = False


class TaskResult(BaseModel):
    instance_id: str
    exit_status: str | None = None
    steps: int = 0
    resolved: bool | None = None
    error: str | None = None
    resumed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_tasks(settings: RunSettings, console: Console | None = None) -> list[TaskResult]:
    from agentkit.backends.registry import close_backend, parse_backend_spec
    from agentkit.scaffolds import load_scaffold

    console = console or Console()
    tasks = _select(settings)
    config = load_scaffold(settings.scaffold)
    tools = _tools(config)
    backend_config = parse_backend_spec(settings.backend)
    run_id = settings.run_id or f"{config.name}__{_backend_label(backend_config)}"
    run_dir = settings.output / run_id
    if settings.runtime == "docker":
        _require_docker()
    if backend_config.type == "gold":
        console.print(
            "[bold yellow]Backend: gold[/] - replays each task's reference patch through the "
            "scaffold's tools. A sanity run of sandbox, tools and grader, [bold]not a model[/]."
        )
    backends = _Backends(backend_config, config, tools)
    results: list[TaskResult] = []
    try:
        await backends.start(console)
        for number, task in enumerate(tasks, start=1):
            label = f"[{number}/{len(tasks)}] {task.instance_id}"
            with console.status(f"{label}: starting") as status:
                result = await _run_one(
                    task, config, tools, backends, settings, run_dir, run_id, status, label
                )
            console.print(f"{label}: {_describe(result)}", highlight=False)
            results.append(result)
    finally:
        if backends.shared is not None:
            await close_backend(backends.shared)
    _write_run_report(run_dir, run_id, results)
    _write_predictions(run_dir, _backend_label(backend_config), results)
    console.print(_summary_table(results, run_id))
    console.print(f"Results: {run_dir}/")
    return results


class _Backends:
    """A model backend (a server, loaded weights, a client) is built once and serves every task;
    ``gold`` and ``scripted`` replay per-task replies, so each task gets a fresh one."""

    def __init__(self, config: BackendConfig, scaffold: ScaffoldConfig, tools: list[Tool]) -> None:
        from agentkit.backends.registry import build_backend

        self.config, self.scaffold, self.tools = config, scaffold, tools
        self.per_task = config.type in ("gold", "scripted")
        self.shared: Backend | None = None if self.per_task else build_backend(config)

    async def start(self, console: Console) -> None:
        """Bring a shared backend up before the first task (a local server takes a minute), so
        that a backend that cannot start stops the run with its own message, once."""
        start = getattr(self.shared, "start", None)
        if start is not None:
            with console.status(f"Starting the {self.config.type} backend"):
                await start()

    def for_task(self, task: Task) -> Backend:
        from agentkit.backends.registry import build_backend

        if self.shared is not None:
            return self.shared
        return build_backend(
            self.config,
            task=task,
            call_format=self.scaffold.call_format,
            tools=self.tools,
            submit_sentinel=self.scaffold.submit_sentinel,
        )


def _tools(config: ScaffoldConfig) -> list[Tool]:
    try:
        return [get_tool(name) for name in config.tools]
    except ValueError as exc:
        raise UserFacingError(f"Scaffold {config.name!r}: {exc}") from exc


def _select(settings: RunSettings) -> list[Task]:
    try:
        tasks = load_tasks(settings.dataset)
    except TaskLoadError as exc:
        raise UserFacingError(str(exc)) from exc
    if not settings.task_ids:
        return tasks
    by_id = {task.instance_id: task for task in tasks}
    unknown = [i for i in settings.task_ids if i not in by_id]
    if unknown:
        raise UserFacingError(
            f"No task {', '.join(map(repr, unknown))} in {settings.dataset}. "
            f"Tasks there: {', '.join(sorted(by_id))}."
        )
    return [by_id[i] for i in settings.task_ids]


def _require_docker() -> None:
    from agentkit.runtime import docker_available

    problem = docker_available()
    if problem:
        raise UserFacingError(problem)


async def _run_one(
    task: Task,
    config: ScaffoldConfig,
    tools: list[Tool],
    backends: _Backends,
    settings: RunSettings,
    run_dir: Path,
    run_id: str,
    status: object,
    label: str,
) -> TaskResult:
    from agentkit.evals.environment import open_task_runtime
    from agentkit.evals.grader import grade_patch
    from agentkit.runtime import SandboxError

    out = run_dir / task.instance_id
    report_path = out / "report.json"
    if report_path.exists() and not settings.rerun:
        return _resumed(task, out)

    def show(text: str) -> None:
        status.update(f"{label}: {text}")  # type: ignore[attr-defined]

    try:
        backend = backends.for_task(task)
        show("opening the sandbox")
        runtime = await open_task_runtime(task, settings.runtime, run_id=run_id)
        async with runtime:

            def on_step(step: Step) -> None:
                action = step.action.name if step.action else "format error"
                show(f"step {step.index + 1} ({action})")

            agent = Agent(
                config,
                backend,
                runtime,
                tools,
                trajectory_path=out / "trajectory.json",
                on_step=on_step,
            )
            trajectory = await agent.run(task)
        write_text_atomic(out / "patch.diff", trajectory.submission or "")
        if trajectory.exit_status in _NOT_GRADED:
            # Not the agent's doing: no report, so the next run of the command retries the task.
            return TaskResult(
                instance_id=task.instance_id,
                exit_status=str(trajectory.exit_status),
                steps=len(trajectory.steps),
                error=f"{trajectory.exit_status}: {trajectory.exit_message}",
            )

        show("grading")
        grader_runtime = await open_task_runtime(task, settings.runtime, run_id=run_id)
        async with grader_runtime:
            report = await grade_patch(grader_runtime, task, trajectory.submission)
    except (UserFacingError, SandboxError) as exc:
        return TaskResult(instance_id=task.instance_id, error=str(exc))

    write_text_atomic(out / "test_output.txt", report.test_output)
    write_text_atomic(out / "eval.sh", report.eval_script)
    if report.error is None:
        trajectory.reward = 1.0 if report.resolved else 0.0
        trajectory.save(out / "trajectory.json")
    write_text_atomic(report_path, json.dumps(report.to_swebench(), indent=2))
    return TaskResult(
        instance_id=task.instance_id,
        exit_status=str(trajectory.exit_status),
        steps=len(trajectory.steps),
        resolved=report.resolved,
        error=report.error,
    )


_NOT_GRADED = (ExitStatus.BACKEND_ERROR, ExitStatus.RUNTIME_ERROR)


def _backend_label(config: BackendConfig) -> str:
    """A short, path-safe name for run ids: the backend kind and, for models, the model's name."""
    name = getattr(config, "model", None) or getattr(config, "model_path", None)
    if config.type == "hf":
        name = getattr(config, "path", None)
    if not name:
        return config.type
    tail = Path(str(name).rstrip("/")).name
    return f"{config.type}-{re.sub(r'[^A-Za-z0-9._-]+', '-', tail)}"


def _resumed(task: Task, out: Path) -> TaskResult:
    from agentkit.types import Trajectory

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))[task.instance_id]
    trajectory = Trajectory.load(out / "trajectory.json")
    return TaskResult(
        instance_id=task.instance_id,
        exit_status=str(trajectory.exit_status),
        steps=len(trajectory.steps),
        resolved=report.get("resolved"),
        error=report.get("error"),
        resumed=True,
    )


def _describe(result: TaskResult) -> str:
    if result.error:
        return f"[red]error[/]: {result.error}"
    verdict = "[green]resolved[/]" if result.resolved else "[red]unresolved[/]"
    resumed = " (already done, not rerun)" if result.resumed else ""
    return f"{verdict} - exit {result.exit_status}, {result.steps} steps{resumed}"


def _summary_table(results: list[TaskResult], run_id: str) -> Table:
    resolved = sum(1 for r in results if r.resolved)
    table = Table(title=f"{run_id}: {resolved}/{len(results)} resolved")
    for column in ("instance", "exit", "steps", "resolved"):
        table.add_column(column)
    for r in results:
        verdict = "error" if r.error else ("yes" if r.resolved else "no")
        table.add_row(r.instance_id, r.exit_status or "-", str(r.steps), verdict)
    return table


def _write_run_report(run_dir: Path, run_id: str, results: list[TaskResult]) -> None:
    """A run report with the SWE-bench run report's id lists."""
    ids = lambda pred: sorted(r.instance_id for r in results if pred(r))  # noqa: E731
    report = {
        "run_id": run_id,
        "total_instances": len(results),
        "submitted_instances": len(results),
        "completed_instances": sum(1 for r in results if r.error is None),
        "resolved_instances": sum(1 for r in results if r.resolved),
        "unresolved_instances": sum(1 for r in results if r.error is None and not r.resolved),
        "empty_patch_instances": len(_empty_patch_ids(run_dir, results)),
        "error_instances": sum(1 for r in results if r.error is not None),
        "completed_ids": ids(lambda r: r.error is None),
        "resolved_ids": ids(lambda r: bool(r.resolved)),
        "unresolved_ids": ids(lambda r: r.error is None and not r.resolved),
        "empty_patch_ids": _empty_patch_ids(run_dir, results),
        "error_ids": ids(lambda r: r.error is not None),
        "exit_statuses": {r.instance_id: r.exit_status for r in results},
        "schema_version": 2,
    }
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))


def _graded_patches(run_dir: Path, results: list[TaskResult]) -> dict[str, str]:
    """The submitted patch of every task that was graded, by instance id."""
    patches = {}
    for result in results:
        path = run_dir / result.instance_id / "patch.diff"
        if result.error is None and path.exists():
            patches[result.instance_id] = path.read_text(encoding="utf-8", errors="surrogateescape")
    return patches


def _empty_patch_ids(run_dir: Path, results: list[TaskResult]) -> list[str]:
    return sorted(i for i, patch in _graded_patches(run_dir, results).items() if not patch.strip())


def _write_predictions(run_dir: Path, model: str, results: list[TaskResult]) -> None:
    """``preds.jsonl`` in SWE-bench's predictions format, so the same patches can be graded by
    any SWE-bench-compatible harness."""
    lines = [
        json.dumps({"instance_id": i, "model_name_or_path": model, "model_patch": patch})
        for i, patch in _graded_patches(run_dir, results).items()
    ]
    write_text_atomic(run_dir / "preds.jsonl", "".join(line + "\n" for line in lines))
