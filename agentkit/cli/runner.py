"""``agentkit run``: settings from the command line, the backend built from its spec, and the
evaluation harness (:mod:`agentkit.evals.harness`) run over the selected tasks with a progress
bar. What is written where, resuming, and per-task failure are the harness's business; this
module only wires the parts together and prints.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentkit.backend import Backend, BackendError
from agentkit.cli.progress import RunProgress
from agentkit.cli.run_config import TaskSource
from agentkit.errors import UserFacingError
from agentkit.evals.run_folder import TaskResult
from agentkit.scaffold import BaseScaffoldConfig, Limits, ScaffoldConfig
from agentkit.tasks import Task
from agentkit.tools import Tool

if TYPE_CHECKING:
    from agentkit.backends.registry import BackendConfig
    from agentkit.evals.executors import Executor


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Path | None = None
    """The tasks; or, with ``repo``, none (a run on the user's own repository)."""
    task_ids: list[str] = []
    pattern: str | None = None
    slice: str | None = None
    scaffold: str = "mini"
    backend: str = "gold"
    runtime: Literal["docker", "local"] = "docker"
    output: Path = Path("runs")
    run_id: str | None = None
    rerun: bool = False
    workers: int = Field(default=1, ge=1)
    attempts: int = Field(default=1, ge=1)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    max_steps: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, ge=0)
    max_time_s: float | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    seed: int | None = None
    repo: Path | None = None
    """A local git repository to work on (no dataset, no tests): see :mod:`.adhoc`."""
    problem: str | None = None
    problem_file: Path | None = None

    def apply_overrides(self, config: BaseScaffoldConfig) -> BaseScaffoldConfig:
        """The scaffold with the limits and sampling settings given on the command line (they
        are part of the scaffold config, so every trajectory records them)."""
        limits = {
            "max_steps": self.max_steps,
            "max_cost": self.max_cost,
            "max_wall_time_s": self.max_time_s,
        }
        limits = {key: value for key, value in limits.items() if value is not None}
        sampling = {"temperature": self.temperature, "seed": self.seed}
        sampling = {key: value for key, value in sampling.items() if value is not None}
        update: dict[str, object] = {}
        if sampling:
            update["sampling"] = config.sampling.model_copy(update=sampling)
        if limits:
            current = getattr(config, "limits", None)
            if not isinstance(current, Limits):
                raise UserFacingError(
                    f"--max-steps, --max-cost and --max-time set a tool loop's limits; the "
                    f"scaffold {config.name!r} is of type {config.type!r}, which has none"
                )
            update["limits"] = Limits.model_validate({**current.model_dump(), **limits})
        return config.model_copy(update=update) if update else config


async def run_tasks(settings: RunSettings, console: Console | None = None) -> list[TaskResult]:
    from agentkit.cli.adhoc import adhoc_for
    from agentkit.scaffolds import load_scaffold

    console = console or Console()
    with ExitStack() as stack:  # an ad-hoc task's snapshot lasts as long as the run
        if settings.repo is not None:
            source = stack.enter_context(adhoc_for(settings))
        else:
            source = dataset_source(settings)
        config = settings.apply_overrides(load_scaffold(settings.scaffold))
        return await _run(settings, source, config, console)


def dataset_source(settings: RunSettings) -> TaskSource:
    """The selected tasks of ``--dataset``; the record names the whole dataset's content."""
    from agentkit.cli.run_config import tasks_digest
    from agentkit.evals.datasets import load_dataset
    from agentkit.evals.datasets import select_tasks as select

    if settings.problem is not None or settings.problem_file is not None:
        raise UserFacingError("--problem and --problem-file go with --repo.")
    if settings.dataset is None:
        raise UserFacingError("No tasks: give --dataset, or --repo with --problem.")
    every = load_dataset(settings.dataset)
    tasks = select(every, ids=settings.task_ids, pattern=settings.pattern, slice_=settings.slice)
    return TaskSource(
        tasks=tasks,
        identity={"dataset_sha256": tasks_digest(every)},
        details={"dataset": str(settings.dataset.expanduser().resolve())},
    )


async def _run(
    settings: RunSettings, source: TaskSource, config: BaseScaffoldConfig, console: Console
) -> list[TaskResult]:
    from agentkit.backends.registry import close_backend, parse_backend_spec
    from agentkit.cli.run_config import choose_run, run_record, save_record
    from agentkit.evals.harness import run_and_grade
    from agentkit.evals.run_folder import RunFolder

    tasks = source.tasks
    tools = _tools(config)
    backend_config = parse_backend_spec(settings.backend)
    label = _backend_label(backend_config)
    if not source.grade and backend_config.type == "gold":
        raise UserFacingError(
            "The gold backend replays a dataset task's reference patch; --repo has none. Choose "
            "a model (--backend openai:MODEL, ...) or scripted replies (--backend scripted:FILE)."
        )
    record = run_record(
        scaffold=config.model_dump(mode="json"),
        backend=backend_config.model_dump(mode="json"),
        runtime=settings.runtime,
        attempts=settings.attempts,
        tasks=source.identity,
        details=source.details,
    )
    chosen = choose_run(
        settings.output,
        f"{source.id_prefix}{config.name}__{label}",
        record,
        run_id=settings.run_id,
        rerun=settings.rerun,
        selected=[task.instance_id for task in tasks],
    )
    executor = make_executor(settings.executor, settings.ray_address)
    backends = _Backends(backend_config, config, tools, remote=settings.executor == "ray")
    run_id = chosen.run_id
    folder = RunFolder(chosen.root, run_id)
    folder.prepare()
    save_record(folder.root, record)
    for note in chosen.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if settings.runtime == "docker" and settings.executor == "local":
        require_docker()  # on Ray, each node's engine (a node without one fails its tasks)
    if backend_config.type == "gold":
        console.print(
            "[bold yellow]Backend: gold[/] - replays each task's reference patch through the "
            "scaffold's tools. A sanity run of sandbox, tools and grader, [bold]not a model[/]."
        )
    progress = RunProgress(console, len(tasks) * settings.attempts)
    try:
        await backends.start(console)
        with progress:
            results = await run_and_grade(
                tasks,
                config,
                tools,
                backends.for_task,
                folder,
                runtime=settings.runtime,
                workers=settings.workers,
                attempts=settings.attempts,
                rerun=settings.rerun,
                model_name=label,
                on_event=progress.on_event,
                executor=executor,
                grade=source.grade,
            )
    finally:
        if backends.shared is not None:
            await close_backend(backends.shared)
    console.print(_summary_table([r for r in results if r.attempt == 0], run_id))
    if settings.attempts > 1:
        from agentkit.evals.statistics import RunStatistics, render_statistics

        report = json.loads((folder.root / "report.json").read_text(encoding="utf-8"))
        stats = RunStatistics.model_validate(report["statistics"])
        console.print(render_statistics(stats), highlight=False, markup=False)
    if not source.grade:
        from agentkit.cli.adhoc import print_patches

        print_patches(console, folder, results)
    console.print(f"Results: {folder.root}/")
    return results


class _Backends:
    """A model backend (a server, loaded weights, a client) is built once and serves every task;
    ``gold`` and ``scripted`` replay per-task replies, so each task gets a fresh one. With
    ``remote`` (tasks run on Ray nodes) every task builds its own where it runs: then
    :meth:`for_task` must pickle, and a backend that loads a model in-process is refused."""

    def __init__(
        self,
        config: BackendConfig,
        scaffold: BaseScaffoldConfig,
        tools: list[Tool],
        *,
        remote: bool = False,
    ) -> None:
        from agentkit.backends.registry import build_backend

        if config.type == "gold" and not isinstance(scaffold, ScaffoldConfig):
            raise UserFacingError(
                "The gold backend replays each task's reference patch through a tool_loop "
                f"scaffold's tools; scaffold {scaffold.name!r} is of type {scaffold.type!r}."
            )
        if remote and config.type in ("vllm", "hf"):
            raise UserFacingError(
                f"A {config.type} backend loads the model in the process that uses it, and "
                "--executor ray would load it in every task. Serve the model once (agentkit "
                "serve PATH --host 0.0.0.0) and use --backend openai:MODEL@http://HOST:PORT/v1."
            )
        self.config, self.scaffold, self.tools = config, scaffold, tools
        self.per_task = remote or config.type in ("gold", "scripted")
        self.shared: Backend | None = None if self.per_task else build_backend(config)

    async def start(self, console: Console) -> None:
        """Bring a shared backend up before the first task (a local server takes a minute), so
        that a backend that cannot start stops the run with its own message, once."""
        start = getattr(self.shared, "start", None)
        if start is None:
            return
        what = f"Starting the {self.config.type} backend"
        with console.status(what) as status:
            starting = asyncio.ensure_future(start())
            began = time.monotonic()
            try:
                while not starting.done():
                    # A local server takes a minute or more: say how long so far, and where its
                    # log is.
                    log = getattr(self.shared, "log_path", None)
                    where = f"; log: {log}" if log else ""
                    status.update(f"{what} ({time.monotonic() - began:.0f} s{where})")
                    await asyncio.wait([starting], timeout=1.0)
            finally:
                starting.cancel()  # a no-op once done; stops the start on Ctrl-C
            try:
                starting.result()
            except BackendError as exc:
                raise UserFacingError(str(exc)) from exc
        console.print(f"{what}: ready after {time.monotonic() - began:.0f} s")

    def for_task(self, task: Task) -> Backend:
        from agentkit.backends.registry import build_backend

        if self.shared is not None:
            return self.shared
        if not isinstance(self.scaffold, ScaffoldConfig):
            return build_backend(self.config, task=task)
        return build_backend(
            self.config,
            task=task,
            call_format=self.scaffold.build_format(),
            tools=self.tools,
            submit_sentinel=self.scaffold.submit_sentinel,
        )


def make_executor(kind: Literal["local", "ray"], ray_address: str | None) -> Executor:
    """The harness's executor for ``--executor`` and ``--ray-address``; a missing ``ray``
    package is a one-line error here, before anything starts."""
    from agentkit.evals.executors import RayExecutorConfig
    from agentkit.evals.executors import make_executor as make

    return make(RayExecutorConfig(address=ray_address) if kind == "ray" else "local")


def _tools(config: BaseScaffoldConfig) -> list[Tool]:
    """A tool loop's tools, built once and shared by every task (the gold backend needs them
    too); other scaffold types build whatever they use themselves."""
    return config.build_tools() if isinstance(config, ScaffoldConfig) else []


def require_docker() -> None:
    from agentkit.runtime import docker_available

    problem = docker_available()
    if problem:
        raise UserFacingError(problem)


def _backend_label(config: BackendConfig) -> str:
    """A short, path-safe name for run ids: the backend kind and, for models, the model's name."""
    name = getattr(config, "model", None) or getattr(config, "model_path", None)
    if config.type == "hf":
        name = getattr(config, "path", None)
    if not name:
        return config.type
    tail = Path(str(name).rstrip("/")).name
    return f"{config.type}-{re.sub(r'[^A-Za-z0-9._-]+', '-', tail)}"


def _summary_table(results: list[TaskResult], run_id: str) -> Table:
    resolved = sum(1 for r in results if r.resolved)
    title = f"{run_id}: {resolved}/{len(results)} resolved"
    if results and not any(r.graded for r in results):
        title = f"{run_id}: {len(results)} task{'s' if len(results) != 1 else ''}, not graded"
    table = Table(title=title)
    for column in ("instance", "exit", "steps", "resolved"):
        table.add_column(column)
    for r in results:
        verdict = "error" if r.error else ("yes" if r.resolved else "no")
        verdict = verdict if r.graded or r.error else "not graded"
        table.add_row(r.instance_id, r.exit_status or "-", str(r.steps), verdict)
    return table
